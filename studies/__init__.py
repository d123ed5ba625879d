"""Studies: the commands that tune agents and analyse trained ones (``python -m studies.<name>``).

Not installed with the package; run them from the repository root.  Their outputs go to
``results/`` (with ``--results results``) or to the data files the agents read.
"""
