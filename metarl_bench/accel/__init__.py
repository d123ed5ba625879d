"""Accelerators behind the contracts: the same numbers, computed faster or on a device.

The torch backend of the trial loop (``core.trial.TrialLoop``) and the torch operations the
counter-based noise of ``core.noise`` runs on (bit for bit the numpy reference,
``tests/test_torch_step.py``), and ``Generator.beta(1, 1)`` without numpy's per-sample loop.
May import ``metarl_bench.core`` only.
"""
