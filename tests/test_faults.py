"""Fault and bad-input suite, table-driven: each case is an input, the command run on it, the exit
code and message expected, and what must (not) be left behind. Every case runs the real ``mmbot``
entry point in a subprocess. ``python tests/test_faults.py`` prints the table of outcomes."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import TESTS_DATA  # noqa: E402

MMBOT = str(Path(sys.executable).with_name("mmbot"))
BYBIT = TESTS_DATA / "bybit_xrpusdt_ob500_sample.jsonl"
BINANCE = TESTS_DATA / "binance_usdm_btcusdt_sample.gz"
EXIT_OK, EXIT_USER, EXIT_INTERRUPTED = 0, 2, 130
CASE_TIMEOUT_S = 600  # a cold numba cache compiles for minutes on a loaded machine


def bybit_ts(ts) -> Callable[[Path], list[str]]:
    """A Bybit capture whose line 21 has exchange time ``ts`` (ms)."""

    def make(d: Path) -> list[str]:
        lines = BYBIT.read_text().splitlines()
        obj = json.loads(lines[20])
        obj["ts"] = ts if ts != "year-ahead" else int(time.time() * 1000) + 365 * 86_400_000
        lines[20] = json.dumps(obj)
        (d / "cap.jsonl").write_text("\n".join(lines) + "\n")
        return []

    return make


def binance_local(local: str) -> Callable[[Path], list[str]]:
    """A Binance capture whose line 701 has local receive time ``local``."""

    def make(d: Path) -> list[str]:
        lines = gzip.decompress(BINANCE.read_bytes()).split(b"\n")
        lines[700] = local.encode() + b" " + lines[700].split(b" ", 1)[1]
        (d / "cap.gz").write_bytes(gzip.compress(b"\n".join(lines)))
        return []

    return make


def a_file_named(name: str, content: bytes = b"x") -> Callable[[Path], list[str]]:
    def make(d: Path) -> list[str]:
        (d / name).write_bytes(content)
        return []

    return make


def earlier_run_with_reports(d: Path) -> list[str]:
    out = d / "run"
    out.mkdir()
    for name in ("EDGE_REPORT.json", "KPI_GATE.json", "REPORT.html", "summary.json"):
        (out / name).write_text("{}")
    (out / "00_old").mkdir()
    (out / "00_old" / "meta.json").write_text("{}")
    (out / "mine.txt").write_text("kept")
    return []


def tmpfs(d: Path, opts: str) -> None:
    mnt = d / "mnt"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {r.stderr.decode().strip()}")


def full_disk(d: Path) -> list[str]:
    tmpfs(d, "size=64k")
    return [str(d / "mnt")]


def read_only_disk(d: Path) -> list[str]:
    tmpfs(d, "ro,size=64k")
    return [str(d / "mnt")]


def nothing(d: Path) -> list[str]:
    return []


@dataclass
class Case:
    name: str
    argv: list[str]  # {d} = the case's directory
    exit: int
    message: str  # regex searched in stderr (exit != 0) or stdout (exit 0)
    setup: Callable[[Path], list[str]] = nothing
    check: Callable[[Path], None] | None = None  # extra assertions on the directory afterwards
    marks: list = field(default_factory=list)


def _repairs(d: Path) -> dict:
    return json.loads((d / "out" / "summary.json").read_text())["runs"]


def no_mixed_run(d: Path) -> None:
    names = sorted(p.name for p in (d / "run").iterdir())
    assert "EDGE_REPORT.json" not in names and "REPORT.html" not in names, names
    assert "00_old" not in names and "mine.txt" in names, names


def device_kept(d: Path) -> None:
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


CASES = [
    Case(
        "bybit ts=-5 (backtest)",
        ["backtest", "--data", "{d}/cap.jsonl", "--out", "{d}/out", "--no-reports"],
        EXIT_OK,
        r"records and\s+reports in",
        bybit_ts(-5),
    ),
    Case(
        "bybit ts=0",
        ["data", "inspect", "--no-cache", "{d}/cap.jsonl"],
        EXIT_OK,
        r"exch_ts_invalid_dropped\s+│\s+1 ",
        bybit_ts(0),
    ),
    Case(
        "bybit ts=1e30",
        ["data", "inspect", "--no-cache", "{d}/cap.jsonl"],
        EXIT_OK,
        r"exch_ts_invalid_dropped\s+│\s+1 ",
        bybit_ts(1e30),
    ),
    Case(
        "bybit ts a year ahead",
        ["data", "inspect", "--no-cache", "{d}/cap.jsonl"],
        EXIT_OK,
        r"exch_ts_invalid_dropped\s+│\s+1 ",
        bybit_ts("year-ahead"),
    ),
    Case(
        "bybit ts 3 days back",
        ["data", "inspect", "--no-cache", "{d}/cap.jsonl"],
        EXIT_OK,
        r"exch_ts_outlier_dropped\s+│\s+1 ",
        bybit_ts(1733011200691 - 3 * 86_400_000),
    ),
    Case(
        "binance local=1000",
        ["data", "inspect", "--no-cache", "{d}/cap.gz"],
        EXIT_OK,
        r"local_ts_invalid_dropped\s+│\s+1 ",
        binance_local("1000"),
    ),
    Case(
        "binance local 1h late",
        ["data", "inspect", "--no-cache", "{d}/cap.gz"],
        EXIT_OK,
        r"local_ts_outlier_dropped\s+│\s+1 ",
        binance_local("1723164855088182467"),
    ),
    Case(
        "binance local=1e30",
        ["data", "inspect", "--no-cache", "{d}/cap.gz"],
        EXIT_USER,
        r"cap\.gz:701: not a '<local_ns> <json>'",
        binance_local("1e30"),
    ),
    Case(
        "--feed-latency-ms nan",
        ["data", "inspect", "--feed-latency-ms", "nan", str(BYBIT)],
        EXIT_USER,
        r"--feed-latency-ms: nan",
    ),
    Case(
        "--out under a file",
        ["backtest", "--data", str(BYBIT), "--out", "{d}/f/run"],
        EXIT_USER,
        r"--out .*f is a file",
        a_file_named("f"),
    ),
    Case(
        "--out on a full disk",
        ["backtest", "--data", str(BYBIT), "--out", "{d}/mnt/run"],
        EXIT_USER,
        r"No space left on device",
        full_disk,
    ),
    Case(
        "--out on a read-only disk",
        ["backtest", "--data", str(BYBIT), "--out", "{d}/mnt/run"],
        EXIT_USER,
        r"mnt.*Read-only file system",
        read_only_disk,
    ),
    Case(
        "backtest --latency-ms nan",
        ["backtest", "--data", str(BYBIT), "--out", "{d}/out", "--latency-ms", "nan"],
        EXIT_USER,
        r"--latency-ms nan",
    ),
    Case(
        "--no-reports over an earlier run",
        ["backtest", "--data", str(BYBIT), "--out", "{d}/run", "--no-reports"],
        EXIT_OK,
        r"records and\s+reports in",
        earlier_run_with_reports,
        no_mixed_run,
    ),
    Case(
        "gate --out /dev/full",
        ["gate", "--report", "{d}/EDGE_REPORT.json", "--out", "/dev/full"],
        EXIT_USER,
        r"/dev/full: is not a regular file",
        a_file_named("EDGE_REPORT.json", b'{"totals": {}}'),
        device_kept,
    ),
    Case(
        "soak --export-json /dev/full",
        [
            "soak",
            "--hours",
            "0.01",
            "--iterations",
            "1",
            "--artifacts",
            "{d}/art",
            "--export-json",
            "/dev/full",
        ],
        EXIT_USER,
        r"--export-json /dev/full: is not a regular file",
        nothing,
        device_kept,
    ),
    Case(
        "garbage --journal",
        [
            "paper",
            "--symbol",
            "XRPUSDT",
            "--out",
            "{d}/live",
            "--journal",
            "{d}/j.sqlite",
            "--exchange-url",
            "http://127.0.0.1:9",
            "--duration-s",
            "1",
        ],
        EXIT_USER,
        r"--journal .*j\.sqlite: not an mmbot journal",
        a_file_named("j.sqlite", b"garbage" * 100),
    ),
    Case(
        "--metrics-port 70000",
        ["paper", "--symbol", "XRPUSDT", "--out", "{d}/live", "--metrics-port", "70000"],
        EXIT_USER,
        r"--metrics-port: 70000 is not a TCP port",
    ),
    Case(
        "paper --order-qty -1",
        ["paper", "--symbol", "XRPUSDT", "--out", "{d}/live", "--order-qty", "-1"],
        EXIT_USER,
        r"--order-qty: -1\.0 must be a finite number > 0",
    ),
    Case(
        "paper --loss-limit nan",
        ["paper", "--symbol", "XRPUSDT", "--out", "{d}/live", "--loss-limit", "nan"],
        EXIT_USER,
        r"--loss-limit: nan must be",
    ),
    Case(
        "paper --max-position-qty nan",
        ["paper", "--symbol", "XRPUSDT", "--out", "{d}/live", "--max-position-qty", "nan"],
        EXIT_USER,
        r"--max-position-qty: nan must be",
    ),
    Case(
        "live --testnet on a mainnet host",
        [
            "live",
            "--symbol",
            "XRPUSDT",
            "--out",
            "{d}/live",
            "--confirm-live",
            "--testnet",
            "--exchange-url",
            "https://api.bybit.com",
        ],
        EXIT_USER,
        r"--testnet with --exchange-url https://api\.bybit\.com: that is a mainnet host",
    ),
    Case(
        "live --mainnet on a testnet host",
        [
            "live",
            "--symbol",
            "XRPUSDT",
            "--out",
            "{d}/live",
            "--confirm-live",
            "--mainnet",
            "--order-qty",
            "1",
            "--max-position-qty",
            "1",
            "--exchange-url",
            "https://api-testnet.bybit.com",
        ],
        EXIT_USER,
        r"--mainnet with --exchange-url .*: that is a testnet host",
    ),
    Case(
        "record --duration-s -5",
        ["record", "--symbol", "XRPUSDT", "--out", "{d}/rec.jsonl", "--duration-s", "-5"],
        EXIT_USER,
        r"--duration-s: -5\.0 must be",
    ),
    Case(
        "emulator --port 70000",
        ["emulator", "--data", str(BYBIT), "--port", "70000"],
        EXIT_USER,
        r"--port: 70000 is not a TCP port",
    ),
    Case(
        "emulator --speed 0",
        ["emulator", "--data", str(BYBIT), "--speed", "0"],
        EXIT_USER,
        r"--speed: 0\.0 must be",
    ),
    Case(
        "emulator --speed -2",
        ["emulator", "--data", str(BYBIT), "--speed", "-2"],
        EXIT_USER,
        r"--speed: -2\.0 must be",
    ),
    Case(
        "emulator --fault bogus",
        ["emulator", "--data", str(BYBIT), "--fault", "bogus"],
        EXIT_USER,
        r"--fault 'bogus': unknown kind",
    ),
    Case(
        "emulator --fault stall_feed:nan",
        ["emulator", "--data", str(BYBIT), "--fault", "stall_feed:nan"],
        EXIT_USER,
        r"--fault 'stall_feed:nan': expected",
    ),
    Case(
        "emulator --fault drop_ws@-3",
        ["emulator", "--data", str(BYBIT), "--fault", "drop_ws@-3"],
        EXIT_USER,
        r"--fault 'drop_ws@-3'",
    ),
]


def _staging_left(root: Path) -> list[str]:
    return [
        str(p)
        for p in root.rglob("*")
        if re.search(r"\.tmp-|mmbot-soak-staging|\.swap-target|\.old$", p.name)
    ]


def run_case(case: Case, d: Path) -> tuple[subprocess.CompletedProcess, float]:
    extra = case.setup(d)
    argv = [a.replace("{d}", str(d)) for a in case.argv]
    env = dict(os.environ)
    env.pop("MM_RUNTIME_OVERRIDES_JSON", None)
    env["MMBOT_STATE_DIR"] = str(d / "state")
    env["MMBOT_CACHE_DIR"] = "off"
    t0 = time.perf_counter()
    try:
        p = subprocess.run(
            [MMBOT, *argv],
            capture_output=True,
            text=True,
            env=env,
            timeout=CASE_TIMEOUT_S,
            cwd=d,
        )
    finally:
        for mnt in extra:
            subprocess.run(["umount", mnt], capture_output=True)
    return p, time.perf_counter() - t0


def judge(case: Case, p: subprocess.CompletedProcess, d: Path) -> list[str]:
    """What is wrong with the outcome (empty: handled cleanly)."""
    bad = []
    if p.returncode != case.exit:
        bad.append(f"exit {p.returncode} != {case.exit}")
    text = p.stderr if case.exit != EXIT_OK else p.stdout
    if not re.search(case.message, text):
        bad.append(f"message {case.message!r} not in {text[-300:]!r}")
    if "Traceback" in p.stderr:
        bad.append("traceback")
    if case.exit != EXIT_OK and len(p.stderr.strip().splitlines()) != 1:
        bad.append(f"{len(p.stderr.strip().splitlines())} lines on stderr, not one")
    left = _staging_left(d)
    if left:
        bad.append(f"left behind: {left}")
    if case.exit != EXIT_OK:
        for out in ("out", "run", "live", "art", "rec.jsonl"):
            if (d / out).exists() and out != "run":
                bad.append(f"output {out} created on a failed run")
    if case.check is not None:
        try:
            case.check(d)
        except AssertionError as exc:
            bad.append(f"check: {exc}")
    return bad


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fault_case_is_handled_cleanly(case: Case, tmp_path: Path) -> None:
    p, _ = run_case(case, tmp_path)
    assert judge(case, p, tmp_path) == []


def _start(argv: list[str], d: Path) -> subprocess.Popen:
    env = dict(os.environ)
    env["MMBOT_STATE_DIR"] = str(d / "state")
    env.pop("MM_RUNTIME_OVERRIDES_JSON", None)
    return subprocess.Popen(
        [MMBOT, *argv], cwd=d, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_for_staging(d: Path, timeout_s: float = 90.0) -> None:
    t_end = time.time() + timeout_s
    while time.time() < t_end:
        if _staging_left(d):
            return
        time.sleep(0.05)
    pytest.fail("the run never created its staging directory")


SOAK_ARGV = ["soak", "--hours", "0.5", "--iterations", "2", "--artifacts", "art"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_soak_exits_130_and_leaves_no_staging(sig, tmp_path: Path) -> None:
    proc = _start(SOAK_ARGV, tmp_path)
    _wait_for_staging(tmp_path)
    time.sleep(1.0)
    proc.send_signal(sig)
    try:
        # a signal waits for a running compiled kernel (or numba's compiler) to return
        _, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert err.strip().splitlines()[-1] == "interrupted"
    assert _staging_left(tmp_path) == []
    assert not (tmp_path / "art" / "reports").exists()


_INTERRUPT_IN_KERNEL = """
import os, signal, sys, threading, time
from mmbot import cli
from mmbot.data.synthetic import generate, load_calibration
from mmbot.sim import venue
ev = generate(load_calibration("default"), 3, 0, 120_000_000_000)
venue.scan_events(ev[:10])
signal.signal(signal.SIGINT, cli._sigterm_as_interrupt)
def later():
    time.sleep(float(sys.argv[1]))
    os.kill(os.getpid(), signal.SIGINT)
threading.Thread(target=later, daemon=True).start()
try:
    while True:
        exch_idx, local_idx, bad, ok, lo, hi = venue.scan_events(ev)
except KeyboardInterrupt:
    print("interrupted cleanly")
"""


@pytest.mark.parametrize("delay_s", [0.2, 0.45])
def test_an_interrupt_during_a_compiled_call_is_raised_after_its_results(delay_s: float) -> None:
    """A signal that arrives while a compiled function runs is handled at the first Python code
    after it: numba's boxing of its array results. Raised there, the result is left half-built
    (SystemError, or a segfault unpacking a tuple holding NULL: a SIGTERM'd soak died with -11).
    The CLI's handler raises it again a moment later instead: a clean KeyboardInterrupt."""
    p = subprocess.run(
        [sys.executable, "-c", _INTERRUPT_IN_KERNEL, str(delay_s)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0 and "interrupted cleanly" in p.stdout, p.stderr[-2000:]


def _registered_staging(d: Path) -> list[str]:
    """Staging directories under ``d`` that the state dir's registry names (``mmbot.staging``)."""
    names = []
    for entry in (d / "state" / "staging").glob("*.json"):
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            names.append(str(json.loads(entry.read_text())["dir"]))
    return [p for p in names if Path(p).is_relative_to(d.resolve())]


def test_kill_9_staging_is_removed_at_the_next_start(tmp_path: Path) -> None:
    proc = _start(SOAK_ARGV, tmp_path)
    # killed once its staging directory is registered (the directory exists a moment before its
    # registration is written; under load a kill can fall in between, and the next start could not
    # know of it): generous deadline, polled
    t_end = time.time() + 120.0
    while not _registered_staging(tmp_path) and time.time() < t_end:
        time.sleep(0.05)
    assert _registered_staging(tmp_path), "the run never registered its staging directory"
    proc.kill()
    proc.communicate(timeout=30)
    assert _staging_left(tmp_path) != []
    env = dict(os.environ, MMBOT_STATE_DIR=str(tmp_path / "state"))
    p = subprocess.run([MMBOT, "--help"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert p.returncode == 0
    assert _staging_left(tmp_path) == []


def test_ctrl_c_inside_a_compiled_kernel_counts_as_an_interruption() -> None:
    """numba returns to Python with the KeyboardInterrupt set: a SystemError caused by it."""
    from mmbot.cli import _interrupted

    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as ki:
            raise SystemError("<function> returned a result with an exception set") from ki
    except SystemError as exc:
        assert _interrupted(exc)
    assert not _interrupted(SystemError("a real bug"))


def main() -> int:
    """Run every case and print the table (for the closing note)."""
    import tempfile

    print("| case | exit expected | exit got | seconds | clean |\n|---|---|---|---|---|")
    n_clean = 0
    for case in CASES:
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            try:
                p, secs = run_case(case, d)
                bad = judge(case, p, d)
                got = p.returncode
            except pytest.skip.Exception as exc:
                bad, got, secs = [f"skipped: {exc}"], "-", 0.0
            except subprocess.TimeoutExpired:
                bad, got, secs = [f"timed out after {CASE_TIMEOUT_S} s"], "-", CASE_TIMEOUT_S
            n_clean += not bad
            verdict = "yes" if not bad else "NO: " + "; ".join(bad)
            print(f"| {case.name} | {case.exit} | {got} | {secs:.1f} | {verdict} |")
    print(f"\n{len(CASES)} cases, {n_clean} handled cleanly")
    return 0 if n_clean == len(CASES) else 1


if __name__ == "__main__":
    sys.exit(main())


def test_an_interrupt_swallowed_inside_a_ctypes_callback_is_delivered_again() -> None:
    """numba's compiler calls back into Python through ctypes, which ignores exceptions raised
    there: a SIGTERM/Ctrl-C landing then must still stop the run, a moment later."""
    from mmbot import cli

    class Swallowed:
        exc_value = KeyboardInterrupt()

    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        cli._redeliver_swallowed_interrupt(Swallowed())
        while time.monotonic() - t0 < 5.0:
            pass
    assert time.monotonic() - t0 < 1.0
