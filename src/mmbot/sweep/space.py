"""The search space of a sweep: parsing a space file (YAML or JSON) and applying sampled values.

A space file maps parameter names to a range or a list of choices::

    parameters:
      base_spread_bps_delta: {low: 0.0, high: 0.6}
      min_interval_ms: {low: 50, high: 300, int: true}
      quoting.gamma: {low: 0.02, high: 0.5, log: true}
      param.skew: {choice: [0.0, 0.5, 1.0]}

(the ``parameters:`` level may be left out). A name routes the value to one of three places:

- a runtime knob (``mmbot.knobs.KNOB_NAMES``): range checked against the knob's limits, so the
  search never explores values the run would silently clamp;
- a profile field, ``SECTION.FIELD`` (``quoting``, ``risk``, ``base``, ``profile``, ``venue``): the
  profile is re-validated with the value, so a value the profile schema refuses fails up front;
  ``fees.*`` is refused: fee rates are facts of the venue, and an optimiser given them finds the
  rebate corner, not a better quoter;
- a quoter parameter, ``param.NAME``: passed to the strategy's quoter through
  ``RunSettings.params`` (``apply_quoter_params``); the command checks NAME against the quoter's
  ``PARAMS`` before the sweep starts. A quoter parameter that is a tunable knob
  (``mmbot.knobs.QUOTER_KNOB_LIMITS``) is range-checked against its limits like a runtime knob (an
  overrides file clamps it there) and sampled as an integer when the knob is one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from mmbot import knobs
from mmbot.config import Profile
from mmbot.errors import UserError
from mmbot.inputs import read_json, read_text

ROUTE_KNOB: Final = "knob"
ROUTE_PROFILE: Final = "profile"
ROUTE_QUOTER: Final = "quoter"
QUOTER_PREFIX: Final = "param."
PROFILE_SECTIONS: Final[tuple[str, ...]] = ("quoting", "risk", "base", "profile", "venue")
REFUSED_SECTIONS: Final[dict[str, str]] = {
    "fees": "fee rates are facts of the venue, not parameters to tune",
}
_RANGE_KEYS: Final = frozenset({"low", "high", "log", "int", "step"})
_CHOICE_KEYS: Final = frozenset({"choice", "choices"})


@dataclass(frozen=True)
class ParamSpec:
    """One dimension of the space: a range (``low``..``high``, optionally log or integer) or choices."""

    name: str
    route: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    step: float | None = None
    choices: tuple[Any, ...] | None = None

    @property
    def field(self) -> str:
        """The name without its route prefix (the knob, ``SECTION.FIELD`` or the quoter's name)."""
        return self.name[len(QUOTER_PREFIX) :] if self.route == ROUTE_QUOTER else self.name


@dataclass(frozen=True)
class Space:
    params: tuple[ParamSpec, ...]
    source: str

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def by_route(self, route: str) -> tuple[ParamSpec, ...]:
        return tuple(p for p in self.params if p.route == route)


def _route(name: str, source: str) -> str:
    if name in knobs.RUNTIME_LIMITS:
        return ROUTE_KNOB
    if name.startswith(QUOTER_PREFIX) and len(name) > len(QUOTER_PREFIX):
        return ROUTE_QUOTER
    section = name.split(".", 1)[0]
    if section in REFUSED_SECTIONS and "." in name:
        raise UserError(f"{source}: {name}: {REFUSED_SECTIONS[section]}")
    if section in PROFILE_SECTIONS and "." in name:
        field = name.split(".", 1)[1]
        model = Profile.model_fields[section].annotation
        if field not in getattr(model, "model_fields", {}):
            known = ", ".join(getattr(model, "model_fields", {}))
            raise UserError(f"{source}: {name}: no field {field!r} in profile.{section} ({known})")
        return ROUTE_PROFILE
    raise UserError(
        f"{source}: unknown parameter {name!r} (a knob: {', '.join(knobs.KNOB_NAMES)}; "
        f"a profile field SECTION.FIELD with SECTION in {', '.join(PROFILE_SECTIONS)}; "
        f"or a quoter parameter {QUOTER_PREFIX}NAME)"
    )


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise UserError(f"{what} must be a finite number, got {value!r}")
    return float(value)


def _parse_one(name: str, body: Any, source: str) -> ParamSpec:
    where = f"{source}: {name}"
    route = _route(name, source)
    if isinstance(body, list):
        body = {"choice": body}
    if not isinstance(body, Mapping):
        raise UserError(f"{where}: expected {{low, high[, log, int, step]}} or {{choice: [...]}}")
    keys = set(body)
    if keys & _CHOICE_KEYS:
        extra = keys - _CHOICE_KEYS
        if extra:
            raise UserError(f"{where}: choice takes no {', '.join(sorted(extra))}")
        choices = body.get("choice", body.get("choices"))
        if not isinstance(choices, list) or not choices:
            raise UserError(f"{where}: choice must be a non-empty list")
        for c in choices:
            if not (c is None or isinstance(c, str | bool)):
                _number(c, f"{where}: choice")
        if route == ROUTE_QUOTER:  # a quoter's parameters are numbers (its f8 record)
            for c in choices:
                _number(c, f"{where}: choice")
        for c in choices:
            _check_knob(name, c, where)
        return ParamSpec(name, route, choices=tuple(choices))
    unknown = keys - _RANGE_KEYS
    if unknown:
        raise UserError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    if "low" not in body or "high" not in body:
        raise UserError(f"{where}: a range needs both low and high")
    low = _number(body["low"], f"{where}: low")
    high = _number(body["high"], f"{where}: high")
    log = bool(body.get("log", False))
    integer = bool(body.get("int", False)) or knobs.is_integer_knob(name)
    step = _number(body["step"], f"{where}: step") if "step" in body else None
    if not low < high:
        raise UserError(f"{where}: low {low:g} must be below high {high:g}")
    if log and low <= 0:
        raise UserError(f"{where}: a log range needs low > 0, got {low:g}")
    if step is not None and (step <= 0 or log):
        raise UserError(f"{where}: step must be > 0 and cannot be combined with log")
    _check_knob(name, low, where)
    _check_knob(name, high, where)
    return ParamSpec(name, route, low, high, log=log, integer=integer, step=step)


def _check_knob(name: str, value: Any, where: str) -> None:
    """A knob's (runtime or quoter) value inside the knob's limits; other parameters pass."""
    limits = knobs.knob_limits(name)
    if limits is None:
        return
    lo, hi = limits
    value = _number(value, f"{where}: choice")
    if not lo <= value <= hi:
        raise UserError(
            f"{where}: {value:g} is outside the knob's limits [{lo:g}, {hi:g}] "
            "(the run would clamp it: the search would explore a value it never tests)"
        )


def parse_space(raw: Any, source: str) -> Space:
    """A space from parsed YAML/JSON (see the module docstring); UserError naming the entry."""
    if isinstance(raw, Mapping) and "parameters" in raw:
        extra = set(raw) - {"parameters"}
        if extra:
            raise UserError(f"{source}: unknown top-level key(s) {', '.join(sorted(extra))}")
        raw = raw["parameters"]
    if not isinstance(raw, Mapping) or not raw:
        raise UserError(f"{source}: expected a non-empty mapping of parameter -> range or choices")
    params = tuple(_parse_one(str(name), body, source) for name, body in raw.items())
    return Space(params, source)


def default_space(strategy: str) -> Space:
    """The six runtime knobs and the quoter's tunable parameters (``param.NAME``,
    ``mmbot.knobs.QUOTER_KNOBS``), each over its limits: what the soak's auto-tuner may move,
    searched freely. ``strategy`` is the quoter spec (a quoter without tunable knobs: the six)."""
    limits = {**knobs.RUNTIME_LIMITS, **knobs.tunable_quoter_knobs(strategy)}
    raw = {k: {"low": lo, "high": hi} for k, (lo, hi) in limits.items()}
    extra = len(limits) - len(knobs.RUNTIME_LIMITS)
    what = (
        f"the six knobs and {strategy}'s {extra} tunable parameters" if extra else "the six knobs"
    )
    return parse_space(raw, f"default space ({what} over their limits)")


def load_space(path: str | Path) -> Space:
    """Read a space file: ``.yaml``/``.yml`` as YAML, anything else as JSON."""
    p = Path(path)
    source = f"--space {p}"
    if p.suffix.lower() not in (".yaml", ".yml"):
        return parse_space(read_json(source, p), source)
    import yaml

    try:
        raw = yaml.safe_load(read_text(source, p))
    except yaml.YAMLError as exc:
        raise UserError(f"{source}: malformed YAML: {exc}".splitlines()[0]) from None
    return parse_space(raw, source)


def suggest(trial: Any, space: Space) -> dict[str, Any]:
    """Sample one point of ``space`` with an Optuna trial (or anything with its suggest_* API)."""
    values: dict[str, Any] = {}
    for p in space.params:
        if p.choices is not None:
            values[p.name] = trial.suggest_categorical(p.name, list(p.choices))
        elif p.integer:
            step = int(p.step) if p.step else 1
            values[p.name] = trial.suggest_int(
                p.name, int(math.ceil(p.low)), int(math.floor(p.high)), step=step, log=p.log
            )
        else:
            values[p.name] = trial.suggest_float(p.name, p.low, p.high, step=p.step, log=p.log)
    return values


@dataclass(frozen=True)
class Applied:
    """Sampled values split by route: knob overrides, a profile with its fields set, quoter params."""

    knobs: dict[str, float]
    profile: Profile
    quoter_params: dict[str, Any]


def apply_values(values: Mapping[str, Any], space: Space, profile: Profile) -> Applied:
    """Route ``values`` (name -> value) to knobs, a copy of ``profile`` and quoter parameters."""
    knob_values: dict[str, float] = {}
    quoter: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {}
    for p in space.params:
        if p.name not in values:
            continue
        v = values[p.name]
        if p.route == ROUTE_KNOB:
            knob_values[p.name] = v
        elif p.route == ROUTE_QUOTER:
            quoter[p.field] = v
        else:
            section, field = p.name.split(".", 1)
            sections.setdefault(section, {})[field] = v
    prof = profile
    if sections:
        raw = profile.model_dump(exclude={"source", "messages"})
        for section, fields in sections.items():
            raw[section].update(fields)
        try:
            prof = Profile.model_validate(raw)
        except Exception as exc:  # pydantic ValidationError: name the value that broke it
            raise UserError(f"profile fields {sections}: {exc}".splitlines()[0]) from None
        prof.source = profile.source
    return Applied(knob_values, prof, quoter)


def apply_quoter_params(settings: Any, params: Mapping[str, Any]) -> Any:
    """Quoter parameters into ``settings.params`` (the plug-in contract's; the quoter checks the
    names and values when the run builds its parameter record)."""
    if params:
        settings.params = {**(settings.params or {}), **params}
    return settings
