"""Per-image random streams and exact, seeded dataset layouts.

Image i of a dataset draws from its own streams keyed by (seed, i, stream), so its bytes never
depend on the batch size, the number of workers or the order in which blocks finish.

Two kinds of stream:

- :func:`image_rng`: a NumPy ``Generator`` for one image (per-image Python draws);
- a counter-based generator for whole blocks at once: value j of stream (seed, i, stream) is
  SplitMix64's output for the state ``key(seed, i, stream) + (j + 1)·γ`` — a pure integer hash,
  computed identically by :class:`CounterRandom` (NumPy, parameter draws in float64 on the host)
  and :func:`counter_normal` / :func:`counter_uniform` (torch, noise on the render device). The
  64-bit integers are the same bytes on every device; only the float transforms after them
  (log, cos, sqrt) may differ in the last bit between a CPU and a GPU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

# Independent random streams per image: the physical parameters, the noise, and the per-image
# view (the substructure kind's randomised or image-bank settings).
PARAMS_STREAM, NOISE_STREAM, VIEW_STREAM = 0, 1, 2

_MASK64 = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15  # SplitMix64's increment (the golden ratio · 2^64)
_MIX1, _MIX2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
_INDEX_KEY, _STREAM_KEY = 0xD1B54A32D192ED03, 0xABC98388FB8FAC03


def _signed(value: int) -> int:
    """A 64-bit pattern as the int64 torch stores it."""
    value &= _MASK64
    return value - (1 << 64) if value >= 1 << 63 else value


def _mix_numpy(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on uint64 arrays (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_MIX1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_MIX2)
    return z ^ (z >> np.uint64(31))


def _shift_right(z: torch.Tensor, bits: int) -> torch.Tensor:
    """Logical right shift of int64 bit patterns (torch's ``>>`` is arithmetic)."""
    return (z >> bits).bitwise_and_((1 << (64 - bits)) - 1)


def _mix_torch(z: torch.Tensor) -> torch.Tensor:
    """:func:`_mix_numpy` on int64 tensors, in place (``z`` is overwritten): the same bit
    patterns on any device."""
    z.bitwise_xor_(_shift_right(z, 30)).mul_(_signed(_MIX1))
    z.bitwise_xor_(_shift_right(z, 27)).mul_(_signed(_MIX2))
    return z.bitwise_xor_(_shift_right(z, 31))


def counter_keys(seed: int, indices: np.ndarray | Sequence[int], stream: int) -> np.ndarray:
    """The 64-bit key of stream ``stream`` of each image index (uint64 [B])."""
    index = np.asarray(indices, dtype=np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        salt = np.uint64(stream * _STREAM_KEY & _MASK64)
        inner = _mix_numpy(index * np.uint64(_INDEX_KEY) + salt)
        return _mix_numpy(inner + np.uint64(_mix_int(seed)))


def _mix_int(value: int) -> int:
    """SplitMix64's finaliser on one Python integer (any size: taken mod 2^64)."""
    z = (value * _GAMMA) & _MASK64
    z = ((z ^ (z >> 30)) * _MIX1) & _MASK64
    z = ((z ^ (z >> 27)) * _MIX2) & _MASK64
    return z ^ (z >> 31)


def counter_bits_numpy(keys: np.ndarray, start: int, count: int) -> np.ndarray:
    """Values start..start+count-1 of each key's stream (uint64 [B, count])."""
    counters = np.arange(start + 1, start + count + 1, dtype=np.uint64) * np.uint64(_GAMMA)
    with np.errstate(over="ignore"):
        return _mix_numpy(keys[:, None] + counters[None, :])


def counter_bits_torch(keys: torch.Tensor, start: int, count: int) -> torch.Tensor:
    """:func:`counter_bits_numpy` on int64 tensors ``keys`` [B] (any device) → int64 [B, count]."""
    counters = torch.arange(start + 1, start + count + 1, dtype=torch.int64, device=keys.device)
    return _mix_torch(keys[:, None] + counters[None, :] * _signed(_GAMMA))


# On a CPU, values are made in row chunks of about this many (int64 temporaries stay in cache).
_CPU_CHUNK_VALUES = 1 << 16


def _row_chunks(keys: torch.Tensor, width: int) -> list[slice]:
    """Row ranges to compute ``width`` values per row in: all rows at once on an accelerator."""
    rows = len(keys)
    step = rows if keys.device.type != "cpu" else max(1, _CPU_CHUNK_VALUES // max(width, 1))
    return [slice(a, min(a + step, rows)) for a in range(0, rows, step)] or [slice(0, 0)]


def keys_tensor(keys: np.ndarray, device: torch.device | str) -> torch.Tensor:
    """uint64 keys as the int64 tensor (same bits) that the torch functions take."""
    return torch.from_numpy(keys.view(np.int64)).to(device)


def counter_uniform(keys: torch.Tensor, count: int, start: int = 0) -> torch.Tensor:
    """Uniforms in (0, 1), float32 [B, count]: 24 random bits each, never 0 or 1."""
    bits = _shift_right(counter_bits_torch(keys, start, count), 40)
    return (bits.to(torch.float32) + 0.5) * 2.0**-24


def counter_normal(keys: torch.Tensor, count: int, start: int = 0) -> torch.Tensor:
    """Standard normals, float32 [B, count], by Box–Muller on two 24-bit uniforms per 64-bit value
    (value j gives normals j and pairs + j; |z| ≤ 5.9 by the 24-bit resolution, a 4e-9 tail left
    out). Computed in cache-sized row chunks on a CPU; each value is the same either way."""
    pairs = (count + 1) // 2
    out = torch.empty((len(keys), 2 * pairs), dtype=torch.float32, device=keys.device)
    for rows in _row_chunks(keys, pairs):
        bits = counter_bits_torch(keys[rows], start, pairs)
        u1 = _shift_right(bits, 40).to(torch.float32).add_(0.5).mul_(2.0**-24)
        u2 = (bits >> 16).bitwise_and_(0xFFFFFF).to(torch.float32).mul_(2.0 * math.pi * 2.0**-24)
        radius = u1.log_().mul_(-2.0).sqrt_()
        torch.mul(radius, torch.cos(u2), out=out[rows, :pairs])
        torch.mul(radius, u2.sin_(), out=out[rows, pairs:])
    return out[:, :count]


class CounterRandom:
    """Vectorised draws for a block of images: row b of every draw depends only on
    (seed, indices[b], stream) and on the draws made before it (each call takes the next slots of
    every image's stream), never on the other images of the block. Float64, NumPy, on the host, so
    the parameters are the same whatever device renders the images."""

    def __init__(self, seed: int, indices: np.ndarray | Sequence[int], stream: int) -> None:
        self.keys = counter_keys(seed, indices, stream)
        self.used = 0

    def __len__(self) -> int:
        return len(self.keys)

    def random(self, size: int | tuple[int, ...] = ()) -> np.ndarray:
        """Uniforms in [0, 1) with 53 random bits, shape [B, *size]."""
        shape = (size,) if isinstance(size, int) else tuple(size)
        count = math.prod(shape)
        bits = counter_bits_numpy(self.keys, self.used, count)
        self.used += count
        values = (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53
        return values.reshape(len(self.keys), *shape)

    def uniform(self, low=0.0, high=1.0, size: int | tuple[int, ...] = ()) -> np.ndarray:
        """Uniforms in [low, high), shape [B, *size]."""
        return low + (high - low) * self.random(size)

    def normal(self, loc=0.0, scale=1.0, size: int | tuple[int, ...] = ()) -> np.ndarray:
        """Normals (Box–Muller in float64: two uniforms per value), shape [B, *size]."""
        u1 = 1.0 - self.random(size)  # (0, 1]
        u2 = self.random(size)
        return loc + scale * np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def image_rng(seed: int, index: int, stream: int) -> np.random.Generator:
    """The random generator for one image and one stream, independent of every other image."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index, stream)))


def layout_rng(seed: int, key: int) -> np.random.Generator:
    """A generator for dataset-level draws (splits, label placement), apart from every image's."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0xFFFFFFFF, key)))


def check_split_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    """Three non-negative train/val/test fractions summing to 1, or ValueError."""
    values = tuple(float(f) for f in fractions)
    if (
        len(values) != 3
        or any(f < 0 for f in values)
        or not math.isclose(sum(values), 1.0, abs_tol=1e-6)
    ):
        raise ValueError(
            f"split fractions must be three non-negative numbers summing to 1, got {values}"
        )
    return values  # type: ignore[return-value]


def stratified_split_codes(
    labels: np.ndarray, fractions: Sequence[float], rng: np.random.Generator
) -> np.ndarray:
    """Split code per image (0 train, 1 val, 2 test) with exact counts in every class.

    Class by class in label order: round(f_train·n_c) train, round(f_val·n_c) val (at most what is
    left), the rest test, placed by one seeded permutation per class.
    """
    train, val, _ = check_split_fractions(fractions)
    codes = np.empty(len(labels), dtype=np.uint8)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        n_train = round(train * len(members))
        n_val = min(round(val * len(members)), len(members) - n_train)
        per_class = np.full(len(members), 2, dtype=np.uint8)
        per_class[:n_train] = 0
        per_class[n_train : n_train + n_val] = 1
        codes[members] = rng.permutation(per_class)
    return codes


def _uniform_pair(bits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Two float64 uniforms in (0, 1) from the two 32-bit halves of int64 bit patterns."""
    scale = 2.0**-32
    high = _shift_right(bits, 32).to(torch.float64).add_(0.5).mul_(scale)
    low = bits.bitwise_and_(0xFFFFFFFF).to(torch.float64).add_(0.5).mul_(scale)
    return high, low


# Rates below this use inversion (sequential search), above it Hörmann's PTRS rejection.
_PTRS_MIN_RATE = 10.0


def counter_poisson(keys: torch.Tensor, rates: torch.Tensor, start: int = 0) -> torch.Tensor:
    """Exact Poisson counts (float64, shape of ``rates`` [B, P]) from each image's stream.

    Element p of image b uses value start + r·P + p of its stream in round r (two 32-bit
    uniforms), so a count never depends on the other elements. Rates of 0 give 0; rates below 10:
    inversion of the CDF; rates ≥ 10: PTRS (Hörmann 1993, as NumPy's ``poisson``), rounds until
    accepted.
    """
    flat = rates.to(torch.float64).reshape(-1)
    width = rates.shape[1]
    u = torch.empty_like(rates, dtype=torch.float64)
    v = torch.empty_like(u)
    for rows in _row_chunks(keys, width):
        u[rows], v[rows] = _uniform_pair(counter_bits_torch(keys[rows], start, width))
    u, v = u.reshape(-1), v.reshape(-1)
    counts = torch.zeros_like(flat)
    small = torch.nonzero((flat > 0) & (flat < _PTRS_MIN_RATE)).squeeze(1)
    counts[small] = _poisson_inversion(flat[small], u[small])
    pending = torch.nonzero(flat >= _PTRS_MIN_RATE).squeeze(1)
    round_ = 0
    while pending.numel():
        if round_:
            row = torch.div(pending, width, rounding_mode="floor")
            counters = start + round_ * width + (pending - row * width) + 1
            bits = _mix_torch(keys[row] + counters * _signed(_GAMMA))
            u_round, v_round = _uniform_pair(bits)
        else:
            u_round, v_round = u[pending], v[pending]
        k, accepted = _ptrs_round(flat[pending], u_round, v_round)
        counts[pending[accepted]] = k[accepted]
        pending = pending[~accepted]
        round_ += 1
    return counts.reshape(rates.shape)


def _poisson_inversion(rate: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Smallest k with CDF(k) ≥ u, for rates < 10 (the search stops by k = 100, P < 1e-60);
    elements already found leave the search every few steps."""
    out = torch.zeros_like(rate)
    active = torch.arange(len(rate), device=rate.device)
    rate, u = rate.clone(), u.clone()
    k = torch.zeros_like(rate)
    term = torch.exp(-rate)
    cdf = term.clone()
    for step in range(1, 101):
        k += u > cdf
        term.mul_(rate).div_(step)
        cdf += term
        if step % 4 == 0:  # a host sync: drop the finished elements
            left = u > cdf
            done = ~left
            out[active[done]] = k[done]
            if not bool(left.any()):
                return out
            active, rate, u, k, term, cdf = (t[left] for t in (active, rate, u, k, term, cdf))
    out[active] = k
    return out


def _ptrs_round(
    rate: torch.Tensor, u: torch.Tensor, v: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """One PTRS round: (candidate k, accepted) per element (rates ≥ 10)."""
    slam, loglam = torch.sqrt(rate), torch.log(rate)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    inv_alpha = 1.1239 + 1.1328 / (b - 3.4)
    vr = 0.9277 - 3.6224 / (b - 2.0)
    u = u - 0.5
    us = 0.5 - torch.abs(u)
    k = torch.floor((2.0 * a / us + b) * u + rate + 0.43)
    quick = (us >= 0.07) & (v <= vr)
    possible = (k >= 0) & ~((us < 0.013) & (v > us))
    log_ratio = torch.log(v) + torch.log(inv_alpha) - torch.log(a / (us * us) + b)
    exact = log_ratio <= -rate + k * loglam - torch.lgamma(k + 1.0)
    return k, quick | (possible & exact)
