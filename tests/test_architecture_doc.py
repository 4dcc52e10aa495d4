"""docs/architecture.md's module map is current: every top-level module and package of
``src/mmbot`` has a row naming it, and every name a row gives still exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "src" / "mmbot"
DOC = ROOT / "docs" / "architecture.md"


def _map_rows() -> list[str]:
    text = DOC.read_text()
    table = text[text.index("## Packages") :]
    table = table[: table.index("\n## ")]
    return [line for line in table.splitlines() if line.startswith("| `")]


def _named() -> set[str]:
    """The modules and packages the first column of the map names (`x.py`, `x/`)."""
    return {
        name
        for row in _map_rows()
        for name in re.findall(r"`([\w]+(?:\.py|/))`", row.split(" | ")[0])
    }


def _modules() -> set[str]:
    return {
        p.name + "/" if p.is_dir() else p.name
        for p in PKG.iterdir()
        if (p.suffix == ".py" and p.name != "__init__.py")
        or (p.is_dir() and (p / "__init__.py").exists())
    }


def test_every_module_has_a_row_in_the_module_map() -> None:
    missing = sorted(_modules() - _named())
    assert not missing, f"docs/architecture.md's module map has no row for {missing}"


def test_every_row_of_the_module_map_names_a_module_that_exists() -> None:
    gone = sorted(_named() - _modules())
    assert not gone, f"docs/architecture.md's module map names what is gone: {gone}"
