"""Quoting models behind one contract (``contract``: what a quoter is handed and answers).

- ``contract``: ``Quoter`` and the records a quoter reads and writes (market view, trades, fills,
  quote); ``registry``: built-in names, ``FILE.py:NAME`` / ``pkg.mod:NAME`` specs, parameters.
- built-in quoters: ``glft`` (GLFT over online estimates), ``touch`` (join the touch),
  ``glft_ref`` (hftbacktest's GLFT tutorial, ported).
- ``params``: ``PARAMS_DTYPE`` (the engine's record: knobs, limits, fees, market), ``make_params``.
- ``views``: ``ORDER_VIEW_DTYPE`` (our working orders) and the order-status codes.

This package imports neither the simulated venue nor the live code (``mmbot.engine`` runs it).
"""

from mmbot.strategy.contract import Quoter

__all__ = ["Quoter"]
