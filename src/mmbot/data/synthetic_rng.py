"""The embedded market's random numbers: xoshiro256** with explicit state (an array the compiled
core carries, so a market can be advanced in chunks byte-identically), uniform, exponential,
normal (Box-Muller, spare kept in the float state) and table (inverse-CDF, whole or below a cap)
draws."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from mmbot.data.synthetic_layout import (
    F_SPARE,
    F_SPARE_OK,
)


@njit(cache=True, inline="always")
def _rotl(x: np.uint64, k: int) -> np.uint64:
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@njit(cache=True)
def _next_u64(s: np.ndarray) -> np.uint64:
    s0 = s[0]
    s1 = s[1]
    s2 = s[2]
    s3 = s[3]
    result = _rotl(s1 * np.uint64(5), 7) * np.uint64(9)
    t = s1 << np.uint64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, 45)
    s[0] = s0
    s[1] = s1
    s[2] = s2
    s[3] = s3
    return result


@njit(cache=True)
def _uniform(s: np.ndarray) -> float:
    """Uniform on [0, 1)."""
    return float(_next_u64(s) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True)
def _exp1(s: np.ndarray) -> float:
    return -math.log(1.0 - _uniform(s))


@njit(cache=True)
def _normal(s: np.ndarray, fs: np.ndarray) -> float:
    """Standard normal (Box-Muller; the pair's second value is kept in the state)."""
    if fs[F_SPARE_OK] != 0.0:
        fs[F_SPARE_OK] = 0.0
        return fs[F_SPARE]
    u1 = 1.0 - _uniform(s)
    u2 = _uniform(s)
    rad = math.sqrt(-2.0 * math.log(u1))
    fs[F_SPARE] = rad * math.sin(2.0 * math.pi * u2)
    fs[F_SPARE_OK] = 1.0
    return rad * math.cos(2.0 * math.pi * u2)


@njit(cache=True)
def _table_sample(s: np.ndarray, tab: np.ndarray) -> float:
    """Inverse-CDF sample from positive quantiles ``tab`` at equally spaced probabilities 0..1,
    interpolated geometrically: sizes are heavy-tailed, and a straight line between two far
    apart tail quantiles would inflate the mean."""
    return _table_at(tab, _uniform(s) * (tab.shape[0] - 1))


@njit(cache=True, inline="always")
def _table_at(tab: np.ndarray, x: float) -> float:
    """The quantile table ``tab`` at fractional index ``x`` (0 .. len - 1), interpolated
    geometrically between its neighbours; the top quantile from len - 1 on."""
    m = tab.shape[0]
    i = int(x)
    if i >= m - 1:
        return tab[m - 1]
    f = x - i
    return tab[i] * (tab[i + 1] / tab[i]) ** f


@njit(cache=True)
def _table_sample_below(s: np.ndarray, tab: np.ndarray, cap: float) -> float:
    """``_table_sample`` conditioned on a value at most ``cap``: the uniform is drawn below the
    probability at which the table reaches ``cap`` (one draw; cap itself when it is below the
    smallest quantile)."""
    m = tab.shape[0]
    if cap >= tab[m - 1]:
        return _table_sample(s, tab)
    u = _uniform(s)
    if cap < tab[0]:
        return cap
    i = int(np.searchsorted(tab, cap, side="right")) - 1  # tab[i] <= cap < tab[i + 1]
    f = math.log(cap / tab[i]) / math.log(tab[i + 1] / tab[i])
    return _table_at(tab, u * (i + f))


def _seed_state(seed: int) -> np.ndarray:
    """splitmix64 expansion of the user seed into the 4-word xoshiro state."""
    mask = (1 << 64) - 1
    x = (int(seed) * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & mask
    out = np.empty(4, dtype=np.uint64)
    for i in range(4):
        x = (x + 0x9E3779B97F4A7C15) & mask
        z = x
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        z = z ^ (z >> 31)
        out[i] = np.uint64(z)
    return out
