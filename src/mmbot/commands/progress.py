"""The progress bars of the long-running commands: the transient one `backtest` and `soak` show, and
the counting one `data calibrate` and `sweep` keep on the console."""

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


def counting_bar(con: Any, *, head: str, tail: str, elapsed: bool = False) -> Any:
    """A rich progress bar on ``con`` that stays when the block ends, counting steps: ``head``, the
    bar, steps done / total, the time elapsed (with ``elapsed``), ``tail`` (``head`` and ``tail``
    are rich column templates, e.g. ``"{task.description}"``)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns: list[Any] = [TextColumn(head), BarColumn(), MofNCompleteColumn()]
    if elapsed:
        columns.append(TimeElapsedColumn())
    columns.append(TextColumn(tail))
    return Progress(*columns, console=con, transient=False)
