"""Finding a quoter by name: the built-ins, ``FILE.py:NAME`` and ``package.module:NAME``.

Owns ``BUILTIN_QUOTERS``, ``resolve`` (spec -> checked ``Quoter``), ``quoter_digest`` (what the
compiled engine loop of a quoter is keyed on), ``make_qparams`` and ``parse_param_args``. Every
problem with a spec is one ``UserError`` line naming the spec and what is wrong.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType

import numpy as np

from mmbot.errors import UserError
from mmbot.knobs import KNOB_NAMES
from mmbot.strategy.contract import (
    DEPTH_LEVELS,
    MAX_LEVELS,
    REQUOTE_CANCEL_NEW,
    REQUOTE_MODES,
    Quoter,
)

BUILTIN_QUOTERS = {
    "glft": "mmbot.strategy.glft",
    "touch": "mmbot.strategy.touch",
    "glft_ref": "mmbot.strategy.glft_ref",
    "adaptive": "mmbot.strategy.adaptive",
}
DEFAULT_QUOTER = "adaptive"
# paper and live sessions run the backtest's default too (tests/test_live_parity.py's
# paper-adaptive case: a paper session of it is the backtest of its feed, order by order)
SESSION_DEFAULT_QUOTER = DEFAULT_QUOTER
QUOTER_ATTR = "QUOTER"  # the attribute a module names its quoter by when the spec has no ':NAME'

# compiled functions and how many arguments each takes
_COMPILED_ARITY = {"on_market": 6, "on_fill": 4, "quote": 6}


def _import_file(path: Path, spec: str) -> ModuleType:
    if not path.is_file():
        raise UserError(f"--strategy {spec}: file {path} not found")
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    mod_name = f"mmbot_quoter_{path.stem}_{digest}"
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    ispec = importlib.util.spec_from_file_location(mod_name, path)
    if ispec is None or ispec.loader is None:
        raise UserError(f"--strategy {spec}: {path} is not a Python file")
    module = importlib.util.module_from_spec(ispec)
    sys.modules[mod_name] = module
    try:
        ispec.loader.exec_module(module)
    except Exception as exc:  # the user's code: any error is theirs to read, in one line
        del sys.modules[mod_name]
        raise UserError(f"--strategy {spec}: importing {path} failed: {_first_line(exc)}") from exc
    return module


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _module_and_attr(spec: str) -> tuple[ModuleType, str, Path | None]:
    target, _, attr = spec.rpartition(":") if ":" in spec else (spec, "", "")
    if target.endswith(".py") or "/" in target or "\\" in target:
        path = Path(target)
        return _import_file(path, spec), attr or QUOTER_ATTR, path
    try:
        module = importlib.import_module(target)
    except ImportError as exc:
        raise UserError(f"--strategy {spec}: cannot import {target!r}: {exc}") from exc
    except Exception as exc:
        raise UserError(
            f"--strategy {spec}: importing {target} failed: {_first_line(exc)}"
        ) from exc
    file = getattr(module, "__file__", None)
    return module, attr or QUOTER_ATTR, Path(file) if file else None


def resolve(spec: str) -> Quoter:
    """The checked ``Quoter`` a spec names: a built-in name, ``FILE.py:NAME``, ``pkg.mod:NAME``
    or ``pkg.mod`` (its ``QUOTER``)."""
    spec = str(spec).strip()
    if not spec:
        raise UserError("--strategy: empty name")
    if spec in BUILTIN_QUOTERS:
        module = importlib.import_module(BUILTIN_QUOTERS[spec])
        return check_quoter(getattr(module, QUOTER_ATTR), spec)
    if ":" not in spec and "." not in spec and not spec.endswith(".py"):
        names = ", ".join(BUILTIN_QUOTERS)
        raise UserError(
            f"--strategy {spec!r}: expected one of {names}, FILE.py:NAME or pkg.mod:NAME"
        )
    module, attr, _ = _module_and_attr(spec)
    if not hasattr(module, attr):
        raise UserError(f"--strategy {spec}: {module.__name__} has no {attr!r}")
    return check_quoter(getattr(module, attr), spec)


def _arity(fn: object) -> int | None:
    py = getattr(fn, "py_func", fn)
    try:
        return len(inspect.signature(py).parameters)
    except (TypeError, ValueError):
        return None


def check_quoter(q: object, spec: str) -> Quoter:
    """The contract's shape, checked before anything compiles."""
    if not isinstance(q, Quoter):
        raise UserError(
            f"--strategy {spec}: {type(q).__name__} is not a mmbot.strategy.Quoter "
            "(build one with Quoter(name=..., quote=..., ...))"
        )
    for name, arity in _COMPILED_ARITY.items():
        fn = getattr(q, name)
        if not hasattr(fn, "py_func"):
            raise UserError(f"--strategy {spec}: {name} must be a numba @njit function")
        got = _arity(fn)
        if got != arity:
            raise UserError(
                f"--strategy {spec}: {name} takes {got} arguments, the contract {arity}"
            )
    if not callable(q.new_state) or _arity(q.new_state) != 2:
        raise UserError(f"--strategy {spec}: new_state must take (params, qparams)")
    if not (isinstance(q.wake_interval_ms, int | float) and math.isfinite(q.wake_interval_ms)):
        raise UserError(f"--strategy {spec}: wake_interval_ms must be a finite number")
    if q.wake_interval_ms <= 0:
        raise UserError(f"--strategy {spec}: wake_interval_ms must be > 0")
    if not (isinstance(q.levels, int) and 1 <= q.levels <= MAX_LEVELS):
        raise UserError(f"--strategy {spec}: levels must be an integer 1..{MAX_LEVELS}")
    if not (isinstance(q.book_levels, int) and 0 <= q.book_levels <= DEPTH_LEVELS):
        raise UserError(f"--strategy {spec}: book_levels must be an integer 0..{DEPTH_LEVELS}")
    if q.requote not in REQUOTE_MODES:
        modes = ", ".join(REQUOTE_MODES)
        raise UserError(f"--strategy {spec}: requote {q.requote!r} is not one of {modes}")
    # a cancel + new takes two op rows of the engine's one-per-slot buffer
    if REQUOTE_MODES[q.requote] == REQUOTE_CANCEL_NEW and q.levels > MAX_LEVELS // 2:
        raise UserError(
            f"--strategy {spec}: requote 'cancel_new' allows at most {MAX_LEVELS // 2} levels"
        )
    if q.runtime_knobs is not None:
        unknown = [k for k in q.runtime_knobs if k not in KNOB_NAMES]
        if not isinstance(q.runtime_knobs, tuple) or unknown:
            raise UserError(
                f"--strategy {spec}: runtime_knobs must be a tuple of {', '.join(KNOB_NAMES)}"
                + (f" (unknown: {', '.join(map(str, unknown))})" if unknown else "")
            )
    for k, v in q.params.items():
        if not (isinstance(k, str) and k.isidentifier()):
            raise UserError(f"--strategy {spec}: parameter name {k!r} is not an identifier")
        if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v):
            raise UserError(f"--strategy {spec}: parameter {k} default {v!r} is not a number")
    return q


def quoter_source(spec: str) -> bytes:
    """The source bytes a compiled loop of ``spec`` must be rebuilt for when they change: the
    quoter's own file (built-ins are covered by the package's cache digest)."""
    if spec in BUILTIN_QUOTERS:
        return b""
    _, _, path = _module_and_attr(spec)
    return path.read_bytes() if path is not None and path.is_file() else b""


def quoter_digest(spec: str) -> str:
    h = hashlib.sha1(spec.encode())
    h.update(quoter_source(spec))
    return h.hexdigest()[:16]


def make_qparams(
    q: Quoter, overrides: Mapping[str, float] | None = None, spec: str = ""
) -> np.ndarray:
    """The quoter's parameter record: its defaults with ``overrides`` applied (unknown name or a
    non-finite value: UserError)."""
    values = {k: float(v) for k, v in q.params.items()}
    for k, v in (overrides or {}).items():
        if k not in values:
            known = ", ".join(sorted(values)) or "none"
            raise UserError(f"--param {k}: {spec or q.name} has no such parameter (known: {known})")
        try:
            fv = float(v)
        except (TypeError, ValueError) as exc:
            raise UserError(f"--param {k}={v!r}: not a number") from exc
        if not math.isfinite(fv):
            raise UserError(f"--param {k}={v!r}: must be finite")
        values[k] = fv
    names = list(values) or ["_unused"]
    rec = np.zeros(1, dtype=np.dtype([(n, "f8") for n in names], align=True))
    for k, v in values.items():
        rec[0][k] = v
    return rec


def parse_param_args(items: Sequence[str] | None) -> dict[str, float]:
    """``["window_s=60", ...]`` -> ``{"window_s": 60.0}`` (a malformed item: UserError)."""
    out: dict[str, float] = {}
    for item in items or ():
        name, eq, value = str(item).partition("=")
        name = name.strip()
        if not eq or not name:
            raise UserError(f"--param {item!r}: expected NAME=VALUE")
        try:
            out[name] = float(value)
        except ValueError as exc:
            raise UserError(f"--param {item!r}: {value!r} is not a number") from exc
    return out
