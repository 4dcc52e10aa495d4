"""The feed-latency part of `mmbot.data.calibrate`: the capture's latency quantiles and correlation
time, and the fit of the synthetic market's latency table and correlation time on the latency
draws of a market of the fitted model (``refit_latency_on_market``; docs/data.md, "The
feed-latency fit")."""

from __future__ import annotations

import numpy as np
from numba import njit

from mmbot.data.calibrate_step import _clip, _ratio
from mmbot.data.synthetic_book import _latency_ns
from mmbot.data.synthetic_layout import N_FSTATE, N_ISTATE, S_LAT_T_NS

# the feed-latency table: 201 quantiles (0.5 % apart). With 41 (2.5 % apart) the fit flattened
# the table between its 92.5 % and 97.5 % points (local time never runs backwards, so the emitted
# tail is heavier than the drawn one and the fit pushes those points down onto each other): an
# atom at the p95, which then jumped 18 <-> 32 ms between latency paths on one market's times
LAT_PROBS = np.linspace(0.0, 1.0, 201)
LAT_ROUNDS = 24  # rounds of the latency fit (on the fitted market's message times)
LAT_PATHS = 6  # latency paths a round at least (each as long as the fit's market) ..
LAT_DRAWS_PER_ROUND = 2_400_000  # .. and more on a sparse market, to about this many draws
LAT_SEED = 54321
LAT_TAIL_PROB = 0.9  # the correlation time steps on the emitted tail from this quantile up
LAT_TAU_GAIN = 1.0  # its log-step per unit of the tail's mean log excess ..
LAT_TAU_MAX_LOG_STEP = 0.25  # .. at most this much a round
MAX_LAT_TAU_S = 30.0


def latency_corr_s(events: np.ndarray, lag: int = 10) -> float:
    """Correlation time of the feed latency: per message (distinct exchange time), the lag-10
    autocorrelation rho of latency gives tau = lag * mean gap / -ln(rho)."""
    ts, idx = np.unique(events["exch_ts"], return_index=True)
    if len(ts) < 4 * lag:
        return 0.0
    lat = (events["local_ts"][idx] - events["exch_ts"][idx]).astype(np.float64)
    lat -= lat.mean()
    var = float(np.mean(lat**2))
    if var <= 0:
        return 0.0
    rho = float(np.mean(lat[lag:] * lat[:-lag])) / var
    if not (0.0 < rho < 1.0):
        return 0.0
    gap_s = (ts[-1] - ts[0]) * 1e-9 / (len(ts) - 1)
    return float(lag * gap_s / -np.log(rho))


def latency_quantiles(events: np.ndarray) -> list[float]:
    lat_ns = (events["local_ts"] - events["exch_ts"]).astype(np.float64)
    return [float(max(x, 0.0)) for x in np.quantile(lat_ns, LAT_PROBS)]


@njit(cache=True)
def emitted_latency_ns(
    P: np.ndarray, lat_tab: np.ndarray, rng: np.ndarray, ts: np.ndarray
) -> np.ndarray:
    """The latency the generator's feed model stamps on messages at exchange times ``ts`` (its
    AR(1) copula draw, local time kept non-decreasing): the same code the market runs."""
    fs = np.zeros(N_FSTATE)
    ist = np.zeros(N_ISTATE, dtype=np.int64)
    ist[S_LAT_T_NS] = ts[0]
    out = np.empty(ts.shape[0], dtype=np.int64)
    last = ts[0]
    for k in range(ts.shape[0]):
        local = ts[k] + _latency_ns(P, lat_tab, fs, ist, rng, ts[k])
        if local < last:
            local = last
        last = local
        out[k] = local - ts[k]
    return out


def fit_latency(calib: dict, ts_ns: np.ndarray, rows: np.ndarray, target: dict) -> float:
    """Fit the latency table and its correlation time on latency draws at ``ts_ns`` (each
    stamping ``rows`` rows) so that the emitted latency, row-weighted as ``market_stats`` counts
    it, has the capture's quantiles: each round draws LAT_PATHS paths of the generator's feed
    model and steps every table point toward the capture's quantile; the second half of the
    rounds is averaged. Local time never runs backwards, so a delay holds up the messages after
    it and the emitted tail is heavier than the drawn one, the more so the shorter the
    correlation time (many short spikes each hold up the next messages). Where the held-up
    messages alone exceed the capture's tail the table cannot take it back (it goes flat: an
    atom the p95 jumps across), so the correlation time, starting from the capture's measured
    one and never below it, grows with the emitted tail's mean log excess over the capture's
    (quantiles 0.9 .. 0.995). Returns the emitted p95 (ms) of the last round's paths."""
    from mmbot.data.synthetic_layout import N_PARAMS, P_LAT_TAU_S
    from mmbot.data.synthetic_rng import _seed_state

    tgt = np.asarray(target["feed_latency_quantiles_ns"], dtype=np.float64)
    tab = np.asarray(calib["feed_latency_quantiles_ns"], dtype=np.float64)
    tail = (LAT_PROBS >= LAT_TAIL_PROB) & (LAT_PROBS < 1.0) & (tgt > 0)
    tau_min = max(float(calib.get("feed_latency_corr_s", 0.0)), 1e-3)
    tau = tau_min
    tabs: list[np.ndarray] = []
    taus: list[float] = []
    P = np.zeros(N_PARAMS)
    paths = lat_paths(len(ts_ns))
    weights = np.tile(rows, paths)
    sim_p95_ms = float("nan")
    for rnd in range(LAT_ROUNDS):
        P[P_LAT_TAU_S] = tau
        lat = np.concatenate(
            [
                emitted_latency_ns(P, tab, _seed_state(LAT_SEED + paths * rnd + k), ts_ns)
                for k in range(paths)
            ]
        ).astype(np.float64)
        sim = np.quantile(np.repeat(lat, weights), LAT_PROBS)
        sim_p95_ms = float(np.interp(0.95, LAT_PROBS, sim)) * 1e-6
        if rnd >= LAT_ROUNDS // 2:
            tabs.append(tab.copy())
            taus.append(tau)
        excess = float(np.mean(np.log(np.maximum(sim[tail], 1.0) / tgt[tail])))
        step = _clip(LAT_TAU_GAIN * excess, -LAT_TAU_MAX_LOG_STEP, LAT_TAU_MAX_LOG_STEP)
        tau = _clip(tau * np.exp(step), tau_min, MAX_LAT_TAU_S)
        for i in range(len(tab)):
            tab[i] *= _ratio(tgt[i], sim[i], 0.7)
        tab = np.maximum.accumulate(tab)
    calib["feed_latency_quantiles_ns"] = [float(x) for x in np.mean(tabs, axis=0)]
    calib["feed_latency_corr_s"] = float(np.exp(np.mean(np.log(taus))))
    return sim_p95_ms


def lat_paths(n_draws: int) -> int:
    """Latency paths a round of the feed-latency fit: LAT_PATHS, more on a sparse market (spot
    BTCUSDT's ~330 draws a second), so each round sees about LAT_DRAWS_PER_ROUND draws."""
    return int(max(LAT_PATHS, min(64, -(-LAT_DRAWS_PER_ROUND // max(n_draws, 1)))))


def refit_latency_on_market(
    calib: dict, target: dict, seconds: int, log: list[str], seed: int, t0_ns: int
) -> None:
    """Fit the feed latency on the message times of one market of the fitted model (the feed
    model does not move the book, so the market's times do not depend on it). Local time never
    runs backwards, so a delayed message holds up the ones after it and the emitted tail depends
    on how densely messages come: the fitted USD-M market stamps ~1,200 distinct exchange times a
    second where the capture has ~116 (ms-stamped messages of many rows), and a table fitted on
    the capture's times gave the market a p95 1.8x the capture's. The draws include simulated
    events that emit no row (~16 % more draws than stamped times on USD-M); fitted on the stamped
    times alone the market's p95 came out 1.14x the capture's."""
    from mmbot.data.synthetic import latency_draws

    # the market draws one latency per simulated event, shared by the rows it emits (none for
    # some events: their delay still holds up the later messages)
    ts_ns, rows = latency_draws(calib, seed, t0_ns, seconds * 1_000_000_000)
    tau_capture_s = float(calib["feed_latency_corr_s"])
    p95_ms = fit_latency(calib, ts_ns, rows, target)
    log.append(
        f"feed latency: {LAT_ROUNDS} rounds x {lat_paths(len(ts_ns))} paths on the fitted market's "
        f"{len(ts_ns)} latency draws, correlation {calib['feed_latency_corr_s']:.3f} s "
        f"(capture {tau_capture_s:.3f} s), p95 {p95_ms:.1f}/{target['feed_latency_ms_p95']:.1f} ms"
    )
