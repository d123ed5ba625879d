"""The contracts: what a task family, an agent, a learning agent, a Bayes reference and a trial are.

Owns the family and agent base classes, the registries, the seed streams, the counter-based
reward noise and the batched trial loop with its gymnasium views.  May import no other
subpackage of ``metarl_bench`` (only numpy, scipy, gymnasium); every other layer builds on it.
"""
