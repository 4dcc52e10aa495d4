"""Contract specs: what one unit of a market's quantity is worth and in which coin it settles.

Owns ``ContractSpec``, the market names (``binance-usdm``, ``binance-coinm``, ``binance-spot``,
``bybit-linear``, ``bybit-inverse``, ``bybit-spot``), their detection from a capture's format and
symbol (``detect_spec``) and the value function the venue and the audit share.

Value of one contract at price p, in the settle coin, with contract size C:

- linear / spot: ``C·p`` (quote coin; C = 1 base unit);
- inverse:       ``−C/p`` (base coin; C in USD): a long of n contracts bought at p_e and marked at
  p_m is worth n·C·(1/p_e − 1/p_m) coin, exactly ``n·(value(p_m) − value(p_e))``.

Both are increasing in p, so a buy gains when the price rises in either case, and every edge
component (gross, slippage, inventory, funding) is the linear formula with ``value`` in place of the
price. Notional of q contracts in the settle coin is ``q·|value(p)|``; in USD (quote) it is
``q·C·p`` linear and ``q·C`` inverse.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, replace

from mmbot.errors import UserError

KIND_LINEAR = "linear"
KIND_INVERSE = "inverse"
KIND_SPOT = "spot"

# market name -> (venue, kind)
MARKETS: dict[str, tuple[str, str]] = {
    "binance-usdm": ("binance", KIND_LINEAR),
    "binance-coinm": ("binance", KIND_INVERSE),
    "binance-spot": ("binance", KIND_SPOT),
    "bybit-linear": ("bybit", KIND_LINEAR),
    "bybit-inverse": ("bybit", KIND_INVERSE),
    "bybit-spot": ("bybit", KIND_SPOT),
}
# Binance COIN-M: BTC contracts are 100 USD, every other coin's 10 USD (Binance contract specs).
BINANCE_COINM_BTC_CONTRACT_USD = 100.0
BINANCE_COINM_ALT_CONTRACT_USD = 10.0
# Bybit inverse contracts are 1 USD each.
BYBIT_INVERSE_CONTRACT_USD = 1.0
_QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "USD", "BTC", "ETH", "EUR")
# Binance COIN-M symbols: BTCUSD_PERP, ETHUSD_240927
_COINM_RE = re.compile(r"^([A-Z0-9]+)USD_(PERP|\d{6})$")
# Bybit inverse: BTCUSD (perpetual), BTCUSDH25 / BTCUSDZ24 (dated futures)
_BYBIT_INVERSE_RE = re.compile(r"^([A-Z0-9]+?)USD([FGHJKMNQUVXZ]\d{2})?$")


@dataclass(frozen=True)
class ContractSpec:
    """One market's contract. ``contract_size``: base units per contract (linear/spot) or USD per
    contract (inverse). ``settle``: the coin PnL, fees and every edge component are counted in."""

    market: str  # a MARKETS key, or "unknown" (treated as linear, contract size 1)
    kind: str  # KIND_*
    symbol: str = ""
    contract_size: float = 1.0
    base: str = ""
    quote: str = ""
    settle: str = ""
    tick_px: float = math.nan
    lot_qty: float = math.nan
    source: str = "detected"  # "detected" | "flag" | "default"

    @property
    def inverse(self) -> bool:
        return self.kind == KIND_INVERSE

    @property
    def spot(self) -> bool:
        return self.kind == KIND_SPOT

    @property
    def venue(self) -> str:
        return MARKETS.get(self.market, ("", ""))[0]

    def label(self) -> str:
        """e.g. ``binance-coinm inverse (1 contract = 100 USD, settles in BTC)``."""
        if self.inverse:
            unit = f"1 contract = {self.contract_size:g} {self.quote or 'USD'}"
        else:
            unit = f"1 contract = {self.contract_size:g} {self.base or 'base'}"
        return f"{self.market} {self.kind} ({unit}, settles in {self.settle or '?'})"

    def value(self, px: float) -> float:
        """Settle-coin value of one contract at ``px`` (module docstring)."""
        return -self.contract_size / px if self.inverse else self.contract_size * px

    def usd_notional(self, qty: float, px: float) -> float:
        """Quote-currency notional of ``qty`` contracts at ``px``."""
        return qty * self.contract_size * (1.0 if self.inverse else px)

    def qty_for_notional(self, notional_quote: float, ref_px: float) -> float:
        """Contracts worth ``notional_quote`` quote currency at ``ref_px`` (not rounded)."""
        if self.inverse:
            return notional_quote / self.contract_size
        return notional_quote / (self.contract_size * ref_px)

    def to_meta(self) -> dict:
        d = asdict(self)
        d["label"] = self.label()
        return d


def _split_symbol(symbol: str) -> tuple[str, str]:
    s = symbol.upper().split("_")[0]
    m = _BYBIT_INVERSE_RE.match(s)
    if m and m.group(2):  # a dated inverse future: BTCUSDH25
        return m.group(1), "USD"
    for q in _QUOTES:
        if s.endswith(q) and len(s) > len(q):
            return s[: -len(q)], q
    return s, ""


def spec_for(
    market: str,
    symbol: str = "",
    *,
    contract_size: float | None = None,
    tick_px: float = math.nan,
    lot_qty: float = math.nan,
    source: str = "flag",
) -> ContractSpec:
    """The spec of ``symbol`` on ``market`` (a MARKETS key); ``contract_size`` overrides the venue's."""
    if market not in MARKETS:
        raise UserError(f"--market {market!r}: expected one of {', '.join(sorted(MARKETS))}")
    spec = ContractSpec(market=market, kind=MARKETS[market][1], symbol=symbol, source=source)
    return _completed(spec, contract_size, tick_px, lot_qty)


def _completed(
    spec: ContractSpec, contract_size: float | None, tick_px: float, lot_qty: float
) -> ContractSpec:
    """``spec`` (its market, kind, symbol and source) with the rest filled in: base and quote
    from the symbol, the settlement currency, the contract size (``contract_size`` or the
    venue's), tick and lot."""
    market, kind, symbol = spec.market, spec.kind, spec.symbol
    base, quote = _split_symbol(symbol)
    if kind == KIND_INVERSE:
        quote = quote or "USD"
        settle = base
        if contract_size is None:
            if market == "binance-coinm":
                contract_size = (
                    BINANCE_COINM_BTC_CONTRACT_USD
                    if base == "BTC"
                    else BINANCE_COINM_ALT_CONTRACT_USD
                )
            else:
                contract_size = BYBIT_INVERSE_CONTRACT_USD
    else:
        settle = quote
        contract_size = 1.0 if contract_size is None else contract_size
    if not (math.isfinite(contract_size) and contract_size > 0):
        raise UserError(f"--contract-size {contract_size!r}: must be a positive number")
    return replace(
        spec,
        contract_size=float(contract_size),
        base=base,
        quote=quote,
        settle=settle,
        tick_px=tick_px,
        lot_qty=lot_qty,
    )


def detect_market(fmt: str, symbol: str) -> str:
    """Market name from a reader's format (``binance-usdm``, ``binance-spot``, ``bybit``, ...) and
    the capture's symbol; ``unknown`` when neither says (npz, Tardis)."""
    sym = (symbol or "").upper()
    fmt = (fmt or "").lower()
    if fmt.startswith("binance"):
        if _COINM_RE.match(sym):
            return "binance-coinm"  # futures diffs carry "pu" on COIN-M too: the symbol decides
        return "binance-spot" if fmt.endswith("spot") else "binance-usdm"
    if fmt.startswith("bybit"):
        if sym and _BYBIT_INVERSE_RE.match(sym) and not sym.endswith(("USDT", "USDC")):
            return "bybit-inverse"
        return "bybit-spot" if "spot" in fmt else "bybit-linear"
    if _COINM_RE.match(sym):
        return "binance-coinm"
    return "unknown"


def detect_spec(
    fmt: str, symbol: str, *, tick_px: float = math.nan, lot_qty: float = math.nan
) -> ContractSpec:
    """The spec a capture implies (``detect_market``); unknown markets are linear, size 1."""
    market = detect_market(fmt, symbol)
    if market == "unknown":
        spec = ContractSpec(market="unknown", kind=KIND_LINEAR, symbol=symbol, source="default")
        return _completed(spec, None, tick_px, lot_qty)
    return spec_for(market, symbol, tick_px=tick_px, lot_qty=lot_qty, source="detected")


def resolve_spec(
    fmt: str,
    symbol: str,
    *,
    market: str | None = None,
    contract_size: float | None = None,
    tick_px: float = math.nan,
    lot_qty: float = math.nan,
) -> ContractSpec:
    """The flag's market when given (``market``/``contract_size``), else the detected one."""
    if market:
        return spec_for(
            market, symbol, contract_size=contract_size, tick_px=tick_px, lot_qty=lot_qty
        )
    spec = detect_spec(fmt, symbol, tick_px=tick_px, lot_qty=lot_qty)
    if contract_size is not None:
        return spec_for(
            spec.market if spec.market in MARKETS else "binance-usdm",
            symbol,
            contract_size=contract_size,
            tick_px=tick_px,
            lot_qty=lot_qty,
        )
    return spec


LINEAR_DEFAULT = ContractSpec(market="unknown", kind=KIND_LINEAR, source="default")


def spec_from_meta(meta: dict) -> ContractSpec:
    """The spec a run's meta records (``meta["contract"]``); runs without one are linear, size 1."""
    c = meta.get("contract") if isinstance(meta, dict) else None
    if not isinstance(c, dict) or not c.get("market"):
        return LINEAR_DEFAULT
    fields = {k: c[k] for k in ContractSpec.__dataclass_fields__ if k in c}
    for k in ("tick_px", "lot_qty"):
        if fields.get(k) is None:
            fields.pop(k, None)
    try:
        spec = ContractSpec(**fields)
        size = float(spec.contract_size)
    except (TypeError, ValueError):
        raise UserError(f"run meta: unreadable contract {c!r}") from None
    if spec.kind not in (KIND_LINEAR, KIND_INVERSE, KIND_SPOT) or not (
        math.isfinite(size) and size > 0
    ):
        raise UserError(f"run meta: contract kind/size invalid: {c!r}")
    return spec
