"""Checks of user-given values and output paths: each failure is one ``UserError`` naming the
option (exit 2), so a NaN, a negative size, port 70000 or an output over a device never reaches
code that would fail later with a traceback or, worse, run with a meaningless number."""

from __future__ import annotations

import json
import math
import stat
from pathlib import Path

from mmbot.errors import UserError

MAX_PORT = 65_535


def finite(option: str, value: float | None, *, low: float | None = None) -> float | None:
    """``value`` if it is finite (and ``>= low``); ``None`` passes through."""
    if value is None:
        return None
    v = float(value)
    if not math.isfinite(v) or (low is not None and v < low):
        bound = f" >= {low:g}" if low is not None else ""
        raise UserError(f"{option}: {value!r} is not a finite number{bound}")
    return v


def positive(option: str, value: float | None) -> float | None:
    """``value`` if finite and > 0; ``None`` passes through."""
    if value is None:
        return None
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise UserError(f"{option}: {value!r} must be a finite number > 0")
    return v


def ms_to_ns(option: str, value_ms: float, *, max_ms: float = 60_000.0) -> int:
    """A non-negative millisecond option below ``max_ms``, in integer ns."""
    v = finite(option, value_ms, low=0.0)
    if v is None or v >= max_ms:
        raise UserError(f"{option}: {value_ms!r} ms is outside [0, {max_ms:g})")
    return int(v * 1e6)


def port(option: str, value: int, *, allow_zero: bool = True) -> int:
    """A TCP port (0 = any free port / off, when allowed)."""
    lo = 0 if allow_zero else 1
    if not (lo <= int(value) <= MAX_PORT):
        raise UserError(f"{option}: {value} is not a TCP port ({lo}..{MAX_PORT})")
    return int(value)


def read_text(source: str, path: Path) -> str:
    """The UTF-8 text of the input file ``path``; a missing or unreadable file is one UserError
    starting with ``source`` (the option or role that named the file)."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{source}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{source}: unreadable: {exc}") from None


def read_json(source: str, path: Path) -> object:
    """The JSON value in the input file ``path`` (`read_text`'s errors; malformed JSON is one
    UserError starting with ``source`` and giving the parser's line)."""
    text = read_text(source, path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{source}: malformed JSON: {exc.msg} at line {exc.lineno}") from None


def output_file(option: str, path: Path) -> Path:
    """``path`` may be written as a regular file: it is absent or a regular file, and its parent is
    (or can become) a directory. Never replaces a device, FIFO, socket or directory."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        raise UserError(f"{option} {path}: a parent of it is a file, not a directory") from None
    except OSError as exc:
        raise UserError(f"{option} {path}: cannot use ({exc.strerror})") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise UserError(f"{option} {path}: is {kind}; refusing to write over it")
    _parent_dir(option, path)
    return path


def output_dir(option: str, path: Path) -> Path:
    """``path`` is (or can become) a directory."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{option} {path}: exists and is not a directory")
    _parent_dir(option, path)
    return path


def _parent_dir(option: str, path: Path) -> None:
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"{option} {path}: {parent} is a file, not a directory")
            return
