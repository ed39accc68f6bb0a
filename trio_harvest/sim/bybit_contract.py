"""The Bybit linear wire of the simulator's futures contract: ``tickers.S`` and
``allLiquidation.S``.

Owns, per symbol, the tickers state as Bybit sends it (the wire text of mark and index price,
funding rate, next funding time, open interest and last price) and its two encodings: the
snapshot (every field: what a new subscriber gets first) and the delta (only the fields whose
text changed since the previous message; none when nothing did, then Bybit sends nothing), and
one liquidation as ``allLiquidation`` (``S`` the side of the position liquidated: a buy order
closes a short, so ``Sell``). The contract model (``derivs.py``) decides the values; this
module only writes them. Pure: builds text, never decides who receives it (``bybit_hub.py``).
"""

from __future__ import annotations

from .events import ForceOrder, MarkPrice
from .specs import SymbolSpec

TICKERS = "tickers"
LIQUIDATION = "allLiquidation"


class BybitContractWire:
    """One linear symbol's tickers state and its liquidation topic."""

    __slots__ = ("_spec", "_state", "liquidation", "symbol", "tickers")

    def __init__(self, spec: SymbolSpec) -> None:
        self._spec = spec
        self.symbol = spec.symbol
        self.tickers = f"{TICKERS}.{spec.symbol}"
        self.liquidation = f"{LIQUIDATION}.{spec.symbol}"
        self._state: dict[str, str] = {}

    def update(self, m: MarkPrice, open_interest_lots: int, last_ticks: int) -> str | None:
        """Take the contract's values of this second; the delta of what changed (None: no
        field did). ``snapshot`` gives the full state after it."""
        spec = self._spec
        pd = spec.price_decimals
        fields = {
            "lastPrice": spec.price_str(last_ticks),
            "markPrice": f"{m.mark:.{pd}f}",
            "indexPrice": f"{m.index:.{pd}f}",
            "openInterest": spec.qty_str(open_interest_lots),
            "nextFundingTime": str(m.next_funding_ms) if m.next_funding_ms else "",
            "fundingRate": "" if m.funding_rate is None else f"{m.funding_rate:.6f}",
        }
        changed = {k: v for k, v in fields.items() if self._state.get(k) != v}
        self._state = fields
        if not changed:
            return None
        return self._message("delta", changed, m.event_ms)

    def snapshot(self, event_ms: int) -> str | None:
        """The full state as a snapshot (None before the first update)."""
        if not self._state:
            return None
        return self._message("snapshot", self._state, event_ms)

    def _message(self, kind: str, fields: dict[str, str], ts: int) -> str:
        body = ",".join(f'"{k}":"{v}"' for k, v in fields.items())
        return (f'{{"topic":"{self.tickers}","type":"{kind}","data":{{"symbol":"{self.symbol}",'
                f'{body}}},"cs":{ts},"ts":{ts}}}')

    def liquidation_message(self, f: ForceOrder) -> str:
        spec = self._spec
        side = "Sell" if f.buy else "Buy"  # the position: a buy order closes a short
        return (f'{{"topic":"{self.liquidation}","type":"snapshot","ts":{f.event_ms},"data":[{{'
                f'"T":{f.trade_ms},"s":"{self.symbol}","S":"{side}","v":"{spec.qty_str(f.qty)}",'
                f'"p":"{spec.price_str(f.price)}"}}]}}')
