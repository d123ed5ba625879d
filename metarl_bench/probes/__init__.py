"""Belief probes: record an agent's memory beside the exact posterior, fit maps, and score them.

May import ``metarl_bench.core``, ``metarl_bench.evaluation`` and ``metarl_bench.reporting``
(its CSV validation and provenance).
"""
