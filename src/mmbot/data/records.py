"""Whole-record copies of structured arrays (``STAGE_DTYPE`` rows, ``EVENT_DTYPE`` events).

numpy copies a structured array field by field when it gathers, masks or concatenates one; seen as
opaque fixed-size records (a ``void`` view of the same itemsize) the same copies are plain block
moves. The results are the same bytes with the same dtype.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _opaque(a: np.ndarray) -> np.ndarray:
    return a.view(np.dtype((np.void, a.dtype.itemsize)))


def take(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``a[idx]`` for an integer index array."""
    return np.take(_opaque(a), idx).view(a.dtype)


def compress(a: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``a[mask]`` for a boolean mask of ``a``'s length."""
    return _opaque(a)[mask].view(a.dtype)


def concat(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """``np.concatenate(arrays)`` of arrays sharing one structured dtype."""
    dtype = arrays[0].dtype
    return np.concatenate([_opaque(a) for a in arrays]).view(dtype)


def put(dst: np.ndarray, start: int, src: np.ndarray) -> None:
    """``dst[start : start + len(src)] = src`` (same dtype)."""
    _opaque(dst)[start : start + len(src)] = _opaque(src)
