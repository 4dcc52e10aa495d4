"""The params record is generated from one table (`PARAM_FIELDS`): every field of the table is in
``PARAMS_DTYPE``, every field is written by ``make_params`` from the source the table names, and
every number of the profile's quoting / risk / base sections reaches the record (or is listed as
used on the way to another field). A field added to the table without a source, or a profile
field the record never reads, fails here."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from mmbot import knobs
from mmbot.config import Profile, load_profile
from mmbot.config.run import RunConfig
from mmbot.errors import UserError
from mmbot.strategy.params import (
    PARAM_FIELDS,
    PARAMS_DTYPE,
    SOURCES,
    make_params,
    params_record,
    run_config,
)

REF_PX = 100.0
# profile numbers that are not a record field themselves but size one (make_params' docstring)
USED_FOR_ANOTHER_FIELD = {"quoting.order_notional", "risk.max_position_orders"}


def _make(profile: Profile, knob_values: dict[str, float] | None = None) -> np.void:
    kv = dict(profile.runtime if knob_values is None else knob_values)
    return make_params(kv, profile, tick_px=0.1, lot_qty=0.001, ref_px=REF_PX)[0]


def _other_value(model: Any, name: str) -> Any:
    """A value of ``model.name`` other than the current one that the model accepts."""
    old = getattr(model, name)
    for cand in (old * 1.5 + 1, old * 0.5, old + 0.01, old - 0.01):
        cand = type(old)(cand)
        if cand == old:
            continue
        try:
            return type(model).model_validate({**model.model_dump(), name: cand}), cand
        except ValueError:
            continue
    raise AssertionError(f"no other valid value for {name}")


def test_the_dtype_is_the_table() -> None:
    assert PARAMS_DTYPE.names == tuple(f.name for f in PARAM_FIELDS)
    assert len({f.name for f in PARAM_FIELDS}) == len(PARAM_FIELDS)
    for f in PARAM_FIELDS:
        assert PARAMS_DTYPE[f.name] == np.dtype(f.dtype), f.name
        assert f.source.partition(".")[0] in SOURCES, f"{f.name}: unknown source {f.source}"
        assert f.doc.strip(), f"{f.name} has no doc"


def test_every_field_has_a_source_that_moves_it() -> None:
    """Every table field is covered by one of the tests below (profile, knobs, base + deltas) or
    by the run arguments here: change each argument, exactly its fields follow."""
    prof = load_profile("S1")
    base_kw: dict[str, Any] = dict(tick_px=0.1, lot_qty=0.001, ref_px=REF_PX)
    before = make_params(prof.runtime, prof, **base_kw)[0]
    changes: dict[str, tuple[dict[str, Any], set[str]]] = {
        "tick_px": ({"tick_px": 0.5}, {"tick_px"}),
        "lot_qty": ({"lot_qty": 7.0}, {"lot_qty", "order_qty", "max_position_qty"}),
        "order_qty": ({"order_qty": 3.0}, {"order_qty", "max_position_qty"}),
        "max_position_qty": ({"max_position_qty": 9.0}, {"max_position_qty"}),
        "maker_fee_rate": ({"maker_fee_rate": -0.0001}, {"maker_fee_rate"}),
        "taker_fee_rate": ({"taker_fee_rate": 0.0009}, {"taker_fee_rate"}),
        "rate_limit_per_s": ({"rate_limit_per_s": 3.0}, {"rate_limit_per_s"}),
        "strategy": ({"strategy": "touch"}, {"strategy"}),
    }
    moved_by_args: set[str] = set()
    for arg, (kw, expect) in changes.items():
        after = make_params(prof.runtime, prof, **{**base_kw, **kw})[0]
        moved = {n for n in PARAMS_DTYPE.names if before[n] != after[n]}
        assert moved == expect, arg
        moved_by_args |= moved
    from mmbot.instruments import spec_for

    spot = make_params(prof.runtime, prof, **base_kw, spec=spec_for("bybit-spot", "BTCUSDT"))[0]
    assert int(spot["spot"]) == 1 and int(before["spot"]) == 0
    inverse = spec_for("bybit-inverse", "BTCUSD")
    inv = make_params(prof.runtime, prof, **base_kw, spec=inverse)[0]
    assert int(inv["inverse"]) == 1 and float(inv["contract_size"]) == inverse.contract_size
    ref = make_params(prof.runtime, prof, **base_kw, strategy="glft_ref")[0]
    assert int(ref["requote_mode"]) != int(before["requote_mode"])  # cancel_new vs replace
    moved_by_args |= {"spot", "inverse", "contract_size", "requote_mode"}
    by_profile = {f.name for f in PARAM_FIELDS if f.source.startswith(_PROFILE_SECTIONS)}
    uncovered = {f.name for f in PARAM_FIELDS} - moved_by_args - by_profile
    assert not uncovered, f"fields no test moves: {sorted(uncovered)}"


_PROFILE_SECTIONS = ("quoting.", "risk.", "knobs.", "effective.")


@pytest.mark.parametrize(
    "field",
    [f for f in PARAM_FIELDS if f.source.startswith(("quoting.", "risk."))],
    ids=lambda f: f.name,
)
def test_a_profile_field_moves_its_record_field(field) -> None:
    """Change the profile value the table names: its record field (and no other) follows."""
    prof = load_profile("S1")
    before = _make(prof)
    section, _, name = field.source.partition(".")
    new_section, new_value = _other_value(getattr(prof, section), name)
    after = _make(prof.model_copy(update={section: new_section}))
    expect = float(new_value) * field.scale
    if field.dtype == "i8":
        expect = round(expect)
    assert float(after[field.name]) == pytest.approx(expect)
    moved = {n for n in PARAMS_DTYPE.names if before[n] != after[n]}
    assert moved == {field.name}


@pytest.mark.parametrize(
    "field", [f for f in PARAM_FIELDS if f.source.startswith("knobs.")], ids=lambda f: f.name
)
def test_a_knob_moves_its_record_field(field) -> None:
    prof = load_profile("S1")
    name = field.source.partition(".")[2]
    lo, hi = knobs.RUNTIME_LIMITS[name]
    kv = dict(prof.runtime)
    kv[name] = lo if kv[name] != lo else hi
    before, after = _make(prof), _make(prof, kv)
    assert float(after[field.name]) == pytest.approx(kv[name] * field.scale)
    assert {n for n in PARAMS_DTYPE.names if before[n] != after[n]} == {field.name}


def test_effective_fields_follow_the_profile_base() -> None:
    prof = load_profile("S1")
    for f in (f for f in PARAM_FIELDS if f.source.startswith("effective.")):
        name = f.source.partition(".")[2]
        new_base, _ = _other_value(prof.base, name)
        moved = prof.model_copy(update={"base": new_base})
        assert float(_make(moved)[f.name]) == pytest.approx(moved.effective()[name]), f.name
        assert moved.effective()[name] != prof.effective()[name], f.name


def test_every_profile_number_reaches_the_record() -> None:
    """A new profile parameter must be a record field (one table line) or be listed here."""
    read = {f.source for f in PARAM_FIELDS}
    eff = {f.source.partition(".")[2] for f in PARAM_FIELDS if f.source.startswith("effective.")}
    missing = []
    for section in ("quoting", "risk"):
        for name in type(Profile.model_fields[section].default).model_fields:
            key = f"{section}.{name}"
            if key not in read and key not in USED_FOR_ANOTHER_FIELD:
                missing.append(key)
    base_names = type(Profile.model_fields["base"].default).model_fields
    missing += [f"base.{n}" for n in base_names if n not in eff]
    assert not missing, f"profile fields no record field reads: {missing}"


def test_inverse_money_limits_are_in_the_settle_coin() -> None:
    from mmbot.instruments import spec_for

    prof = load_profile("S1")
    risk = prof.risk.model_copy(update={"max_drawdown": 50.0})
    prof = prof.model_copy(update={"risk": risk})
    spec = spec_for("bybit-inverse", "BTCUSD")
    rec = make_params(prof.runtime, prof, tick_px=0.5, lot_qty=1.0, ref_px=REF_PX, spec=spec)[0]
    settled = [f.name for f in PARAM_FIELDS if f.settle]
    assert settled == ["max_loss", "max_drawdown"]
    assert float(rec["max_loss"]) == pytest.approx(prof.risk.max_loss / REF_PX)
    assert float(rec["max_drawdown"]) == pytest.approx(50.0 / REF_PX)
    assert int(rec["inverse"]) == 1 and math.isfinite(float(rec["contract_size"]))


def test_every_source_is_a_run_config_field() -> None:
    """The record is generated from RunConfig: each source is one of its section.field paths (the
    ``venue`` section feeds the simulated venue, ``RunConfig.venue_config``, not the record)."""
    assert set(SOURCES) | {"venue"} == set(RunConfig.model_fields)
    for f in PARAM_FIELDS:
        section, _, name = f.source.partition(".")
        assert name in RunConfig.model_fields[section].annotation.model_fields, f.source


def _cfg() -> RunConfig:
    prof = load_profile("S1")
    return run_config(prof.runtime, prof, tick_px=0.1, lot_qty=0.001, ref_px=REF_PX)


def test_run_config_is_frozen_and_makes_the_same_record() -> None:
    cfg = _cfg()
    prof = load_profile("S1")
    same = make_params(prof.runtime, prof, tick_px=0.1, lot_qty=0.001, ref_px=REF_PX)
    assert params_record(cfg).tobytes() == same.tobytes()
    with pytest.raises(ValueError, match="frozen"):
        cfg.run.order_qty = 2.0
    with pytest.raises(ValueError, match="frozen"):
        cfg.quoting.gamma = 2.0


@pytest.mark.parametrize(
    "section, key, value, message",
    [
        ("run", "order_qty", -1.0, r"^run configuration: run\.order_qty: Input should be greater"),
        ("quoting", "gama", 0.1, r"^run configuration: quoting\.gama: unknown key$"),
        ("knobs", "tail_age_ms", math.nan, r"^run configuration: knobs\.tail_age_ms: .*finite"),
        ("market", "tick_px", 0.0, r"^run configuration: market\.tick_px: Input should be greater"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_field(section, key, value, message) -> None:
    from mmbot.config.run import build_run_config

    raw = _cfg().model_dump()
    raw[section][key] = value
    with pytest.raises(UserError, match=message) as info:
        build_run_config(raw)
    assert "\n" not in str(info.value)


def test_a_new_run_config_field_reaches_the_record_with_one_line() -> None:
    """A RunConfig number the record does not carry yet (the venue's ladder pad here, any section
    alike) is one more table line: the dtype gains the field, the value is the source's, and every
    other field is unchanged."""
    from mmbot.strategy.params import ParamField, params_dtype

    prof = load_profile("S1")
    cfg = run_config(
        prof.runtime,
        prof,
        tick_px=0.1,
        lot_qty=0.001,
        ref_px=REF_PX,
        venue={"ladder_pad_ratio": 0.3},
    )
    line = ParamField("ladder_pad_ratio", "f8", "venue.ladder_pad_ratio", "price ladder pad")
    rec = params_record(cfg, (*PARAM_FIELDS, line))
    assert rec.dtype == params_dtype((*PARAM_FIELDS, line))
    assert rec.dtype.names == (*PARAMS_DTYPE.names, "ladder_pad_ratio")
    assert float(rec[0]["ladder_pad_ratio"]) == 0.3
    base = params_record(cfg)
    assert all(rec[0][n] == base[0][n] for n in PARAMS_DTYPE.names)
    scaled = ParamField("start_cash_x2", "i8", "venue.start_cash", "doubled, whole", scale=2.0)
    cfg2 = run_config(
        prof.runtime, prof, tick_px=0.1, lot_qty=0.001, ref_px=REF_PX, venue={"start_cash": 2.6}
    )
    assert int(params_record(cfg2, (scaled,))[0]["start_cash_x2"]) == 5


def test_the_loss_limit_of_a_session_is_in_the_run_config() -> None:
    """``max_loss`` (the live session's --loss-limit) replaces the profile's risk.max_loss in the
    run configuration, so the record carries it (an inverse contract's in the settle coin)."""
    from mmbot.instruments import spec_for

    prof = load_profile("S1")
    kw: dict[str, Any] = dict(tick_px=0.1, lot_qty=0.001, ref_px=REF_PX)
    cfg = run_config(prof.runtime, prof, **kw, max_loss=123.0)
    assert cfg.risk.max_loss == 123.0 != prof.risk.max_loss
    assert float(params_record(cfg)[0]["max_loss"]) == 123.0
    inv = make_params(
        prof.runtime, prof, **kw, max_loss=123.0, spec=spec_for("bybit-inverse", "BTCUSD")
    )
    assert float(inv[0]["max_loss"]) == pytest.approx(123.0 / REF_PX)
    with pytest.raises(UserError, match=r"^run configuration: risk\.max_loss: .*greater than 0"):
        run_config(prof.runtime, prof, **kw, max_loss=-1.0)


def test_make_params_names_a_bad_argument() -> None:
    prof = load_profile("S1")
    with pytest.raises(UserError, match=r"run\.order_qty"):
        make_params(prof.runtime, prof, tick_px=0.1, lot_qty=0.001, ref_px=REF_PX, order_qty=-2.0)


def test_docs_config_tables_are_generated_from_the_tables() -> None:
    """docs/config.md's record and environment tables are the code's (a field's doc is written once)."""
    from mmbot.config import doc

    text = doc.DOC.read_text()
    assert doc.render(text) == text, (
        "docs/config.md is stale: run python -m mmbot.config.doc --write"
    )
    for f in PARAM_FIELDS:
        assert f"| `{f.name}` |" in text
