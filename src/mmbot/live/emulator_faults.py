"""The emulator's fault injection (a part of ``Emulator``, its attributes are the emulator's):
faults on request (``POST /control/fault {"kind", "count", "seconds", "stream"}`` or CLI
``--fault KIND[:COUNT][@AT_S]``, ``parse_fault_spec``): drop_ws, stall_feed (seconds), duplicate,
reorder, seq_gap, rest_5xx, rest_timeout (answer delayed by `seconds` *after* the request took
effect), rate_limit (retCode 10006), reject (retCode 110007), clock_skew (seconds added to server
time). A counted fault fires on that many requests or messages, then is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from mmbot.errors import UserError

FAULT_KINDS = (
    "drop_ws",
    "stall_feed",
    "duplicate",
    "reorder",
    "seq_gap",
    "rest_5xx",
    "rest_timeout",
    "rate_limit",
    "reject",
    "clock_skew",
)


class Faults:
    """Fault injection of ``Emulator``."""

    async def _later(self, at_s: float, fault: dict) -> None:
        await asyncio.sleep(at_s)
        await self.inject(fault)

    async def inject(self, fault: dict) -> None:
        kind = fault.get("kind")
        if kind not in FAULT_KINDS:
            raise UserError(f"fault kind {kind!r}: unknown (one of {', '.join(FAULT_KINDS)})")
        self.counters["faults_fired"] += 1
        if kind == "drop_ws":
            for ws in list(self.public) + list(self.private):
                with contextlib.suppress(Exception):
                    await ws.close(code=1011, message=b"emulator drop")
            return
        if kind == "stall_feed":
            self.stall_until_ns = time.time_ns() + int(float(fault.get("seconds", 3.0)) * 1e9)
            return
        if kind == "clock_skew":
            self.clock_skew_ns = int(float(fault.get("seconds", 10.0)) * 1e9)
            return
        self.faults[kind] = {
            "count": int(fault.get("count", 1)),
            "seconds": float(fault.get("seconds", 3.0)),
            "stream": fault.get("stream", "both"),
        }

    def _take_fault(self, kind: str, stream: str | None = None) -> dict | None:
        f = self.faults.get(kind)
        if f is None or f["count"] <= 0:
            return None
        if stream is not None and f["stream"] not in ("both", stream):
            return None
        f["count"] -= 1
        if f["count"] <= 0:
            del self.faults[kind]
        return f

    def _apply_msg_faults(self, stream: str, text: str, book: bool = False) -> list[str]:
        """duplicate: sent twice; reorder: held and sent after the next message (on the public
        stream, a book message held until after the next book message, trades passing meanwhile:
        the client always sees the book out of order, not just a trade swapped with a delta)."""
        out = [text]
        if self._take_fault("duplicate", stream):
            out = [text, text]
        in_order = stream != "public" or book
        held = self._held[stream]
        if held is not None:
            if in_order:
                self._held[stream] = None
                out = out + [held]  # the held (older) message goes out after the newer one
        elif in_order and self._take_fault("reorder", stream):
            self._held[stream] = text
            out = []
        return out


def parse_fault_spec(spec: str) -> tuple[float, dict]:
    """``KIND[:COUNT_OR_SECONDS][@AT_S]`` -> (at_s, fault dict)."""
    import math

    full = spec
    at_s = 0.0
    kind, _, arg = spec.partition(":")
    try:
        if "@" in spec:
            spec, at = spec.split("@", 1)
            kind, _, arg = spec.partition(":")
            at_s = float(at)
            if not (math.isfinite(at_s) and at_s >= 0):
                raise ValueError
        if kind not in FAULT_KINDS:
            raise UserError(f"--fault {full!r}: unknown kind (one of {', '.join(FAULT_KINDS)})")
        fault: dict = {"kind": kind}
        if arg:
            if kind in ("stall_feed", "clock_skew"):
                fault["seconds"] = float(arg)
                if not math.isfinite(fault["seconds"]) or (
                    kind == "stall_feed" and fault["seconds"] <= 0
                ):
                    raise ValueError
            else:
                fault["count"] = int(arg)
                if fault["count"] <= 0:
                    raise ValueError
    except ValueError:
        raise UserError(
            f"--fault {full!r}: expected KIND[:COUNT|SECONDS][@AT_S] with a positive COUNT, "
            "finite SECONDS and AT_S >= 0"
        ) from None
    return at_s, fault
