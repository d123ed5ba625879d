"""Accelerators behind the contracts: the same numbers, computed faster or on a device.

The torch backend of the trial loop and its twin of the counter-based noise (bit for bit
the numpy reference, ``tests/test_torch_step.py``), and ``Generator.beta(1, 1)`` without
numpy's per-sample loop.  May import ``metarl_bench.core`` only.
"""
