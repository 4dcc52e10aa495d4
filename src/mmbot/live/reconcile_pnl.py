"""Live PnL reconciled against the exchange's own books: its executions and its wallet balance.

The journal is the bot's record of what it traded; the exchange's is the one money follows. Every
execution the exchange lists since the journal started must be a journal fill with the same side,
price, quantity and fee, and every journal fill must be one of the exchange's executions. The wallet
balance must then equal the balance at the journal's start plus what the journal's fills book on
it (``live.ledger``: realized PnL at the exchange's average-entry rule, less fees), less the funding
the exchange charged (its ``Funding`` executions). Any difference is a mismatch named by its fill
or its amount; the runner reports each loudly and stops trading (``Session.reconcile``).

Tolerances are for float formatting only: price, quantity and fee compare to 1e-9 relative; the
wallet to 1e-6 plus 1e-9 of the journal's turnover.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from mmbot.live.ledger import book_all

REL_TOL = 1e-9
WALLET_ABS_TOL = 1e-6
FUNDING_EXEC = "Funding"
MAX_ATTEMPTS = 5  # fetches until the executions stand still around the wallet read


@dataclass
class Verdict:
    ok: bool
    fills_compared: int
    mismatches: list[str] = field(default_factory=list)
    wallet_exchange: float | None = None
    wallet_expected: float | None = None
    funding: float = 0.0

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "fills_compared": self.fills_compared,
            "mismatches": list(self.mismatches),
            "wallet_exchange": self.wallet_exchange,
            "wallet_expected": self.wallet_expected,
            "funding": self.funding,
        }


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= REL_TOL * max(1.0, abs(a), abs(b))


def _side(row: dict) -> int:
    return 1 if row.get("side") == "Buy" else -1


def _desc(side: int, qty: float, px: float, fee: float) -> str:
    return f"{'buy' if side > 0 else 'sell'} {qty:g} @ {px:g}, fee {fee:.10g}"


def compare_fills(journal_rows: list[dict], exchange_trades: list[dict]) -> list[str]:
    """Mismatches between the journal's fills and the exchange's trade executions, each naming the
    fill (execId) and what differs."""
    out: list[str] = []
    journal = {str(r["exec_id"]): r for r in journal_rows}
    seen: set[str] = set()
    for e in exchange_trades:
        eid = str(e["execId"])
        seen.add(eid)
        side, px, qty = _side(e), float(e["execPrice"]), float(e["execQty"])
        fee = float(e.get("execFee") or 0.0)
        j = journal.get(eid)
        if j is None:
            out.append(
                f"fill {eid}: on the exchange ({_desc(side, qty, px, fee)}), not in the journal"
            )
            continue
        diffs = [
            f"{name} exchange {ex:.10g} vs journal {jv:.10g}"
            for name, ex, jv in (
                ("side", side, int(j["side"])),
                ("px", px, float(j["px"])),
                ("qty", qty, float(j["qty"])),
                ("fee", fee, float(j["fee"])),
            )
            if not _close(ex, jv)
        ]
        if diffs:
            out.append(f"fill {eid}: " + "; ".join(diffs))
    for eid, j in journal.items():
        if eid not in seen:
            desc = _desc(int(j["side"]), float(j["qty"]), float(j["px"]), float(j["fee"]))
            out.append(f"fill {eid}: in the journal ({desc}), not among the exchange's executions")
    return out


def expected_wallet(
    start_wallet: float,
    start_position_qty: float,
    start_avg_px: float,
    journal_rows: list[dict],
    funding: float,
    exchange_order: dict[str, int],
) -> tuple[float, float]:
    """(wallet balance the journal implies, the journal's turnover). Fills are booked in the
    exchange's execution order where it knows them (the realized PnL of a flip depends on it)."""
    rows = sorted(
        journal_rows,
        key=lambda r: (
            exchange_order.get(str(r["exec_id"]), math.inf),
            int(r["exch_ts_ns"]),
            int(r["seq"]),
        ),
    )
    led = book_all(
        ((r["side"], r["px"], r["qty"], r["fee"]) for r in rows), start_position_qty, start_avg_px
    )
    turnover = sum(abs(float(r["px"]) * float(r["qty"])) for r in rows)
    return start_wallet + led.wallet_delta() - funding, turnover


def judge(
    journal_rows: list[dict],
    exchange_rows: list[dict],
    wallet_now: float | None,
    baseline: tuple[float, float, float] | None,
    coin: str,
) -> Verdict:
    """The verdict on one snapshot: ``exchange_rows`` newest first (as the V5 list answers);
    ``baseline`` = (wallet, position, average entry) at the journal's start, None if not recorded."""
    oldest_first = list(reversed(exchange_rows))
    trades = [e for e in oldest_first if e.get("execType", "Trade") != FUNDING_EXEC]
    funding = sum(
        float(e.get("execFee") or 0.0) for e in oldest_first if e.get("execType") == FUNDING_EXEC
    )
    mismatches = compare_fills(journal_rows, trades)
    v = Verdict(False, len(trades), mismatches, wallet_now, None, funding)
    if baseline is not None and wallet_now is not None:
        order = {str(e["execId"]): k for k, e in enumerate(trades)}
        exp, turnover = expected_wallet(*baseline, journal_rows, funding, order)
        v.wallet_expected = exp
        tol = WALLET_ABS_TOL + REL_TOL * turnover
        if not abs(wallet_now - exp) <= tol:
            v.mismatches.append(
                f"wallet {coin}: exchange {wallet_now:.10g} vs journal {exp:.10g}: "
                f"{wallet_now - exp:+.10g} {coin} not explained by the journal's fills"
            )
    v.ok = not v.mismatches
    return v


async def snapshot(
    executions: Callable[[], Awaitable[list[dict]]],
    wallet: Callable[[], Awaitable[float]],
    import_new: Callable[[list[dict]], None],
) -> tuple[list[dict], float]:
    """Executions and a wallet balance of the same moment: the executions are listed before and
    after the wallet read and the pair is kept once they agree (a fill between them would be in
    one and not the other). Executions the journal lacks are handed to ``import_new`` first, as
    the reconcile imports them, so only a disagreement in value remains."""
    before = await executions()
    for _ in range(MAX_ATTEMPTS):
        import_new(before)
        w = await wallet()
        after = await executions()
        if [e["execId"] for e in after] == [e["execId"] for e in before]:
            return after, w
        before = after
    return before, w
