"""User quoters through the one contract: the shipped examples run through a backtest, a 30-minute
soak and a paper session on the emulator, and a broken quoter is one line naming the problem."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, TESTS_DATA
from mmbot.audit import build_edge_report
from mmbot.audit.edge_report import make_runtime
from mmbot.backtest import RunSettings, run
from mmbot.data import load_events
from mmbot.errors import UserError
from mmbot.live.testing import EmulatorThread, bot_cmd, bot_env, journal_fills, start_bot
from mmbot.strategy.registry import make_qparams, parse_param_args, resolve

EXAMPLES = REPO / "examples" / "quoters"
SPECS = [f"{EXAMPLES / 'microprice.py'}:QUOTER", f"{EXAMPLES / 'imbalance.py'}:QUOTER"]
SAMPLE = TESTS_DATA / "binance_usdm_btcusdt_sample.gz"


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mmbot.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


@pytest.fixture(scope="module")
def sample() -> object:
    return load_events(SAMPLE)[0]


@pytest.mark.parametrize("spec", SPECS, ids=["microprice", "imbalance"])
def test_example_quoter_backtests_with_an_exact_edge_identity(sample, spec) -> None:
    res = run(sample, RunSettings(strategy=spec, order_qty=0.01, max_position_qty=0.1))
    assert len(res.fills) > 0
    assert res.meta["strategy"] == spec
    report = build_edge_report([res], make_runtime(profile="S1"))  # raises if the identity fails
    assert report["identity"]["checked_runs"] == 1
    assert report["identity"]["max_rel_err"] <= report["identity"]["tolerance_rel"]


def test_quoter_parameters_reach_the_quoter(sample) -> None:
    """A wider half-spread in the microprice example must trade less: the --param route works."""
    spec = SPECS[0]
    narrow = run(sample, RunSettings(strategy=spec, params={"half_spread_bps": 0.5}))
    wide = run(sample, RunSettings(strategy=spec, params={"half_spread_bps": 8.0}))
    assert wide.meta["strategy_params"]["half_spread_bps"] == 8.0
    assert len(wide.fills) < len(narrow.fills)


@pytest.mark.parametrize("spec", SPECS, ids=["microprice", "imbalance"])
def test_example_quoter_runs_a_30_minute_soak(tmp_path, spec) -> None:
    art = tmp_path / "artifacts"
    p = _cli(
        "soak", "--hours", "0.5", "--iterations", "1", "--artifacts", str(art),
        "--export-json", str(art / "reports" / "m.json"),
        "--export-md", str(art / "reports" / "s.md"),
        "--gate-summary", str(art / "reports" / "g.json"), "--strategy", spec, "--order-qty", "0.01",
        cwd=tmp_path,
    )  # fmt: skip
    assert p.returncode in (0, 1), p.stderr  # the gate decides PASS/FAIL; both are results
    edge = json.loads((art / "reports" / "EDGE_REPORT.json").read_text())
    assert edge["runtime"]["strategy"] == spec
    assert edge["totals"]["fills"] > 0


@pytest.mark.parametrize("spec", SPECS, ids=["microprice", "imbalance"])
def test_example_quoter_trades_on_paper_against_the_emulator(tmp_path, spec) -> None:
    emu = EmulatorThread()
    try:
        out = tmp_path / "p"
        cmd = bot_cmd("paper", emu.url, out, 6.0, "--strategy", spec)
        env = {k: v for k, v in bot_env().items() if not k.startswith("BYBIT_")}
        proc = start_bot(cmd, env, tmp_path)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        sess = json.loads((out / "session.json").read_text())
        assert emu.state()["orders_created"] == 0  # paper: nothing reaches the exchange
        from mmbot.audit.records_io import read_run

        assert read_run(out / "records")[0].meta["strategy"] == spec
        rows = journal_fills(out / "journal.sqlite")
        assert abs(sum(s * q for _, s, q in rows) - sess["position_qty"]) < 1e-9
    finally:
        emu.close()


BROKEN = {
    "missing_quote": (
        "from mmbot.strategy import Quoter\nQ = 3\n",
        "is not a mmbot.strategy.Quoter",
    ),
    "not_compiled": (
        "from mmbot.strategy import Quoter\n"
        "def quote(state, params, qparams, view, own, out):\n    pass\n"
        "Q = Quoter(name='x', quote=quote)\n",
        "quote must be a numba @njit function",
    ),
    "wrong_signature": (
        "from numba import njit\nfrom mmbot.strategy import Quoter\n"
        "@njit\ndef quote(state, view, out):\n    pass\n"
        "Q = Quoter(name='x', quote=quote)\n",
        "quote takes 3 arguments, the contract 6",
    ),
    "typing_error": (
        "from numba import njit\nfrom mmbot.strategy import Quoter\n"
        "@njit\ndef quote(state, params, qparams, view, own, out):\n"
        "    out[0].bid_px[0] = view[0].no_such_field\n"
        "Q = Quoter(name='x', quote=quote)\n",
        "compiling failed",
    ),
    "import_error": ("import no_such_module_here\n", "importing"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_quoter_is_one_line_naming_the_file_and_exit_2(tmp_path, case) -> None:
    src, expected = BROKEN[case]
    path = tmp_path / f"{case}.py"
    path.write_text(src)
    p = _cli("backtest", "--data", str(SAMPLE), "--out", str(tmp_path / "o"),
             "--strategy", f"{path}:Q", "--no-reports")  # fmt: skip
    assert p.returncode == 2, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and str(path) in lines[0] and expected in lines[0], p.stderr
    assert "Traceback" not in p.stderr


@pytest.mark.parametrize(
    "spec, message",
    [
        ("nope", "expected one of glft"),
        ("/no/such/file.py:Q", "not found"),
        (f"{EXAMPLES / 'microprice.py'}:NOPE", "has no 'NOPE'"),
    ],
)
def test_unknown_quoter_names_are_user_errors(spec, message) -> None:
    with pytest.raises(UserError, match=message):
        resolve(spec)


def test_unknown_or_malformed_parameters_are_user_errors() -> None:
    q = resolve(SPECS[0])
    with pytest.raises(UserError, match="no such parameter"):
        make_qparams(q, {"nope": 1.0})
    with pytest.raises(UserError, match="NAME=VALUE"):
        parse_param_args(["half_spread_bps"])
    with pytest.raises(UserError, match="not a number"):
        parse_param_args(["half_spread_bps=wide"])


def test_unknown_param_on_the_command_line_exits_2(tmp_path) -> None:
    p = _cli("backtest", "--data", str(SAMPLE), "--out", str(tmp_path / "o"),
             "--strategy", "touch", "--param", "nope=1")  # fmt: skip
    assert p.returncode == 2 and "nope" in p.stderr


@pytest.mark.parametrize("book_levels", [-1, 11, 2.0])
def test_book_levels_outside_the_view_is_a_user_error(tmp_path, book_levels) -> None:
    path = tmp_path / "levels.py"
    path.write_text(
        "from numba import njit\nfrom mmbot.strategy import Quoter\n"
        "@njit\ndef quote(state, params, qparams, view, own, out):\n    pass\n"
        f"Q = Quoter(name='x', quote=quote, book_levels={book_levels!r})\n"
    )
    with pytest.raises(UserError, match="book_levels must be an integer 0..10"):
        resolve(f"{path}:Q")
