"""The one config model's venue section and the live runner's settings: a backtest's venue is
derived from its ``RunConfig`` in one place (``RunConfig.venue_config``), the venue reads the same
fees and rate limit the record carries, and bad values are one ``UserError`` line naming the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mmbot import sim
from mmbot.backtest import MAX_ORDER_SLOTS, RunSettings, build_config
from mmbot.config import load_profile
from mmbot.config.run import RunConfig
from mmbot.errors import UserError
from mmbot.strategy.params import params_record, run_config

REF_PX = 100.0


def _config(**settings: Any) -> RunConfig:
    s = RunSettings(profile=load_profile("S1"), strategy="glft", **settings)
    return build_config(s, 0.1, 0.001, REF_PX)[0]


def test_the_backtest_venue_comes_from_the_run_config() -> None:
    cfg = _config(
        latency_ms=2.5,
        queue_model="log",
        partial_fills=False,
        maker_fee_rate=-0.0001,
        taker_fee_rate=0.0004,
        rate_limit_per_s=7,
        start_position_qty=0.004,
        start_cash=-0.4,
    )
    v = cfg.venue_config()
    assert isinstance(v, sim.VenueConfig)
    assert (v.entry_latency_ns, v.response_latency_ns) == (2_500_000, 2_500_000)
    assert (v.queue_model, v.partial_fills, v.max_orders) == ("log", False, MAX_ORDER_SLOTS)
    assert (v.start_position_qty, v.start_cash) == (0.004, -0.4)
    assert (v.tick_px, v.lot_qty) == (cfg.market.tick_px, cfg.market.lot_qty) == (0.1, 0.001)
    assert (v.contract_size, v.inverse) == (cfg.spec.contract_size, cfg.spec.inverse)
    # the venue charges the fees and counts the rate the guards read from the record
    rec = params_record(cfg)[0]
    assert v.maker_fee_rate == float(rec["maker_fee_rate"]) == -0.0001
    assert v.taker_fee_rate == float(rec["taker_fee_rate"]) == 0.0004
    assert v.rate_limit_per_s == int(rec["rate_limit_per_s"]) == 7


def test_the_venue_defaults_and_the_profile_rate_limit() -> None:
    cfg = _config()
    v = cfg.venue_config()
    prof = load_profile("S1")
    assert v.rate_limit_per_s == int(prof.venue.rate_limit_per_s)
    assert (v.entry_latency_ns, v.queue_model, v.partial_fills) == (10_000_000, "power2", True)
    assert cfg.run.wake_interval_ms > 0  # the quoter's own when the settings leave it None
    assert _config(wake_interval_ms=25.0).run.wake_interval_ms == 25.0


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"queue_model": "fifo"}, r"^run configuration: venue\.queue_model: .*'fifo'"),
        ({"latency_ms": -1.0}, r"^run configuration: venue\.entry_latency_ns: .*greater than or"),
        ({"start_cash": float("nan")}, r"^run configuration: venue\.start_cash: .*finite"),
        ({"wake_interval_ms": 0.0}, r"^run configuration: run\.wake_interval_ms: .*greater than"),
        ({"rate_limit_per_s": -2}, r"^run configuration: run\.rate_limit_per_s: .*greater than"),
    ],
)
def test_a_bad_run_setting_is_one_line_naming_its_field(settings, message) -> None:
    with pytest.raises(UserError, match=message) as info:
        _config(**settings)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"max_orders": 0}, r"^VenueSettings\.max_orders: .*greater than or equal to 1 \(got 0\)$"),
        ({"queue_model": "fifo"}, r"^VenueSettings\.queue_model: Value error, queue_model 'fifo'"),
        ({"start_cash": float("nan")}, r"^VenueSettings\.start_cash: .*finite number \(got nan\)$"),
        ({"ladder_pad_ratio": 2.0}, r"^VenueSettings\.ladder_pad_ratio: .*less than or equal to 1"),
        ({"entry_latency_ms": 1.0}, r"^VenueSettings\.entry_latency_ms: unknown key$"),
    ],
)
def test_venue_settings_built_directly_are_one_line_naming_the_field(kw, message) -> None:
    """``VenueSettings`` built on its own says a bad value in one line naming it (was pydantic's
    multi-line report); as ``RunConfig``'s section the run configuration names the path instead."""
    with pytest.raises(UserError, match=message) as info:
        sim.config.VenueSettings(**kw)
    assert "\n" not in str(info.value)
    with pytest.raises(UserError, match=r"^run configuration: venue\.") as nested:
        run_config(*_s1(), tick_px=0.1, lot_qty=0.001, ref_px=REF_PX, venue=kw)
    assert "\n" not in str(nested.value)


def _s1() -> tuple:
    prof = load_profile("S1")
    return prof.runtime, prof


def test_a_run_without_venue_settings_has_no_venue() -> None:
    prof = load_profile("S1")
    cfg = run_config(prof.runtime, prof, tick_px=0.1, lot_qty=0.001, ref_px=REF_PX)
    assert cfg.venue is None
    with pytest.raises(UserError, match=r"^run configuration: venue: "):
        cfg.venue_config()


def test_venue_config_is_frozen_and_checked_on_construction() -> None:
    v = sim.VenueConfig(tick_px=0.1, lot_qty=1.0)
    with pytest.raises(ValueError, match="frozen"):
        v.tick_px = 0.2
    with pytest.raises(UserError, match=r"^VenueConfig\.max_orders: .*greater than or equal to 1"):
        sim.VenueConfig(tick_px=0.1, lot_qty=1.0, max_orders=0)
    with pytest.raises(UserError, match=r"^VenueConfig\.extra: unknown key$"):
        sim.VenueConfig(tick_px=0.1, lot_qty=1.0, extra={})
    with pytest.raises(UserError, match=r"^VenueConfig\.tick_px: Field required"):
        sim.VenueConfig(lot_qty=1.0)
    with pytest.raises(UserError, match="expected a mmbot.sim.VenueConfig"):
        sim.config.validate_config({"tick_px": 0.1})  # type: ignore[arg-type]


# -- the live runner's settings -------------------------------------------------------------------
def _runner(**kw: Any):
    from mmbot.live.bybit import Endpoints
    from mmbot.live.runner import RunnerConfig

    nowhere = Endpoints("http://127.0.0.1:9", "ws://127.0.0.1:9", "ws://127.0.0.1:9")
    base = dict(mode="paper", symbol="BTCUSDT", endpoints=nowhere, out_dir=Path("out"))
    return RunnerConfig(**{**base, **kw})


@pytest.mark.parametrize(
    "kw, message",
    [
        (
            {"mode": "demo"},
            r"^RunnerConfig\.mode: Input should be 'paper' or 'live' \(got 'demo'\)$",
        ),
        ({"symbol": ""}, r"^RunnerConfig\.symbol: "),
        (
            {"order_qty": -1.0},
            r"^RunnerConfig\.order_qty: Input should be greater than 0 \(got -1\.0\)$",
        ),
        ({"loss_limit_quote": float("nan")}, r"^RunnerConfig\.loss_limit_quote: .*finite"),
        ({"stale_ms": 0.0}, r"^RunnerConfig\.stale_ms: "),
        ({"metrics_port": 70000}, r"^RunnerConfig\.metrics_port: "),
        ({"book_depth": 7}, r"^RunnerConfig\.book_depth: .*7 is not one of 1, 50, 200, 500"),
        ({"maker_fee_rate": 0.5}, r"^RunnerConfig\.maker_fee_rate: "),
        ({"paper_latency_ms": -1.0}, r"^RunnerConfig\.paper_latency_ms: "),
        ({"hard_position_ratio": 0.5}, r"^RunnerConfig\.hard_position_ratio: "),
        ({"stale_msec": 10.0}, r"^RunnerConfig\.stale_msec: unknown key$"),
    ],
)
def test_a_bad_runner_setting_is_one_line_naming_the_field(kw, message) -> None:
    with pytest.raises(UserError, match=message) as info:
        _runner(**kw)
    assert "\n" not in str(info.value)


def test_runner_config_is_frozen_and_keeps_its_values() -> None:
    cfg = _runner(params={"n_levels": 2, "skew_coef": 1.5}, loss_limit_quote=250.0)
    assert cfg.params == {"n_levels": 2, "skew_coef": 1.5}
    assert isinstance(cfg.params["n_levels"], int)  # the session's records write them as given
    with pytest.raises(ValueError, match="frozen"):
        cfg.stale_ms = 1.0  # type: ignore[misc]


def test_the_session_loss_limit_is_in_its_run_config(tmp_path, monkeypatch) -> None:
    """``--loss-limit`` reaches the record through the session's RunConfig (no override after
    ``make_params``); without it the profile's ``risk.max_loss``."""
    from mmbot.live.runner import Session

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MM_RUNTIME_OVERRIDES_JSON", raising=False)
    limits = {}
    for name, loss in (("a", 250.0), ("b", None)):
        s = Session(_runner(out_dir=tmp_path / name, loss_limit_quote=loss))
        s.tick_px, s.lot_qty = 0.1, 0.001
        s.setup_params(REF_PX)
        assert s.run_config is not None and s.run_config.venue is None
        limits[name] = (s.run_config.risk.max_loss, float(s.params[0]["max_loss"]))
    assert limits["a"] == (250.0, 250.0)
    prof_loss = load_profile("S1").risk.max_loss
    assert limits["b"] == (prof_loss, prof_loss)


def test_the_session_wakes_on_its_run_config_interval(tmp_path, monkeypatch) -> None:
    """The session's timer interval is its RunConfig's ``run.wake_interval_ms`` (the quoter's own
    unless ``RunnerConfig.wake_interval_ms`` says otherwise), known from ``warm_up`` (before the
    feed starts, no book yet) and the same once the first book builds the session's own."""
    from mmbot.live.runner import Session
    from mmbot.strategy.registry import resolve

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MM_RUNTIME_OVERRIDES_JSON", raising=False)
    seen = {}
    for name, wake_ms in (("own", None), ("set", 37.0)):
        s = Session(_runner(out_dir=tmp_path / name, wake_interval_ms=wake_ms))
        assert s.next_wake() == 0  # no run configuration yet: no timer
        s.tick_px, s.lot_qty = 0.1, 0.001
        s.warm_up()
        assert s.run_config is None and s.params is None  # the session's own wait for its book
        before = s.wake_interval_ns
        s.setup_params(REF_PX)
        assert s.wake_interval_ns == before
        assert s.wake_interval_ns == int(s.run_config.run.wake_interval_ms * 1e6)
        seen[name] = s.wake_interval_ns
    assert seen["own"] == int(resolve(s.cfg.strategy).wake_interval_ms * 1e6)
    assert seen["set"] == 37_000_000


def test_every_run_setting_and_runner_field_is_mapped_in_the_docs() -> None:
    """docs/config.md's "What maps onto what" names every field of both inputs."""
    import dataclasses

    from mmbot.live.runner import RunnerConfig

    text = (Path(__file__).resolve().parents[1] / "docs" / "config.md").read_text()
    table = text[text.index("## What maps onto what") : text.index("### Knob limits")]
    fields = [f.name for f in dataclasses.fields(RunSettings)] + list(RunnerConfig.model_fields)
    missing = sorted({f for f in fields if f"`{f}`" not in table})
    assert not missing, f"docs/config.md maps no row for {missing}"
