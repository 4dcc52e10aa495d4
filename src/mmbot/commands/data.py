"""`mmbot data inspect|convert|calibrate`."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True)


@app.command("inspect")
def inspect(path: Path = typer.Argument(..., help="capture file (Binance raw, Bybit V5, hftbacktest .npz, Tardis CSV)")) -> None:
    """Event counts by kind, span, feed-latency percentiles, tick/lot guesses and every repair count."""
    from mmbot.data.inspect import inspect_command

    inspect_command(path)


@app.command("convert")
def convert(
    path: Path = typer.Argument(..., help="capture file"),
    out: Path = typer.Option(..., "--out", help="output file (.npz, hftbacktest-compatible)"),
) -> None:
    """Write the normalised events of PATH to FILE."""
    from mmbot.data.inspect import convert_command

    convert_command(path, out)


@app.command("calibrate")
def calibrate(
    path: Path = typer.Argument(..., help="real capture to fit the synthetic market to"),
    out: Path = typer.Option(..., "--out", help="calibration JSON to write"),
    tick_bps: float = typer.Option(0.0, "--tick-bps", help="also rescale to a tick of about this many bps (wide-tick variant); 0 = as captured"),
) -> None:
    """Fit the synthetic market's parameters to a real capture."""
    from mmbot.data.calibrate import calibrate_command

    calibrate_command(path, out, tick_bps=tick_bps)
