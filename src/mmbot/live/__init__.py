"""mmbot.live: paper and live trading on Bybit V5, and the local exchange emulator that tests them.

- ``bybit``     adapter: signed REST (create/amend/cancel/cancel-all, open orders, executions,
                position) and websocket streams with reconnect (aiohttp; endpoints configurable)
- ``runner``    runs a session (``RunnerConfig``, logging); ``session`` the session loop: same
                compiled strategy step and guards as the backtest, journal first, kill switches;
                its roles: ``order_flow`` (its own orders), ``gateway`` / ``paper_gateway`` (where
                orders go, chosen once per mode), ``reconcile``, ``risk``, ``session_records``
- ``journal``   SQLite (WAL) journal of order events and fills; restart recovery
- ``paper``     paper venue (fills locally against the live public stream)
- ``emulator``  loopback Bybit V5 REST + websocket replaying a capture, with fault injection;
                ``simmatch`` (mmbot.sim venue) or ``matcher`` (simplified) match its orders
- ``record``    the public stream to a capture file; ``metrics`` Prometheus; ``signing`` HMAC + keys
- ``testing``/``testmarket``: the end-to-end test harness and a small deterministic market
"""
