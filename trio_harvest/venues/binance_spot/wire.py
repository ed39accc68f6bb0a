"""Binance Spot's wire: its facts, the decode of its combined-stream frames, its sequencing rules,
backfill, listing and symbol syntax (reference/venues.md, section 1).

What differs from USD-M, and is handled here:

- no route split: ``wss://stream.binance.com:9443/stream?streams=…`` carries every stream;
  1024 streams per connection, 5 client messages per second, a server ping every 20 s (pong
  within 1 min), 24 h lifetime;
- ``depthUpdate`` has no ``pu`` and no ``T``: a delta continues the book when
  ``U == previous u + 1``; a snapshot ``L`` is bridged by ``U <= L + 1 <= u``;
- ``bookTicker`` has no ``e``, ``E`` or ``T`` (``event_ms`` 0: stamp it with the receive time);
- partial depth ``<s>@depthN`` is ``{"lastUpdateId","bids","asks"}``: no symbol, no time (the
  symbol comes from the stream name);
- REST ``/api/v3``: ``aggTrades`` weight 4, depth 5/25/50/250 by limit, 6,000 weight a minute.

Decoded records keep USD-M's attribute names (``agg_id``, ``price`` … ``update_id``,
``first_update_id``, ``prev_update_id`` (-1), ``bid`` …), so the core reads them alike. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import partial
from typing import Any, ClassVar

import msgspec

from ..base import BOOK
from ..binance_common import backfill, listing, sequence
from ..binance_common.facts import WireFacts, stream_symbol
from ..binance_usdm.decode import (
    AggTrade,
    BookTicker,
    DepthUpdate,
    FrameError,
    Id,
    Level,
    _validation,
)

NAME = "binance-spot"

FACTS = WireFacts(
    name=NAME,
    ws_url="wss://stream.binance.com:9443",
    rest_url="https://api.binance.com",
    rest_prefix="/api/v3",
    streams_per_connection=1024,
    messages_per_second=5,
    server_ping_seconds=20.0,
    pong_timeout_seconds=60.0,
    lifetime_seconds=24 * 3600.0,
    weight_limit=6000,
    agg_trades_weight=4,
    agg_trades_page=1000,
    exchange_info_weight=20,
    depth_weights=((100, 5), (500, 25), (1000, 50), (5000, 250)),
    snapshot_limit=5000,
    connect_limit=(300, 300.0),  # 300 connection attempts per 5 minutes per IP
)
MARKET_DATA_WS_URL = "wss://data-stream.binance.vision"  # market data only, same paths


# -- records -----------------------------------------------------------------------------------

SpotAggTrade = AggTrade  # spot adds ``M`` (ignored); the rest is USD-M's aggTrade
SpotDepthUpdate = DepthUpdate  # decodes with ``pu`` -1 and ``T`` 0 (both absent on spot)


class SpotBookTicker(BookTicker, tag=False, tag_field=None):
    """``<s>@bookTicker``: USD-M's record (an instance of it) without the ``e`` tag; spot sends
    no times, so ``event_ms`` and ``trade_ms`` stay 0."""


class PartialDepth(msgspec.Struct, gc=False):
    """``<s>@depthN[@100ms]``: the top N as of ``update_id``; ``symbol`` is filled in from the
    stream name. Reads like a ``DepthUpdate`` (``first_update_id`` = ``update_id``, no times)."""

    kind: ClassVar[int] = BOOK  # the record kind (``venues.base``)
    update_id: Id = msgspec.field(name="lastUpdateId")
    bids: list[Level] = msgspec.field(default_factory=list)
    asks: list[Level] = msgspec.field(default_factory=list)
    symbol: str = ""
    first_update_id: int = 0
    prev_update_id: int = -1
    event_ms: int = 0
    trade_ms: int = 0


Message = SpotAggTrade | SpotDepthUpdate | SpotBookTicker | PartialDepth


class Envelope(msgspec.Struct, gc=False):
    stream: str
    data: Message


class _Raw(msgspec.Struct, gc=False):
    stream: str
    data: msgspec.Raw


_wrapped = msgspec.json.Decoder(_Raw)
decode_raw = _wrapped.decode  # a combined frame, its payload undecoded (``decode_payload``)
_tagged = msgspec.json.Decoder(SpotAggTrade | SpotDepthUpdate, strict=False)
_ticker = msgspec.json.Decoder(SpotBookTicker, strict=False)
_partial = msgspec.json.Decoder(PartialDepth, strict=False)


def decode_payload(stream: str, payload: bytes | str | msgspec.Raw) -> Message:
    """One payload of stream ``stream`` (a raw ``/ws/<stream>`` frame, or a combined frame's
    ``data``). Raises ``msgspec.DecodeError`` for anything else."""
    tail = stream.partition("@")[2]
    if tail == "bookTicker":
        return _ticker.decode(payload)
    if tail.startswith("depth") and tail[5:6].isdigit():  # depth5, depth10, depth20
        part = _partial.decode(payload)
        part.symbol = stream_symbol(stream)
        part.first_update_id = part.update_id
        return part
    msg: Message = _tagged.decode(payload)
    return msg


def decode_frame(frame: str | bytes) -> Envelope:
    """One combined-stream frame. Raises ``FrameError`` (``malformed``, ``unexpected`` or
    ``rejected``), as USD-M's ``decode_frame`` does."""
    try:
        raw = decode_raw(frame)
        return Envelope(raw.stream, decode_payload(raw.stream, raw.data))
    except msgspec.ValidationError as exc:
        raise _validation(exc, "frame") from None
    except msgspec.DecodeError as exc:
        raise FrameError("malformed", f"malformed frame: {exc}") from None


# -- sequencing --------------------------------------------------------------------------------

def check_delta(prev_u: int, ev: SpotDepthUpdate) -> str:
    """``sequence.OK`` when ``U == prev_u + 1``, ``STALE`` for ``u <= prev_u``, else ``GAP``."""
    return sequence.check_next(prev_u, ev)


def align_snapshot(last_update_id: int, ev: SpotDepthUpdate) -> str:
    """``sequence.DROP`` (``u <= L``), ``BRIDGE`` (``U <= L + 1 <= u``) or ``TOO_OLD``."""
    return sequence.align_next(last_update_id, ev)


check_trade = sequence.check_agg_id  # ``a == previous a + 1``


def raw_ids_continue(prev_last_id: int, first_id: int) -> bool:
    """Spot also chains raw trade ids (``f == previous l + 1``); informative, not a gap rule."""
    return first_id == prev_last_id + 1


# -- REST --------------------------------------------------------------------------------------

# ``GET /api/v3/depth?symbol=&limit=`` (default: the resync depth) with its weight; the first
# ``GET /api/v3/aggTrades?fromId=`` page of a hole ``(symbol, first_id, last_id)``; the page after
# one whose ids came back (None: covered, or nothing more there)
snapshot_request = partial(backfill.snapshot_request, FACTS)
backfill_request = partial(backfill.first_request, FACTS)
next_backfill_request = partial(backfill.next_request, FACTS)


# -- listing and symbols -----------------------------------------------------------------------

STATUSES = ("TRADING", "HALT", "BREAK", "CANCEL_ONLY")
SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,20}$")


def parse_listing(exchange_info: Mapping[str, Any]) -> dict[str, listing.Instrument]:
    """``GET /api/v3/exchangeInfo`` -> ``symbol -> Instrument`` (field ``status``)."""
    return listing.parse(exchange_info, "status")


def is_symbol(symbol: str) -> bool:
    """``BTCUSDT``: upper case in REST and payloads (stream names use it in lower case)."""
    return bool(SYMBOL_RE.match(symbol))


__all__ = ["FACTS", "NAME", "Envelope", "Message", "PartialDepth", "SpotAggTrade",
           "SpotBookTicker", "SpotDepthUpdate", "align_snapshot", "backfill_request",
           "check_delta", "check_trade", "decode_frame", "decode_payload", "is_symbol",
           "next_backfill_request", "parse_listing", "raw_ids_continue", "snapshot_request"]
