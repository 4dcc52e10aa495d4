"""Every fill of a backtest with its exact edge components, as a polars DataFrame."""

import sys

import polars as pl

import mmbot

capture = sys.argv[1] if len(sys.argv) > 1 else "tests/data/binance_usdm_btcusdt_sample.gz"
r = mmbot.backtest(capture, strategy="glft", knobs={"min_interval_ms": 100})
edges = ["gross", "slippage", "fees", "inventory", "net"]
fills = r.fills_df().select("ts", "side", "px", "qty", *edges, "markout_1s_bps")
print(fills.head(5))
print(fills.select(pl.col(edges).sum()))
print(f"net {r.net_bps:.3f} bps over {fills.height} fills, gate {r.gate['verdict']}")
