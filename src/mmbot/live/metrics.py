"""Prometheus metrics of a live/paper session (prometheus-client), served on 127.0.0.1:PORT/metrics.

net_bps and its components over the session and over the last ROLLING_FILLS fills (the audit's
per-fill gross/slippage/fees terms, with the mid and target at each fill; inventory is the remainder
of the marked PnL), block reasons, order/fill counts, feed and order latency, position, clock drift.
"""

from __future__ import annotations

import collections
import math

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from mmbot.records import ACT_NAMES, REASON_NAMES

ROLLING_FILLS = 200


class Metrics:
    def __init__(self, port: int):
        r = self.registry = CollectorRegistry()
        self.actions = Counter(
            "mmbot_actions_total",
            "order actions by kind and reason",
            ["kind", "reason"],
            registry=r,
        )
        self.fills = Counter("mmbot_fills_total", "fills", ["side", "maker"], registry=r)
        self.position = Gauge("mmbot_position_qty", "position (base units)", registry=r)
        self.pnl = Gauge("mmbot_pnl_quote", "PnL marked at the local mid (quote)", registry=r)
        self.edge = Gauge(
            "mmbot_edge_bps",
            "session edge components in bps of turnover",
            ["component"],
            registry=r,
        )
        self.feed_lag = Histogram(
            "mmbot_feed_latency_ms",
            "exchange ts -> local receive (ms)",
            registry=r,
            buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 5000),
        )
        self.order_lat = Histogram(
            "mmbot_order_latency_ms",
            "REST order round trip (ms)",
            registry=r,
            buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 5000),
        )
        self.drift = Gauge("mmbot_clock_drift_ms", "exchange clock - local clock (ms)", registry=r)
        self.counters = Gauge("mmbot_session_counter", "reliability counters", ["name"], registry=r)
        self.edge_rolling = Gauge(
            "mmbot_edge_rolling_bps",
            f"edge components over the last {ROLLING_FILLS} fills, bps of their turnover",
            ["component"],
            registry=r,
        )
        self._turnover = self._gross = self._slip = self._fees = 0.0
        self._pnl0: float | None = None  # PnL when this process started (a journal may carry more)
        # per fill: notional, gross, slippage, fees contribution, PnL just before the fill
        self._win: collections.deque[tuple[float, float, float, float, float]] = collections.deque(
            maxlen=ROLLING_FILLS
        )
        self.server, self.thread = start_http_server(port, addr="127.0.0.1", registry=r)

    def action(self, kind: int, reason: int) -> None:
        self.actions.labels(
            ACT_NAMES.get(kind, str(kind)), REASON_NAMES.get(reason, str(reason))
        ).inc()

    def feed(self, lag_ms: float) -> None:
        self.feed_lag.observe(lag_ms)

    def order_latency(self, ms: float) -> None:
        self.order_lat.observe(ms)

    def clock(self, drift_ms: float) -> None:
        self.drift.set(drift_ms)

    def fill(self, row, position_qty: float, pnl_before: float) -> None:
        self.fills.labels(
            "buy" if row.side > 0 else "sell", "maker" if row.maker else "taker"
        ).inc()
        notional = row.px * row.qty
        self._turnover += notional
        if math.isfinite(row.mid_px) and math.isfinite(row.target_px):
            self._gross += row.side * (row.mid_px - row.target_px) * row.qty
            self._slip += row.side * (row.target_px - row.px) * row.qty
        g = sl = 0.0
        if math.isfinite(row.mid_px) and math.isfinite(row.target_px):
            g = row.side * (row.mid_px - row.target_px) * row.qty
            sl = row.side * (row.target_px - row.px) * row.qty
        self._fees += -row.fee
        self._win.append((notional, g, sl, -row.fee, pnl_before))
        self.position.set(position_qty)

    def state(self, session) -> None:
        pnl = session.pnl()
        if self._pnl0 is None:
            self._pnl0 = pnl
        self.pnl.set(pnl)
        self.position.set(session.position_qty)
        if self._turnover > 0:
            k = 1e4 / self._turnover
            net = pnl - self._pnl0
            inv = net - self._gross - self._slip - self._fees
            for name, v in (
                ("gross", self._gross),
                ("slippage", self._slip),
                ("fees", self._fees),
                ("inventory", inv),
                ("net", net),
            ):
                self.edge.labels(name).set(v * k)
        if self._win:
            turn = sum(w[0] for w in self._win)
            parts = [sum(w[i] for w in self._win) for i in (1, 2, 3)]
            net = pnl - self._win[0][4]  # marked PnL since just before the window's first fill
            vals = (*parts, net - sum(parts), net)
            for name, v in zip(
                ("gross", "slippage", "fees", "inventory", "net"), vals, strict=True
            ):
                self.edge_rolling.labels(name).set(v * 1e4 / turn)
        for name, v in session.counters.items():
            self.counters.labels(name).set(v)

    def close(self) -> None:
        self.server.shutdown()
