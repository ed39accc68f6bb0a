"""The simulator's OKX v5 REST API: ``/api/v5/public/instruments``,
``/api/v5/market/history-trades``, ``/api/v5/market/books`` and ``/api/v5/market/tickers``.

Owns what each answers in OKX's shape (``{"code":"0","msg":"","data":[…]}``, numbers as
strings): instruments with ``state`` (``live``; a delisted one ``suspend``), ``listTime`` and,
on SWAP, ``ctVal`` (one lot of the model: the simulator's sizes count lots as contracts);
history-trades paging down by trade id (``type=1``: ``after=X`` gives the trades whose
``tradeId`` is below X, newest first, at most ``limit`` ≤ 100); books as of the stream's
``seqId`` (the wire's offset, so a reset shows here too); tickers' 24 h volume. Limits per
endpoint per 2 s (history-trades 20, books 40, instruments 20, tickers 20; ``weight=N`` in the
fault spec scales them down to N per minute): over a limit HTTP 429 with code ``50011``.
Reads the market's tape and book, so ids agree with the streams. Pure; ``front.py`` serves it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import msgspec

from .activity import activity
from .events import AggTrade
from .market import Market
from .okx_wire import OkxSymbolWire
from .rest import RestReply, RestStats
from .specs import fixed

PREFIX = "/api/v5"
WINDOW_MS = 2000
LIMITS = {"history-trades": 20, "books": 40, "instruments": 20, "tickers": 20}
LIST_MS = 1_573_557_408_000
_encode = msgspec.json.encode


class OkxRestApi:
    def __init__(self, market: Market, clock_ms: Callable[[], int],
                 wires: Mapping[str, OkxSymbolWire], inst_type: str,
                 per_minute: int | None = None) -> None:
        self.root = b"/api/"
        self.market = market
        self.clock_ms = clock_ms
        self.wires = wires  # instId -> its wire (seqId offsets)
        self.inst_type = inst_type
        self.stats = RestStats()
        self.per_minute = per_minute
        self._windows: dict[str, tuple[int, int]] = {}  # endpoint -> (window, used)

    def handle(self, method: str, target: str) -> RestReply:
        path, query = self.stats.counted(target)
        endpoint = path.rsplit("/", 1)[-1]
        if method not in ("GET", "HEAD"):
            return self._error(405, "50000", f"method {method} not allowed")
        if path not in (f"{PREFIX}/public/instruments", f"{PREFIX}/market/history-trades",
                        f"{PREFIX}/market/books", f"{PREFIX}/market/tickers"):
            return self._error(404, "50000", f"Path {path} not found")
        if not self._allow(endpoint):
            self.stats.rejected_429 += 1
            return RestReply(429, _encode({"code": "50011", "msg": "Too Many Requests",
                                           "data": []}), (("Retry-After", "2"),))
        self.stats.weight_used += 1
        if endpoint == "instruments":
            if query.get("instType") != self.inst_type:
                return self._error(400, "51000", "Parameter instType error")
            return self._ok(self._instruments())
        if endpoint == "tickers":
            return self._ok(self._tickers())
        inst = query.get("instId", "")
        if inst not in self.market:
            return self._error(400, "51001", "Instrument ID does not exist")
        if endpoint == "books":
            return self._ok([self._books(inst, _int(query.get("sz"), 1) or 1)])
        if query.get("type", "1") != "1":
            return self._error(400, "51000", "Parameter type error: only type=1 is simulated")
        limit = _int(query.get("limit"), 100)
        if not 1 <= limit <= 100:
            return self._error(400, "51000", "Parameter limit error")
        return self._ok(self._history(inst, _int(query.get("after"), 0), limit))

    def _allow(self, endpoint: str) -> bool:
        limit, window_ms = LIMITS[endpoint], WINDOW_MS
        if self.per_minute is not None:
            limit, window_ms = self.per_minute, 60_000
        window = self.clock_ms() // window_ms
        at, used = self._windows.get(endpoint, (window, 0))
        if at != window:
            used = 0
        if used >= limit:
            self._windows[endpoint] = (window, used)
            return False
        self._windows[endpoint] = (window, used + 1)
        return True

    def _ok(self, data: list[object]) -> RestReply:
        return RestReply(200, _encode({"code": "0", "msg": "", "data": data}))

    def _error(self, status: int, code: str, msg: str) -> RestReply:
        self.stats.errors_4xx += 1
        return RestReply(status, _encode({"code": code, "msg": msg, "data": []}))

    def _instruments(self) -> list[object]:
        out: list[object] = []
        for state, models in (("live", self.market.symbols), ("suspend", self.market.closed)):
            for name, model in models.items():
                spec = model.spec
                entry: dict[str, object] = {
                    "instId": name, "instType": self.inst_type, "state": state,
                    "tickSz": fixed(spec.tick_units, spec.price_decimals),
                    "lotSz": "1" if self.inst_type == "SWAP" else
                    fixed(spec.lot_units, spec.qty_decimals),
                    "listTime": str(self.market.listed_ms.get(name, LIST_MS)),
                    "expTime": str(self.market.delisted_ms.get(name, "")) if state != "live"
                    else ""}
                if self.inst_type == "SWAP":
                    entry.update(ctVal=fixed(spec.lot_units, spec.qty_decimals),
                                 ctValCcy=name.split("-")[0], ctType="linear")
                out.append(entry)
        return out

    def _tickers(self) -> list[object]:
        return [{"instId": name, "instType": self.inst_type,
                 "vol24h": str(activity(name).count)} for name in self.market.symbols]

    def _books(self, inst: str, sz: int) -> dict[str, object]:
        model, wire = self.market[inst], self.wires[inst]
        snap = model.snapshot(min(sz, 400))
        return {"asks": [[wire.price(p), wire.qty(q), "0", "1"] for p, q in snap.asks],
                "bids": [[wire.price(p), wire.qty(q), "0", "1"] for p, q in snap.bids],
                "ts": str(self.clock_ms()), "seqId": wire.seq(snap.last_update_id)}

    def _history(self, inst: str, after: int, limit: int) -> list[object]:
        """Trades with ``tradeId`` (last fill id) below ``after`` (0: the newest), newest
        first."""
        tape = self.market[inst].tape
        first, last = tape.first_id, tape.last_id
        if first is None or last is None:
            return []
        lo, hi = first, last + 1  # the first agg id whose last fill id is >= after
        if after:
            while lo < hi:
                mid = (lo + hi) // 2
                if tape.since(mid, 1)[0].last_id < after:
                    lo = mid + 1
                else:
                    hi = mid
        else:
            lo = last + 1
        start = max(first, lo - limit)
        wire = self.wires[inst]
        rows = tape.since(start, lo - start)
        return [_trade(t, inst, wire) for t in reversed(rows)]


def _trade(t: AggTrade, inst: str, wire: OkxSymbolWire) -> dict[str, object]:
    return {"instId": inst, "tradeId": str(t.last_id), "px": wire.price(t.price),
            "sz": wire.qty(t.qty), "side": "sell" if t.buyer_maker else "buy",
            "ts": str(t.trade_ms), "count": str(t.last_id - t.first_id + 1), "source": "0"}


def _int(raw: str | None, default: int) -> int:
    try:
        return default if raw is None else int(raw)
    except ValueError:
        return -1
