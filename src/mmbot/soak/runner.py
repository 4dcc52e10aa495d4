"""The soak's public names where callers have always imported them: ``mmbot.soak.runner``.

The soak itself is split by concept (DESIGN.md "Soak and auto-tune"): `mmbot.soak.market` (where
the market comes from, in chunks), `mmbot.soak.iteration` (one iteration's chunks with the book and
account carried), `mmbot.soak.replay` (counterfactual replays for the tuner), `mmbot.soak.start`
(what a soak starts from), `mmbot.soak.loop` (`run_soak`: the soak state and its phases) and
`mmbot.soak.report` (what a soak writes about itself). This module only re-exports them.
"""

from __future__ import annotations

from collections.abc import Sequence

from mmbot.soak.iteration import (
    Segment,
    audit_chunk,
    funding_for_chunk,
    make_settings,
    run_iteration,
)
from mmbot.soak.loop import SoakOutcome, SoakProgress, SoakState, run_soak
from mmbot.soak.market import (
    CHUNK_NS,
    NS_PER_HOUR,
    SYNTH_START_NS,
    Market,
    SyntheticStream,
    derive_seed,
    resolve_market,
)
from mmbot.soak.replay import Replayer, chunk_net_bps, chunk_score_bps, replay_workers
from mmbot.soak.report import METRIC_KEYS, iteration_artifacts, iteration_metrics, soak_markdown
from mmbot.soak.start import SoakSettings, quoter_knobs, validate_args, validate_paths

__all__: Sequence[str] = (
    "CHUNK_NS",
    "METRIC_KEYS",
    "NS_PER_HOUR",
    "SYNTH_START_NS",
    "Market",
    "Replayer",
    "Segment",
    "SoakOutcome",
    "SoakProgress",
    "SoakSettings",
    "SoakState",
    "SyntheticStream",
    "audit_chunk",
    "chunk_net_bps",
    "chunk_score_bps",
    "derive_seed",
    "funding_for_chunk",
    "iteration_artifacts",
    "iteration_metrics",
    "make_settings",
    "quoter_knobs",
    "replay_workers",
    "resolve_market",
    "run_iteration",
    "run_soak",
    "soak_markdown",
    "validate_args",
    "validate_paths",
)
