"""Optional extras: which package belongs to which ``pip install 'mmbot[EXTRA]'`` (pyproject.toml),
and the one-line error a command gives when the extra it needs is not installed."""

from __future__ import annotations

import importlib.util

from mmbot.errors import UserError

# import name of a package outside the core install -> the extra that brings it
OPTIONAL_MODULES = {
    "aiohttp": "live",
    "prometheus_client": "live",
    "pandas": "pandas",
    "optuna": "sweep",
    "yaml": "sweep",
}


def missing_line(module: str) -> str:
    """What to install for ``module`` (one of ``OPTIONAL_MODULES``)."""
    extra = OPTIONAL_MODULES[module]
    return (
        f"this command needs {module}, part of the [{extra}] extra: "
        f"pip install 'mmbot[{extra}]' (or pip install -e '.[{extra}]' in a checkout)"
    )


def require(*modules: str) -> None:
    """A UserError naming the extra when one of ``modules`` is not installed (checked before any
    work starts, so a long command does not fail half way)."""
    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise UserError(missing_line(module))
