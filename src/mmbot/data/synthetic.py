"""The embedded market: a calibrated stochastic limit order book that emits the normal event array.

Owns the generator (``generate`` / ``generate_chunks`` / ``generate_with_flow``) and the loading of
shipped calibrations (``load_calibration``). The model (DESIGN.md, "The embedded market"):

* a latent efficient price ``v`` (in ticks) follows a jump-diffusion (sigma; Poisson jumps with
  double-exponential sizes);
* the visible book is rebuilt around ``v`` level by level. Level k is the k-th price from ``v`` on
  each side, or from just inside the opposite touch when that is stale (never crossing it).
  Queue-reactive intensities (Huang-Lehalle-Rosenbaum 2015): makers join a level at
  ``refill * (D_k - q)+`` and leave it at ``excess * (q - D_k)+`` (queues left behind by a moving
  price are pulled), on top of a constant per-order cancel hazard (Cont-Stoikov-Talreja 2010). A
  touch on the wrong side of ``v`` (stale) melts: each of its orders is pulled at a calibrated
  rate (the race against the informed);
* market orders ("parents") come from noise traders (a
  Hawkes process: clustered arrivals, side persistence) and from informed traders who trade only
  when ``v`` is past the touch, with intensity growing with the mispricing and a limit at ``v``
  (Glosten-Milgrom). A noise sweep moves ``v`` by its touch move, saturating at a cap (impact is
  concave in a sweep's reach), times a permanent share plus a transient share that decays
  exponentially (a propagator, Bouchaud et al. 2004): the book is built around ``v`` while the
  informed trade against ``v`` without the transient part, so they arbitrage it away. Order flow
  carries information, and deep fills revert partly, as on the captures. A
  parent (sized from the capture's sweeps) fills maker orders one at a time, printing one TRADE
  per maker order (as venues do), at most the engine's calibrated prints per ms: a longer sweep
  goes on in the next ms (nothing else happens meanwhile) and the DEPTH rows of the levels it
  touched follow its last print, as on the venue's feed;
* fine-tick terms (the as-captured fits; off by default, so older calibrations generate the same
  bytes): stale pulls hit every order past v, not only the touch's; a queue-reactive join or
  cancel brings a level to its target in one row; and the makers re-centre their ladder only when
  v has moved more than a fitted hysteresis (on a 0.1 USDT tick a ladder keyed to v itself moved
  with every tick v crossed: the mid trailed v by seconds and the book emitted ~4x the capture's
  level updates); a stale pull can take the whole stale touch level in one row, its hazard per
  level (makers leave a level v has passed together: pulled order by order at the speed that keeps
  the mid on v, the touch changed far more often than the capture's);
* thin moments before the orders (off by default): at Poisson times (``pull_rate_per_s``) the
  makers of one side, a fair coin, pull its near book (the levels within 1 bps of the touch) down
  to the depleted targets slow resilience leaves after a sweep (``resilience_depletion``, halving
  every ``resilience_half_life_s``), one row per level, the touch keeping at least one lot; the
  side is then rebuilt as after a sweep; or, with ``pull_hold_s`` > 0, held: the makers stay away
  (targets x (1 - ``pull_depletion``), nothing rebuilt) for an exponential time of that mean, then
  the targets are whole again and the refill brings the side back at once;
* every visible change is emitted: DEPTH level updates (price, new total qty; 0 = delete) and
  TRADE prints (BUY flag = buyer aggressor), each consuming the touch it hits; feed latency follows
  the calibrated distribution with an AR(1) Gaussian copula (consecutive messages see similar
  latencies), local time kept non-decreasing.

The event loop is one numba function advancing an explicit state (own xoshiro256** RNG, book ring
buffers, pending event time and rates), so a long market can be produced in chunks whose
concatenation is byte-identical to one ``generate`` call with the same seed: a soak never holds a
whole day in memory. Intensities are evaluated at each event (piecewise constant between events;
the Hawkes decay is handled exactly by thinning).

Modules: this one owns the Python API (calibration to arrays, the market object, generation,
shipped calibrations); ``synthetic_layout`` the compiled state's layout, ``synthetic_rng`` the
RNG, ``synthetic_book`` the book mechanics and event intensities, ``synthetic_core`` the event
loop and what each kind of event does.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from mmbot.book import new_ring
from mmbot.data.synthetic_book import (
    _snapshot,
)
from mmbot.data.synthetic_core import (
    _advance,
)
from mmbot.data.synthetic_layout import (
    _NONE,
    _RESERVE_ROWS,
    F_STEPS,
    F_V,
    FAR_EVERY,
    K_JUMP,
    K_PULL,
    MAX_DEPTH_LEVELS,
    N_FSTATE,
    N_ISTATE,
    N_PARAMS,
    N_RATES,
    P_DEEP_SPLIT,
    P_FIELDS,
    P_FRONT_KEEP,
    P_HAWKES_N,
    P_LOT_QTY,
    P_MAKER_LOTS,
    P_PULL_DEPLETION,
    P_PULL_HOLD_S,
    P_PULL_LEVELS,
    P_PULL_RATE,
    P_RESIL_DEPLETION,
    P_RESIL_HALF_LIFE_S,
    P_THIN_BETA,
    P_THIN_CAP,
    P_THIN_LEVELS,
    P_THIN_TARGET_LOTS,
    P_TICK_PX,
    RING_TICKS,
    S_BEST_ASK,
    S_BEST_BID,
    S_FAR_AGE,
    S_HAS_PENDING,
    S_PENDING_NS,
    S_T_NS,
    THIN_NEAR_BPS,
    WARMUP_NS,
)
from mmbot.data.synthetic_rng import (
    _seed_state,
)
from mmbot.errors import UserError
from mmbot.events import (
    EVENT_DTYPE,
)

MARKETS_DIR = Path(__file__).resolve().parents[1] / "assets" / "markets"
# the embedded default (the demo's, `--market synthetic`): the USD-M BTCUSDT fit at its captured
# tick; the wide-tick variant stays shipped, named explicitly and labelled where it is used
DEFAULT_MARKET = "binance_usdm_btcusdt"
WIDE_TICK_MARKET = "binance_usdm_btcusdt_wide_tick"
SCHEMA = "mmbot.market.v1"


def _table(x: Any, name: str, *, positive: bool) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if (
        a.ndim != 1
        or len(a) < 2
        or not np.all(np.isfinite(a))
        or np.any(a <= 0 if positive else a < 0)
    ):
        raise UserError(
            f"calibration: {name} must be a list of >= 2 finite quantiles {'> 0' if positive else '>= 0'}"
        )
    return np.sort(a)


def _field(fields: dict, key: str, default: float | str | None) -> float:
    """A parameter's value (``P_FIELDS``): required (default None), else the default, which a
    string names another field to take from."""
    if default is None:
        return float(fields[key])
    return float(fields.get(key, fields[default] if isinstance(default, str) else default))


def model_arrays(
    calib: dict,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Translate a calibration dict (bps / qty / s units) into the core's tick/lot arrays:
    (params, depth target per level in lots, maker size table, parent size table, latency table,
    initial efficient price in ticks). Raises UserError naming the bad field."""
    try:
        m = calib["model"]
        tick_px = float(calib["tick_px"])
        lot_qty = float(calib["lot_qty"])
        price0_px = float(calib["price0_px"])
        if not (tick_px > 0 and lot_qty > 0 and price0_px > 0):
            raise UserError("calibration: tick_px, lot_qty and price0_px must be > 0")
        ticks_per_bps = price0_px * 1e-4 / tick_px
        maker_tab = _table(
            m["maker_size_quantiles_qty"], "model.maker_size_quantiles_qty", positive=True
        )
        parent_tab = _table(
            m["parent_size_quantiles_qty"], "model.parent_size_quantiles_qty", positive=True
        )
        lat_tab = _table(
            calib["feed_latency_quantiles_ns"], "feed_latency_quantiles_ns", positive=False
        )
        # maker orders are the prints' parents' counterparts: the capture shows them only as
        # (truncated) print sizes, so their scale is fitted to the capture's prints per order
        maker_tab = maker_tab * float(m.get("maker_size_scale", 1.0))
        target = np.asarray(m["depth_target_qty"], dtype=np.float64)
        P = np.zeros(N_PARAMS, dtype=np.float64)
        for slot, source, key, default, unit in P_FIELDS:
            x = _field(calib if source == "calib" else m, key, default)
            P[slot] = (
                x * ticks_per_bps
                if unit == "bps"
                else (x / ticks_per_bps if unit == "per_bps" else x)
            )
        P[P_PULL_DEPLETION] = float(m.get("pull_depletion", P[P_RESIL_DEPLETION]))
        P[P_TICK_PX] = tick_px
        P[P_LOT_QTY] = lot_qty
        P[P_MAKER_LOTS] = max(float(np.mean(maker_tab)) / lot_qty, 1.0)
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"calibration: missing or malformed field {exc!s}") from None
    if not np.all(np.isfinite(P)) or np.any(P < 0):
        raise UserError("calibration: model parameters must be finite and >= 0")
    if P[P_RESIL_DEPLETION] > 1.0:
        raise UserError("calibration: model.resilience_depletion must be in [0, 1]")
    if P[P_PULL_DEPLETION] > 1.0:
        raise UserError("calibration: model.pull_depletion must be in [0, 1]")
    if P[P_DEEP_SPLIT] not in (0.0, 1.0):
        raise UserError("calibration: model.deep_print_split must be 0 or 1")
    if P[P_FRONT_KEEP] not in (0.0, 1.0):
        raise UserError("calibration: model.maker_front_keep must be 0 or 1")
    if P[P_HAWKES_N] >= 1.0:
        raise UserError("calibration: model.hawkes_branching_ratio must be < 1 (stationary)")
    if (
        target.ndim != 1
        or not (1 <= len(target) <= MAX_DEPTH_LEVELS)
        or not np.all(np.isfinite(target))
        or np.any(target < 0)
        or target.sum() <= 0
    ):
        raise UserError(
            f"calibration: model.depth_target_qty must list 1..{MAX_DEPTH_LEVELS} depths >= 0 (not all 0)"
        )
    target_lots = np.round(target / lot_qty)
    near_levels = min(len(target_lots), max(1, int(round(THIN_NEAR_BPS * ticks_per_bps))))
    if P[P_PULL_RATE] > 0.0:
        if P[P_RESIL_HALF_LIFE_S] <= 0.0 and P[P_PULL_HOLD_S] <= 0.0:
            raise UserError(
                "calibration: model.pull_rate_per_s > 0 needs model.resilience_half_life_s > 0"
                " (a pulled side is rebuilt with that half-life) or model.pull_hold_s > 0"
            )
        P[P_PULL_LEVELS] = near_levels
    else:
        P[P_PULL_HOLD_S] = 0.0  # no pulls, nothing to hold: the bytes of a market without it
    if P[P_THIN_BETA] > 0.0:
        if P[P_THIN_CAP] < 1.0:
            raise UserError("calibration: model.taker_thin_cap_ratio must be >= 1")
        P[P_THIN_LEVELS] = near_levels
        P[P_THIN_TARGET_LOTS] = max(float(target_lots[:near_levels].sum()), 1.0)
    return P, target_lots, maker_tab, parent_tab, lat_tab, price0_px / tick_px


class _Market:
    """Mutable generator state (arrays only, so the compiled core can advance it)."""

    def __init__(self, calib: dict, seed: int, start_ts_ns: int) -> None:
        self.P, self.target, self.maker_tab, self.parent_tab, self.lat_tab, v0 = model_arrays(calib)
        self.rng = _seed_state(seed)
        self.bq = new_ring()
        self.aq = new_ring()
        self.lv = np.zeros(RING_TICKS // 8 + 1, dtype=np.int64)  # levels of the sweep in progress
        self.ds = np.zeros(MAX_DEPTH_LEVELS, dtype=np.int64)  # a level draw's differences (scratch)
        self.fs = np.zeros(N_FSTATE, dtype=np.float64)
        self.ist = np.zeros(N_ISTATE, dtype=np.int64)
        self.fs[F_V] = v0
        self.ist[S_T_NS] = int(start_ts_ns) - WARMUP_NS
        self.ist[S_BEST_BID] = _NONE
        self.ist[S_BEST_ASK] = _NONE
        self.ist[S_FAR_AGE] = FAR_EVERY
        self.start_ts_ns = int(start_ts_ns)
        # feed-latency draw times: off (one element); latency_draws() turns them on
        self.lat_t = np.zeros(1, dtype=np.int64)
        self.lat_parts: list[np.ndarray] = []

    @property
    def state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The arrays the compiled core advances (one argument): float and integer state, random
        generator, bid and ask queues."""
        return self.fs, self.ist, self.rng, self.bq, self.aq

    def run(
        self, t_end_ns: int, emit: bool, cap: int, head: np.ndarray | None = None
    ) -> np.ndarray:
        """Advance to ``t_end_ns`` and return the emitted events (buffers of ``cap`` rows), behind
        the rows of ``head`` when given (written at the first buffer's start: a market's opening
        snapshot joined to its events without copying them)."""
        parts = []
        cap = max(cap, 2 * _RESERVE_ROWS)
        n_head = 0 if head is None else len(head)
        while True:
            out = np.empty(n_head + cap, dtype=EVENT_DTYPE)
            if n_head:
                out[:n_head] = head
            n = _advance(
                self.P,
                self.target,
                self.maker_tab,
                self.parent_tab,
                self.lat_tab,
                self.state,
                self.lv,
                self.ds,
                t_end_ns,
                emit,
                out[n_head:],
                self.lat_t,
            )
            if n_head + n:
                parts.append(_pack(out, n_head + n))
            n_head = 0
            if self.lat_t[0] > 0:
                self.lat_parts.append(self.lat_t[1 : self.lat_t[0] + 1].copy())
                self.lat_t[0] = 0
            if self.ist[S_HAS_PENDING] and self.ist[S_PENDING_NS] >= t_end_ns:
                break
        if not parts:
            return np.zeros(0, dtype=EVENT_DTYPE)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def snapshot(self) -> np.ndarray:
        cap = 4 * RING_TICKS
        out = np.empty(cap, dtype=EVENT_DTYPE)
        n = _snapshot(self.P, self.lat_tab, self.state, self.start_ts_ns, out)
        return _pack(out, n)


def _pack(out: np.ndarray, n: int) -> np.ndarray:
    """The filled part of a buffer; copied when the buffer is mostly empty (memory)."""
    return out[:n] if 2 * n >= len(out) else out[:n].copy()


def _rows_per_s_guess(calib: dict) -> float:
    """Rough emitted rows per second (buffer sizing only; the buffers grow when short)."""
    fit = calib.get("fit_stats") or calib.get("target_stats") or {}
    try:
        return max(
            100.0, float(fit.get("n_events", 0)) / max(float(fit.get("duration_s", 1.0)), 1e-9)
        )
    except (TypeError, ValueError):
        return 2000.0


def generate_chunks(
    calib: dict, seed: int, start_ts_ns: int, duration_ns: int, chunk_ns: int = 600_000_000_000
) -> Iterator[np.ndarray]:
    """Yield the market in consecutive exchange-time chunks of ``chunk_ns`` (the first starts
    with the DEPTH_SNAPSHOT of the initial book). Concatenated, the chunks equal
    ``generate(calib, seed, start_ts_ns, duration_ns)`` byte for byte."""
    if int(duration_ns) <= 0:
        raise UserError(f"synthetic market: duration must be > 0 ns, got {duration_ns}")
    if int(chunk_ns) <= 0:
        raise UserError(f"synthetic market: chunk must be > 0 ns, got {chunk_ns}")
    mk = _Market(calib, seed, start_ts_ns)
    mk.run(int(start_ts_ns), emit=False, cap=1 << 16)
    rows_per_s = _rows_per_s_guess(calib)
    end_ns = int(start_ts_ns) + int(duration_ns)
    t = int(start_ts_ns)
    first: np.ndarray | None = mk.snapshot()
    while t < end_ns:
        t_next = min(end_ns, t + int(chunk_ns))
        cap = min(int(rows_per_s * (t_next - t) * 1e-9 * 1.2) + 4 * _RESERVE_ROWS, 4_000_000)
        body = mk.run(t_next, emit=True, cap=cap, head=first)
        first = None
        yield body
        t = t_next


def latency_draws(
    calib: dict, seed: int, start_ts_ns: int, duration_ns: int
) -> tuple[np.ndarray, np.ndarray]:
    """The market ``generate`` makes, seen by its feed model: the exchange time of every latency
    draw (the opening snapshot's first) and the rows each draw stamps (0 for a simulated event
    that emits none: its delay still holds up the messages after it, local time never running
    backwards). The draws and the market are those of ``generate`` with the same arguments."""
    if int(duration_ns) <= 0:
        raise UserError(f"synthetic market: duration must be > 0 ns, got {duration_ns}")
    mk = _Market(calib, seed, start_ts_ns)
    mk.run(int(start_ts_ns), emit=False, cap=1 << 16)
    first = mk.snapshot()
    mk.lat_t = np.zeros(1 << 20, dtype=np.int64)
    cap = min(
        int(_rows_per_s_guess(calib) * int(duration_ns) * 1e-9 * 1.2) + 4 * _RESERVE_ROWS, 4_000_000
    )
    body = mk.run(int(start_ts_ns) + int(duration_ns), emit=True, cap=cap)
    draws_ns = np.concatenate([np.array([int(start_ts_ns)], dtype=np.int64), *mk.lat_parts])
    rows_ts = np.concatenate([first["exch_ts"], body["exch_ts"]])
    rows = np.searchsorted(rows_ts, draws_ns, side="right") - np.searchsorted(
        rows_ts, draws_ns, side="left"
    )
    return draws_ns, rows.astype(np.int64)


def generate_with_flow(
    calib: dict, seed: int, start_ts_ns: int, duration_ns: int
) -> tuple[np.ndarray, dict[str, float]]:
    """``generate`` plus the counts of simulated order-flow events by origin (what the event
    array cannot show): noise and informed market orders, stale pulls, jumps of v, the makers'
    pulls of a near book."""
    if int(duration_ns) <= 0:
        raise UserError(f"synthetic market: duration must be > 0 ns, got {duration_ns}")
    mk = _Market(calib, seed, start_ts_ns)
    mk.run(int(start_ts_ns), emit=False, cap=1 << 16)
    before = mk.fs[F_STEPS : F_STEPS + K_PULL + 2].copy()
    first = mk.snapshot()
    cap = min(
        int(_rows_per_s_guess(calib) * int(duration_ns) * 1e-9 * 1.2) + 4 * _RESERVE_ROWS, 4_000_000
    )
    events = mk.run(int(start_ts_ns) + int(duration_ns), emit=True, cap=cap, head=first)
    steps = mk.fs[F_STEPS : F_STEPS + K_PULL + 2] - before
    noise = float(steps[1 + N_RATES])
    informed = float(steps[1 + 4] + steps[1 + 5])
    flow = {
        "noise_orders": noise,
        "informed_orders": informed,
        "informed_share_of_orders": informed / (noise + informed) if noise + informed > 0 else 0.0,
        "stale_pulls": float(steps[1 + 6] + steps[1 + 7]),
        "jumps": float(steps[1 + K_JUMP]),
        "pulls": float(steps[1 + K_PULL]),
    }
    return events, flow


def generate(calib: dict, seed: int, start_ts_ns: int, duration_ns: int) -> np.ndarray:
    """The synthetic market from ``start_ts_ns`` for ``duration_ns`` as one EVENT_DTYPE array
    (deterministic by ``seed``; starts with a DEPTH_SNAPSHOT of the initial book)."""
    parts = list(generate_chunks(calib, seed, start_ts_ns, duration_ns, chunk_ns=int(duration_ns)))
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


# ================================ calibration files =============================================
def available_markets() -> list[str]:
    return sorted(p.stem for p in MARKETS_DIR.glob("*.json"))


def load_calibration(name_or_path: str | Path = "default") -> dict[str, Any]:
    """A shipped calibration by name (``"default"`` = ``DEFAULT_MARKET``, the demo's)
    or a calibration JSON file written by ``mmbot data calibrate``."""
    name = str(name_or_path)
    if name in ("default", "synthetic"):
        name = DEFAULT_MARKET
    path = Path(name)
    if not path.suffix and not path.exists():
        path = MARKETS_DIR / f"{name}.json"
    if not path.exists():
        raise UserError(
            f"market calibration not found: {name_or_path} (shipped: {', '.join(available_markets())}, or a path to a calibration JSON)"
        )
    try:
        calib = orjson.loads(path.read_bytes())
    except (orjson.JSONDecodeError, OSError) as exc:
        raise UserError(f"market calibration {path}: not readable JSON ({exc})") from None
    if not isinstance(calib, dict) or calib.get("schema") != SCHEMA:
        raise UserError(
            f"market calibration {path}: not a {SCHEMA} file (missing or wrong 'schema')"
        )
    model_arrays(calib)  # validates every field the generator needs
    return calib
