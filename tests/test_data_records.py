"""Whole-record copies give the same bytes and dtype as numpy's field-by-field structured copies."""

from __future__ import annotations

import numpy as np
import pytest

from mmbot.data import records
from mmbot.data.replay import STAGE_DTYPE
from mmbot.events import EVENT_DTYPE


def _random(dtype: np.dtype, n: int, seed: int) -> np.ndarray:
    raw = np.random.default_rng(seed).integers(0, 256, n * dtype.itemsize, dtype=np.uint8)
    return raw.view(dtype)


@pytest.mark.parametrize("dtype", [STAGE_DTYPE, EVENT_DTYPE])
def test_take_compress_concat_put_equal_numpy(dtype):
    a = _random(dtype, 1000, 1)
    b = _random(dtype, 300, 2)[::3]  # a strided view
    idx = np.random.default_rng(3).permutation(len(a))
    mask = np.random.default_rng(4).random(len(a)) < 0.6
    pairs = [
        (records.take(a, idx), a[idx]),
        (records.take(b, idx[:50] % len(b)), b[idx[:50] % len(b)]),
        (records.compress(a, mask), a[mask]),
        (records.compress(b, mask[: len(b)]), b[mask[: len(b)]]),
        (records.concat([a, b, a[:0]]), np.concatenate([a, b, a[:0]])),
    ]
    dst_ours = _random(dtype, 500, 5)
    dst_numpy = dst_ours.copy()
    records.put(dst_ours, 17, b)
    dst_numpy[17 : 17 + len(b)] = b
    pairs.append((dst_ours, dst_numpy))
    for got, want in pairs:
        assert got.dtype == want.dtype
        assert got.shape == want.shape
        assert got.tobytes() == want.tobytes()


def test_copies_do_not_alias_their_input():
    a = _random(STAGE_DTYPE, 10, 6)
    for out in (records.take(a, np.arange(10)), records.compress(a, np.ones(10, bool))):
        out["msg"] += 1
        assert not np.array_equal(out["msg"], a["msg"])
