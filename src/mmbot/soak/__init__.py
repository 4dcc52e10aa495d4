"""Soak runs with driver-aware auto-tune (DESIGN.md "Soak and auto-tune").

Public API: ``mmbot.soak.runner.soak_command(...)`` (behind ``mmbot soak``) and ``run_soak(...)``
(returns a ``SoakOutcome``), ``run_iteration(...)``; ``mmbot.soak.autotune.tune(report, current,
history) -> TuneDecision``, ``history_entry``, ``select_best`` and the rule table ``RULES``;
``mmbot.soak.artifacts`` (artifact paths, staging, deterministic JSON); ``mmbot.soak.book_carry``
(order book carried between market chunks).
"""
