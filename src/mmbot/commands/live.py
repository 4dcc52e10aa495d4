"""`mmbot paper|live|record|emulator` (Bybit V5). Filled in by the live wave."""

from __future__ import annotations

from collections.abc import Callable

COMMANDS: dict[str, Callable[..., object]] = {}
