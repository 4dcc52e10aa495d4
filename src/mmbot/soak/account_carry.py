"""The trading account a soak carries from one chunk to the next: position and what it cost,
funding paid, and the price its orders are sized from.

A soak runs its market as consecutive chunks, each a separate venue run (bounded memory). Like the
order book (`mmbot.soak.book_carry`), the position continues across them, iterations included:
each chunk's venue starts holding the position the previous chunk ended with, bought at that
chunk's final mid (``RunSettings.start_position_qty``; ``start_cash`` = minus its value there),
so the quoter and guards see it from their first wake, as in one continuous run, and orders keep
the size the first chunk gave them (a chunk would otherwise size them from its own median price).

The guards see the soak's figures, as in one continuous run: each chunk's cash also holds the
PnL the soak made before it (``equity``: the venue's equity at the previous chunk's end), so the
``max_loss`` kill switch, the drawdown stop and the spot balance check compare the soak's
cumulative PnL with their limits; the kill-switch latch, the drawdown stop's equity peak and its
pause carry over (``guards``, `mmbot.backtest.GUARD_CARRY_FIELDS`). Funding is charged by the audit
after a run, so the guards do not see it (in one backtest run neither). A soak stops after the
chunk in which the kill switch latched (`mmbot.soak.limits`).

The audit marks the carried position at the chunk's start mid (meta ``initial_position_qty``,
``initial_equity``): its move over the chunk is in that chunk's inventory term, and the chunks'
PnL add up to the continuous run's. What no chunk books is the position's move between one
chunk's final mid and the next one's start mid (zero when the carried book reproduces the
venue's, as it should: ``seam_pnl``, reported). Funding times are charged once: a chunk pays
those in (end of the window paid so far, end of its own window].
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from mmbot.audit.decompose import final_mid
from mmbot.instruments import spec_from_meta

CARRY_RULE = (
    "positions carried across chunks and iterations (each chunk's venue starts holding the "
    "previous chunk's end position, bought at its final mid, its PnL and fees from zero; the "
    "audit marks the carried position at the chunk's start mid)"
)


@dataclass
class AccountCarry:
    """The account between chunks (mutated by `end`, like `BookCarry` by ``apply``)."""

    funded_to_ns: int  # funding times up to here (inclusive) are paid
    position_qty: float = 0.0
    mark_px: float = math.nan  # the previous chunk's final mid (the carried position's last mark)
    mark_value: float = 0.0  # settle-coin value of one contract at ``mark_px`` (its entry cost)
    seam_pnl: float = 0.0  # sum over seams of position x (V(start mid) - V(previous final mid))
    # the price the first chunk sized its orders from: a continuous run sizes them once
    ref_px: float | None = None
    equity: float = 0.0  # the soak's PnL at the previous chunk's end, as its venue marked it
    guards: dict = field(default_factory=dict)  # guard state the next chunk starts from

    def settings(self, settings: Any) -> Any:
        """``settings`` (a ``RunSettings``) starting from this account."""
        out = replace(
            settings,
            start_position_qty=self.position_qty,
            start_cash=self.equity + self.cash(),
            start_guard=dict(self.guards) or None,
        )
        return out if self.ref_px is None else replace(out, ref_px=self.ref_px)

    @property
    def killed(self) -> bool:
        """The kill switch latched in an earlier chunk."""
        return bool(self.guards.get("killed"))

    def cash(self) -> float:
        """What the carried position cost, bought at its last mark (the chunk's starting cash
        besides the soak's PnL so far)."""
        return -self.position_qty * self.mark_value if self.position_qty != 0.0 else 0.0

    def funding_window(self, window_end_ns: int) -> tuple[int, int]:
        """The funding window (start, end] a chunk ending at ``window_end_ns`` pays."""
        return self.funded_to_ns, int(window_end_ns)

    def begin(self, res: Any) -> None:
        """Record in a chunk's meta (``carry_in``) what it started from and the seam's PnL."""
        meta = res.meta
        seam = 0.0
        start_mid = float(meta.get("start_mid_px") or math.nan)
        if self.position_qty != 0.0 and math.isfinite(self.mark_px) and math.isfinite(start_mid):
            spec = spec_from_meta(meta)
            # (+ 0.0: a short's zero move is -0.0, printed as a loss)
            seam = self.position_qty * (spec.value(start_mid) - spec.value(self.mark_px)) + 0.0
        self.seam_pnl += seam
        meta["carry_in"] = {
            "rule": CARRY_RULE,
            "position_qty": self.position_qty,
            "entry_px": self.mark_px if math.isfinite(self.mark_px) else None,
            "cash": self.cash(),
            "previous_final_mid_px": self.mark_px if math.isfinite(self.mark_px) else None,
            "start_mid_px": start_mid if math.isfinite(start_mid) else None,
            "seam_pnl": seam,
            "funding_from_ns": self.funded_to_ns,
            "soak_pnl": self.equity,
            "guards": dict(self.guards),
        }

    def end(self, res: Any, window_end_ns: int) -> None:
        """Take the position a chunk's venue ended with (before any close-out) and its mark."""
        self.position_qty = float(res.meta["venue"]["position_qty"])
        self.mark_px = float(final_mid(res))  # as the audit marks it (the last valid mid)
        ok = math.isfinite(self.mark_px) and self.mark_px > 0
        self.mark_value = spec_from_meta(res.meta).value(self.mark_px) if ok else 0.0
        self.funded_to_ns = int(window_end_ns)
        equity = float(res.meta["sim_equity"])
        self.equity = equity if math.isfinite(equity) else self.equity  # no mid at the end: kept
        self.guards = dict(res.meta["guards"]["carry_out"])
        if self.ref_px is None:
            self.ref_px = float(res.meta["ref_px"])
