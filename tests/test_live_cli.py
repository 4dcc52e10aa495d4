"""Bad input to `mmbot live|paper|emulator`: one-line error, non-zero exit, no order sent."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from mmbot.errors import UserError
from mmbot.live.signing import load_keys
from mmbot.live.testing import TEST_KEY, TEST_SECRET, EmulatorThread


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again on exit: nothing listens there


def _env(**kv: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BYBIT_", "MMBOT_"))}
    env.update(kv)
    return env


def test_bad_inputs_fail_with_one_line_and_send_nothing(tmp_path):
    emu = EmulatorThread()
    try:
        base = [sys.executable, "-m", "mmbot.cli"]
        live = ["live", "--confirm-live", "--testnet", "--duration-s", "3"]
        good = _env(BYBIT_API_KEY=TEST_KEY, BYBIT_API_SECRET=TEST_SECRET)
        loose = tmp_path / "keys.json"
        loose.write_text(f'{{"key": "{TEST_KEY}", "secret": "{TEST_SECRET}"}}')
        loose.chmod(0o644)
        cases = {
            "wrong_key": (
                live + ["--symbol", "XRPUSDT", "--exchange-url", emu.url],
                _env(BYBIT_API_KEY="wrong", BYBIT_API_SECRET=TEST_SECRET),
                "API keys refused",
            ),
            "wrong_secret": (
                live + ["--symbol", "XRPUSDT", "--exchange-url", emu.url],
                _env(BYBIT_API_KEY=TEST_KEY, BYBIT_API_SECRET="wrong"),
                "API keys refused",
            ),
            "missing_keys": (
                live + ["--symbol", "XRPUSDT", "--exchange-url", emu.url],
                _env(),
                "API keys missing",
            ),
            "loose_keys_file": (
                live
                + ["--symbol", "XRPUSDT", "--exchange-url", emu.url, "--keys-file", str(loose)],
                _env(),
                "too open",
            ),
            "unknown_symbol": (
                live + ["--symbol", "NOPEUSDT", "--exchange-url", emu.url],
                good,
                "--symbol NOPEUSDT",
            ),
            "not_listening": (
                live
                + ["--symbol", "XRPUSDT", "--exchange-url", f"http://127.0.0.1:{_closed_port()}"],
                good,
                "not reachable",
            ),
            "no_confirm": (
                ["live", "--testnet", "--symbol", "XRPUSDT", "--exchange-url", emu.url],
                good,
                "--confirm-live",
            ),
            "no_network_choice": (
                ["live", "--confirm-live", "--symbol", "XRPUSDT", "--exchange-url", emu.url],
                good,
                "--testnet or --mainnet",
            ),
            "paper_not_listening": (
                [
                    "paper",
                    "--symbol",
                    "XRPUSDT",
                    "--duration-s",
                    "2",
                    "--exchange-url",
                    f"http://127.0.0.1:{_closed_port()}",
                ],
                _env(),
                "not reachable",
            ),
            "emulator_no_data": (
                ["emulator", "--port", "0", "--data", str(tmp_path / "nope.npz")],
                good,
                "nope.npz",
            ),
        }
        procs: dict[str, subprocess.Popen] = {}
        for name, (args, env, _) in cases.items():
            # at most 4 start-ups at once (2 cores; each start-up imports numba)
            while sum(p.poll() is None for p in procs.values()) >= 4:
                time.sleep(0.05)
            procs[name] = subprocess.Popen(
                base + args + ([] if args[0] == "emulator" else ["--out", str(tmp_path / name)]),
                env=env,
                cwd=str(tmp_path),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        for name, p in procs.items():
            _, err = p.communicate(timeout=60)
            lines = [ln for ln in err.splitlines() if ln.strip()]
            assert p.returncode == 2, (name, p.returncode, err)
            assert len(lines) == 1 and lines[0].startswith("error: "), (name, err)
            assert cases[name][2] in lines[0], (name, lines[0])
            assert TEST_SECRET not in err
        st = emu.state()
        assert st["orders_created"] == 0 and st["open_orders"] == []
    finally:
        emu.close()


def test_keys_file_needs_0600(tmp_path):
    f = tmp_path / "k"
    f.write_text("key=abc\nsecret=xyz\n")
    f.chmod(0o600)
    k = load_keys(f, env={})
    assert (k.key, k.secret) == ("abc", "xyz") and "xyz" not in repr(k)
    f.chmod(0o640)
    with pytest.raises(UserError, match="too open"):
        load_keys(f, env={})
    f.chmod(0o600)
    f.write_text('{"key": "abc"}')
    with pytest.raises(UserError, match="secret"):
        load_keys(f, env={})
    assert load_keys(None, env={"BYBIT_API_KEY": "a", "BYBIT_API_SECRET": "b"}).secret == "b"


def test_emulator_cli_replays_a_real_bybit_capture(tmp_path):
    """`mmbot emulator --data <the shared Bybit capture>`: events from load_events go back out as
    Bybit V5 orderbook messages whose first book equals the capture's own first snapshot."""
    import asyncio
    import json

    import aiohttp

    from conftest import BYBIT_CAPTURE, need_shared

    cap = need_shared(BYBIT_CAPTURE)
    first = json.loads(cap.read_text().splitlines()[0])
    port = _closed_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mmbot.cli",
            "emulator",
            "--port",
            str(port),
            "--data",
            str(cap),
            "--symbol",
            "XRPUSDT",
            "--duration-s",
            "20",
            "--start-on-subscribe",
        ],
        env=_env(BYBIT_API_KEY=TEST_KEY, BYBIT_API_SECRET=TEST_SECRET),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert f"listening on http://127.0.0.1:{port}" in line, (
            line,
            proc.stderr.read() if proc.poll() else "",
        )

        async def first_book() -> dict:
            url = f"ws://127.0.0.1:{port}/v5/public/linear"
            async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
                await ws.send_json({"op": "subscribe", "args": ["orderbook.50.XRPUSDT"]})
                for _ in range(20):
                    msg = await ws.receive_json(timeout=10)
                    if msg.get("type") == "snapshot" and msg["data"]["b"]:
                        return msg
            raise AssertionError("no snapshot")

        snap = asyncio.run(first_book())
        # the capture's first snapshot (500 levels) seen through orderbook.50: its top 50 levels
        want_b = sorted(((float(p), float(q)) for p, q in first["data"]["b"]), reverse=True)[:50]
        want_a = sorted((float(p), float(q)) for p, q in first["data"]["a"])[:50]
        got_b = [(float(p), float(q)) for p, q in snap["data"]["b"]]
        got_a = [(float(p), float(q)) for p, q in snap["data"]["a"]]
        assert got_b == want_b and got_a == want_a
    finally:
        proc.terminate()
        proc.wait(10)
