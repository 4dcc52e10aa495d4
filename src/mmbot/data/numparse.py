"""Fast decimal-string -> float64 conversion for the readers (numba over one joined byte buffer).

Venues send prices and quantities as decimal strings; converting ~10^6 of them one by one with
``float()`` dominates a read. ``parse_decimal_strs`` joins them with a separator and parses the bytes
in one compiled loop. The result equals ``float(s)`` for decimal strings of up to 15 significant
digits (integer mantissa below 2**53 / exact power of ten, both exact, so the division rounds
correctly; venues send far fewer digits; longer strings may differ from ``float`` in the last bit);
anything it does not recognise (``nan``, ``inf``, garbage) becomes NaN, which the readers then
count as a bad price/quantity.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit

POW10 = np.array([10.0**k for k in range(23)], dtype=np.float64)


@njit(cache=True, inline="always")  # inlined into the scanners' loops: no call per number
def dec_span(buf, s, e, pow10):
    """Decimal string bytes [s, e) -> float (NaN if not a plain decimal): the one decimal parser
    of the readers (``binance_scan`` calls it on JSON string spans)."""
    i = s
    neg = False
    if i < e and buf[i] == 45:  # '-'
        neg = True
        i += 1
    elif i < e and buf[i] == 43:  # '+'
        i += 1
    mant = 0
    n_dig = 0
    frac = 0
    seen_dot = False
    got = False
    extra = 0
    ex = 0
    while i < e:
        c = buf[i]
        if 48 <= c <= 57:
            got = True
            if n_dig < 18:
                mant = mant * 10 + (c - 48)
                if mant > 0:
                    n_dig += 1
                if seen_dot:
                    frac += 1
            elif not seen_dot:
                extra += 1
        elif c == 46 and not seen_dot:
            seen_dot = True
        elif c == 101 or c == 69:
            i += 1
            eneg = False
            if i < e and (buf[i] == 45 or buf[i] == 43):
                eneg = buf[i] == 45
                i += 1
            v = 0
            gd = False
            while i < e and 48 <= buf[i] <= 57:
                v = v * 10 + (buf[i] - 48)
                gd = True
                i += 1
            if not gd or i != e:
                return np.nan
            ex = -v if eneg else v
            break
        else:
            return np.nan
        i += 1
    if not got:
        return np.nan
    e10 = ex + extra - frac
    x = float(mant)
    if e10 < 0:
        x = x / pow10[-e10] if -e10 <= 22 else x * 10.0**e10
    elif e10 > 0:
        x = x * pow10[e10] if e10 <= 22 else x * 10.0**e10
    return -x if neg else x


@njit(cache=True)
def _parse(buf: np.ndarray, n_out: int, pow10: np.ndarray) -> np.ndarray:
    """The ``n_out`` space-separated decimals of ``buf``."""
    out = np.empty(n_out, dtype=np.float64)
    i = 0
    n = len(buf)
    for k in range(n_out):
        s = i
        while i < n and buf[i] != 32:
            i += 1
        out[k] = dec_span(buf, s, i, pow10)
        i += 1  # separator
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
    return _parse(buf, len(strs), POW10)
