"""Runs a live/paper session (``run_session``): its configuration (``RunnerConfig``, what
``mmbot paper|live`` resolves from the command line) and its log; the session itself is
``live.session.Session``. Re-exports the names the commands and tests use from here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from mmbot import env
from mmbot.live.bybit import Endpoints
from mmbot.live.gateway import DCP_WINDOW_S, TERMINAL
from mmbot.live.order_flow import Slot, link_num
from mmbot.live.session import EXIT_KILLED, Session
from mmbot.live.signing import ApiKeys
from mmbot.strategy.registry import SESSION_DEFAULT_QUOTER

__all__ = [
    "DCP_WINDOW_S",
    "EXIT_KILLED",
    "TERMINAL",
    "RunnerConfig",
    "Session",
    "Slot",
    "link_num",
    "run_session",
    "setup_logging",
]


@dataclass
class RunnerConfig:
    mode: str  # "paper" | "live"
    symbol: str
    endpoints: Endpoints
    out_dir: Path
    keys: ApiKeys | None = None
    journal_path: Path | None = None
    duration_s: float | None = None
    profile: str | None = None
    overrides_file: Path | None = None
    strategy: str = SESSION_DEFAULT_QUOTER
    params: dict | None = None  # the quoter's parameters (--param)
    order_qty: float | None = None
    max_position_qty: float | None = None
    hard_position_ratio: float = 1.5  # kill switch at this multiple of max_position_qty
    loss_limit_quote: float | None = None  # default: profile risk.max_loss
    stale_ms: float = 3000.0
    max_clock_drift_ms: float = 1000.0
    clock_check_s: float = 5.0
    rest_timeout_s: float = 2.0
    paper_latency_ms: float | None = None  # None: the feed's measured median latency
    metrics_port: int = 0
    book_depth: int = 50  # orderbook.N topic: 50 (20 ms) or 500 (100 ms) on Bybit linear
    maker_fee_rate: float | None = None
    taker_fee_rate: float | None = None
    record_path: Path | None = None  # write the public stream traded on here (capture format)


def setup_logging(out_dir: Path) -> None:
    """Structured (JSON lines) log to OUT/live.log and a short human line on stderr."""
    out_dir.mkdir(parents=True, exist_ok=True)

    class JsonFmt(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return json.dumps(
                {
                    "ts": round(record.created, 6),
                    "level": record.levelname,
                    "msg": record.getMessage(),
                },
                sort_keys=True,
            )

    lg = logging.getLogger("mmbot.live")
    lg.setLevel(logging.INFO)
    lg.handlers.clear()
    log_path = out_dir / "live.log"
    os.close(os.open(log_path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600))  # private log
    fh = logging.FileHandler(log_path)
    fh.setFormatter(JsonFmt())
    sh = logging.StreamHandler(sys.stderr)
    sh.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    sh.setLevel(logging.WARNING if not env.read("MMBOT_VERBOSE") else logging.INFO)
    lg.addHandler(fh)
    lg.addHandler(sh)
    lg.propagate = False


def run_session(cfg: RunnerConfig) -> int:
    setup_logging(cfg.out_dir)
    return asyncio.run(Session(cfg).run())
