"""The counter-based noise of ``metarl_bench.core.noise`` on torch tensors, bit for bit.

``noise.py`` defines every noisy reward with uint64 arithmetic.  torch has no uint64
arithmetic that every device supports, so this twin works on int64 holding the same 64
bits: addition and multiplication wrap modulo 2**64 alike in two's complement, xor is
bitwise, and the one operation that differs, the logical right shift, is an arithmetic
shift with the sign-extended bits masked off.  Constants above 2**63 are written as their
signed int64 equals.  The float steps that follow ((bits + 0.5) * 2**-53, a compare) are
single IEEE operations, so they round the same on every device.
"""

from __future__ import annotations

import numpy as np
import torch

from metarl_bench.core import noise


def _signed(value: np.uint64 | int) -> int:
    """The int64 with the same 64 bits as the unsigned ``value``."""
    value = int(value)
    return value - (1 << 64) if value >= 1 << 63 else value


_GOLDEN = _signed(noise._GOLDEN)
_M1 = _signed(noise._M1)
_M2 = _signed(noise._M2)
_ARM = _signed(noise._ARM)


def keys_to_torch(keys: np.ndarray, device: str | torch.device = "cpu") -> torch.Tensor:
    """uint64 noise keys as the int64 tensor with the same bits."""
    return torch.from_numpy(np.ascontiguousarray(keys, np.uint64).view(np.int64)).to(device)


def logical_shift_right(z: torch.Tensor, shift: int) -> torch.Tensor:
    """``z >> shift`` as on uint64: arithmetic shift, then clear the copies of the sign bit."""
    return (z >> shift).bitwise_and_((1 << (64 - shift)) - 1)


def mix_(z: torch.Tensor) -> torch.Tensor:
    """SplitMix64's finaliser on int64 bit patterns (wrapping multiplication), in place."""
    z.bitwise_xor_(logical_shift_right(z, 30)).mul_(_M1)
    z.bitwise_xor_(logical_shift_right(z, 27)).mul_(_M2)
    return z.bitwise_xor_(logical_shift_right(z, 31))


def mixed_bits_(z: torch.Tensor) -> torch.Tensor:
    """:func:`metarl_bench.core.noise.mixed_bits_`: the 53 noise bits of counters ``z`` (mixes ``z`` in place)."""
    return logical_shift_right(mix_(z), 11)


COUNTER_STEP = _GOLDEN  # what one pull adds to its arm's counter (``noise.counter_start``)


def counters_to_torch(counters: np.ndarray, device: str | torch.device = "cpu") -> torch.Tensor:
    """uint64 counters (``noise.counter_start``) as a writable int64 tensor with the same bits."""
    return torch.from_numpy(np.array(counters, np.uint64).view(np.int64)).to(device)


def counter_bits_next(keys: torch.Tensor, arms: torch.Tensor, next_counts: torch.Tensor) -> torch.Tensor:
    """:func:`metarl_bench.core.noise.counter_bits_next` on int64 tensors: 53-bit integers, int64."""
    return mixed_bits_((next_counts * _GOLDEN).add_(keys).add_(arms * _ARM))


def counter_bits(keys: torch.Tensor, arms: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """:func:`metarl_bench.core.noise.counter_bits` on int64 tensors."""
    return counter_bits_next(keys, arms, counts + 1)


def bits_to_uniform(bits: torch.Tensor) -> torch.Tensor:
    """(bits + 0.5) / 2**53 in float64, as :func:`metarl_bench.core.noise.bits_to_uniform`."""
    return (bits.to(torch.float64) + 0.5) * noise._INV_2_53


def counter_uniform(keys: torch.Tensor, arms: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """:func:`metarl_bench.core.noise.counter_uniform` on tensors (keys as int64 bit patterns)."""
    return bits_to_uniform(counter_bits(keys, arms, counts))
