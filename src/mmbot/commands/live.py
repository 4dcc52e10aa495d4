"""`mmbot paper|live|record|emulator` (Bybit V5 linear perpetuals)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from mmbot import inputs
from mmbot.commands.options import PARAM_OPTION, STRATEGY_HELP, OptionGroup
from mmbot.strategy.registry import SESSION_DEFAULT_QUOTER

EXCHANGE_DOMAINS = ("bybit.com", "bytick.com", "bybit.nl", "bybit-tr.com", "bybit.kz")
"""Bybit's public domains: a host under one of them is testnet iff its name says "testnet"."""


def _check_network(url: str, testnet: bool, mainnet: bool) -> None:
    """--testnet must not reach a mainnet host, nor --mainnet a testnet one (a local emulator is
    neither and is allowed with both)."""
    from urllib.parse import urlparse

    from mmbot.errors import UserError

    host = (urlparse(url).hostname or "").lower()
    if not host:
        raise UserError(f"--exchange-url {url!r}: not a URL (expected e.g. http://127.0.0.1:8765)")
    if not any(host == d or host.endswith("." + d) for d in EXCHANGE_DOMAINS):
        return
    is_testnet = "testnet" in host
    if testnet and not is_testnet:
        raise UserError(f"--testnet with --exchange-url {url}: that is a mainnet host")
    if mainnet and is_testnet:
        raise UserError(f"--mainnet with --exchange-url {url}: that is a testnet host")


def _endpoints(testnet: bool, mainnet: bool, exchange_url: str | None):
    from mmbot.errors import UserError
    from mmbot.live.bybit import MAINNET, TESTNET, endpoints_at

    if testnet and mainnet:
        raise UserError("--testnet and --mainnet: choose one")
    if exchange_url:
        _check_network(exchange_url, testnet, mainnet)
        return endpoints_at(exchange_url)
    if mainnet:
        return MAINNET
    if testnet:
        return TESTNET
    return None


def _non_negative(option: str, value: float | None) -> float | None:
    return inputs.finite(option, value, low=0.0)


# the options' checks, in the order they are made: (RunnerConfig field, option, check); a check
# returns the value converted or raises UserError naming the option (exit 2)
_CHECKS: tuple[tuple[str, str, Callable[[str, Any], Any]], ...] = (
    ("order_qty", "--order-qty", inputs.positive),
    ("max_position_qty", "--max-position-qty", inputs.positive),
    ("loss_limit_quote", "--loss-limit", inputs.positive),
    ("stale_ms", "--stale-ms", inputs.positive),
    ("max_clock_drift_ms", "--max-clock-drift-ms", inputs.positive),
    ("rest_timeout_s", "--rest-timeout-s", inputs.positive),
    ("clock_check_s", "--clock-check-s", inputs.positive),
    ("duration_s", "--duration-s", inputs.positive),
    ("paper_latency_ms", "--latency-ms", _non_negative),
    ("metrics_port", "--metrics-port", inputs.port),
)


def _session(mode: str, endpoints, keys, fields: dict[str, Any]) -> int:
    """Run a paper or live session: ``fields`` are `RunnerConfig`'s (`_session_fields`), checked
    here (`_CHECKS`), every output path too, before anything connects."""
    from mmbot.live.runner import RunnerConfig, run_session
    from mmbot.strategy.registry import make_qparams, parse_param_args, resolve

    params = _with_override_params(fields["overrides_file"], parse_param_args(fields["params"]))
    make_qparams(resolve(fields["strategy"]), params, fields["strategy"])  # a bad quoter: exit 2
    fields = {**fields, "params": params}
    for name, option, check in _CHECKS:
        if name in fields:
            fields[name] = check(option, fields[name])
    _book_depth(fields["book_depth"])
    inputs.output_dir("--out", fields["out_dir"])
    journal = fields["journal_path"]
    if journal is not None:
        from mmbot.live.journal import check_journal

        inputs.output_file("--journal", journal)
        check_journal(journal)
    if fields["record_path"] is not None:
        inputs.output_file("--record", fields["record_path"])
    return run_session(RunnerConfig(mode=mode, endpoints=endpoints, keys=keys, **fields))


def _book_depth(depth: int) -> int:
    from mmbot.errors import UserError
    from mmbot.live.runner import BOOK_DEPTHS

    if depth not in BOOK_DEPTHS:
        raise UserError(f"--book-depth: {depth} is not one of {', '.join(map(str, BOOK_DEPTHS))}")
    return depth


_SYMBOL = typer.Option(..., "--symbol", help="linear perpetual, e.g. XRPUSDT")
_OUT = typer.Option(Path("artifacts/live"), "--out", help="records, EDGE_REPORT, journal, live.log")
_URL = typer.Option(
    None, "--exchange-url", help="one host for REST+WS, e.g. http://127.0.0.1:8765 (the emulator)"
)
_RECORD = typer.Option(
    None,
    "--record",
    help="also write the public stream traded on to this capture file (the `mmbot record` format)",
)


# options paper and live share (each command's own options are written in its signature)
_PROFILE = typer.Option("S1", "--profile")
_OVERRIDES = typer.Option(
    None,
    "--overrides",
    help="runtime overrides JSON file (else $MM_RUNTIME_OVERRIDES_JSON; a soak's "
    "artifacts/soak/runtime_overrides.json is applied only when named here)",
)
_STRATEGY = typer.Option(SESSION_DEFAULT_QUOTER, "--strategy", help=STRATEGY_HELP)
_ORDER_QTY = typer.Option(None, "--order-qty")
_MAX_POSITION = typer.Option(None, "--max-position-qty")
_STALE_MS = typer.Option(3000.0, "--stale-ms")
_MAX_CLOCK_DRIFT_MS = typer.Option(1000.0, "--max-clock-drift-ms")
_BOOK_DEPTH = typer.Option(50, "--book-depth", help="orderbook.N depth topic (50 or 500)")
_DURATION_S = typer.Option(None, "--duration-s", help="stop after this many seconds")
_JOURNAL = typer.Option(None, "--journal", help="SQLite journal (default OUT/journal.sqlite)")
_LOSS_LIMIT = typer.Option(None, "--loss-limit", help="kill switch, quote currency")
_METRICS_PORT = typer.Option(0, "--metrics-port", help="Prometheus /metrics on 127.0.0.1 (0 = off)")


# the shared options whose RunnerConfig field has another name
_FIELD_OF_OPTION: dict[str, str] = {
    "out": "out_dir",
    "journal": "journal_path",
    "overrides": "overrides_file",
    "param": "params",
    "loss_limit": "loss_limit_quote",
    "record": "record_path",
}


def _session_fields(**values: Any) -> dict[str, Any]:
    """`RunnerConfig`'s fields from the options paper and live share, as given."""
    return {_FIELD_OF_OPTION.get(k, k): v for k, v in values.items()}


# the options paper and live take alike, handed to _session as RunnerConfig's fields (each
# command's own options are written in its signature)
_SESSION_OPTIONS = OptionGroup(
    into="shared",
    options=(
        ("symbol", str, _SYMBOL),
        ("out", Path, _OUT),
        ("duration_s", float | None, _DURATION_S),
        ("journal", Path | None, _JOURNAL),
        ("profile", str, _PROFILE),
        ("overrides", Path | None, _OVERRIDES),
        ("strategy", str, _STRATEGY),
        ("param", list[str] | None, PARAM_OPTION),
        ("order_qty", float | None, _ORDER_QTY),
        ("max_position_qty", float | None, _MAX_POSITION),
        ("loss_limit", float | None, _LOSS_LIMIT),
        ("stale_ms", float, _STALE_MS),
        ("max_clock_drift_ms", float, _MAX_CLOCK_DRIFT_MS),
        ("metrics_port", int, _METRICS_PORT),
        ("book_depth", int, _BOOK_DEPTH),
        ("record", Path | None, _RECORD),
    ),
    collect=_session_fields,
)


@_SESSION_OPTIONS
def paper(
    shared: dict[str, Any] | None = None,  # _SESSION_OPTIONS
    exchange_url: str | None = _URL,
    testnet: bool = typer.Option(False, "--testnet", help="public data from Bybit testnet"),
    mainnet: bool = typer.Option(
        False, "--mainnet", help="public data from Bybit mainnet (default)"
    ),
    latency_ms: float | None = typer.Option(
        None,
        "--latency-ms",
        help="order entry latency of the paper venue (default: the feed's measured median latency)",
    ),
) -> int:
    """Paper trading: live public data, fills from the simulated venue; same records as a backtest."""
    eps = _endpoints(testnet, mainnet, exchange_url)
    if eps is None:
        from mmbot.live.bybit import MAINNET

        eps = MAINNET
    return _session("paper", eps, None, {**(shared or {}), "paper_latency_ms": latency_ms})


@_SESSION_OPTIONS
def live(
    shared: dict[str, Any] | None = None,  # _SESSION_OPTIONS
    confirm_live: bool = typer.Option(
        False, "--confirm-live", help="required: this sends real orders"
    ),
    testnet: bool = typer.Option(False, "--testnet"),
    mainnet: bool = typer.Option(False, "--mainnet"),
    exchange_url: str | None = _URL,
    keys_file: Path | None = typer.Option(
        None,
        "--keys-file",
        help="JSON {key, secret}, mode 0600; else $BYBIT_API_KEY/$BYBIT_API_SECRET",
    ),
    rest_timeout_s: float = typer.Option(
        2.0, "--rest-timeout-s", help="an order request unanswered this long has an unknown outcome"
    ),
    clock_check_s: float = typer.Option(
        5.0, "--clock-check-s", help="how often the clock drift is checked"
    ),
) -> int:
    """Live trading on Bybit V5 (real orders): needs --confirm-live and --testnet or --mainnet."""
    from mmbot.errors import UserError
    from mmbot.live.signing import load_keys

    shared = shared or {}
    if not confirm_live:
        raise UserError("live trading sends real orders: add --confirm-live")
    if not (testnet or mainnet):
        raise UserError("live trading: say --testnet or --mainnet explicitly")
    if mainnet and (shared.get("order_qty") is None or shared.get("max_position_qty") is None):
        # the profile's sizes are backtest defaults; real money gets sizes the user chose
        raise UserError("--mainnet needs explicit --order-qty and --max-position-qty")
    eps = _endpoints(testnet, mainnet, exchange_url)
    keys = load_keys(keys_file)
    fields = {
        **shared,
        "paper_latency_ms": 0.0,
        "rest_timeout_s": rest_timeout_s,
        "clock_check_s": clock_check_s,
    }
    return _session("live", eps, keys, fields)


def record(
    symbol: str = _SYMBOL,
    out: Path = typer.Option(
        ..., "--out", help="capture file (Bybit V5 JSON lines, the format of recorded files)"
    ),
    exchange_url: str | None = _URL,
    testnet: bool = typer.Option(False, "--testnet"),
    duration_s: float = typer.Option(60.0, "--duration-s"),
) -> int:
    """Record the public stream (orderbook.50 + publicTrade) to a capture file for later backtests."""
    from mmbot import inputs
    from mmbot.live.record import record_command

    duration_s = inputs.positive("--duration-s", duration_s)
    inputs.output_file("--out", out)
    eps = _endpoints(testnet, False, exchange_url)
    if eps is None:
        from mmbot.live.bybit import MAINNET

        eps = MAINNET
    return record_command(symbol, out, eps, duration_s)


def emulator(
    port: int = typer.Option(8765, "--port", help="TCP port on 127.0.0.1 (0 = any free port)"),
    data: Path = typer.Option(
        ..., "--data", help="capture replayed as the market (any format load_events reads)"
    ),
    symbol: str = typer.Option("XRPUSDT", "--symbol"),
    speed: float = typer.Option(1.0, "--speed", help="replay speed (x real time)"),
    loop: bool = typer.Option(True, "--loop/--no-loop", help="restart the replay at the end"),
    keys_file: Path | None = typer.Option(
        None, "--keys-file", help="accepted API keys; else $BYBIT_API_KEY/$BYBIT_API_SECRET"
    ),
    fault: list[str] = typer.Option([], "--fault", help="KIND[:COUNT|SECONDS][@AT_S], repeatable"),
    maker_fee_rate: float = typer.Option(0.0002, "--maker-fee-rate"),
    taker_fee_rate: float = typer.Option(0.00055, "--taker-fee-rate"),
    duration_s: float | None = typer.Option(None, "--duration-s"),
    tick_px: float | None = typer.Option(None, "--tick-px"),
    lot_qty: float | None = typer.Option(None, "--lot-qty"),
    queue_model: str = typer.Option(
        "risk_averse", "--queue-model", help="queue model of the matching venue (mmbot.sim)"
    ),
    book_depth: int = typer.Option(50, "--book-depth", help="orderbook.N topic served (50 or 500)"),
    start_on_subscribe: bool = typer.Option(
        False, "--start-on-subscribe", help="start the replay when the first client subscribes"
    ),
) -> int:
    """Local Bybit V5 exchange emulator (REST + websocket on 127.0.0.1) replaying a capture."""
    import asyncio

    from mmbot import inputs
    from mmbot.live.emulator import EmulatorConfig, load_market, parse_fault_spec, serve
    from mmbot.live.signing import load_keys

    inputs.port("--port", port)
    inputs.positive("--speed", speed)
    inputs.finite("--maker-fee-rate", maker_fee_rate)
    inputs.finite("--taker-fee-rate", taker_fee_rate)
    inputs.positive("--duration-s", duration_s)
    inputs.positive("--tick-px", tick_px)
    inputs.positive("--lot-qty", lot_qty)
    _book_depth(book_depth)
    scheduled = [parse_fault_spec(f) for f in fault]
    keys = load_keys(keys_file)
    events, tick, lot = load_market(data)
    cfg = EmulatorConfig(
        symbol=symbol,
        tick_px=tick_px or tick,
        lot_qty=lot_qty or lot,
        keys=keys,
        maker_fee_rate=maker_fee_rate,
        taker_fee_rate=taker_fee_rate,
        speed=speed,
        loop=loop,
        scheduled_faults=scheduled,
        queue_model=queue_model,
        depth=book_depth,
        wait_for_subscriber=start_on_subscribe,
    )
    try:
        asyncio.run(serve(events, cfg, "127.0.0.1", port, duration_s))
    except OSError as exc:
        from mmbot.errors import UserError

        raise UserError(f"--port {port}: cannot listen ({exc.strerror})") from exc
    except KeyboardInterrupt:
        pass
    return 0


COMMANDS: dict[str, Callable[..., object]] = {
    "paper": paper,
    "live": live,
    "record": record,
    "emulator": emulator,
}


def _with_override_params(overrides: Path | None, params: dict[str, float]) -> dict[str, float]:
    """The quoter parameters of the overrides source the session loads (``param.NAME`` keys, e.g.
    a soak's tuned ones) under the command line's ``--param``."""
    from mmbot.config import load_overrides
    from mmbot.knobs import split_knobs

    return {**split_knobs(load_overrides(overrides, default_file=None)[0])[1], **params}
