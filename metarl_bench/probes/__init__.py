"""Belief probes: record an agent's memory beside the exact posterior, fit maps, and score them.

May import ``metarl_bench.core``, ``metarl_bench.evaluation`` (its rollout, so a probe plays
what the evaluator plays) and ``metarl_bench.records`` (the probe CSV's validation and provenance).
"""
