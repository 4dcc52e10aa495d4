"""Profiles and overrides: S1's seed values, precedence flag > env > default file, unknown keys,
wrong types, clamping with a message naming the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmbot import knobs
from mmbot.config import effective_knobs, load_overrides, load_profile
from mmbot.errors import UserError

ENV = "MM_RUNTIME_OVERRIDES_JSON"


def _write(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj) if not isinstance(obj, str) else obj)
    return path


def test_profile_s1_carries_the_seed_values() -> None:
    p = load_profile("S1")
    assert p.runtime == {
        "min_interval_ms": 60,
        "replace_rate_per_min": 300,
        "base_spread_bps_delta": 0.35,
        "tail_age_ms": 700,
        "impact_cap_ratio": 0.10,
        "max_delta_ratio": 0.15,
    }
    d = p.profile
    assert (d.concurrency_limit_delta, d.slippage_penalty_coef_delta) == (-0.1, 0.10)
    assert (d.vip_tilt_cap_delta, d.inventory_tilt_cap_delta) == (0.15, -0.10)
    eff = p.effective()
    b = p.base
    assert eff["slippage_penalty_coef"] == pytest.approx(b.slippage_penalty_coef + 0.10)
    assert eff["vip_tilt_cap"] == pytest.approx(b.vip_tilt_cap + 0.15)
    assert eff["inventory_tilt_cap"] == pytest.approx(b.inventory_tilt_cap - 0.10)
    assert p.messages == []


def test_profile_defaults_to_env_mm_profile(monkeypatch, tmp_path) -> None:
    src = json.loads((Path(load_profile("S1").source)).read_text())
    src["name"] = "X9"
    path = _write(tmp_path / "x9.json", src)
    monkeypatch.setenv("MM_PROFILE", str(path))
    assert load_profile(None).name == "X9"


def test_profile_missing_unknown_key_wrong_type_are_user_errors(tmp_path) -> None:
    with pytest.raises(UserError, match="not found"):
        load_profile("NOPE")
    src = json.loads(Path(load_profile("S1").source).read_text())
    bad = dict(src, risk=dict(src["risk"], max_postion_orders=3))
    with pytest.raises(UserError, match=r"risk\.max_postion_orders.*unknown key"):
        load_profile(str(_write(tmp_path / "a.json", bad)))
    bad2 = dict(src, runtime=dict(src["runtime"], tail_age_ms="long"))
    with pytest.raises(UserError, match="tail_age_ms"):
        load_profile(str(_write(tmp_path / "b.json", bad2)))
    with pytest.raises(UserError, match="malformed JSON"):
        load_profile(str(_write(tmp_path / "c.json", "{not json")))


def test_profile_runtime_out_of_limits_clamped_with_message(tmp_path) -> None:
    src = json.loads(Path(load_profile("S1").source).read_text())
    src["runtime"]["min_interval_ms"] = 10
    p = load_profile(str(_write(tmp_path / "p.json", src)))
    assert p.runtime["min_interval_ms"] == 50
    assert len(p.messages) == 1 and "min_interval_ms" in p.messages[0]


def test_overrides_precedence_flag_over_env_over_default_file(tmp_path) -> None:
    default = _write(tmp_path / "runtime_overrides.json", {"tail_age_ms": 500})
    flag = _write(tmp_path / "flag.json", {"tail_age_ms": 900})
    env = {ENV: json.dumps({"tail_age_ms": 700})}
    assert load_overrides(None, env={}, default_file=default)[0] == {"tail_age_ms": 500}
    assert load_overrides(None, env=env, default_file=default)[0] == {"tail_age_ms": 700}
    assert load_overrides(flag, env=env, default_file=default)[0] == {"tail_age_ms": 900}
    assert load_overrides(None, env={}, default_file=tmp_path / "absent.json") == ({}, [])


def test_overrides_env_may_name_a_file(tmp_path) -> None:
    f = _write(tmp_path / "o.json", {"impact_cap_ratio": 0.05})
    assert load_overrides(None, env={ENV: str(f)}, default_file=tmp_path / "x")[0] == {
        "impact_cap_ratio": 0.05
    }


def test_overrides_unknown_key_names_key_and_source(tmp_path) -> None:
    f = _write(tmp_path / "o.json", {"tail_age": 500})
    with pytest.raises(UserError, match=r"o\.json.*unknown key 'tail_age'"):
        load_overrides(f, env={})
    with pytest.raises(UserError, match=r"\$MM_RUNTIME_OVERRIDES_JSON.*unknown key 'foo'"):
        load_overrides(None, env={ENV: '{"foo": 1}'}, default_file=tmp_path / "x")


@pytest.mark.parametrize("value", ['"fast"', "true", "null", "[1]"])
def test_overrides_wrong_type_is_user_error(tmp_path, value) -> None:
    f = _write(tmp_path / "o.json", '{"min_interval_ms": ' + value + "}")
    with pytest.raises(UserError, match="min_interval_ms must be a number"):
        load_overrides(f, env={})


def test_overrides_malformed_json_and_non_object(tmp_path) -> None:
    with pytest.raises(UserError, match="malformed JSON"):
        load_overrides(_write(tmp_path / "o.json", "{"), env={})
    with pytest.raises(UserError, match="expected a JSON object"):
        load_overrides(_write(tmp_path / "l.json", "[1, 2]"), env={})
    with pytest.raises(UserError, match="not found"):
        load_overrides(tmp_path / "missing.json", env={})


@pytest.mark.parametrize("name", knobs.KNOB_NAMES)
def test_overrides_out_of_limits_clamped_with_one_message_naming_the_field(tmp_path, name) -> None:
    lo, hi = knobs.RUNTIME_LIMITS[name]
    f = _write(tmp_path / "o.json", {name: hi * 2 + 1})
    values, messages = load_overrides(f, env={})
    assert values[name] == pytest.approx(hi)
    assert len(messages) == 1 and name in messages[0] and "clamped" in messages[0]
    f2 = _write(tmp_path / "o2.json", {name: lo - 1})
    values2, messages2 = load_overrides(f2, env={})
    assert values2[name] == pytest.approx(lo)
    assert len(messages2) == 1 and name in messages2[0]
    f3 = _write(tmp_path / "o3.json", {name: lo})
    assert load_overrides(f3, env={})[1] == []


def test_effective_knobs_overrides_win_over_profile() -> None:
    p = load_profile("S1")
    eff = effective_knobs(p, {"base_spread_bps_delta": 0.1})
    assert eff["base_spread_bps_delta"] == 0.1
    assert eff["tail_age_ms"] == 700
    assert set(eff) == set(knobs.KNOB_NAMES)
