"""Environment variables are read in one place (`mmbot.env`), declared once and documented:
no other module of the package touches ``os.environ``, every variable name the sources spell is
declared, every declared one has its row in docs/config.md, and an undeclared name is refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mmbot import env

PKG = Path(__file__).resolve().parents[1] / "src" / "mmbot"
DOC = Path(__file__).resolve().parents[1] / "docs" / "config.md"
# what reads or changes the process environment, spelled any way the standard library allows
_ENV_ACCESS = re.compile(
    r"\bos\.environb?\b|\bgetenv\b|\bputenv\b|\bunsetenv\b|from\s+os\s+import[^\n]*\benviron"
)
# a string literal that names a variable of ours (MM_..., MMBOT_..., BYBIT_API_..., NUMBA_CACHE_DIR)
_NAME = re.compile(r"[\"']((?:MM|MMBOT)_[A-Z0-9_]+|BYBIT_API_[A-Z0-9_]+|NUMBA_CACHE_DIR)[\"']")


def _sources() -> list[Path]:
    return [p for p in sorted(PKG.rglob("*.py")) if "__pycache__" not in p.parts]


def test_only_mmbot_env_touches_the_environment() -> None:
    bad = [
        f"{p.relative_to(PKG)}:{n}: {line.strip()}"
        for p in _sources()
        if p != PKG / "env.py"
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if _ENV_ACCESS.search(line)
    ]
    assert not bad, "read the environment through mmbot.env:\n" + "\n".join(bad)


def test_every_variable_the_sources_name_is_declared() -> None:
    named = {m for p in _sources() for m in _NAME.findall(p.read_text())}
    assert named, "the scan found no variable names: the pattern is broken"
    undeclared = sorted(named - set(env.VARS))
    assert not undeclared, f"declare these in mmbot.env.VARS (and docs/config.md): {undeclared}"


def test_every_declared_variable_is_documented() -> None:
    text = DOC.read_text()
    missing = [name for name in env.VARS if f"| `{name}` |" not in text]
    assert not missing, f"docs/config.md has no row for: {missing}"
    for v in env.VARS.values():
        assert v.doc.strip() and v.unset.strip(), v.name


def test_an_undeclared_name_is_refused(monkeypatch) -> None:
    monkeypatch.setenv("MMBOT_NOT_A_VARIABLE", "1")
    with pytest.raises(KeyError, match="not declared"):
        env.read("MMBOT_NOT_A_VARIABLE")
    with pytest.raises(KeyError, match="not declared"):
        env.write("MMBOT_NOT_A_VARIABLE", "2")


def test_read_write_remove_round_trip(monkeypatch) -> None:
    monkeypatch.delenv("MMBOT_VERBOSE", raising=False)
    assert env.read("MMBOT_VERBOSE") is None
    env.write("MMBOT_VERBOSE", "1")
    assert env.read("MMBOT_VERBOSE") == "1" and env.snapshot()["MMBOT_VERBOSE"] == "1"
    env.remove("MMBOT_VERBOSE")
    env.remove("MMBOT_VERBOSE")  # unset already: no error
    assert env.read("MMBOT_VERBOSE") is None
