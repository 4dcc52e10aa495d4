"""`mmbot data inspect|convert|calibrate|fidelity`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from mmbot.inputs import ms_to_ns

app = typer.Typer(no_args_is_help=True)


@app.command("inspect")
def inspect(
    path: Path = typer.Argument(
        ...,
        help="capture file (Binance raw, Bybit V5, hftbacktest .npz, events .parquet, Tardis CSV)",
    ),
    no_cache: bool = typer.Option(
        False, "--no-cache", help="parse again; do not use or write the cache"
    ),
    feed_latency_ms: float = typer.Option(
        10.0, "--feed-latency-ms", help="feed latency assumed for files without local receive times"
    ),
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
    no_cache: bool = typer.Option(
        False, "--no-cache", help="parse again; do not use or write the cache"
    ),
    feed_latency_ms: float = typer.Option(
        10.0, "--feed-latency-ms", help="feed latency assumed for files without local receive times"
    ),
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


@app.command("calibrate")
def calibrate(
    path: Path = typer.Argument(..., help="real capture to fit the synthetic market to"),
    out: Path = typer.Option(..., "--out", help="calibration JSON to write"),
    tick_bps: float = typer.Option(
        0.0,
        "--tick-bps",
        help="also rescale to a tick of about this many bps (wide-tick variant); 0 = as captured",
    ),
    rounds: int = typer.Option(
        24, "--rounds", min=0, help="fit rounds (parameters averaged over the second half)"
    ),
    fit_seconds: int = typer.Option(
        0,
        "--fit-seconds",
        min=0,
        help="seconds of each of a late round's two markets (0 = 600, wide tick 1500); longer = less noise, slower",
    ),
) -> None:
    """Fit the synthetic market's parameters to a real capture."""
    from mmbot.data.calibrate import calibrate_command

    calibrate_command(path, out, tick_bps=tick_bps, rounds=rounds, fit_seconds=fit_seconds or None)


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
    k = Table(title="events by kind")
    k.add_column("kind")
    k.add_column("count", justify="right")
    for name, n in s["counts"].items():
        k.add_row(name, f"{n:,}")
    if s["custom_kind_events"]:
        k.add_row("custom", f"{s['custom_kind_events']:,}")
    con.print(k)
    r = Table(title="repairs")
    r.add_column("repair")
    r.add_column("count", justify="right")
    for name, n in s["repairs"].items():
        r.add_row(name, f"{n:,}")
    if s["repairs"]:
        con.print(r)
    else:
        con.print("repairs: none applied (an .npz is loaded as it is)")
    for note in s["notes"]:
        con.print(f"note: {note}")
