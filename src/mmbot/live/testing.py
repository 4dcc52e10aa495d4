"""Harness for end-to-end tests: the emulator in a background thread, the bot as a real subprocess.

Used by ``tests/test_live_*.py``; 127.0.0.1 only, every wait bounded.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from mmbot import env as envvars
from mmbot.live.emulator import Emulator, EmulatorConfig
from mmbot.live.signing import ApiKeys
from mmbot.live.testmarket import LOT_QTY, TICK_PX, make_market

TEST_KEY = "mmtestkey0001"
TEST_SECRET = "s3cr3t-DO-NOT-LEAK-7f1c2e9a"
SYMBOL = "XRPUSDT"


class EmulatorThread:
    """An ``Emulator`` serving on 127.0.0.1:<free port> from its own event loop thread."""

    def __init__(
        self,
        events: np.ndarray | None = None,
        keys: ApiKeys | None = None,
        speed: float = 1.0,
        symbol: str = SYMBOL,
        tick_px: float = TICK_PX,
        lot_qty: float = LOT_QTY,
        **kw,
    ):
        events = make_market(120.0) if events is None else events
        self.cfg = EmulatorConfig(
            symbol=symbol,
            tick_px=tick_px,
            lot_qty=lot_qty,
            keys=keys or ApiKeys(TEST_KEY, TEST_SECRET),
            speed=speed,
            **kw,
        )
        self.emu = Emulator(events, self.cfg)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.port = self.call(self.emu.start("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.port}"

    def call(self, coro, timeout_s: float = 30.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def inject(self, kind: str, **kw) -> None:
        self.call(self.emu.inject({"kind": kind, **kw}))

    def state(self) -> dict:
        async def _s() -> dict:
            return self.emu.state()

        return self.call(_s())

    def close(self) -> None:
        self.call(self.emu.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


# the quoter the session tests drive: it quotes from the first book at any fee tier, where the
# default quoter warms up for 30 s and quotes only depths that pay the maker fee
MECHANICS_QUOTER = "glft"


def bot_env(key: str = TEST_KEY, secret: str = TEST_SECRET) -> dict[str, str]:
    env = {k: v for k, v in envvars.snapshot().items() if not k.startswith("BYBIT_")}
    env.update({"BYBIT_API_KEY": key, "BYBIT_API_SECRET": secret, "MMBOT_VERBOSE": "1"})
    env.pop("MM_RUNTIME_OVERRIDES_JSON", None)
    return env


def bot_cmd(
    mode: str,
    url: str,
    out: Path,
    duration_s: float,
    *extra: str,
    symbol: str = SYMBOL,
    sizes: tuple[str, str] | None = ("50", "400"),
    rest_timeout_s: str | None = "1.0",
    strategy: str | None = MECHANICS_QUOTER,
) -> list[str]:
    """The bot's command line against the emulator at ``url``. ``sizes`` = (--order-qty,
    --max-position-qty), None = the profile's; ``rest_timeout_s`` (live only), None = default;
    ``strategy`` None = the session's default quoter."""
    cmd = [
        sys.executable,
        "-m",
        "mmbot.cli",
        mode,
        "--symbol",
        symbol,
        "--exchange-url",
        url,
        "--out",
        str(out),
        "--duration-s",
        str(duration_s),
    ]
    if sizes is not None:
        cmd += ["--order-qty", sizes[0], "--max-position-qty", sizes[1]]
    if strategy is not None:
        cmd += ["--strategy", strategy]
    if mode == "live":
        cmd += ["--confirm-live", "--testnet"]
        if rest_timeout_s is not None:
            cmd += ["--rest-timeout-s", rest_timeout_s]
    return cmd + list(extra)


def start_bot(cmd: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        cmd, env=env, cwd=str(cwd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def journal_fills(path: Path) -> list[tuple]:
    db = sqlite3.connect(str(path))
    try:
        return db.execute("SELECT exec_id, side, qty FROM fills").fetchall()
    finally:
        db.close()


def wait_for(pred, timeout_s: float, every_s: float = 0.05) -> bool:
    t_end = time.monotonic() + timeout_s
    while time.monotonic() < t_end:
        if pred():
            return True
        time.sleep(every_s)
    return False
