"""Soak runs with driver-aware auto-tune (DESIGN.md "Soak and auto-tune").

Public API (re-exported by ``mmbot.soak.runner``): ``mmbot.soak.loop.run_soak(settings, say,
on_progress)`` (behind ``mmbot soak``; ``settings`` a ``mmbot.soak.start.SoakSettings``; returns a
``SoakOutcome``; lines and progress go to its ``say`` / ``on_progress``),
``run_iteration(..., segment_out=None, account=None, close_end=True)``, ``Replayer`` (replays an
iteration's market segment with other knobs, cached, in forked workers) and ``replay_workers()``
(``$MM_SOAK_REPLAY_WORKERS``); ``mmbot.soak.autotune.tune(report, current, history) ->
TuneDecision`` (the seed's rule table ``RULES``), ``counterfactual_tune(...)`` (adopts a rule's
proposal or a probe only when it wins on replays of the market of every iteration so far),
``history_entry``, ``select_best`` and ``select_best_common`` (keep-best on common segments);
``mmbot.soak.artifacts`` (artifact paths, staging, deterministic JSON); ``mmbot.soak.book_carry``
(order book carried between market chunks); ``mmbot.soak.account_carry`` (position, cash and
funding paid carried between them); ``mmbot.soak.closeout`` (the soak's end position closed at
taker cost).
"""
