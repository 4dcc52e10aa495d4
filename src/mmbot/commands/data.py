"""`mmbot data inspect|convert|calibrate|fidelity`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from mmbot.commands.options import OptionGroup
from mmbot.inputs import ms_to_ns

if TYPE_CHECKING:
    import numpy as np
    from rich.console import Console

    from mmbot.data.calibrate import FitOptions

app = typer.Typer(no_args_is_help=True)


_NO_CACHE = typer.Option(False, "--no-cache", help="parse again; do not use or write the cache")
_FEED_LATENCY_MS = typer.Option(
    10.0, "--feed-latency-ms", help="feed latency assumed for files without local receive times"
)


@app.command("inspect")
def inspect(
    path: Path = typer.Argument(
        ...,
        help="capture file (Binance raw, Bybit V5, hftbacktest .npz, events .parquet, Tardis CSV)",
    ),
    no_cache: bool = _NO_CACHE,
    feed_latency_ms: float = _FEED_LATENCY_MS,
) -> None:
    """Event counts by kind, span, feed-latency percentiles, tick/lot guesses and every repair count."""
    from rich.console import Console

    from mmbot.data.inspect import inspect_capture

    s = inspect_capture(
        path, use_cache=not no_cache, feed_latency_ns=ms_to_ns("--feed-latency-ms", feed_latency_ms)
    )
    show_inspect(Console(), path, s)


@app.command("convert")
def convert(
    path: Path = typer.Argument(..., help="capture file"),
    out: Path = typer.Option(
        ..., "--out", help="output file: .npz (hftbacktest-compatible) or .parquet (docs/data.md)"
    ),
    no_cache: bool = _NO_CACHE,
    feed_latency_ms: float = _FEED_LATENCY_MS,
) -> None:
    """Write the normalised events of PATH to FILE."""
    from mmbot.data.inspect import convert_capture

    done = convert_capture(
        path,
        out,
        use_cache=not no_cache,
        feed_latency_ns=ms_to_ns("--feed-latency-ms", feed_latency_ms),
    )
    print(done.line())


# calibrate's on/off fit switches: (FitOptions field, flag, help); a new switch is a FitOptions
# field and a line here
_FIT_SWITCH_FLAGS: tuple[tuple[str, str, str], ...] = (
    (
        "whole_level_pulls",
        "--whole-level-pulls",
        "experimental, as captured only: stale quotes pulled a level at a time, the pull "
        "rate fitted to the mid's return autocorrelation (docs/data.md)",
    ),
    (
        "sweep_requote",
        "--sweep-requote",
        "as captured only: after a sweep moved the efficient price its side's makers pull "
        "the levels it passed at once; impact decay fitted to the markout's reversion (docs/data.md)",
    ),
    (
        "fit_trade_through",
        "--fit-trade-through",
        "experimental: fit the noise flow's Hawkes decay to the rates at which the market "
        "trades through levels 0.5-5 bps from the mid (docs/data.md)",
    ),
    (
        "fit_resilience",
        "--fit-resilience",
        "experimental, as captured only: a sweep that empties the touch leaves its side "
        "thin, rebuilt over a half-life fitted to the deep-sweep share (docs/data.md)",
    ),
    (
        "fit_hold",
        "--fit-hold",
        "experimental, as captured only: the makers leave a side's near book for a while "
        "(held as often as the capture's is thin), the takers come to it and a deep level "
        "prints as several maker orders (docs/data.md)",
    ),
    (
        "maker_orders",
        "--maker-orders",
        "experimental, as captured only: the makers' order sizes fitted as orders (the "
        "capture's prints, each sweep's last censored), the rest of a partly taken order kept "
        "at the front of its level, a deep level printed whole (docs/data.md)",
    ),
    (
        "slow_impact",
        "--slow-impact",
        "as captured only: a sweep's transient impact in a fast part (gone within a second) "
        "and a slow part the informed do not trade against (docs/data.md)",
    ),
    (
        "fit_permanence_markout",
        "--fit-permanence-markout",
        "experimental, with --slow-impact: where the capture's 30 s deep-sweep impact is not "
        "positive (COIN-M), the permanent impact fitted to the 5 s print markout (docs/data.md)",
    ),
    (
        "graded_moves",
        "--graded-moves",
        "experimental, as captured only: the efficient price moves in jumps of about the "
        "capture's 100 ms mid moves, their rate fitted to how often the capture's mid moves "
        "0.5 bps in 100 ms, and momentum takers follow the mid's moves (docs/data.md)",
    ),
)
_FIT_SWITCHES = OptionGroup(
    into="switches",
    options=tuple(
        (name, bool, typer.Option(False, flag, help=text)) for name, flag, text in _FIT_SWITCH_FLAGS
    ),
    collect=dict,
)


@app.command("calibrate")
@_FIT_SWITCHES
def calibrate(
    path: Path = typer.Argument(..., help="real capture to fit the synthetic market to"),
    out: Path = typer.Option(..., "--out", help="calibration JSON to write"),
    tick_bps: float = typer.Option(
        0.0,
        "--tick-bps",
        help="also rescale to a tick of about this many bps (wide-tick variant); 0 = as captured",
    ),
    rounds: int = typer.Option(
        16,
        "--rounds",
        min=0,
        help="fit rounds (parameters averaged over the second half); a progress bar shows each",
    ),
    fit_seconds: int = typer.Option(
        0,
        "--fit-seconds",
        min=0,
        help="seconds of each of a late round's two markets (0 = 300, wide tick 750); longer = less noise, slower",
    ),
    switches: dict[str, bool] | None = None,  # _FIT_SWITCHES
) -> None:
    """Fit the synthetic market's parameters to a real capture."""
    from mmbot.data.calibrate import FitOptions

    options = FitOptions(
        tick_bps=tick_bps, rounds=rounds, fit_seconds=fit_seconds or None, **(switches or {})
    )
    calibrate_command(path, out, options)


def _fit_with_bar(events: np.ndarray, err: Console, options: FitOptions, log: list[str]) -> dict:
    """``calibrate`` with a progress bar on ``err`` (stderr), one step a simulated round."""
    from mmbot.commands.progress import counting_bar
    from mmbot.data.calibrate import FitProgress, calibrate

    with counting_bar(err, head="fitting", tail="{task.description}", elapsed=True) as bar:
        task = bar.add_task("", total=options.rounds + 2)

        def show(p: FitProgress) -> None:
            # the round's headline (loss, spread, trade rate, volatility); the rest is in the log
            bar.update(task, completed=p.step, total=p.steps, description=p.message[:90])

        return calibrate(events, options, log=log, progress=show)


def _print_compare(calib: dict) -> None:
    """The capture's statistics next to the fitted market's, on stdout."""
    import sys

    from rich.console import Console
    from rich.table import Table

    from mmbot.data.calibrate_file import compare_rows

    table = Table(title=f"capture vs fitted market ({calib['variant']}, tick {calib['tick_px']})")
    for col, just in (
        ("statistic", "left"),
        ("capture", "right"),
        ("synthetic", "right"),
        ("ratio", "right"),
    ):
        table.add_column(col, justify=just)
    for key, real, syn in compare_rows(calib):
        table.add_row(key, f"{real:.4g}", f"{syn:.4g}", f"{syn / real:.2f}" if real else "-")
    Console(file=sys.stdout).print(table)


def calibrate_command(path: Path, out: Path, options: FitOptions | None = None) -> dict:
    """Fit with a progress bar (one step a simulated round) on stderr, write the calibration, and
    print the capture's statistics next to the fitted market's."""
    import sys
    import time

    from rich.console import Console

    from mmbot.data.calibrate import FitOptions
    from mmbot.data.calibrate_file import add_provenance, load_capture, write_calibration

    err = Console(file=sys.stderr)
    t0 = time.perf_counter()
    events, symbol = load_capture(path)
    err.print(
        f"[{time.perf_counter() - t0:5.1f} s] {path.name}: {len(events)} events", highlight=False
    )
    log: list[str] = []
    options = options if options is not None else FitOptions()
    calib = _fit_with_bar(events, err, options, log)
    add_provenance(calib, path, out, symbol=symbol, log=log, options=options)
    write_calibration(calib, out)
    err.print(f"[{time.perf_counter() - t0:5.1f} s] fitted", highlight=False)
    _print_compare(calib)
    print(f"wrote {out}")
    return calib


@app.command("fidelity")
def fidelity(
    capture: Path = typer.Argument(..., help="real capture to compare the synthetic market with"),
    out: Path = typer.Option(..., "--out", help="directory for FIDELITY.json / .md / .html"),
    calibration: str = typer.Option(
        "", "--calibration", help="calibration file or shipped market name; empty = fit to CAPTURE"
    ),
    hours: float = typer.Option(1.0, "--hours", help="synthetic hours per seed"),
    seeds: int = typer.Option(3, "--seeds", help="number of synthetic markets"),
    tick_bps: float = typer.Option(
        0.0,
        "--tick-bps",
        help="when fitting: wide-tick variant of about this many bps (0 = as captured)",
    ),
) -> None:
    """Compare a capture with its synthetic market: statistics, autocorrelations, strategy ranking."""
    from mmbot.commands.fidelity import fidelity_command

    fidelity_command(
        capture, out, calibration=calibration or None, hours=hours, seeds=seeds, tick_bps=tick_bps
    )


def show_inspect(con: Any, path: Path, s: dict) -> None:
    """``mmbot data inspect``'s tables: the capture's fields, events by kind, repairs, notes."""
    from rich.table import Table

    t = Table(title=f"{path}", show_header=False)
    t.add_column("field")
    t.add_column("value", justify="right")
    t.add_row("format", s["format"])
    t.add_row("symbol", s["symbol"] or "-")
    t.add_row("market", s["market"])
    t.add_row("lines", f"{s['lines']:,}")
    t.add_row("events", f"{s['events']:,}")
    t.add_row("span", f"{s['span_s']:.3f} s")
    lat = s["feed_latency_ms"]
    t.add_row(
        "feed latency p50 / p95 / p99", f"{lat['p50']:.3f} / {lat['p95']:.3f} / {lat['p99']:.3f} ms"
    )
    t.add_row("tick guess (px)", f"{s['tick_px_guess']:g}")
    t.add_row("lot guess (qty)", f"{s['lot_qty_guess']:g}")
    t.add_row(
        "local clock offset applied",
        f"{s['local_offset_ns']:,} ns ({s['local_offset_ns'] / 1e6:.3f} ms)",
    )
    if s["assumed_feed_latency_ns"] is not None:
        t.add_row(
            "assumed feed latency (no local time)", f"{s['assumed_feed_latency_ns'] / 1e6:g} ms"
        )
    t.add_row("from cache", str(s["from_cache"]))
    con.print(t)
    kinds = dict(s["counts"])
    if s["custom_kind_events"]:
        kinds["custom"] = s["custom_kind_events"]
    con.print(_count_table("events by kind", "kind", kinds))
    if s["repairs"]:
        con.print(_count_table("repairs", "repair", s["repairs"]))
    else:
        con.print("repairs: none applied (an .npz is loaded as it is)")
    for note in s["notes"]:
        con.print(f"note: {note}")


def _count_table(title: str, what: str, counts: dict[str, int]) -> Any:
    """A rich table of names and their counts."""
    from rich.table import Table

    t = Table(title=title)
    t.add_column(what)
    t.add_column("count", justify="right")
    for name, n in counts.items():
        t.add_row(name, f"{n:,}")
    return t
