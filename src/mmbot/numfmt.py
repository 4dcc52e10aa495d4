"""How a number is shown in text output (marker lines, summaries, tables): fixed decimals, and a
placeholder where there is no number."""

from __future__ import annotations

import math
from typing import Any


def fixed(v: Any, nd: int = 3, none: str = "n/a") -> str:
    """A float with ``nd`` decimals, ``none`` for None, anything else as ``str`` (ints included)."""
    if v is None:
        return none
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def finite(v: Any, nd: int = 3) -> str:
    """A finite number (int or float) with ``nd`` decimals; "n/a" for anything else (None, NaN)."""
    return f"{v:.{nd}f}" if isinstance(v, int | float) and math.isfinite(float(v)) else "n/a"
