"""Runs a live/paper session (``run_session``): its configuration (``RunnerConfig``, what
``mmbot paper|live`` resolves from the command line) and its log; the session itself is
``live.session.Session``. Re-exports the names the commands and tests use from here.

``RunnerConfig`` is frozen and validated: a bad value is a ``UserError`` of one line naming the
field (``RunnerConfig.stale_ms: Input should be greater than 0 (got -1.0)``). The run's own
choices in it (quoter, order size, position limit, fee rates, loss limit, wake interval) reach the
session's ``mmbot.config.run.RunConfig`` through ``run_config`` (docs/config.md maps each option);
the session reads them from there.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import Literal

from pydantic import Field

from mmbot import env
from mmbot.live.bybit import Endpoints
from mmbot.live.bybit_msgs import BOOK_DEPTHS, BookDepth
from mmbot.live.gateway import DCP_WINDOW_S, TERMINAL
from mmbot.live.order_flow import Slot, link_num
from mmbot.live.session import EXIT_KILLED, Session
from mmbot.live.signing import ApiKeys
from mmbot.settings_model import SettingsModel
from mmbot.strategy.registry import SESSION_DEFAULT_QUOTER

__all__ = [
    "BOOK_DEPTHS",
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


_Pos = Field(None, gt=0.0)


class RunnerConfig(SettingsModel):
    """A paper or live session's settings (``mmbot paper|live`` options, docs/cli.md)."""

    mode: Literal["paper", "live"]
    symbol: str = Field(min_length=1)
    endpoints: Endpoints
    out_dir: Path
    keys: ApiKeys | None = None
    journal_path: Path | None = None
    duration_s: float | None = _Pos
    profile: str | None = None
    overrides_file: Path | None = None
    strategy: str = Field(SESSION_DEFAULT_QUOTER, min_length=1)
    params: dict[str, int | float] | None = None  # the quoter's parameters (--param)
    order_qty: float | None = _Pos
    max_position_qty: float | None = _Pos
    hard_position_ratio: float = Field(1.5, ge=1.0)  # kill switch at this x max_position_qty
    loss_limit_quote: float | None = _Pos  # RunConfig risk.max_loss; None: the profile's
    wake_interval_ms: float | None = _Pos  # RunConfig run.wake_interval_ms; None: the quoter's
    stale_ms: float = Field(3000.0, gt=0.0)
    max_clock_drift_ms: float = Field(1000.0, gt=0.0)
    clock_check_s: float = Field(5.0, gt=0.0)
    rest_timeout_s: float = Field(2.0, gt=0.0)
    paper_latency_ms: float | None = Field(None, ge=0.0)  # None: the feed's measured median
    metrics_port: int = Field(0, ge=0, le=65535)
    book_depth: BookDepth = 50  # orderbook.N topic: 50 (20 ms) or 500 (100 ms) on Bybit linear
    maker_fee_rate: float | None = Field(None, gt=-0.1, lt=0.1)
    taker_fee_rate: float | None = Field(None, gt=-0.1, lt=0.1)
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
