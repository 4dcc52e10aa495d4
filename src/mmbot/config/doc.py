"""The generated tables of docs/config.md: the params record (``PARAM_FIELDS``) and the environment
variables (``mmbot.env.VARS``), so a field's or a variable's doc is written once, in its table line.

``python -m mmbot.config.doc --write`` rewrites them in place (between their ``<!-- generated -->``
markers); ``tests/test_env.py`` / ``tests/test_params_table.py`` fail when the page is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[3] / "docs" / "config.md"
_BEGIN = "<!-- generated: {name} (python -m mmbot.config.doc --write) -->"
_END = "<!-- end generated: {name} -->"


def params_table() -> str:
    """The record's fields: name, dtype, RunConfig source with its unit scale, S1's value, meaning."""
    from mmbot.config.profile import load_profile
    from mmbot.strategy.params import PARAM_FIELDS

    prof = load_profile("S1")
    s1 = {
        **{f"quoting.{k}": v for k, v in prof.quoting.model_dump().items()},
        **{f"risk.{k}": v for k, v in prof.risk.model_dump().items()},
        **{f"knobs.{k}": v for k, v in prof.runtime.items()},
        **{f"effective.{k}": v for k, v in prof.effective().items()},
    }
    rows = ["| field | dtype | source | S1 | meaning |", "|---|---|---|---|---|"]
    for f in PARAM_FIELDS:
        unit = f" x {f.scale:.0e}".replace("+0", "") if f.scale != 1.0 else ""
        settle = ", in the settle coin" if f.settle else ""
        value = f"{s1[f.source]:g}" if f.source in s1 else "-"
        rows.append(f"| `{f.name}` | {f.dtype} | `{f.source}`{unit}{settle} | {value} | {f.doc} |")
    return "\n".join(rows)


def env_table() -> str:
    from mmbot.env import VARS

    rows = ["| variable | what it does | when unset |", "|---|---|---|"]
    rows += [f"| `{v.name}` | {v.doc} | {v.unset} |" for v in VARS.values()]
    return "\n".join(rows)


TABLES = {"params": params_table, "env": env_table}


def render(text: str) -> str:
    """``text`` with every generated table replaced by its current version."""
    for name, make in TABLES.items():
        begin, end = _BEGIN.format(name=name), _END.format(name=name)
        head, found, rest = text.partition(begin)
        if not found:
            raise ValueError(f"docs/config.md: marker {begin!r} is missing")
        _, found_end, tail = rest.partition(end)
        if not found_end:
            raise ValueError(f"docs/config.md: marker {end!r} is missing")
        text = f"{head}{begin}\n{make()}\n{end}{tail}"
    return text


def main(argv: list[str]) -> int:
    current = DOC.read_text()
    fresh = render(current)
    if "--write" in argv:
        DOC.write_text(fresh)
        return 0
    print("docs/config.md is " + ("current" if fresh == current else "stale (run with --write)"))
    return 0 if fresh == current else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
