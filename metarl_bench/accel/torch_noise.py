"""The counter-based noise of ``metarl_bench.core.noise`` on torch tensors, bit for bit.

``noise.py`` writes every noisy reward once, over a small object of uint64 operations
(``noise.BitOps``); this module is torch's object of those operations
(:data:`TORCH`) and the same functions bound to it.  torch has no uint64 arithmetic
that every device supports, so the tensors are int64 holding the same 64 bits: addition
and multiplication wrap modulo 2**64 alike in two's complement, xor is bitwise, and the
one operation that differs, the logical right shift, is an arithmetic shift with the
sign-extended bits masked off.  Constants above 2**63 are written as their signed int64
equals.  The float steps that follow ((bits + 0.5) * 2**-53, a compare) are single IEEE
operations, so they round the same on every device.
"""

from __future__ import annotations

import numpy as np
import torch

from metarl_bench.core import noise


def _signed(value: np.uint64 | int) -> int:
    """The int64 with the same 64 bits as the unsigned ``value``."""
    value = int(value)
    return value - (1 << 64) if value >= 1 << 63 else value


def keys_to_torch(keys: np.ndarray, device: str | torch.device = "cpu") -> torch.Tensor:
    """uint64 noise keys as the int64 tensor with the same bits."""
    return torch.from_numpy(np.ascontiguousarray(keys, np.uint64).view(np.int64)).to(device)


def counters_to_torch(counters: np.ndarray, device: str | torch.device = "cpu") -> torch.Tensor:
    """uint64 counters (``noise.counter_start``) as a writable int64 tensor with the same bits."""
    return torch.from_numpy(np.array(counters, np.uint64).view(np.int64)).to(device)


def logical_shift_right(z: torch.Tensor, shift: int) -> torch.Tensor:
    """``z >> shift`` as on uint64: arithmetic shift, then clear the copies of the sign bit."""
    return (z >> shift).bitwise_and_((1 << (64 - shift)) - 1)


# No scratch tensor: ``out=`` costs torch more per call than the new tensor it saves, so
# ``empty_like`` gives None and ``shr`` returns a new tensor.
TORCH = noise.BitOps(
    xp=torch,
    golden=_signed(noise._GOLDEN),
    m1=_signed(noise._M1),
    m2=_signed(noise._M2),
    arm=_signed(noise._ARM),
    one=1,
    s11=11,
    s27=27,
    s30=30,
    s31=31,
    shr=lambda z, shift, out: logical_shift_right(z, shift),
    empty_like=lambda z: None,
    u64=lambda x: x if x.dtype == torch.int64 else x.to(torch.int64),
    float64=lambda x: x.to(torch.float64, copy=True),
    as_float64=lambda x: torch.as_tensor(x, dtype=torch.float64),
    to_bits=lambda x: x.to(torch.int64),
    nonnegative=lambda x: torch.clamp(x, min=0.0),
    full=lambda z, shape: torch.broadcast_to(z, shape).clone(),
)
COUNTER_STEP = TORCH.golden  # what one pull adds to its arm's counter (``noise.counter_start``)


def mixed_bits_(z: torch.Tensor) -> torch.Tensor:
    """:func:`metarl_bench.core.noise.mixed_bits_` on int64 counters (in place in ``z``)."""
    return noise.mixed_bits_(z, TORCH)


def counter_bits_next(keys: torch.Tensor, arms: torch.Tensor, next_counts: torch.Tensor) -> torch.Tensor:
    """:func:`metarl_bench.core.noise.counter_bits_next` on int64 tensors: 53-bit integers, int64."""
    return noise.counter_bits_next(keys, arms, next_counts, TORCH)


def counter_bits(keys: torch.Tensor, arms: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """:func:`metarl_bench.core.noise.counter_bits` on int64 tensors."""
    return noise.counter_bits(keys, arms, counts, TORCH)


def bits_to_uniform(bits: torch.Tensor) -> torch.Tensor:
    """:func:`metarl_bench.core.noise.bits_to_uniform`: (bits + 0.5) / 2**53 in float64."""
    return noise.bits_to_uniform(bits, TORCH)


def counter_uniform(keys: torch.Tensor, arms: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """:func:`metarl_bench.core.noise.counter_uniform` on tensors (keys as int64 bit patterns)."""
    return noise.counter_uniform(keys, arms, counts, TORCH)


def uniform_thresholds(p: torch.Tensor) -> torch.Tensor:
    """:func:`metarl_bench.core.noise.uniform_thresholds` on the device (int64)."""
    return noise.uniform_thresholds(p, TORCH)
