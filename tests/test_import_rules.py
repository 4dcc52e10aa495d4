"""Import rules the layout rests on: the strategy package imports neither the simulated venue, the
live code nor the engine that runs it; library code never imports the CLI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "mmbot"
_IMPORT = re.compile(r"^\s*(?:from\s+([\w.]+)\s+import|import\s+([\w.]+))", re.MULTILINE)


def _imports(path: Path) -> set[str]:
    return {a or b for a, b in _IMPORT.findall(path.read_text())}


@pytest.mark.parametrize(
    "package, forbidden",
    [
        ("strategy", ("mmbot.sim", "mmbot.live", "mmbot.engine", "mmbot.backtest", "mmbot.soak")),
        ("audit", ("mmbot.sim", "mmbot.soak", "mmbot.cli", "mmbot.commands")),
        ("engine", ("mmbot.live", "mmbot.cli", "mmbot.commands")),
    ],
)
def test_package_does_not_import(package, forbidden) -> None:
    bad = [
        f"{p.relative_to(PKG)} imports {m}"
        for p in sorted((PKG / package).rglob("*.py"))
        for m in _imports(p)
        if m.startswith(forbidden)
    ]
    assert not bad, bad


def test_the_wake_loop_exists_once() -> None:
    """One compiled loop calls a quoter's quote: the engine's template (no second copy in the live
    session or the backtest)."""
    callers = [
        p.relative_to(PKG).as_posix()
        for p in sorted(PKG.rglob("*.py"))
        if "__pycache__" not in p.parts and "q_quote(" in p.read_text()
    ]
    assert callers == ["engine/loop.py"]
