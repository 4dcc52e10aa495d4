"""Live books reconciliation: the journal against the exchange's own executions and wallet balance
(live.reconcile_pnl, live.ledger); a disagreement stops the bot naming the fill or the amount."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from mmbot.live.ledger import book_all
from mmbot.live.reconcile_pnl import judge
from mmbot.live.testing import EmulatorThread, bot_cmd, bot_env, journal_fills, start_bot

SESSION_S = 5.0


def test_ledger_books_adds_reductions_and_flips_as_the_exchange_does():
    fills = [
        (1, 100.0, 2.0, 0.10),  # long 2 @ 100
        (1, 110.0, 2.0, 0.11),  # long 4 @ 105
        (-1, 120.0, 3.0, 0.12),  # closes 3: +45, long 1 @ 105
        (-1, 100.0, 3.0, 0.13),  # closes 1: -5, flips short 2 @ 100
        (1, 90.0, 2.0, 0.14),  # closes 2: +20, flat
    ]
    led = book_all(fills)
    assert led.position_qty == 0.0 and led.avg_entry_px == 0.0
    assert led.realized == pytest.approx(60.0, abs=1e-12)
    assert led.wallet_delta() == pytest.approx(60.0 - 0.60, abs=1e-12)
    # cash + position x mark is the same money: realized - fees + unrealized, at any cut
    part = book_all(fills[:3])
    cash = sum(-s * px * q - f for s, px, q, f in fills[:3])
    mark = 111.0
    assert part.wallet_delta() + part.position_qty * (mark - part.avg_entry_px) == pytest.approx(
        cash + part.position_qty * mark, abs=1e-9
    )


def _exch(eid: str, side: int, px: float, qty: float, fee: float, t_ms: int) -> dict:
    return {
        "execId": eid,
        "side": "Buy" if side > 0 else "Sell",
        "execPrice": repr(px),
        "execQty": repr(qty),
        "execFee": repr(fee),
        "execTime": str(t_ms),
        "execType": "Trade",
    }


def _jrow(seq: int, eid: str, side: int, px: float, qty: float, fee: float, t_ms: int) -> dict:
    return {
        "seq": seq,
        "exec_id": eid,
        "side": side,
        "px": px,
        "qty": qty,
        "fee": fee,
        "exch_ts_ns": t_ms * 1_000_000,
    }


def test_judge_names_the_fill_and_the_amount_that_disagree():
    fills = [("E1", 1, 2.0, 50.0, 0.02, 1000), ("E2", -1, 2.1, 50.0, 0.021, 1001)]
    journal = [_jrow(k, *f) for k, f in enumerate(fills, 1)]
    exch = [_exch(*f) for f in reversed(fills)]  # newest first, as the V5 list answers
    wallet = 1000.0 + 50.0 * 0.1 - 0.041
    ok = judge(journal, exch, wallet, (1000.0, 0.0, 0.0), "USDT")
    assert ok.ok and ok.fills_compared == 2, ok.mismatches
    # the exchange charged more on E2 than the journal holds
    exch_bad = [dict(exch[0], execFee="0.05"), exch[1]]
    bad = judge(journal, exch_bad, wallet + 0.021 - 0.05, (1000.0, 0.0, 0.0), "USDT")
    assert not bad.ok and any(m.startswith("fill E2: fee exchange 0.05") for m in bad.mismatches)
    # a fill the exchange does not know, one the journal lacks
    gone = judge(journal[:1] + [_jrow(3, "E9", 1, 2.0, 1.0, 0.0, 1002)], exch, wallet, None, "USDT")
    assert "fill E9: in the journal" in " ".join(gone.mismatches)
    assert "fill E2: on the exchange" in " ".join(gone.mismatches)
    # money moved without a trade
    moved = judge(journal, exch, wallet - 1.25, (1000.0, 0.0, 0.0), "USDT")
    assert not moved.ok and "-1.25" in moved.mismatches[0] and "wallet USDT" in moved.mismatches[0]
    # the exchange's funding charge is in the wallet, not a fill
    fund = dict(_exch("F1", 1, 2.0, 50.0, 0.3, 1003), execType="Funding")
    assert judge(journal, [fund, *exch], wallet - 0.3, (1000.0, 0.0, 0.0), "USDT").ok


@pytest.fixture
def emu():
    e = EmulatorThread()
    yield e
    e.close()


def _session(
    emu: EmulatorThread, out: Path, tmp_path: Path, duration_s: float = SESSION_S
) -> tuple[int, str]:
    proc = start_bot(bot_cmd("live", emu.url, out, duration_s), bot_env(), tmp_path)
    _, err = proc.communicate(timeout=duration_s + 90)
    return proc.returncode, err


def _risk_events(out: Path, kind: str) -> list[str]:
    db = sqlite3.connect(str(out / "journal.sqlite"))
    try:
        rows = db.execute("SELECT detail FROM risk_events WHERE kind=? ORDER BY seq", (kind,))
        return [d for (d,) in rows.fetchall()]
    finally:
        db.close()


def test_live_books_reconcile_and_a_disagreeing_exchange_stops_the_bot(emu, tmp_path):
    out = tmp_path / "s"
    rc, err = _session(emu, out, tmp_path, duration_s=2 * SESSION_S)  # long enough to trade
    assert rc == 0, err
    sess = json.loads((out / "session.json").read_text())
    books = sess["books_reconciliation"]
    assert books["ok"] and books["fills_compared"] == len(journal_fills(out / "journal.sqlite"))
    assert books["fills_compared"] >= 1, "the first session did not trade: nothing to disagree on"
    assert books["wallet_exchange"] == pytest.approx(books["wallet_expected"], abs=1e-6)
    assert _risk_events(out, "reconcile_ok")

    # the exchange's record of one fill now says a higher fee than the journal holds
    async def overcharge() -> str:
        e = emu.emu.matcher.executions[0]
        e.fee += 0.5
        return e.exec_id

    eid = emu.call(overcharge())
    rc, err = _session(emu, out, tmp_path)
    assert rc == 4, err
    assert f"RECONCILIATION MISMATCH: fill {eid}: fee exchange" in err, err
    assert "RECONCILIATION MISMATCH: wallet USDT" in err and "-0.5" in err, err
    assert any(eid in d for d in _risk_events(out, "reconcile_mismatch"))
    assert emu.state()["open_orders"] == []


def test_live_books_a_transfer_the_journal_cannot_explain_is_named(emu, tmp_path):
    out = tmp_path / "s"
    rc, err = _session(emu, out, tmp_path)
    assert rc == 0, err

    async def withdraw() -> None:
        emu.emu.transfers_usdt -= 1.25

    emu.call(withdraw())
    rc, err = _session(emu, out, tmp_path)
    assert rc == 4 and "RECONCILIATION MISMATCH: wallet USDT" in err, err
    assert "-1.25" in err and "fill " not in err.split("RECONCILIATION MISMATCH")[1], err
