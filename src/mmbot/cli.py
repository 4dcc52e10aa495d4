"""The ``mmbot`` command: assembles the command groups and turns errors into one-line messages."""

from __future__ import annotations

import signal
import sys
from types import FrameType

import typer

from mmbot import env
from mmbot.jitcache import configure as _configure_jit_cache
from mmbot.jitsignals import in_result_boxing

_configure_jit_cache()  # the CLI's entry point: before the commands import compiled modules

from mmbot.commands import backtest as _backtest  # noqa: E402
from mmbot.commands import cache as _cache  # noqa: E402
from mmbot.commands import data as _data  # noqa: E402
from mmbot.commands import demo as _demo  # noqa: E402
from mmbot.commands import gate as _gate  # noqa: E402
from mmbot.commands import live as _live  # noqa: E402
from mmbot.commands import replay_compare as _replay_compare  # noqa: E402
from mmbot.commands import report as _report  # noqa: E402
from mmbot.commands import soak as _soak  # noqa: E402
from mmbot.commands import sweep as _sweep  # noqa: E402
from mmbot.errors import UserError  # noqa: E402
from mmbot.extras import OPTIONAL_MODULES, missing_line  # noqa: E402

_typer_app = typer.Typer(
    name="mmbot",
    help="Market making with exact per-fill edge attribution, self-tuning soak runs and a KPI gate.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
_typer_app.add_typer(_data.app, name="data", help="Inspect, convert and calibrate market data.")
_typer_app.add_typer(_cache.app, name="cache", help="Where the caches are and how big; clear them.")
_typer_app.command("backtest")(_backtest.backtest)
_typer_app.command("demo")(_demo.demo)
_typer_app.command("gate")(_gate.gate)
_typer_app.command("report")(_report.report)
_typer_app.command("replay-compare")(_replay_compare.replay_compare)
_typer_app.command("soak")(_soak.soak)
_typer_app.command("sweep")(_sweep.sweep)
for _name, _fn in _live.COMMANDS.items():
    _typer_app.command(_name)(_fn)


EXIT_USER = 2
EXIT_BUG = 3
EXIT_INTERRUPTED = 130


def _sigterm_as_interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM (and Ctrl-C) behave as Ctrl-C: the same cleanup (staging removed, live orders
    cancelled). Called while a compiled function's results are boxed (`jitsignals`), the
    interrupt is raised again a moment later, outside it."""
    if in_result_boxing(frame) and _redeliver_later():
        return
    raise KeyboardInterrupt


_REDELIVER_S = 0.05  # a swallowed or deferred interrupt is raised again this much later
_SWALLOWED: list[bool] = []


def _redeliver_later() -> bool:
    """Raise the interrupt again in ``_REDELIVER_S`` (False where there is no interval timer)."""
    if not hasattr(signal, "setitimer"):
        return False
    signal.signal(signal.SIGALRM, _sigterm_as_interrupt)
    signal.setitimer(signal.ITIMER_REAL, _REDELIVER_S)
    return True


def _redeliver_swallowed_interrupt(unraisable) -> None:
    """An interrupt that lands while the JIT compiler is inside a ctypes callback is swallowed
    ("Exception ignored on calling ctypes callback"): raise it again a moment later, outside it,
    so a SIGTERM or Ctrl-C during a compile still stops the run (exit 130)."""
    if isinstance(unraisable.exc_value, KeyboardInterrupt) and _redeliver_later():
        _SWALLOWED.append(True)  # the compile it cut short may fail next: that is this interrupt
        return
    sys.__unraisablehook__(unraisable)


def _interrupted(exc: BaseException) -> bool:
    """Ctrl-C delivered inside a compiled kernel surfaces as a SystemError whose context is the
    KeyboardInterrupt; it is an interruption, not a bug."""
    seen = 0
    e: BaseException | None = exc
    while e is not None and seen < 8:
        if isinstance(e, KeyboardInterrupt):
            return True
        e = e.__cause__ or e.__context__
        seen += 1
    return False


def _os_error_line(exc: OSError) -> str:
    """One line naming the path (unwritable, full disk, a file where a directory is needed...)."""
    what = exc.strerror or type(exc).__name__
    names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
    if names:
        return f"{' -> '.join(names)}: {what}"
    return f"cannot read or write: {what}"


def app() -> None:
    """Entry point: run the CLI; a UserError prints one line and exits 2, never a traceback."""
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _sigterm_as_interrupt)
    sys.unraisablehook = _redeliver_swallowed_interrupt
    try:
        from mmbot.staging import clean_stale

        clean_stale()
        rv = _typer_app(standalone_mode=False)
        if isinstance(rv, int):
            if rv == EXIT_INTERRUPTED:  # typer returns Ctrl-C (and our SIGTERM) as 130
                typer.echo("interrupted", err=True)
            sys.exit(rv)
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        if _interrupted(exc):  # typer turns Ctrl-C (and our SIGTERM) into Exit(130)
            typer.echo("interrupted", err=True)
        sys.exit(exc.exit_code)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except OSError as exc:  # the environment, not a bug: a path, a full disk, a busy port
        if env.read("MMBOT_DEBUG"):
            raise
        typer.echo(f"error: {_os_error_line(exc)}", err=True)
        sys.exit(EXIT_USER)
    except Exception as exc:  # noqa: BLE001 - the last line of defence for the user interface
        # usage errors of the (vendored) click parser: print its one-line message
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):
            exc.show()
            sys.exit(exc.exit_code)
        if type(exc).__name__ == "Abort" or _interrupted(exc) or _SWALLOWED:
            typer.echo("interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        if isinstance(exc, ModuleNotFoundError) and exc.name in OPTIONAL_MODULES:
            typer.echo(f"error: {missing_line(exc.name)}", err=True)
            sys.exit(EXIT_USER)
        if env.read("MMBOT_DEBUG"):
            raise
        typer.echo(
            f"internal error: {type(exc).__name__}: {exc} (set MMBOT_DEBUG=1 for a traceback)",
            err=True,
        )
        sys.exit(EXIT_BUG)
    finally:
        _disarm_redelivery()


def _disarm_redelivery() -> None:
    """A re-delivery still pending when the run ends must not outlive it: its SIGALRM landing in
    the interpreter's shutdown killed an interrupted soak (exit -14 instead of 130, under load)."""
    if _SWALLOWED and hasattr(signal, "setitimer"):
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        signal.setitimer(signal.ITIMER_REAL, 0)


if __name__ == "__main__":
    app()
