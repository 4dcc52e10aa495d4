"""A small deterministic market (EVENT_DTYPE) for emulator sessions in tests and demos.

A random-walk mid on a 0.0001 tick with a 10-level book each side around it, level updates every
``step_ms`` and Poisson-ish trades at the touch (seeded). Not a calibrated market: it only has to
make orders rest, queue, fill and get picked off, deterministically, without any data file.
"""

from __future__ import annotations

import numpy as np

from mmbot import events as ev_

TICK_PX = 0.0001
LOT_QTY = 1.0


def make_market(
    duration_s: float = 60.0,
    seed: int = 7,
    step_ms: int = 50,
    start_ns: int = 1_733_011_200_000_000_000,
    mid0_px: float = 2.0,
    levels: int = 10,
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    flags = ev_.EXCH_EVENT | ev_.LOCAL_EVENT
    rows: list[tuple] = []
    mid_ticks = int(round(mid0_px / TICK_PX))

    def book(ts: int, kind: int, center: int) -> None:
        for k in range(levels):
            q = float(rng.integers(200, 2000))
            rows.append(
                (
                    kind | flags | ev_.BUY_EVENT,
                    ts,
                    ts + 5_000_000,
                    (center - 1 - k) * TICK_PX,
                    q,
                    0,
                    0,
                    0.0,
                )
            )
            q = float(rng.integers(200, 2000))
            rows.append(
                (
                    kind | flags | ev_.SELL_EVENT,
                    ts,
                    ts + 5_000_000,
                    (center + 1 + k) * TICK_PX,
                    q,
                    0,
                    0,
                    0.0,
                )
            )

    rows.append(
        (ev_.DEPTH_CLEAR_EVENT | flags, start_ns, start_ns + 5_000_000, 0.0, 0.0, 0, 0, 0.0)
    )
    book(start_ns, ev_.DEPTH_SNAPSHOT_EVENT, mid_ticks)
    n_steps = int(duration_s * 1000 / step_ms)
    for s in range(1, n_steps):
        ts = start_ns + s * step_ms * 1_000_000
        move = int(rng.choice([-1, 0, 0, 0, 1]))
        if move:
            # the whole ladder shifts: delete the levels that leave, set the ones that arrive
            old = mid_ticks
            mid_ticks += move
            for k in range(levels + 1):
                for side, sign in ((ev_.BUY_EVENT, -1), (ev_.SELL_EVENT, 1)):
                    px_old = (old + sign * (1 + k)) * TICK_PX
                    rows.append(
                        (ev_.DEPTH_EVENT | flags | side, ts, ts + 5_000_000, px_old, 0.0, 0, 0, 0.0)
                    )
            book(ts, ev_.DEPTH_EVENT, mid_ticks)
        else:
            side = ev_.BUY_EVENT if rng.random() < 0.5 else ev_.SELL_EVENT
            k = int(rng.integers(0, levels))
            sign = -1 if side == ev_.BUY_EVENT else 1
            rows.append(
                (
                    ev_.DEPTH_EVENT | flags | side,
                    ts,
                    ts + 5_000_000,
                    (mid_ticks + sign * (1 + k)) * TICK_PX,
                    float(rng.integers(200, 2000)),
                    0,
                    0,
                    0.0,
                )
            )
        if rng.random() < 0.5:
            buy = rng.random() < 0.5
            px = (mid_ticks + (1 if buy else -1)) * TICK_PX
            rows.append(
                (
                    ev_.TRADE_EVENT | flags | (ev_.BUY_EVENT if buy else ev_.SELL_EVENT),
                    ts + 1_000_000,
                    ts + 6_000_000,
                    px,
                    float(rng.integers(50, 3000)),
                    0,
                    0,
                    0.0,
                )
            )
    ev = np.array(rows, dtype=ev_.EVENT_DTYPE)
    return ev[np.argsort(ev["exch_ts"], kind="stable")]


def save_npz(path, events: np.ndarray) -> None:
    np.savez(path, data=events)
