"""Fast decimal-string -> float64 conversion for the readers (numba over one joined byte buffer).

Venues send prices and quantities as decimal strings; converting ~10^6 of them one by one with
``float()`` dominates a read. ``parse_decimal_strs`` joins them with a separator and parses the bytes
in one compiled loop. The result equals ``float(s)`` for decimal strings of up to 17 significant
digits (integer mantissa / exact power of ten, both exact, so the division rounds correctly);
anything it does not recognise (``nan``, ``inf``, garbage) becomes NaN, which the readers then
count as a bad price/quantity.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit

_POW10 = np.array([10.0**k for k in range(23)], dtype=np.float64)


@njit(cache=True)
def _parse(buf: np.ndarray, n_out: int, pow10: np.ndarray) -> np.ndarray:
    out = np.empty(n_out, dtype=np.float64)
    i = 0
    n = len(buf)
    for k in range(n_out):
        neg = False
        if i < n and buf[i] == 45:  # '-'
            neg = True
            i += 1
        elif i < n and buf[i] == 43:  # '+'
            i += 1
        mant = 0
        n_dig = 0
        frac = 0
        seen_dot = False
        ok = True
        got_digit = False
        extra_exp = 0  # digits beyond 18 significant ones (scale only)
        exp = 0
        while i < n and buf[i] != 32:
            c = buf[i]
            if 48 <= c <= 57:
                got_digit = True
                if n_dig < 18:
                    mant = mant * 10 + (c - 48)
                    if mant > 0:
                        n_dig += 1
                    if seen_dot:
                        frac += 1
                elif not seen_dot:
                    extra_exp += 1
            elif c == 46 and not seen_dot:  # '.'
                seen_dot = True
            elif c == 101 or c == 69:  # 'e' / 'E'
                i += 1
                eneg = False
                if i < n and (buf[i] == 45 or buf[i] == 43):
                    eneg = buf[i] == 45
                    i += 1
                ev = 0
                got = False
                while i < n and 48 <= buf[i] <= 57:
                    ev = ev * 10 + (buf[i] - 48)
                    got = True
                    i += 1
                if not got:
                    ok = False
                exp = -ev if eneg else ev
                continue
            else:
                ok = False
            i += 1
        i += 1  # separator
        if not ok or not got_digit:
            out[k] = np.nan
            continue
        e10 = exp + extra_exp - frac
        v = float(mant)
        if e10 < 0:
            v = v / pow10[-e10] if -e10 <= 22 else v * 10.0**e10
        elif e10 > 0:
            v = v * pow10[e10] if e10 <= 22 else v * 10.0**e10
        out[k] = -v if neg else v
    return out


def parse_decimal_strs(strs: Sequence[str]) -> np.ndarray:
    """float64 array of ``strs`` (decimal strings; non-strings fall back to ``float``)."""
    if len(strs) == 0:
        return np.empty(0, dtype=np.float64)
    try:
        joined = " ".join(strs)
    except TypeError:  # numbers instead of strings: convert one by one (rare formats)
        out = np.empty(len(strs), dtype=np.float64)
        for k, s in enumerate(strs):
            try:
                out[k] = float(s)
            except (TypeError, ValueError):
                out[k] = np.nan
        return out
    buf = np.frombuffer(joined.encode("ascii", "replace"), dtype=np.uint8)
    return _parse(buf, len(strs), _POW10)
