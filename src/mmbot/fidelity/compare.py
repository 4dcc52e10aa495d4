"""The fidelity comparison: a capture against the synthetic market fitted to it.

Owns ``fidelity`` (capture events + calibration -> the ``FIDELITY.json`` dict), the names of the
compared statistics and autocorrelations, the pass bands, and the rank statistics (Spearman,
sign agreement) of the strategy panel. Both sides are measured by ``market_stats`` and run through
the same backtest, so a difference is the market's, not the yardstick's. Synthetic figures are the
mean over seeds (each seed's value is kept beside it).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mmbot.fidelity.panel import PANEL, PanelConfig, run_panel

# FIDELITY.json "stats": name -> market_stats key
STAT_KEYS: dict[str, str] = {
    "spread_bps_mean": "spread_bps_mean",
    "spread_bps_p95": "spread_bps_p95",
    "touch_qty": "touch_qty",
    "depth_qty_within_5bps": "depth_qty_within_5bps",
    "trade_rate_per_s": "trade_rate_per_s",
    "trade_size_mean_qty": "trade_size_mean_qty",
    "trade_size_p90_qty": "trade_size_p90_qty",
    "trade_count_fano_1s": "trade_count_fano_1s",
    "markout_100ms_bps": "markout_100ms_bps",
    "markout_1s_bps": "markout_1s_bps",
    "markout_5s_bps": "markout_5s_bps",
    "vol_bps_per_sqrt_s": "vol_bps_per_sqrt_s",
    "vol_60s_bps": "vol_60s_bps",
    "touch_update_rate_per_s": "touch_update_rate_per_s",
    "feed_latency_ms_p50": "feed_latency_ms_p50",
    "feed_latency_ms_p95": "feed_latency_ms_p95",
    "parent_rate_per_s": "parent_rate_per_s",
    "parent_markout_1s_bps": "parent_markout_1s_bps",
    # the impact curve deep quotes are filled against: reach of sweeps >= 1 bps past their first
    # print and the mid's move after them (the real captures' saturates and reverts)
    "deep_sweep_share": "deep_sweep_share",
    "deep_sweep_reach_bps": "deep_sweep_reach_bps",
    "deep_sweep_impact_1s_bps": "deep_sweep_impact_1s_bps",
    "deep_sweep_impact_30s_bps": "deep_sweep_impact_30s_bps",
    # how often a quote resting 0.5, 1, 2 and 5 bps from the mid (100 ms before) is traded
    # through: (second, side) pairs a minute; where the panel's deep quoters rest (1-5 bps) and
    # where glft_ref measures the trade intensity that sets its depth (0.5 bps)
    "trade_through_0.5bps_per_min": "trade_through_0.5bps_per_min",
    "trade_through_1bps_per_min": "trade_through_1bps_per_min",
    "trade_through_2bps_per_min": "trade_through_2bps_per_min",
    "trade_through_5bps_per_min": "trade_through_5bps_per_min",
}
# statistics whose capture value market_stats gives a standard error for (over the deep sweeps):
# FIDELITY.json carries it as the row's "real_se"
REAL_SE_KEYS: dict[str, str] = {
    "deep_sweep_impact_1s_bps": "deep_sweep_impact_1s_se_bps",
    "deep_sweep_impact_30s_bps": "deep_sweep_impact_30s_se_bps",
}
# FIDELITY.json "autocorr": name -> market_stats key (lag-1 autocorrelations)
AUTOCORR_KEYS: dict[str, str] = {
    "mid_return_100ms": "autocorr_mid_return_100ms",
    "mid_return_1s": "autocorr_mid_return_1s",
    "trade_sign_lag1": "autocorr_trade_sign_lag1",
    "parent_sign_lag1": "autocorr_parent_sign_lag1",
}
RATIO_BAND = (0.75, 1.33)
AUTOCORR_MAX_DIFF = 0.1
MIN_SPEARMAN = 0.8
MIN_SIGN_AGREEMENT = 0.8
T0_NS = 1_700_000_000_000_000_000
SEED0 = 1_000_001  # far from the fit's seeds (12345 + round)
# each statistic's sampling noise at the capture's length: its standard deviation over this many
# synthetic markets as long as the capture (seeds SEED0 + 200 + i). A 345 s capture holds ~40
# deep sweeps and ~6 independent 60 s returns: a ratio outside the band can be the capture's own
# noise, and "z" (synthetic - real over that deviation) says how far outside it a miss is. The
# panel runs on the same markets for the ranking's noise ceiling
NOISE_MARKETS = 8
NOISE_Z = 2.0


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties sharing their mean rank."""
    order = np.argsort(x, kind="stable")
    r = np.empty(len(x), dtype=np.float64)
    r[order] = np.arange(1, len(x) + 1)
    for v in np.unique(x):
        tie = x == v
        r[tie] = r[tie].mean()
    return r


def spearman(a: list[float], b: list[float]) -> float:
    """Spearman rank correlation over the pairs where both are finite (nan below 3 pairs or when
    one side is constant)."""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        return float("nan")
    rx = _ranks(x[ok])
    ry = _ranks(y[ok])
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def sign_agreement(a: list[float], b: list[float]) -> float:
    """Share of configurations (both finite) whose net bps has the same sign on both sides."""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        return float("nan")
    return float(np.mean(np.sign(x[ok]) == np.sign(y[ok])))


def seed_spearman(nets: list[list[float]]) -> tuple[float, list[float]]:
    """Mean Spearman over every pair of runs of the panel (each a list of net bps per
    configuration) and the pairs' values: how reproducible the panel's ranking is between two
    markets of the same model."""
    pairs = [spearman(nets[i], nets[j]) for i in range(len(nets)) for j in range(i + 1, len(nets))]
    return _nanmean(pairs), pairs


def _synthetic_panel(calib: dict, ev: np.ndarray, panel: list[PanelConfig]) -> list[float]:
    """The panel's net bps on ``ev``, a synthetic market of ``calib`` (at its tick and lot)."""
    return run_panel(
        ev, tick_px=float(calib["tick_px"]), lot_qty=float(calib["lot_qty"]), panel=panel
    )


def _noise_ceiling(duration_s: float, seeds: list[int], nets: list[list[float]]) -> dict:
    """The panel's ranking between the capture-length markets (``nets``, one list of net bps per
    market): a ranking that two markets of the same model do not reproduce at the capture's
    length cannot be expected to carry over from the model to the capture, however faithful the
    model."""
    mean, pairs = seed_spearman(nets)
    return {
        "duration_s": float(duration_s),
        "seeds": seeds,
        "seed_spearman_mean": mean,
        "seed_spearman_pairs": pairs,
        "synthetic_net_bps_seeds": nets,
    }


def _with_capture_like(ceiling: dict, syn_mean: list[float]) -> dict:
    """``ceiling`` plus ``capture_like_spearman`` (each capture-length market against the
    synthetic markets' mean: the comparison the capture gets, made where the model is the truth)
    and its mean: what a perfect model would score against one capture of that length."""
    nets = ceiling.get("synthetic_net_bps_seeds") or []
    if not nets:
        return ceiling
    vals = [spearman(n, syn_mean) for n in nets]
    return {**ceiling, "capture_like_spearman": vals, "capture_like_spearman_mean": _nanmean(vals)}


def _capture_length_markets(
    calib: dict, duration_s: float, markets: int, panel: list[PanelConfig], say: Callable
) -> tuple[list[dict], dict]:
    """``markets`` synthetic markets as long as the capture (seeds SEED0 + 200 + i): each one's
    market_stats (how much each statistic moves between samples of the capture's length) and
    the panel's noise ceiling over them ({} with fewer than two)."""
    from mmbot.data.market_stats import market_stats
    from mmbot.data.synthetic import generate

    if markets < 2:
        return [], {}
    say(f"sampling noise: {markets} markets of {duration_s:.0f} s (the capture's length)")
    dur_ns = int(round(duration_s * 1e9))
    seeds = [SEED0 + 200 + i for i in range(markets)]
    stats, nets = [], []
    for seed in seeds:
        ev = generate(calib, seed, T0_NS, dur_ns)
        stats.append(market_stats(ev, tick_px=float(calib["tick_px"])))
        nets.append(_synthetic_panel(calib, ev, panel))
    return stats, _noise_ceiling(duration_s, seeds, nets)


def _add_noise(out: dict, noise: list[dict]) -> None:
    """Each statistic's and autocorrelation's ``capture_length_sd`` (its standard deviation over
    the capture-length markets) and ``z`` (synthetic minus real, in those deviations); nan
    without such markets."""
    for part, keys in (("stats", STAT_KEYS), ("autocorr", AUTOCORR_KEYS)):
        for name, key in keys.items():
            vals = np.asarray([float(s[key]) for s in noise], dtype=np.float64)
            vals = vals[np.isfinite(vals)]
            sd = float(np.std(vals, ddof=1)) if len(vals) >= 2 else float("nan")
            v = out[part][name]
            v["capture_length_sd"] = sd
            gap = v["synthetic"] - v["real"]
            v["z"] = gap / sd if np.isfinite(sd) and sd > 0 else float("nan")


def _nanmean(vals: list[float]) -> float:
    arr = np.asarray(vals, dtype=np.float64)
    return float(np.mean(arr[np.isfinite(arr)])) if np.isfinite(arr).any() else float("nan")


def _ratio(real: float, syn: float) -> float:
    return syn / real if np.isfinite(real) and real != 0 and np.isfinite(syn) else float("nan")


def _beyond_noise(part: dict, names: list[str]) -> list[str]:
    return [k for k in names if not abs(part[k].get("z", float("nan"))) <= NOISE_Z]


def _within_capture_like(rk: dict) -> bool | None:
    """Whether the capture's Spearman reaches the lowest capture-like one (None: not measured)."""
    nc = rk.get("noise_ceiling") or {}
    vals = np.asarray(nc.get("capture_like_spearman", []), dtype=np.float64)
    vals = vals[np.isfinite(vals)]
    if len(vals) < 2 or not np.isfinite(rk["spearman"]):
        return None
    return bool(rk["spearman"] >= vals.min())


def _checks(out: dict) -> dict:
    bad_stats = [
        k
        for k, v in out["stats"].items()
        if not (RATIO_BAND[0] <= v["ratio"] <= RATIO_BAND[1])  # nan fails
    ]
    bad_ac = [k for k, v in out["autocorr"].items() if not abs(v["diff"]) <= AUTOCORR_MAX_DIFF]
    rk = out["ranking"]
    return {
        "ratio_band": list(RATIO_BAND),
        "autocorr_max_diff": AUTOCORR_MAX_DIFF,
        "min_spearman": MIN_SPEARMAN,
        "min_sign_agreement": MIN_SIGN_AGREEMENT,
        "stats_outside_band": bad_stats,
        "autocorr_outside_band": bad_ac,
        # of those, the ones further from the capture than its own sampling noise explains
        # (|z| > NOISE_Z, or z not measured)
        "noise_z": NOISE_Z,
        "stats_outside_band_beyond_noise": _beyond_noise(out["stats"], bad_stats),
        "autocorr_outside_band_beyond_noise": _beyond_noise(out["autocorr"], bad_ac),
        "spearman_ok": bool(rk["spearman"] >= MIN_SPEARMAN),
        # the ranking judged by the capture's own noise: at least the lowest capture-like value
        # (a market identical to the model falls below the lowest of 8 about one time in 9)
        "spearman_within_noise": _within_capture_like(rk),
        "sign_agreement_ok": bool(rk["sign_agreement"] >= MIN_SIGN_AGREEMENT),
        "all_ok": bool(
            not bad_stats
            and not bad_ac
            and rk["spearman"] >= MIN_SPEARMAN
            and rk["sign_agreement"] >= MIN_SIGN_AGREEMENT
        ),
    }


def _synthetic_runs(
    calib: dict,
    *,
    hours: float,
    seeds: int,
    panel: list[PanelConfig],
    say: Callable[[str], None],
) -> tuple[list[dict], list[list[float]]]:
    """market_stats and the panel's net bps of ``seeds`` synthetic markets of ``hours`` each
    (seeds SEED0, SEED0+1, ...)."""
    from mmbot.data.market_stats import market_stats
    from mmbot.data.synthetic import generate

    syn_stats: list[dict] = []
    syn_net: list[list[float]] = []
    duration_ns = int(round(hours * 3600e9))
    for i in range(seeds):
        seed = SEED0 + i
        say(f"seed {seed}: generating {hours:g} h")
        ev = generate(calib, seed, T0_NS, duration_ns)
        syn_stats.append(market_stats(ev, tick_px=float(calib["tick_px"])))
        say(f"seed {seed}: {len(ev)} events; running {len(panel)} configurations")
        syn_net.append(_synthetic_panel(calib, ev, panel))
        del ev
    return syn_stats, syn_net


def _compare_stats(real: dict, syn_stats: list[dict]) -> dict:
    """The "stats" (ratio synthetic / real) and "autocorr" (difference) parts of FIDELITY.json."""
    out: dict = {"stats": {}, "autocorr": {}}
    for name, key in STAT_KEYS.items():
        per_seed = [float(s[key]) for s in syn_stats]
        x, y = float(real[key]), _nanmean(per_seed)
        out["stats"][name] = {"real": x, "synthetic": y, "ratio": _ratio(x, y), "seeds": per_seed}
        if name in REAL_SE_KEYS:
            out["stats"][name]["real_se"] = float(real.get(REAL_SE_KEYS[name], float("nan")))
    for name, key in AUTOCORR_KEYS.items():
        per_seed = [float(s[key]) for s in syn_stats]
        x, y = float(real[key]), _nanmean(per_seed)
        out["autocorr"][name] = {"real": x, "synthetic": y, "diff": y - x, "seeds": per_seed}
    return out


def _ranking(
    real_net: list[float],
    syn_net: list[list[float]],
    panel: list[PanelConfig],
    ceiling: dict,
) -> dict:
    """The "ranking" part of FIDELITY.json: the panel's net bps on the capture against their mean
    over the synthetic markets."""
    syn_mean = [_nanmean([n[j] for n in syn_net]) for j in range(len(panel))]
    return {
        "spearman": spearman(real_net, syn_mean),
        "sign_agreement": sign_agreement(real_net, syn_mean),
        # the ranking's reproducibility between synthetic markets of the capture's length
        "noise_ceiling": _with_capture_like(ceiling, syn_mean),
        "configs": [
            {
                "name": cfg.name,
                "strategy": cfg.strategy,
                "knobs": dict(cfg.knobs),
                "quoting": dict(cfg.quoting),
                "real_net_bps": real_net[j],
                "synthetic_net_bps": syn_mean[j],
                "synthetic_net_bps_seeds": [n[j] for n in syn_net],
            }
            for j, cfg in enumerate(panel)
        ],
    }


def fidelity(
    capture: np.ndarray,
    calib: dict,
    *,
    hours: float = 1.0,
    seeds: int = 3,
    panel: list[PanelConfig] | None = None,
    progress: Callable[[str], None] | None = None,
    noise_markets: int = NOISE_MARKETS,
) -> dict:
    """The FIDELITY.json dict of ``capture`` against ``calib``'s market (``seeds`` markets of
    ``hours`` each, seeds SEED0, SEED0+1, ...; ``noise_markets`` as long as the capture for
    each statistic's sampling noise and the ranking's noise ceiling)."""
    from mmbot.backtest import guess_tick_lot
    from mmbot.data.market_stats import guess_tick, market_stats

    say = progress or (lambda _msg: None)
    panel = PANEL if panel is None else panel
    real_tick = guess_tick(capture)
    real = market_stats(capture, tick_px=real_tick)
    _, real_lot = guess_tick_lot(capture)
    say(f"capture: {len(capture)} events, tick {real_tick}; running {len(panel)} configurations")
    real_net = run_panel(capture, tick_px=real_tick, lot_qty=real_lot, panel=panel)
    syn_stats, syn_net = _synthetic_runs(calib, hours=hours, seeds=seeds, panel=panel, say=say)
    out = _compare_stats(real, syn_stats)
    noise, ceiling = _capture_length_markets(
        calib, float(real["duration_s"]), noise_markets, panel, say
    )
    _add_noise(out, noise)
    out["ranking"] = _ranking(real_net, syn_net, panel, ceiling)
    out["checks"] = _checks(out)
    out["meta"] = {
        "calibration": str(calib.get("name", "")),
        "variant": str(calib.get("variant", "")),
        "market_note": str(calib.get("note", "")),
        "capture_tick_px": real_tick,
        "synthetic_tick_px": float(calib["tick_px"]),
        "hours": float(hours),
        "seeds": [SEED0 + i for i in range(seeds)],
        "capture_duration_s": float(real["duration_s"]),
    }
    return out
