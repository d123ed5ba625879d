"""Evaluation: held-out tasks, common random numbers, references, the score and its intervals.

Owns the one definition of the score (``score``) and the one bootstrap every interval uses
(``stats``).  May import ``metarl_bench.core`` and ``metarl_bench.records`` (the evaluator
returns the row's typed metrics).
"""
