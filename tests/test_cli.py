"""The `mmbot` command: every command answers --help, and usage errors are one line, exit 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

COMMANDS = [
    ["--help"],
    ["data", "--help"],
    ["data", "inspect", "--help"],
    ["data", "convert", "--help"],
    ["data", "calibrate", "--help"],
    ["data", "fidelity", "--help"],
    ["backtest", "--help"],
    ["demo", "--help"],
    ["gate", "--help"],
    ["report", "--help"],
    ["soak", "--help"],
    ["sweep", "--help"],
    ["paper", "--help"],
    ["live", "--help"],
    ["record", "--help"],
    ["emulator", "--help"],
    ["replay-compare", "--help"],
]


def run_mmbot(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mmbot.cli", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a))
def test_every_command_answers_help(args):
    proc = run_mmbot(*args)
    assert proc.returncode == 0, proc.stderr
    assert "Usage" in proc.stdout


def test_unknown_option_is_a_one_line_usage_error_with_exit_2():
    proc = run_mmbot("gate", "--no-such-flag")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "no-such-flag" in proc.stderr
