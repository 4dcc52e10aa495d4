"""`mmbot replay-compare`: a recorded paper/live session against the backtest of its own feed."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def replay_compare(
    run_dir: Path = typer.Argument(
        ..., help="the --out directory of a paper/live session run with --record"
    ),
    latency_ms: float | None = typer.Option(
        None,
        "--latency-ms",
        help="the replay's order latency (default: the session's own, from session.json)",
    ),
    max_rows: int = typer.Option(30, "--max-rows", help="differences listed (all are counted)"),
) -> int:
    """Replay a recorded session's feed through the backtest's venue and compare order by order:
    fills, fill times and prices, each difference with its cause."""
    from mmbot import inputs
    from mmbot.audit.edge_report import build_edge_report
    from mmbot.errors import UserError
    from mmbot.live import replay_compare as rc

    inputs.positive("--latency-ms", latency_ms)
    if max_rows < 0:
        raise UserError(f"--max-rows {max_rows}: must be >= 0")
    s = rc.load_session(run_dir)
    replayed, lat_ms = rc.replay(s, latency_ms)
    cmp = rc.compare(s.result, replayed)
    net = (_session_net_bps(s), float(build_edge_report([replayed], {})["totals"]["net_bps"]))
    for line in rc.report_lines(s, cmp, lat_ms, net, max_rows):
        typer.echo(line)
    return 0


def _session_net_bps(s) -> float:
    """The session's net from its own EDGE_REPORT.json, else rebuilt from its records."""
    from mmbot.audit.edge_report import build_edge_report

    p = s.run_dir / "EDGE_REPORT.json"
    try:
        return float(json.loads(p.read_text())["totals"]["net_bps"])
    except (OSError, ValueError, KeyError, TypeError):
        return float(build_edge_report([s.result], {})["totals"]["net_bps"])
