"""A polars frame read back into a numpy structured array, every column checked: the one place
where the records (``mmbot.audit.records_io``) and the events files (``mmbot.data.parquet``) turn
a frame into their dtype, with one clear line naming the input for a missing, null or unreadable
column."""

from __future__ import annotations

import numpy as np
import polars as pl

from mmbot.errors import UserError


def struct_from_frame(df: pl.DataFrame, dtype: np.dtype, what: str) -> np.ndarray:
    """``df``'s columns as an array of ``dtype`` (extra columns ignored); ``UserError`` naming
    ``what`` and the column when one is missing, holds nulls or cannot be cast."""
    missing = [n for n in dtype.names if n not in df.columns]
    if missing:
        raise UserError(f"{what}: missing column(s) {', '.join(missing)}")
    out = np.zeros(df.height, dtype=dtype)
    for n in dtype.names:
        col = df.get_column(n)
        if col.null_count():
            raise UserError(f"{what}: column {n} has {col.null_count()} null value(s)")
        try:
            out[n] = col.to_numpy()
        except (TypeError, ValueError) as exc:
            raise UserError(f"{what}: column {n} cannot be read as {dtype[n]}: {exc}") from None
    return out
