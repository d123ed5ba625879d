"""Evaluation: held-out tasks, common random numbers, references, the score and its intervals.

Owns the one definition of the score and the one bootstrap every interval uses.  May import
``metarl_bench.core`` only.
"""
