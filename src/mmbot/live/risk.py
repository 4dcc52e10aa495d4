"""The live/paper session's risk monitor: the bot's own PnL apart from an inherited position, the
kill switch's position and loss limits, and the drawdown stop (``live.drawdown``).

A position held before the bot's first session (inherited: the account's position when a fresh
journal adopted it) is not the bot's trading: it is priced at that session's first mid and its
PnL is reported apart, so the loss limit counts only what the bot did.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mmbot.live.session import Session

log = logging.getLogger("mmbot.live")


class RiskMonitor:
    def __init__(self, session: Session):
        from mmbot.live.drawdown import DrawdownWatch

        self.s = session
        self.drawdown = DrawdownWatch()
        self.dd_cancelling = False  # the drawdown stop's cancel-all is in flight
        self.inherited_qty = 0.0
        self.inherited_mid_px = math.nan
        self.load_inherited()

    # -- PnL --------------------------------------------------------------------------------------
    def pnl(self) -> float:
        """The bot's own PnL: its fills' cash plus the position they built, marked at the mid."""
        s = self.s
        m = s.mid()
        own_qty = s.position_qty - self.inherited_qty
        return s.cash_quote + own_qty * m if math.isfinite(m) else s.cash_quote

    def inherited_pnl(self) -> float:
        """Mark-to-market of the inherited position since the start mid it was priced at."""
        m = self.s.mid()
        if self.inherited_qty == 0.0 or not (
            math.isfinite(m) and math.isfinite(self.inherited_mid_px)
        ):
            return 0.0
        return self.inherited_qty * (m - self.inherited_mid_px)

    def load_inherited(self) -> None:
        journal, sym = self.s.journal, self.s.symbol
        self.inherited_qty = float(journal.get_meta(f"start_position:{sym}") or 0.0)
        self.inherited_mid_px = float(journal.get_meta(f"start_mid:{sym}") or math.nan)

    def price_inherited(self, mid_px: float) -> None:
        """The first mid after the start position is known prices it (once per journal)."""
        if self.inherited_qty != 0.0 and not math.isfinite(self.inherited_mid_px):
            self.inherited_mid_px = mid_px
            self.s.journal.set_meta(f"start_mid:{self.s.symbol}", repr(mid_px))

    # -- limits -----------------------------------------------------------------------------------
    def check_limits(self) -> bool:
        """Kill switch on the position hard limit and the loss limit; False once tripped."""
        s = self.s
        p = s.params[0]
        hard_qty = s.cfg.hard_position_ratio * float(p["max_position_qty"])
        if abs(s.position_qty) > hard_qty + 1e-9:
            s.kill(f"position {s.position_qty} beyond the hard limit {hard_qty}")
        elif self.pnl() < -float(p["max_loss"]):
            s.kill(f"loss limit: pnl {self.pnl():.4f} < -{float(p['max_loss'])}")
        return not s.kill_reason

    def on_drawdown(self, now_ns: int) -> bool:
        """The drawdown stop (``live.drawdown``): a stop cancels every order and says so, the end
        of the cool-down says quoting resumes. True while the stop's cancel-all is in flight."""
        from mmbot.live.drawdown import RESUME, STOP, resume_message, stop_message

        s = self.s
        pnl = self.pnl()
        event = self.drawdown.step(s.guard, s.params, pnl, s.mid(), now_ns)
        if event == STOP:
            msg = stop_message(s.guard, s.params, pnl, s.settle_coin)
            log.warning("%s", msg)
            s.journal.risk_event(s.symbol, STOP, msg)
            s.counters["drawdown_stops"] += 1
            self.dd_cancelling = True
            s.spawn(self._drawdown_cancel_all())
        elif event == RESUME:
            msg = resume_message(pnl, s.settle_coin)
            log.warning("%s", msg)
            s.journal.risk_event(s.symbol, RESUME, msg)
            s.counters["drawdown_resumes"] += 1
        return self.dd_cancelling

    async def _drawdown_cancel_all(self) -> None:
        try:
            await self.s.cancel_all("drawdown stop")
        finally:
            self.dd_cancelling = False
