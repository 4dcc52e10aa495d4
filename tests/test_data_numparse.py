"""The readers' one decimal parser (``mmbot.data.numparse``, also used by the Binance scanner)
against Python's ``float`` on random decimal strings, and bad strings -> NaN."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from mmbot.data.numparse import POW10, dec_span, parse_decimal_strs


def _random_decimals(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        k = rng.random()
        if k < 0.5:
            out.append(f"{rng.uniform(0, 1e5):.{rng.randint(0, 8)}f}")
        elif k < 0.7:
            out.append(f"{rng.uniform(-1e-3, 1e9):.15g}")
        elif k < 0.85:
            out.append(str(rng.randint(0, 10**15)))
        else:
            out.append(f"{rng.uniform(1, 10):.6f}e{rng.randint(-12, 12)}")
    return out


def test_up_to_15_significant_digits_equal_python_float():
    strs = _random_decimals(20_000, seed=7)
    got = parse_decimal_strs(strs)
    want = np.array([float(s) for s in strs])
    assert np.array_equal(got, want)


@pytest.mark.parametrize(
    ("text", "want"),
    [("+2.5", 2.5), ("-0.0", -0.0), ("1.5E-7", 1.5e-7), ("12e3", 12e3), ("007.50", 7.5)],
)
def test_signs_exponents_and_leading_zeros(text, want):
    assert parse_decimal_strs([text])[0] == want


@pytest.mark.parametrize("bad", ["nan", "inf", "", "1.2.3", "abc", "1e", "--1", "1e5x", "."])
def test_anything_not_a_plain_decimal_is_nan(bad):
    assert math.isnan(parse_decimal_strs(["1", bad, "2"])[1])
    # neighbours are unaffected by the bad token
    assert parse_decimal_strs(["1", bad, "2"])[[0, 2]].tolist() == [1.0, 2.0]


def test_span_parser_reads_inside_a_larger_buffer():
    buf = np.frombuffer(b'{"p":"64123.45","q":"0.002"}', dtype=np.uint8)
    assert dec_span(buf, 6, 14, POW10) == 64123.45
    assert dec_span(buf, 21, 26, POW10) == 0.002
