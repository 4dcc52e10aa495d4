"""mmbot.live: paper and live trading on Bybit V5, and the local exchange emulator that tests them.

- ``bybit``     adapter: signed REST (create/amend/cancel/cancel-all, open orders, executions,
                position) and websocket streams with reconnect (aiohttp; endpoints configurable)
- ``runner``    the session loop: same compiled strategy step and guards as the backtest, journal
                first, reconcile after every (re)connect, kill switches, records + EDGE_REPORT
- ``journal``   SQLite (WAL) journal of order events and fills; restart recovery
- ``paper``     paper venue (fills locally against the live public stream)
- ``emulator``  loopback Bybit V5 REST + websocket replaying a capture, with fault injection;
                ``simmatch`` (mmbot.sim venue) or ``matcher`` (simplified) match its orders
- ``record``    the public stream to a capture file; ``metrics`` Prometheus; ``signing`` HMAC + keys
- ``testing``/``testmarket``: the end-to-end test harness and a small deterministic market
"""
