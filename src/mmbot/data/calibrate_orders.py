"""The makers' order sizes for `mmbot data calibrate --maker-orders` (synthetic
``maker_front_keep``): the capture shows maker orders only as prints, and a print is a whole maker
order unless it is its sweep's last (then the taker ran out first: the order was at least that
large). The orders' size quantiles are the Kaplan-Meier estimate over the prints with each
sweep's last print censored (docs/data.md, "Maker orders fitted as orders")."""

from __future__ import annotations

import numpy as np


def maker_order_quantiles(qty: np.ndarray, censored: np.ndarray, probs: np.ndarray) -> list[float]:
    """Quantiles at ``probs`` of the maker orders behind prints ``qty``, where ``censored`` marks
    the prints that say only "the order was at least this" (Kaplan-Meier; at a tie the whole
    orders come first, as usual). A probability the estimate never reaches (the largest prints
    censored) takes the largest print."""
    qty = np.asarray(qty, dtype=np.float64)
    censored = np.asarray(censored, dtype=bool)
    order = np.lexsort((censored, qty))
    x, c = qty[order], censored[order]
    at_risk = len(x) - np.arange(len(x))
    cdf = 1.0 - np.cumprod(np.where(c, 1.0, 1.0 - 1.0 / at_risk))
    idx = np.minimum(np.searchsorted(cdf, np.asarray(probs) - 1e-12), len(x) - 1)
    return [float(v) for v in x[idx]]
