"""One line from pydantic's report, and the frozen settings base that says it.

Owns ``validation_message`` (a ``ValidationError`` as one line naming the field: the profile, the
run configuration and the command-line options use it) and ``SettingsModel``, the base of a
component's frozen, validated settings (``sim.config.VenueSettings`` / ``VenueConfig``,
``live.runner.RunnerConfig``, ``live.emulator.EmulatorConfig``). It imports nothing from mmbot but
``errors``, so the venue (which sits below everything, docs/architecture.md) can use it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from mmbot.errors import UserError


def validation_message(exc: ValidationError, source: str, *, show_input: bool = False) -> str:
    """``SOURCE: FIELD: MESSAGE`` for the first error (``+N more`` when there are others);
    ``show_input``: the bad value too when it is short (``(got -1.0)``; never for a missing or
    unknown key)."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ())) or "(root)"
    msg = err.get("msg", "invalid")
    if err.get("type") == "extra_forbidden":
        msg = "unknown key"
    got = repr(err.get("input"))
    shown = show_input and err.get("type") not in ("missing", "extra_forbidden") and len(got) <= 60
    got = f" (got {got})" if shown else ""
    more = f" (+{len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{source}: {loc}: {msg}{got}{more}"


class SettingsModel(BaseModel):
    """A component's frozen, validated settings: built directly, a bad value is one UserError line
    naming the model, the field and the value (``RunnerConfig.stale_ms: Input should be greater
    than 0 (got -1.0)``), not pydantic's report.

    As a section of another model (``VenueSettings`` in ``config.run.RunConfig``) it is validated
    by that model, which names the path (``run configuration: venue.max_orders: ...``): the
    constructor below is marked as pydantic's own (``__pydantic_base_init__``), so pydantic does
    not call it for a nested section (it would raise this model's line where the outer model's
    belongs)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, allow_inf_nan=False, arbitrary_types_allowed=True
    )

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            line = validation_message(exc, type(self).__name__, show_input=True)
            raise UserError(line.replace(": ", ".", 1)) from None

    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]
