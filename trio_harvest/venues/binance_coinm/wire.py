"""Binance COIN-M's wire (delivery futures: ``dstream``, ``/dapi``): its facts, decode, sequencing,
backfill, listing, contract units and symbol syntax (reference/venues.md, section 2).

What is the same as USD-M: the frames (``aggTrade`` without ``M``, ``depthUpdate`` with ``T``,
``pu`` and an extra ``ps``, ``bookTicker`` with ``E``/``T``) decode with USD-M's records, and the
book rule is USD-M's: a delta continues when ``pu == previous u``; a snapshot ``L`` is bridged
by ``U <= L <= u`` (or ``pu == L``). What differs, and is handled here:

- hosts ``wss://dstream.binance.com`` (``/ws``, ``/stream``; no route split) and
  ``https://dapi.binance.com`` (``/dapi/v1``); 1024 streams, 10 client messages per second per
  connection; a server ping every 3 min, pong within 10 min;
- ``/dapi/v1/aggTrades`` weight 20, one year of history; depth weights 2/5/10/20 by limit up to
  1000; 2,400 weight a minute (the 2021 figure: read ``exchangeInfo.rateLimits``);
- every size (``q``, book levels, ``B``/``A``) counts contracts of ``contractSize`` USD (100 for
  BTC, 10 for most others): ``notional_usd`` and ``base_qty`` convert;
- symbols ``BTCUSD_PERP`` and quarterlies ``BTCUSD_251226`` that expire at their delivery date
  (``deliveryDate``, 08:00 UTC): the listing says which, ``quarterly_symbol`` names them.

Pure: no trio, no I/O, no clock (times come in as arguments).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from ..binance_common import backfill, listing, sequence
from ..binance_common.facts import WireFacts
from ..binance_usdm.decode import AggTrade, BookTicker, DepthUpdate, Envelope, Message, decode_frame

NAME = "binance-coinm"

FACTS = WireFacts(
    name=NAME,
    ws_url="wss://dstream.binance.com",
    rest_url="https://dapi.binance.com",
    rest_prefix="/dapi/v1",
    streams_per_connection=1024,
    messages_per_second=10,
    server_ping_seconds=180.0,
    pong_timeout_seconds=600.0,
    lifetime_seconds=24 * 3600.0,
    weight_limit=2400,
    agg_trades_weight=20,
    agg_trades_page=1000,
    exchange_info_weight=1,
    depth_weights=((5, 2), (10, 2), (20, 2), (50, 2), (100, 5), (500, 10), (1000, 20)),
    snapshot_limit=1000,
    history_days=365,
)

# -- records: USD-M's (``ps`` is ignored; ``q`` and sizes are contracts) ----------------------

CoinmAggTrade = AggTrade
CoinmDepthUpdate = DepthUpdate
CoinmBookTicker = BookTicker

# -- sequencing --------------------------------------------------------------------------------


def check_delta(prev_u: int, ev: CoinmDepthUpdate) -> str:
    """``sequence.OK`` when ``pu == prev_u``, ``STALE`` for ``u <= prev_u``, else ``GAP``."""
    return sequence.check_pu(prev_u, ev)


def align_snapshot(last_update_id: int, ev: CoinmDepthUpdate) -> str:
    """``sequence.DROP`` (``u < L``), ``BRIDGE`` (``U <= L <= u`` or ``pu == L``) or ``TOO_OLD``."""
    return sequence.align_pu(last_update_id, ev)


check_trade = sequence.check_agg_id  # on ``a`` only: ``f``/``l`` may skip raw ids

# -- REST --------------------------------------------------------------------------------------


# ``GET /dapi/v1/depth?symbol=&limit=`` (default: the resync depth) with its weight; the first
# ``GET /dapi/v1/aggTrades?fromId=`` page of a hole ``(symbol, first_id, last_id)``; the page after
# one whose ids came back (None: covered, or nothing more there)
snapshot_request = partial(backfill.snapshot_request, FACTS)
backfill_request = partial(backfill.first_request, FACTS)
next_backfill_request = partial(backfill.next_request, FACTS)


def within_history(trade_ms: int, now_ms: int) -> bool:
    """Whether a trade of ``trade_ms`` is still served by ``aggTrades`` (one year)."""
    assert FACTS.history_days is not None
    return now_ms - trade_ms < FACTS.history_days * 86_400_000

# -- units -------------------------------------------------------------------------------------


def notional_usd(contracts: float, contract_size: float) -> float:
    """The USD value of ``contracts`` (every COIN-M size is a count of contracts)."""
    return contracts * contract_size


def base_qty(contracts: float, contract_size: float, price: float) -> float:
    """The coin amount of ``contracts`` at ``price`` (USD per coin): notional / price."""
    return contracts * contract_size / price

# -- listing and symbols -----------------------------------------------------------------------


PERPETUAL = "PERPETUAL"
CURRENT_QUARTER = "CURRENT_QUARTER"
NEXT_QUARTER = "NEXT_QUARTER"
DELIVERY_HOUR_UTC = 8  # quarterlies settle at 08:00 UTC on their date
SYMBOL_RE = re.compile(r"^([A-Z0-9]{2,16}USD)_(PERP|\d{6})$")


def parse_listing(exchange_info: Mapping[str, Any]) -> dict[str, listing.Instrument]:
    """``GET /dapi/v1/exchangeInfo`` -> ``symbol -> Instrument`` (field ``contractStatus``, with
    ``contractSize``, ``contractType``, ``pair`` and ``deliveryDate``)."""
    return listing.parse(exchange_info, "contractStatus")


def is_symbol(symbol: str) -> bool:
    """``BTCUSD_PERP`` or a quarterly ``BTCUSD_251226``."""
    return bool(SYMBOL_RE.match(symbol))


def pair_of(symbol: str) -> str:
    """``BTCUSD`` of ``BTCUSD_PERP`` / ``BTCUSD_251226``; the symbol itself for anything else."""
    m = SYMBOL_RE.match(symbol)
    return m.group(1) if m else symbol


def delivery_ms(symbol: str) -> int:
    """When a quarterly settles (its name's date, 08:00 UTC); ``PERPETUAL_DELIVERY_MS`` for a
    perpetual or a name that carries no valid date."""
    m = SYMBOL_RE.match(symbol)
    if m is None or m.group(2) == "PERP":
        return listing.PERPETUAL_DELIVERY_MS
    code = m.group(2)
    try:
        day = datetime(2000 + int(code[:2]), int(code[2:4]), int(code[4:]), DELIVERY_HOUR_UTC,
                       tzinfo=UTC)
    except ValueError:
        return listing.PERPETUAL_DELIVERY_MS
    return int(day.timestamp()) * 1000


def quarter_dates(now_ms: int, count: int = 2) -> list[datetime]:
    """The next ``count`` quarterly delivery times after ``now_ms``: the last Friday of March,
    June, September and December, 08:00 UTC."""
    now = datetime.fromtimestamp(now_ms / 1000, UTC)
    out: list[datetime] = []
    year, month = now.year, (now.month - 1) // 3 * 3 + 3
    while len(out) < count:
        last = datetime(year, month, calendar.monthrange(year, month)[1], DELIVERY_HOUR_UTC,
                        tzinfo=UTC)
        friday = last - timedelta(days=(last.weekday() - 4) % 7)
        if friday > now:
            out.append(friday)
        year, month = (year + 1, 3) if month == 12 else (year, month + 3)
    return out


def quarterly_symbol(pair: str, now_ms: int, ahead: int = 0) -> str:
    """The quarterly of ``pair`` trading at ``now_ms``: ``ahead`` 0 the current quarter
    (``CURRENT_QUARTER``), 1 the next (``NEXT_QUARTER``)."""
    return f"{pair}_{quarter_dates(now_ms, ahead + 1)[ahead]:%y%m%d}"


def quarter_type(symbol: str, now_ms: int) -> str:
    """``contractType`` of a symbol at ``now_ms``: ``PERPETUAL``, ``CURRENT_QUARTER`` (the
    nearest delivery, or one already past) or ``NEXT_QUARTER``."""
    due = delivery_ms(symbol)
    if due == listing.PERPETUAL_DELIVERY_MS:
        return PERPETUAL
    nearest = int(quarter_dates(now_ms, 1)[0].timestamp()) * 1000
    return CURRENT_QUARTER if due <= nearest else NEXT_QUARTER


def perpetual_symbol(pair: str) -> str:
    return f"{pair}_PERP"


__all__ = ["CURRENT_QUARTER", "FACTS", "NAME", "NEXT_QUARTER", "PERPETUAL", "CoinmAggTrade",
           "CoinmBookTicker", "CoinmDepthUpdate", "Envelope", "Message", "align_snapshot",
           "backfill_request", "base_qty", "check_delta", "check_trade", "decode_frame",
           "delivery_ms", "is_symbol", "next_backfill_request", "notional_usd", "pair_of",
           "parse_listing", "perpetual_symbol", "quarter_dates", "quarter_type", "quarterly_symbol",
           "snapshot_request", "within_history"]
