"""`mmbot cache info|clear`: the parsed-file cache (``mmbot.data.cache``) and numba's compiled code
(``mmbot.jitcache``), their sizes and bounds. docs/cache.md explains both."""

from __future__ import annotations

import shutil
from pathlib import Path

import typer

from mmbot import env

app = typer.Typer(no_args_is_help=True)


def _tree_bytes(d: Path) -> int:
    return sum(f.stat().st_size for f in d.rglob("*") if f.is_file())


def _compiled_dirs() -> tuple[Path | None, list[Path]]:
    """numba's cache directory for the current sources and every version kept beside it."""
    cur = env.read("NUMBA_CACHE_DIR")
    if not cur:
        return None, []
    current = Path(cur)
    return current, sorted(d for d in current.parent.glob("numba-*") if d.is_dir())


@app.command("info")
def info() -> None:
    """Where the caches are, how much they hold, and the parsed-file cache's bound."""
    from mmbot.data import cache

    i = cache.info()
    if i["dir"] is None:
        typer.echo("parsed-file cache: off (MMBOT_CACHE_DIR=off)")
    else:
        typer.echo(
            f"parsed-file cache: {i['dir']}: {i['entries']} entries, {i['bytes'] / 1e6:.1f} MB "
            f"of {i['max_bytes'] / 1e6:.0f} MB (${cache.MAX_MB_ENV}; least recently used out)"
        )
    current, dirs = _compiled_dirs()
    if current is None:
        typer.echo("compiled code: numba's cache directory is not set")
        return
    total = sum(_tree_bytes(d) for d in dirs)
    typer.echo(
        f"compiled code: {current} ({len(dirs)} source version(s) kept, {total / 1e6:.1f} MB; "
        "older versions are deleted automatically)"
    )


@app.command("clear")
def clear(
    compiled: bool = typer.Option(
        False, "--compiled", help="also delete numba's compiled code (next run compiles again)"
    ),
) -> None:
    """Delete the parsed-file cache (and with --compiled numba's compiled code)."""
    from mmbot.data import cache

    n, size = cache.clear()
    typer.echo(f"parsed-file cache: removed {n} file(s), {size / 1e6:.1f} MB")
    if compiled:
        _, dirs = _compiled_dirs()
        size = sum(_tree_bytes(d) for d in dirs)
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)
        typer.echo(f"compiled code: removed {len(dirs)} directory(ies), {size / 1e6:.1f} MB")
