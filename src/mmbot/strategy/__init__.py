"""The quoting strategy, shared by the backtest loop and the live runner.

- ``glft``: ``STATE_DTYPE``, ``new_state(params)``, ``step(state, book_view, own_orders, params,
  now_ns) -> (bid_px, bid_qty, ask_px, ask_qty)``, ``on_trade`` / ``on_trade_depth`` (intensity),
  ``on_fill`` (slippage EWMA), ``fit_intensity``, ``glft_coefficients``.
- ``params``: ``PARAMS_DTYPE``, ``make_params(knobs, profile, *, tick_px, lot_qty, ref_px, ...)``.
- ``views``: ``BOOK_VIEW_DTYPE`` / ``new_book_view()``, ``ORDER_VIEW_DTYPE`` / ``new_order_view()``.
"""
