"""Calibration of the embedded market from a real capture (``mmbot data calibrate``)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import orjson

from mmbot.events import (
    BUY_EVENT,
    DEPTH_BBO_EVENT,
    DEPTH_EVENT,
    DEPTH_SNAPSHOT_EVENT,
    EVENT_DTYPE,
    SELL_EVENT,
    TRADE_EVENT,
)


def _fallback_load_binance(path: Path) -> np.ndarray:
    """Minimal Binance raw-capture parser, used only while ``mmbot.data.load_events`` is absent."""
    rows: list[tuple[int, int, int, float, float]] = []
    f = 1 << 31 | 1 << 30
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as fh:
        for line in fh:
            ts, _, js = line.partition(b" ")
            d = orjson.loads(js)
            loc = int(ts)
            if "stream" not in d:
                E = int(d.get("E", d.get("T", 0))) * 1_000_000
                for px, q in d.get("bids", []):
                    rows.append((DEPTH_SNAPSHOT_EVENT | f | BUY_EVENT, E, loc, float(px), float(q)))
                for px, q in d.get("asks", []):
                    rows.append(
                        (DEPTH_SNAPSHOT_EVENT | f | SELL_EVENT, E, loc, float(px), float(q))
                    )
                continue
            x = d["data"]
            E = int(x["E"]) * 1_000_000
            s = d["stream"]
            if "bookTicker" in s:
                rows.append((DEPTH_BBO_EVENT | f | BUY_EVENT, E, loc, float(x["b"]), float(x["B"])))
                rows.append(
                    (DEPTH_BBO_EVENT | f | SELL_EVENT, E, loc, float(x["a"]), float(x["A"]))
                )
            elif "trade" in s:
                side = SELL_EVENT if x["m"] else BUY_EVENT
                rows.append((TRADE_EVENT | f | side, E, loc, float(x["p"]), float(x["q"])))
            elif "depth" in s:
                for px, q in x["b"]:
                    rows.append((DEPTH_EVENT | f | BUY_EVENT, E, loc, float(px), float(q)))
                for px, q in x["a"]:
                    rows.append((DEPTH_EVENT | f | SELL_EVENT, E, loc, float(px), float(q)))
    out = np.zeros(len(rows), dtype=EVENT_DTYPE)
    arr = np.array(rows, dtype=[("ev", "u8"), ("e", "i8"), ("l", "i8"), ("px", "f8"), ("q", "f8")])
    out["ev"] = arr["ev"]
    out["exch_ts"] = arr["e"]
    out["px"] = arr["px"]
    out["qty"] = arr["q"]
    lat = arr["l"] - arr["e"]
    # the capture host clock is offset: shift so the fastest 0.1 % of messages arrive after 1 ms
    lat = lat - np.quantile(lat, 0.001) + 1_000_000
    out["local_ts"] = out["exch_ts"] + np.maximum(lat, 0)
    order = np.argsort(out["exch_ts"], kind="stable")
    out = out[order]
    out["local_ts"] = np.maximum.accumulate(out["local_ts"])
    return out
