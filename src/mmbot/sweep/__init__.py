"""Parameter search that cannot be fooled: Optuna studies over knobs, profile fields and quoter
parameters, every trial audited, every choice judged out of sample (walk-forward).

Modules: ``space`` (the space file and routing of values), ``folds`` (walk-forward windows on
disk), ``trial`` (one trial: run, check, score), ``checks`` (what a trial must pass), ``objective``
(what is maximised), ``executors`` (inline, local processes, Ray), ``driver`` (the walk-forward
studies, resumable), ``results`` (Parquet table, summary, chosen files), ``report`` (HTML).
The console lives in ``mmbot.commands.sweep``.
"""
