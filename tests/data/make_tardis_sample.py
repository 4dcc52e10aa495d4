"""Regenerate the tiny Tardis CSV pair from the shipped Binance sample (converted, not captured).

Run: .venv/bin/python tests/data/make_tardis_sample.py
Takes the first 5 s (exchange time) of the sample's events as mmbot reads them: the REST snapshot as
``is_snapshot=true`` rows, depth updates as incremental rows, trades with their aggressor side.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from mmbot.data import load_events
from mmbot.events import BUY_EVENT, DEPTH_EVENT, DEPTH_SNAPSHOT_EVENT, KIND_MASK, TRADE_EVENT

HERE = Path(__file__).resolve().parent
SRC = HERE / "binance_usdm_btcusdt_sample.gz"


def main() -> None:
    ev, _ = load_events(SRC, use_cache=False)
    t0 = int(ev["exch_ts"][0])
    ev = ev[ev["exch_ts"] < t0 + 5_000_000_000]
    kind = ev["ev"] & KIND_MASK
    book = ev[(kind == DEPTH_EVENT) | (kind == DEPTH_SNAPSHOT_EVENT)]
    lines = ["exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount"]
    for e in book:
        snap = "true" if (int(e["ev"]) & KIND_MASK) == DEPTH_SNAPSHOT_EVENT else "false"
        side = "bid" if int(e["ev"]) & BUY_EVENT else "ask"
        lines.append(
            f"binance-futures,BTCUSDT,{int(e['exch_ts']) // 1000},{int(e['local_ts']) // 1000},"
            f"{snap},{side},{float(e['px'])!r},{float(e['qty'])!r}"
        )
    with gzip.open(
        HERE / "tardis_binance_futures_incremental_book_L2_sample.csv.gz", "wt", compresslevel=9
    ) as f:
        f.write("\n".join(lines) + "\n")
    tr = ev[kind == TRADE_EVENT]
    lines = ["exchange,symbol,timestamp,local_timestamp,id,side,price,amount"]
    for k, e in enumerate(tr):
        side = "buy" if int(e["ev"]) & BUY_EVENT else "sell"
        lines.append(
            f"binance-futures,BTCUSDT,{int(e['exch_ts']) // 1000},{int(e['local_ts']) // 1000},"
            f"{k + 1},{side},{float(e['px'])!r},{float(e['qty'])!r}"
        )
    (HERE / "tardis_binance_futures_trades_sample.csv").write_text("\n".join(lines) + "\n")
    print(len(book), "book rows,", len(tr), "trades")


if __name__ == "__main__":
    np.seterr(all="raise")
    main()
