"""Every environment variable mmbot reads or sets, in one table; the only module that touches
``os.environ`` (``tests/test_env.py`` enforces it; docs/config.md lists the table).

Owns ``VARS`` and the accessors: ``read`` (the value or None), ``write`` / ``remove`` (for this
process and the processes it starts) and ``snapshot`` (a copy of the whole environment, for a child
process or a function that takes an ``env`` mapping). A name not in ``VARS`` is a ``KeyError``: a
new variable is one line here plus its row in docs/config.md. Imports nothing from mmbot, so an
entry point may call it before anything compiled is loaded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class EnvVar:
    """A variable: its name, what it does, and what applies when it is unset."""

    name: str
    doc: str
    unset: str


VARS: dict[str, EnvVar] = {
    v.name: v
    for v in (
        EnvVar("MM_PROFILE", "profile name (S1) or JSON path when --profile is not given", "S1"),
        EnvVar(
            "MM_RUNTIME_OVERRIDES_JSON",
            "runtime overrides: an inline JSON object or a file path; below --overrides, above "
            "artifacts/soak/runtime_overrides.json (`mmbot demo` ignores it)",
            "the default file, if present",
        ),
        EnvVar(
            "MM_SOAK_REPLAY_WORKERS",
            "processes for the soak's counterfactual replays (1-8; results do not depend on it)",
            "usable CPUs, at most 2",
        ),
        EnvVar(
            "MMBOT_DEBUG", "non-empty: an unexpected error raises with its traceback", "one line"
        ),
        EnvVar("MMBOT_VERBOSE", "non-empty: a live session logs INFO on stderr", "warnings only"),
        EnvVar(
            "MMBOT_STATE_DIR", "where staged run directories are registered", "~/.cache/mmbot/state"
        ),
        EnvVar(
            "MMBOT_CACHE_DIR",
            "the parsed-capture cache directory; off, 0 or none turns the cache off",
            "~/.cache/mmbot",
        ),
        EnvVar("MMBOT_CACHE_MAX_MB", "size bound of the parsed-capture cache, MB", "1024"),
        EnvVar(
            "NUMBA_CACHE_DIR",
            "numba's compiled-code cache; mmbot.jitcache.configure sets it unless it is given",
            "<package>/__pycache__/numba-<source digest>",
        ),
        EnvVar("BYBIT_API_KEY", "Bybit API key when --keys-file is not given", "none"),
        EnvVar("BYBIT_API_SECRET", "Bybit API secret when --keys-file is not given", "none"),
    )
}


def _known(name: str) -> str:
    if name not in VARS:
        raise KeyError(f"environment variable {name!r} is not declared in mmbot.env.VARS")
    return name


def read(name: str) -> str | None:
    """The value of the declared variable ``name`` (None when unset)."""
    return os.environ.get(_known(name))


def write(name: str, value: str) -> None:
    """Set ``name`` for this process and the processes it starts."""
    os.environ[_known(name)] = value


def remove(name: str) -> None:
    """Unset ``name`` (no error when it is not set)."""
    os.environ.pop(_known(name), None)


def snapshot() -> dict[str, str]:
    """A copy of the whole environment (a child process's, or an ``env`` argument's default)."""
    return dict(os.environ)
