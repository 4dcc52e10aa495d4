"""The CLI reference (docs/cli.md), generated from the typer commands themselves.

``python -m mmbot.commands.clidoc --write`` rewrites docs/cli.md; without ``--write`` it prints the
Markdown. tests/test_docs.py fails when the committed file differs from what this renders.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Any

import typer.main

HEADER = (
    "# CLI reference\n\n"
    "Generated from the commands themselves by `python -m mmbot.commands.clidoc --write`; "
    "do not edit by hand (a test fails when this file is stale).\n"
)


def _param_row(p: Any) -> str:
    if p.param_type_name == "argument":
        name = f"`{p.name.upper()}`"
    else:
        name = " / ".join(f"`{o}`" for o in [*p.opts, *p.secondary_opts])
    help_text = (getattr(p, "help", None) or "").replace("|", "\\|").replace("\n", " ")
    if p.required:
        extra = "required"
    elif p.param_type_name == "argument":
        extra = ""
    elif getattr(p, "is_flag", False) and not p.secondary_opts:
        extra = "flag"
    elif p.default is None or p.default == ():
        extra = ""
    else:
        extra = f"default `{p.default}`"
    return f"| {name} | {help_text} | {extra} |"


def _command(path: str, cmd: Any) -> list[str]:
    doc = inspect.cleandoc(cmd.help or "").split("\n\n")[0].replace("\n", " ")
    lines = [f"## `{path}`", "", doc, ""]
    params = [p for p in cmd.params if p.name != "help"]
    if params:
        lines += ["| option | meaning | |", "|---|---|---|", *map(_param_row, params), ""]
    return lines


def _walk(path: str, cmd: Any) -> list[str]:
    if hasattr(cmd, "commands"):  # a group
        out: list[str] = []
        for name in sorted(cmd.commands):
            out += _walk(f"{path} {name}", cmd.commands[name])
        return out
    return _command(path, cmd)


def render() -> str:
    from mmbot.cli import _typer_app

    group = typer.main.get_command(_typer_app)
    lines = [HEADER, (group.help or "").strip(), ""]
    lines += _walk("mmbot", group)
    return "\n".join(lines).rstrip() + "\n"


DOC_PATH = Path(__file__).resolve().parents[3] / "docs" / "cli.md"


def main(argv: list[str]) -> int:
    text = render()
    if "--write" in argv:
        DOC_PATH.write_text(text, encoding="utf-8")
        print(f"wrote {DOC_PATH}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
