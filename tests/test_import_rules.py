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


CONSOLE = ("cli.py", "commands/")  # the modules that own the console
# library modules that still import rich or typer (issue 22: engine apart from presentation);
# the list may only shrink (it is empty now)
CONSOLE_DEBT: set[str] = set()


def _library_modules() -> list[Path]:
    return [
        p
        for p in sorted(PKG.rglob("*.py"))
        if "__pycache__" not in p.parts and not p.relative_to(PKG).as_posix().startswith(CONSOLE)
    ]


def test_library_code_does_not_import_the_cli() -> None:
    bad = [
        f"{p.relative_to(PKG)} imports {m}"
        for p in _library_modules()
        for m in _imports(p)
        if m.startswith(("mmbot.cli", "mmbot.commands"))
    ]
    assert not bad, bad


def _console_users() -> set[str]:
    return {
        p.relative_to(PKG).as_posix()
        for p in _library_modules()
        if any(m.split(".")[0] in ("rich", "typer") for m in _imports(p))
    }


def test_console_libraries_stay_in_the_console() -> None:
    """Library code (anything outside commands/ and cli.py) imports neither rich nor typer: it
    hands lines and progress to callbacks, and commands/ show them."""
    users = _console_users()
    assert users <= CONSOLE_DEBT, sorted(users - CONSOLE_DEBT)


def test_the_console_debt_list_only_names_current_users() -> None:
    """A module that stopped importing rich or typer leaves the debt list (it may only shrink)."""
    assert CONSOLE_DEBT <= _console_users(), sorted(CONSOLE_DEBT - _console_users())


def test_the_console_rule_sees_an_import_inside_a_function(tmp_path: Path) -> None:
    """The rule reads imports anywhere in a module (the console was imported lazily, inside
    functions), so it cannot be dodged by moving the import into a function body."""
    f = tmp_path / "m.py"
    f.write_text("def show():\n    from rich.table import Table\n    import typer\n")
    assert {"rich.table", "typer"} <= _imports(f)


def test_the_venue_sits_below_everything() -> None:
    """sim imports only the event and record layouts, the error type, the settings base, the
    order book and the borrowed views from mmbot; the order book and the borrowed views import
    nothing from mmbot (any replay of a feed, any compiled loop can use them), the settings base
    nothing but the error type."""
    allowed = ("mmbot.events", "mmbot.records", "mmbot.errors", "mmbot.sim", "mmbot.book")
    allowed += ("mmbot.settings_model", "mmbot.borrow")
    bad = [
        f"{p.relative_to(PKG)} imports {m}"
        for p in sorted((PKG / "sim").glob("*.py"))
        for m in _imports(p)
        if m.startswith("mmbot.") and not m.startswith(allowed)
    ]
    assert not bad, bad
    for leaf in ("book.py", "borrow.py"):
        mods = _imports(PKG / leaf)
        assert not [m for m in mods if m.startswith("mmbot") or m.startswith(".")], (leaf, mods)
    base = _imports(PKG / "settings_model.py")
    assert {m for m in base if m.startswith("mmbot")} == {"mmbot.errors"}, base


# the modules that rebuild an order book from depth rows on the order book module (issue 22)
BOOK_USERS = {"sim/clock.py", "soak/book_carry.py", "data/replay.py", "data/market_stats.py"}
BOOK_USERS |= {"live/bybit_msgs.py", "live/orders.py"}  # the published book (DictBook)
# the generator's book, mmbot.book's ring (slots, reads, pulls and scans through it)
BOOK_USERS |= {"data/synthetic_book.py", "data/synthetic_core.py"}
# those that still keep a book of their own: the list may only shrink. audit/crosscheck.py stays
# on purpose (the fill-mid cross-check must not share code with what it checks).
BOOK_DEBT: set[str] = set()


def test_books_are_built_on_the_order_book_module() -> None:
    """The venue, the book carry and the readers' replay apply depth rows with ``mmbot.book``; no
    other module grows a book of its own beyond the known debt."""
    for rel in sorted(BOOK_USERS):
        assert _uses_book(PKG / rel), f"{rel} no longer applies depth rows with mmbot.book"
    for rel in sorted(BOOK_DEBT):
        assert (PKG / rel).exists(), f"{rel} is gone: drop it from BOOK_DEBT"
        assert not _uses_book(PKG / rel), f"{rel} uses mmbot.book now: drop it from BOOK_DEBT"


def test_the_generator_reaches_its_ring_through_the_order_book_module() -> None:
    """The generator finds a price's slot with ``mmbot.book.ring_slot``: no mask of its own."""
    for rel in ("data/synthetic.py", "data/synthetic_book.py", "data/synthetic_core.py"):
        assert "RING_MASK" not in (PKG / rel).read_text(), f"{rel} masks ring prices itself"


def _uses_book(path: Path) -> bool:
    text = path.read_text()
    return "from mmbot.book import" in text or "from mmbot import book" in text
