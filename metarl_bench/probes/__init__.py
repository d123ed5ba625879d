"""Belief probes: record an agent's memory beside the exact posterior, fit maps, and score them.

Two analyses.  The linear probe (``record``, ``ridge``, ``analysis``, ``rows``) decodes the
posterior from the memory.  The simulation analysis asks whether the memory is a belief
state or only a record of history (``simulation``, with one module per job: ``traces``
records a driver and its shadows, ``bayes_policy`` the Bayes policy at any belief,
``heads`` an agent's policy from a given memory, ``controls`` the synthetic agents,
``maps`` the MLP and ridge state maps, ``order`` order invariance on bandits,
``simulation_input`` the checks of its input, ``simulation_rows`` its CSV and tables).

May import ``metarl_bench.core``, ``metarl_bench.evaluation`` (its rollout, so a probe plays
what the evaluator plays) and ``metarl_bench.records`` (the probe CSV's validation and provenance).
"""
