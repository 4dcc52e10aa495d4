"""Order manager and guards between the strategy's targets and the orders sent.

- ``manager``: ``decide`` (keep/new/replace/cancel per side), ``manage_side`` (decide + guards +
  INTENDED/BLOCKED rows), ``ensure_room``.
- ``guards``: ``GUARD_STATE_DTYPE``, ``new_guard_state``, ``check`` (risk, min_interval,
  concurrency, throttle), ``commit``, ``on_response``, ``note_blocked``.
"""
