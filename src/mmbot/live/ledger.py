"""How a linear-perpetual exchange books a sequence of fills into the wallet: average entry price,
realized PnL and the wallet balance (Bybit V5 unified account, USDT linear).

Rule (Bybit's): a fill that opens or adds to the position moves the average entry price to the
size-weighted mean; a fill that reduces it realizes ``closed_qty x (px - avg_entry) x sign(pos)``
and leaves the average entry unchanged; a fill that flips the position closes the old side in full
and opens the rest at its own price. The wallet balance is the start balance plus realized PnL
minus fees paid (plus funding, booked by the exchange apart); it carries no mark price, so the bot
can reconcile it exactly from its journal without knowing the exchange's mark at that instant.
The emulator books its wallet with this rule; the bot's reconciliation recomputes it from the
journal's fills (``live.reconcile_pnl``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

QTY_DIGITS = 12  # positions are sums of decimal lot multiples: rounded as the matcher rounds them


@dataclass
class Ledger:
    position_qty: float = 0.0
    avg_entry_px: float = 0.0
    realized: float = 0.0  # quote currency, fees excluded
    fees: float = 0.0  # paid (a rebate is negative)

    def book(self, side: int, px: float, qty: float, fee: float) -> None:
        pos = self.position_qty
        self.fees += fee
        if pos == 0.0 or (pos > 0) == (side > 0):
            size = abs(pos) + qty
            self.avg_entry_px = (abs(pos) * self.avg_entry_px + qty * px) / size
        else:
            closed = min(qty, abs(pos))
            self.realized += closed * (px - self.avg_entry_px) * (1.0 if pos > 0 else -1.0)
            if qty > abs(pos):
                self.avg_entry_px = px  # flipped: the rest opens at this fill's price
        self.position_qty = round(pos + side * qty, QTY_DIGITS)
        if self.position_qty == 0.0:
            self.avg_entry_px = 0.0

    def wallet_delta(self) -> float:
        """Wallet balance change these fills book: realized PnL less fees."""
        return self.realized - self.fees


def book_all(
    fills: Iterable[tuple[int, float, float, float]],
    start_position_qty: float = 0.0,
    start_avg_entry_px: float = 0.0,
) -> Ledger:
    """A ledger from a start position and (side, px, qty, fee) fills in execution order."""
    led = Ledger(start_position_qty, start_avg_entry_px if start_position_qty else 0.0)
    for side, px, qty, fee in fills:
        led.book(int(side), float(px), float(qty), float(fee))
    return led
