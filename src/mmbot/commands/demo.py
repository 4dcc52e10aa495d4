"""`mmbot demo`: what `make demo` runs, reachable without make (e.g. from PowerShell)."""

from __future__ import annotations

import typer


def demo(
    hours: float = typer.Option(3.0, "--hours", help="market hours (the seed's 3 h by default)"),
    iterations: int = typer.Option(6, "--iterations", help="iterations the hours are split into"),
) -> int:
    """The seed's mini-soak: write the conservative start overrides, soak with auto-tune, report."""
    from mmbot.demo import main

    return main(hours=hours, iterations=iterations)
