"""Durable journal of a live/paper session: every order event and every fill, in SQLite.

Write-ahead discipline: the runner writes an order's intent (with its client order id) *before* the
request leaves, and a fill *before* it changes the in-memory position. The database runs in WAL mode
with ``synchronous=FULL`` so a committed row survives ``kill -9`` (and power loss, up to the disk).

Idempotency: client order ids (Bybit ``orderLinkId``) come from a counter stored in the journal, so a
restarted process never reuses one; fills are keyed by the exchange's ``execId`` and inserted with
``INSERT OR IGNORE``, so a fill seen on the websocket, again in a REST reconcile and again after a
restart is counted once. The position is the sum of journaled fills (plus any recorded start
position), so a restart resumes with the exact position.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from mmbot.errors import UserError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    link_id TEXT PRIMARY KEY, order_id TEXT, symbol TEXT NOT NULL, side INTEGER NOT NULL,
    px REAL NOT NULL, qty REAL NOT NULL, status TEXT NOT NULL, cum_qty REAL NOT NULL DEFAULT 0,
    created_ns INTEGER NOT NULL, updated_ns INTEGER NOT NULL, acked_ns INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS order_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, ts_ns INTEGER NOT NULL, link_id TEXT, kind TEXT NOT NULL,
    px REAL, qty REAL, detail TEXT
);
CREATE TABLE IF NOT EXISTS fills (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, exec_id TEXT NOT NULL UNIQUE, link_id TEXT, order_id TEXT,
    symbol TEXT NOT NULL, side INTEGER NOT NULL, px REAL NOT NULL, qty REAL NOT NULL,
    fee REAL NOT NULL, fee_rate REAL NOT NULL, maker INTEGER NOT NULL, exch_ts_ns INTEGER NOT NULL,
    local_ts_ns INTEGER NOT NULL, mid_px REAL, target_px REAL, position_qty REAL NOT NULL,
    source TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS risk_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, ts_ns INTEGER NOT NULL, symbol TEXT NOT NULL,
    kind TEXT NOT NULL, detail TEXT NOT NULL
);
"""

OPEN_STATUSES = ("PendingNew", "New", "PartiallyFilled")
# Durability: order intents (new_order) and fills (record_fill) commit with synchronous=FULL (fsync
# per commit: they must survive even an OS crash, being the only record of an id handed out and of
# a fill counted). Order *state* events (acks, status updates) commit with synchronous=NORMAL: in WAL
# mode that still survives kill -9 of the process (only an OS crash can lose the last few, and the
# next FULL commit persists them too); they are re-derived from the exchange by the restart
# reconcile anyway. This keeps ~5 ms fsyncs off the common path of every amend.


@dataclass
class FillRow:
    exec_id: str
    link_id: str
    order_id: str
    symbol: str
    side: int  # +1 buy, -1 sell
    px: float
    qty: float
    fee: float  # quote paid (rebate negative)
    fee_rate: float
    maker: bool
    exch_ts_ns: int
    local_ts_ns: int
    mid_px: float = float("nan")
    target_px: float = float("nan")
    source: str = "ws"  # ws | rest | sim


def check_journal(path: Path) -> None:
    """``UserError`` unless ``path`` is absent, empty or an SQLite file (checked read-only, before
    the session creates anything)."""
    path = Path(path)
    if not path.exists() or (path.is_file() and path.stat().st_size == 0):
        return
    if not path.is_file():
        raise UserError(f"--journal {path}: not a regular file")
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            db.execute("PRAGMA schema_version").fetchone()
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise UserError(f"--journal {path}: not an mmbot journal ({exc})") from None


class Journal:
    """One SQLite file per bot instance (symbol/account); reopened as-is after a crash."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # private from the first byte: it holds the account's orders and fills
        os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves (one transaction per write)
            self.db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise UserError(f"--journal {self.path}: not an mmbot journal ({exc})") from None
        if self._meta("tag") is None:
            self._tx(
                [
                    ("INSERT OR IGNORE INTO meta VALUES ('tag', ?)", (secrets.token_hex(3),)),
                    ("INSERT OR IGNORE INTO meta VALUES ('next_id', '1')", ()),
                ]
            )
        self.tag = str(self._meta("tag"))

    # -- plumbing ---------------------------------------------------------------------------------
    def _meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _dicts(self, sql: str, args: tuple = ()) -> list[dict]:
        """The rows a query returns, each as {column: value}."""
        cur = self.db.execute(sql, args)
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    def _of_symbol(self, table: str, symbol: str | None, order_by: str) -> list[dict]:
        """Every row of ``table`` (of ``symbol`` only, unless None) ordered by ``order_by``."""
        q, args = f"SELECT * FROM {table}", ()
        if symbol is not None:
            q, args = q + " WHERE symbol=?", (symbol,)
        return self._dicts(q + f" ORDER BY {order_by}", args)

    def _tx(self, stmts: list[tuple[str, tuple]], durable: bool = True) -> None:
        if not durable:
            self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for sql, args in stmts:
                self.db.execute(sql, args)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        finally:
            if not durable:
                self.db.execute("PRAGMA synchronous=FULL")

    def close(self) -> None:
        self.db.close()

    def set_meta(self, key: str, value: str) -> None:
        self._tx([("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))])

    def get_meta(self, key: str) -> str | None:
        return self._meta(key)

    # -- orders -----------------------------------------------------------------------------------
    def new_order(
        self, symbol: str, side: int, px: float, qty: float, now_ns: int | None = None
    ) -> str:
        """Allocate a never-reused client order id and journal the intent; returns the id.
        Called before the request is sent, so a crash between here and the exchange leaves a
        ``PendingNew`` row that restart recovery resolves against the exchange."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        self.db.execute("BEGIN IMMEDIATE")
        try:
            n = int(self.db.execute("SELECT value FROM meta WHERE key='next_id'").fetchone()[0])
            link_id = f"mm-{self.tag}-{n}"
            self.db.execute("UPDATE meta SET value=? WHERE key='next_id'", (str(n + 1),))
            self.db.execute(
                "INSERT INTO orders (link_id, symbol, side, px, qty, status, created_ns, updated_ns)"
                " VALUES (?,?,?,?,?,'PendingNew',?,?)",
                (link_id, symbol, side, px, qty, now_ns, now_ns),
            )
            self.db.execute(
                "INSERT INTO order_events (ts_ns, link_id, kind, px, qty) VALUES (?,?,'new',?,?)",
                (now_ns, link_id, px, qty),
            )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return link_id

    def order_event(
        self,
        link_id: str,
        kind: str,
        *,
        status: str | None = None,
        order_id: str | None = None,
        px: float | None = None,
        qty: float | None = None,
        cum_qty: float | None = None,
        detail: str = "",
        now_ns: int | None = None,
        durable: bool = False,
    ) -> None:
        """Journal an order event (sent/ack/amend/cancel/reject/...) and the order row's new state."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        stmts: list[tuple[str, tuple]] = [
            (
                "INSERT INTO order_events (ts_ns, link_id, kind, px, qty, detail) VALUES (?,?,?,?,?,?)",
                (now_ns, link_id, kind, px, qty, detail),
            )
        ]
        sets, args = ["updated_ns=?"], [now_ns]
        for col, val in (
            ("status", status),
            ("order_id", order_id),
            ("px", px),
            ("qty", qty),
            ("cum_qty", cum_qty),
        ):
            if val is not None:
                sets.append(f"{col}=?")
                args.append(val)
        if status == "New":
            sets.append("acked_ns=CASE WHEN acked_ns=0 THEN ? ELSE acked_ns END")
            args.append(now_ns)
        stmts.append((f"UPDATE orders SET {', '.join(sets)} WHERE link_id=?", (*args, link_id)))
        self._tx(stmts, durable)

    def order(self, link_id: str) -> dict | None:
        cur = self.db.execute("SELECT * FROM orders WHERE link_id=?", (link_id,))
        row = cur.fetchone()
        return None if row is None else dict(zip([c[0] for c in cur.description], row, strict=True))

    def open_orders(self, symbol: str | None = None) -> list[dict]:
        q = f"SELECT * FROM orders WHERE status IN {OPEN_STATUSES!r}"
        args: tuple = ()
        if symbol is not None:
            q += " AND symbol=?"
            args = (symbol,)
        return self._dicts(q + " ORDER BY created_ns", args)

    def is_ours(self, link_id: str) -> bool:
        return link_id.startswith(f"mm-{self.tag}-")

    # -- fills ------------------------------------------------------------------------------------
    def record_fill(self, f: FillRow) -> tuple[bool, float]:
        """Insert a fill once (keyed by exec_id). Returns (was_new, position_qty after it)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            exists = self.db.execute("SELECT 1 FROM fills WHERE exec_id=?", (f.exec_id,)).fetchone()
            if exists:
                self.db.execute("COMMIT")
                return False, self.position_qty(f.symbol)
            pos = self.position_qty(f.symbol) + f.side * f.qty
            self.db.execute(
                "INSERT INTO fills (exec_id, link_id, order_id, symbol, side, px, qty, fee, fee_rate, maker,"
                " exch_ts_ns, local_ts_ns, mid_px, target_px, position_qty, source)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    f.exec_id,
                    f.link_id,
                    f.order_id,
                    f.symbol,
                    f.side,
                    f.px,
                    f.qty,
                    f.fee,
                    f.fee_rate,
                    int(f.maker),
                    f.exch_ts_ns,
                    f.local_ts_ns,
                    f.mid_px,
                    f.target_px,
                    pos,
                    f.source,
                ),
            )
            self.db.execute(
                "UPDATE orders SET cum_qty=cum_qty+? WHERE link_id=?", (f.qty, f.link_id)
            )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return True, pos

    def position_qty(self, symbol: str) -> float:
        start = float(self._meta(f"start_position:{symbol}") or 0.0)
        row = self.db.execute(
            "SELECT COALESCE(SUM(side*qty), 0) FROM fills WHERE symbol=?", (symbol,)
        ).fetchone()
        return start + float(row[0])

    def cash_and_fees(self, symbol: str) -> tuple[float, float]:
        """(cash from fills = -sum(side*px*qty) - fees, fees paid) for PnL marking."""
        row = self.db.execute(
            "SELECT COALESCE(SUM(-side*px*qty),0), COALESCE(SUM(fee),0) FROM fills WHERE symbol=?",
            (symbol,),
        ).fetchone()
        return float(row[0]) - float(row[1]), float(row[1])

    def fills(self, symbol: str | None = None) -> list[dict]:
        return self._of_symbol("fills", symbol, "exch_ts_ns, seq")

    def exec_ids(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT exec_id FROM fills")}

    def last_fill_ts_ns(self, symbol: str) -> int:
        row = self.db.execute(
            "SELECT COALESCE(MAX(exch_ts_ns),0) FROM fills WHERE symbol=?", (symbol,)
        ).fetchone()
        return int(row[0])

    # -- risk events ------------------------------------------------------------------------------
    def risk_event(self, symbol: str, kind: str, detail: str, now_ns: int | None = None) -> None:
        """A stop, resume or reconciliation verdict, durable: what the bot did to the book and why."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        self._tx(
            [
                (
                    "INSERT INTO risk_events (ts_ns, symbol, kind, detail) VALUES (?,?,?,?)",
                    (now_ns, symbol, kind, detail),
                )
            ]
        )

    def risk_events(self, symbol: str | None = None) -> list[dict]:
        return self._of_symbol("risk_events", symbol, "seq")

    def order_events(self) -> list[dict]:
        return self._dicts("SELECT * FROM order_events ORDER BY seq")
