"""mmbot.sweep.space: space files parse, route names to knobs / profile fields / quoter parameters,
and refuse what the search must not explore."""

from __future__ import annotations

import pytest

from mmbot.config import load_profile
from mmbot.errors import UserError
from mmbot.sweep.space import (
    ROUTE_KNOB,
    ROUTE_PROFILE,
    ROUTE_QUOTER,
    apply_quoter_params,
    apply_values,
    default_space,
    load_space,
    parse_space,
)


def test_yaml_space_routes_each_name(tmp_path):
    f = tmp_path / "space.yaml"
    f.write_text(
        "parameters:\n"
        "  base_spread_bps_delta: {low: 0.0, high: 0.6}\n"
        "  min_interval_ms: {low: 50, high: 300}\n"
        "  quoting.gamma: {low: 0.02, high: 0.5, log: true}\n"
        "  param.skew: [0.0, 0.5]\n"
    )
    space = load_space(f)
    routes = {p.name: p.route for p in space.params}
    assert routes == {
        "base_spread_bps_delta": ROUTE_KNOB,
        "min_interval_ms": ROUTE_KNOB,
        "quoting.gamma": ROUTE_PROFILE,
        "param.skew": ROUTE_QUOTER,
    }
    by_name = {p.name: p for p in space.params}
    assert by_name["min_interval_ms"].integer  # an integer knob samples integers
    assert by_name["quoting.gamma"].log
    assert by_name["param.skew"].choices == (0.0, 0.5)


def test_json_space_without_parameters_level(tmp_path):
    f = tmp_path / "space.json"
    f.write_text('{"tail_age_ms": {"low": 400, "high": 900, "step": 50}}')
    (p,) = load_space(f).params
    assert (p.low, p.high, p.step) == (400.0, 900.0, 50.0)


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ({"min_interval_ms": {"low": 10, "high": 300}}, "outside the knob's limits"),
        ({"param.as_mult": {"low": 0.1, "high": 2.0}}, "outside the knob's limits"),
        ({"param.n_levels": {"choice": [1, 9]}}, "outside the knob's limits"),
        ({"fees.maker_fee_rate": {"low": -1e-4, "high": 1e-4}}, "facts of the venue"),
        ({"no_such_knob": {"low": 0, "high": 1}}, "unknown parameter 'no_such_knob'"),
        ({"quoting.no_field": {"low": 0, "high": 1}}, "no field 'no_field'"),
        ({"quoting.gamma": {"low": 0.5, "high": 0.1}}, "must be below high"),
        ({"quoting.gamma": {"low": 0.0, "high": 1.0, "log": True}}, "log range needs low > 0"),
        ({"quoting.gamma": {"low": 0.1}}, "needs both low and high"),
        ({"quoting.gamma": {"low": 0.1, "high": 1, "lo": 2}}, "unknown key(s) lo"),
        ({"param.x": {"choice": []}}, "non-empty list"),
        ({}, "non-empty mapping"),
    ],
)
def test_bad_space_is_one_line_naming_the_entry(raw, needle):
    with pytest.raises(UserError) as exc:
        parse_space(raw, "--space s.json")
    msg = str(exc.value)
    assert needle in msg and msg.startswith("--space s.json") and "\n" not in msg


def test_malformed_files_name_the_file(tmp_path):
    y = tmp_path / "bad.yaml"
    y.write_text("parameters: [unclosed\n")
    with pytest.raises(UserError, match="malformed YAML"):
        load_space(y)
    j = tmp_path / "bad.json"
    j.write_text("{")
    with pytest.raises(UserError, match="malformed JSON"):
        load_space(j)
    with pytest.raises(UserError, match="file not found"):
        load_space(tmp_path / "missing.json")


def test_apply_values_sets_profile_fields_on_a_copy():
    prof = load_profile("S1")
    space = parse_space(
        {"quoting.gamma": {"low": 0.01, "high": 1.0}, "tail_age_ms": {"low": 400, "high": 900}},
        "t",
    )
    applied = apply_values({"quoting.gamma": 0.37, "tail_age_ms": 800}, space, prof)
    assert applied.profile.quoting.gamma == 0.37
    assert prof.quoting.gamma != 0.37  # the loaded profile is untouched
    assert applied.knobs == {"tail_age_ms": 800}


def test_a_value_the_profile_schema_refuses_fails_with_the_field():
    prof = load_profile("S1")
    space = parse_space({"quoting.slippage_ewma_alpha": {"low": 0.5, "high": 2.0}}, "t")
    with pytest.raises(UserError, match="slippage_ewma_alpha"):
        apply_values({"quoting.slippage_ewma_alpha": 1.5}, space, prof)


def test_quoter_parameters_go_to_run_settings_params():
    from mmbot.backtest import RunSettings

    s = RunSettings(params={"a": 1.0})
    assert apply_quoter_params(s, {"skew": 0.5}).params == {"a": 1.0, "skew": 0.5}
    with pytest.raises(UserError, match="param.skew: choice must be a finite number"):
        parse_space({"param.skew": {"choice": ["wide"]}}, "t")


def test_a_tunable_quoter_parameter_is_a_knob_integer_where_the_knob_is():
    space = parse_space(
        {"param.n_levels": {"low": 1, "high": 4}, "param.as_mult": {"low": 0.5, "high": 3}}, "s"
    )
    by_name = {p.name: p for p in space.params}
    assert by_name["param.n_levels"].integer and not by_name["param.as_mult"].integer


def test_the_default_space_covers_the_default_quoters_tunable_parameters():
    from mmbot import knobs
    from mmbot.strategy.registry import DEFAULT_QUOTER, resolve

    space = default_space(DEFAULT_QUOTER)
    tunable = knobs.tunable_quoter_knobs(DEFAULT_QUOTER)
    assert tunable, "the default quoter has tunable parameters"
    assert set(space.names) == set(knobs.KNOB_NAMES) | set(tunable)
    quoter = resolve(DEFAULT_QUOTER)
    for p in space.by_route(ROUTE_QUOTER):
        assert p.field in quoter.params and (p.low, p.high) == tunable[p.name]
    assert set(default_space("glft").names) == set(knobs.KNOB_NAMES)  # glft has none
