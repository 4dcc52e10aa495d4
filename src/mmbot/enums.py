"""Named codes of the records (``IntEnum``), built from the code tables in ``mmbot.records``.

The compiled code stores plain integers (``mmbot.records`` defines them once); users see these names:
``Side.BUY == 1``, ``ActionKind.BLOCKED == 1``, ``Reason.MIN_INTERVAL == 1``. ``label`` is the
lower-case name the records frames, audit.jsonl and reports use (``Reason.MIN_INTERVAL.label ==
"min_interval"``).
"""

from __future__ import annotations

from enum import IntEnum

from mmbot.records import ACT_NAMES, OP_NAMES, REASON_NAMES


class _Named(IntEnum):
    @property
    def label(self) -> str:
        return self.name.lower()


class Side(_Named):
    BUY = 1
    SELL = -1


def _from_table(name: str, table: dict[int, str]) -> type[_Named]:
    return _Named(name, {label.upper(): code for code, label in sorted(table.items())})  # type: ignore[return-value]


ActionKind = _from_table("ActionKind", ACT_NAMES)
Op = _from_table("Op", OP_NAMES)
Reason = _from_table("Reason", REASON_NAMES)

SIDE_LABELS: dict[int, str] = {s.value: s.label for s in Side}

__all__ = ["ActionKind", "Op", "Reason", "SIDE_LABELS", "Side"]
