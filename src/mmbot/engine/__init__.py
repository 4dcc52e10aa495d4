"""The engine: one wake loop that runs any quoter (``mmbot.strategy.contract``) over a venue.

- ``wake``: the quoter-independent compiled steps of a wake (views, order manager over the quote's
  levels, the ops to send) and ``OP_DTYPE``.
- ``loop``: the template of ``think`` (market, fills, quote) and ``drive`` (the backtest loop); a
  copy is compiled per quoter by ``build``.
- ``build``: ``compiled_loop(spec)``, the per-quoter module (numba-cached on disk).
"""
