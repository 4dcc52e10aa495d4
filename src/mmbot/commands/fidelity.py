"""`mmbot data fidelity`: fit (or load) a market for a capture, compare, write FIDELITY.json / .md / .html."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import orjson

from mmbot.errors import UserError


def _check_args(capture: Path, hours: float, seeds: int) -> None:
    if not capture.exists():
        raise UserError(f"fidelity: capture not found: {capture}")
    if not (hours > 0):
        raise UserError(f"fidelity: --hours must be > 0, got {hours}")
    if seeds < 1:
        raise UserError(f"fidelity: --seeds must be >= 1, got {seeds}")


def _write_outputs(out: Path, res: dict, title: str, calib: dict, *, fitted: bool) -> None:
    """FIDELITY.json / .md / .html, and the fitted calibration when the command fitted one."""
    from mmbot.fidelity.tables import to_html, to_markdown

    out.mkdir(parents=True, exist_ok=True)
    (out / "FIDELITY.json").write_bytes(
        orjson.dumps(res, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"
    )
    (out / "FIDELITY.md").write_text(to_markdown(res, title))
    (out / "FIDELITY.html").write_text(to_html(res, title))
    if fitted:
        (out / "calibration.json").write_bytes(
            orjson.dumps(
                calib,
                option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY,
            )
            + b"\n"
        )


def _print_report(res: dict, title: str, out: Path) -> None:
    """The statistics, autocorrelations and ranking tables and the checks' summary, on stdout."""
    from rich.console import Console
    from rich.table import Table

    out_console = Console(file=sys.stdout)
    for head, key, col in (
        ("statistic", "stats", "ratio"),
        ("autocorrelation", "autocorr", "diff"),
    ):
        table = Table(title=title if key == "stats" else None)
        for c in (head, "real", "synthetic", col):
            table.add_column(c, justify="right")
        for k, v in res[key].items():
            table.add_row(k, f"{v['real']:.4g}", f"{v['synthetic']:.4g}", f"{v[col]:.3g}")
        out_console.print(table)
    rk = res["ranking"]
    table = Table()
    for c in ("configuration", "real net bps", "synthetic net bps"):
        table.add_column(c, justify="right")
    for c in rk["configs"]:
        table.add_row(c["name"], f"{c['real_net_bps']:.4g}", f"{c['synthetic_net_bps']:.4g}")
    out_console.print(table)
    chk = res["checks"]
    print(
        f"spearman {rk['spearman']:.4f} sign_agreement {rk['sign_agreement']:.4f}; "
        f"stats outside {chk['ratio_band']}: {chk['stats_outside_band'] or 'none'}; "
        f"autocorr outside +-{chk['autocorr_max_diff']}: {chk['autocorr_outside_band'] or 'none'}"
    )
    if "noise_z" in chk:
        beyond = chk["stats_outside_band_beyond_noise"] + chk["autocorr_outside_band_beyond_noise"]
        print(
            f"outside the bands beyond the capture's own noise (|z| > {chk['noise_z']:g}): "
            f"{', '.join(beyond) or 'none'}"
        )
    nc = rk.get("noise_ceiling") or {}
    if nc:
        print(
            f"noise ceiling (Spearman between synthetic markets of the capture's "
            f"{nc['duration_s']:.0f} s): {nc['seed_spearman_mean']:.4f} pairs "
            + " ".join(f"{x:.4f}" for x in nc["seed_spearman_pairs"])
        )
        print(
            "each against the synthetic mean, as the capture is compared: "
            f"{nc['capture_like_spearman_mean']:.4f} ("
            + " ".join(f"{x:.4f}" for x in nc["capture_like_spearman"])
            + "); the capture's Spearman at least the lowest of them: "
            + str(chk["spearman_within_noise"])
        )
    print(f"wrote {out / 'FIDELITY.json'}, FIDELITY.md, FIDELITY.html")


def fidelity_command(
    capture: Path,
    out: Path,
    *,
    calibration: str | None = None,
    hours: float = 1.0,
    seeds: int = 3,
    tick_bps: float = 0.0,
) -> dict:
    from rich.console import Console

    from mmbot.data import load_events
    from mmbot.data.calibrate import FitOptions, calibrate
    from mmbot.data.synthetic import load_calibration
    from mmbot.fidelity.compare import fidelity

    console = Console(file=sys.stderr)
    t0 = time.perf_counter()

    def say(msg: str) -> None:
        console.print(f"[{time.perf_counter() - t0:7.1f} s] {msg}", highlight=False)

    capture = Path(capture)
    _check_args(capture, hours, seeds)
    events, _ = load_events(capture)
    if calibration:
        calib = load_calibration(calibration)
        say(f"calibration {calibration} ({calib.get('variant', '?')})")
    else:
        say(
            f"fitting the market to {capture.name}"
            + (f" (wide tick {tick_bps:g} bps)" if tick_bps > 0 else "")
        )
        calib = calibrate(events, FitOptions(tick_bps=tick_bps), progress=lambda p: say(p.message))
        calib["name"] = capture.name.split(".")[0] + ("_wide_tick" if tick_bps > 0 else "")
    res = fidelity(events, calib, hours=hours, seeds=seeds, progress=say)
    res["meta"]["capture"] = capture.name
    out = Path(out)
    title = f"{capture.name} vs {res['meta']['calibration'] or 'fitted market'}"
    _write_outputs(out, res, title, calib, fitted=not calibration)
    _print_report(res, title, out)
    return res
