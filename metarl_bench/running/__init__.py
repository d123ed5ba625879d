"""Running: the command line and the sweeps it plans.  The only layer that knows about argv.

Parses flags once (``options``), plans and executes runs on a backend (``sweep``), and holds
every command (``run``, ``probe``, and the readers in ``tables``).  May import every other
layer; nothing imports it but the ``python -m metarl_bench.<command>`` aliases.
"""
