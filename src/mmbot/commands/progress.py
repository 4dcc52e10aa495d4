"""The transient progress bar the long-running commands (`backtest`, `soak`) show on the console."""

from __future__ import annotations

from typing import Any


def transient_bar(con: Any, *, disable: bool = False) -> Any:
    """A rich progress bar on ``con`` that is gone when the block ends: the task's description, the
    bar, the percentage done and the time elapsed. ``disable``: show nothing (e.g. off a terminal)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TimeElapsedColumn(),
        console=con,
        transient=True,
        disable=disable,
    )
