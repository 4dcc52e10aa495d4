"""Shared test fixtures: paths to the shipped sample and to ../shared/data (skipped when absent)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from mmbot.jitcache import configure as configure_jit_cache

configure_jit_cache()  # the tests' entry point: before any test module imports compiled code

REPO = Path(__file__).resolve().parents[1]
TESTS_DATA = REPO / "tests" / "data"
SHARED_DATA = REPO.parent / "shared" / "data"

USDM_CAPTURE = SHARED_DATA / "binance-usdm" / "btcusdt_20240808.gz"
COINM_CAPTURE = SHARED_DATA / "binance-coinm" / "btcusd_perp_20240808.gz"
SPOT_CAPTURE = SHARED_DATA / "binance-spot" / "btcusdt_20240808.gz"
BYBIT_CAPTURE = SHARED_DATA / "bybit" / "xrpusdt_20241201_ob500.jsonl"


def need_shared(path: Path) -> Path:
    """Return PATH, or skip the test with a reason when the shared captures are not beside the repo."""
    if not path.exists():
        pytest.skip(f"shared capture not found: {path} (../shared/data is absent in this checkout)")
    return path


def glft_profile(name: str = "S1"):
    """Profile ``name`` running ``glft``: tests of the seed's six knobs and of the soak's mechanics
    need a quoter that fills within minutes at the base tier's fees (the default ``adaptive`` warms
    up for 30 s and rarely finds a depth that pays a 2 bps maker fee)."""
    from mmbot.config import load_profile, with_strategy_options

    return with_strategy_options(load_profile(name), strategy="glft")


def glft_options() -> dict:
    """``SoakSettings(strategy_options=...)`` for ``glft`` (see `glft_profile`)."""
    from mmbot.commands.options import strategy_options

    return strategy_options("glft", None, None, None, None, None)


def still_market(**model: object) -> dict:
    """The wide-tick calibration as a still toy market: no diffusion, jumps, informed flow,
    impact, cancels, Hawkes excitation or same-side clustering (the level ladder never moves),
    with ``model`` fields set on top."""
    import copy

    from mmbot.data.synthetic import WIDE_TICK_MARKET, load_calibration

    cal = copy.deepcopy(load_calibration(WIDE_TICK_MARKET))
    cal["model"].update(
        sigma_bps_per_sqrt_s=0.0,
        jump_rate_per_s=0.0,
        informed_rate_per_s_per_bps=0.0,
        impact_permanence_ratio=0.0,
        impact_transient_ratio=0.0,
        cancel_rate_per_s=0.0,
        hawkes_branching_ratio=0.0,
        same_side_ratio=0.0,
        **model,
    )
    return cal


REQUOTE_USDM_MARKET = TESTS_DATA / "binance_usdm_btcusdt_requote.json"


def requote_usdm_market() -> dict:
    """The USD-M market fitted with --sweep-requote alone (shipped until the slow-impact refit):
    its one-speed transient impact is what the mechanism tests below it measure against."""
    from mmbot.data.synthetic import load_calibration

    return copy.deepcopy(load_calibration(REQUOTE_USDM_MARKET))


def deep_touch_market(maker_qty: list[float], taker_qty: list[float]) -> dict:
    """A still market whose touch is deep (1000 qty a level over 3 levels, refilled whole and
    fast), so no taker empties it: every print is one taker against one maker order, maker
    orders drawn from ``maker_qty`` (quantiles, scale 1), takers from ``taker_qty``."""
    return still_market(
        refill_rate_per_s=20000.0,
        refill_whole=1.0,
        noise_base_rate_per_s=2.0,
        jump_size_bps=0.0,
        depth_target_qty=[1000.0] * 3,
        maker_size_quantiles_qty=maker_qty,
        maker_size_scale=1.0,
        parent_size_quantiles_qty=taker_qty,
    )
