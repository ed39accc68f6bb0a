"""OKX v5 REST: the instrument listing, trade backfill and the book snapshot request.

Owns the requests (``/api/v5/public/instruments?instType=``, ``/api/v5/market/history-trades``
with ``type=1``, ``/api/v5/market/books``, ``/api/v5/market/tickers``) and the reading of
their answers (``{"code":"0","msg":"","data":[…]}``): the listing (``state``, ``listTime``,
``expTime``, ``ctVal``), trades in ascending id order, 24 h activity.

Backfill pages down: ``after=X`` answers the trades *older* than id X, newest first, at most
100. The ids ``a..b`` are asked for as ``after=min(b, a + 99) + 1``, so a page ends at the
first missing id or below it; the caller moves on from the largest id it got. Limits: 20
requests per 2 s per IP for history-trades, 40 per 2 s for books, 20 per 2 s for instruments;
over them HTTP 429 with code ``50011``. No header reports what was used. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from ..base import NEVER_MS, Listed
from .wire import OkxTrade

INSTRUMENTS_PATH = "/api/v5/public/instruments"
HISTORY_TRADES_PATH = "/api/v5/market/history-trades"
BOOKS_PATH = "/api/v5/market/books"
TICKERS_PATH = "/api/v5/market/tickers"
PAGE = 100  # history-trades ``limit`` at most
BOOKS_MAX = 400  # books ``sz`` at most
LIVE = "live"  # the state of an instrument that trades


# a history-trades row reads like a ``trades`` entry (whether REST rows are per fill or
# aggregated is not documented: a ``count`` is read where present, 1 otherwise, and the caller
# matches on id ranges)
RestTrade = OkxTrade


class _Answer(msgspec.Struct, gc=False):
    data: list[RestTrade]
    code: str = "0"


_trades = msgspec.json.Decoder(_Answer, strict=False)


def trades_params(symbol: str, from_id: int, limit: int) -> dict[str, str | int]:
    """The history-trades query for the ids ``from_id`` up to ``from_id + limit - 1``."""
    n = max(1, min(limit, PAGE))
    return {"instId": symbol, "type": 1, "after": from_id + n, "limit": PAGE}


def decode_trades(body: bytes, scales: Mapping[str, float]) -> list[RestTrade]:
    """A history-trades answer in ascending id order (sizes times the contract value);
    ``msgspec.DecodeError`` for anything else (an error code too)."""
    answer = _trades.decode(body)
    if answer.code != "0":
        raise msgspec.ValidationError(f"history-trades answered code {answer.code[:20]}")
    rows = answer.data
    for t in rows:
        scale = scales.get(t.symbol, 1.0)
        if scale != 1.0:
            t.qty *= scale
    rows.sort(key=lambda t: t.agg_id)
    return rows


def _int(value: object, default: int) -> int:
    try:
        n = int(str(value))
    except ValueError:
        return default
    return n if n > 0 else default


def _positive(value: object) -> float:
    try:
        v = float(str(value))
    except ValueError:
        return 0.0
    return v if 0.0 < v < float("inf") else 0.0


def instruments(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The entries of an instruments answer that name an instId."""
    data = doc.get("data")
    if not isinstance(data, list):
        return []
    return [e for e in data if isinstance(e, Mapping) and isinstance(e.get("instId"), str)]


def listing(doc: Mapping[str, Any]) -> dict[str, Listed]:
    """``instId -> Listed`` (``state``, ``listTime``, ``expTime``; perpetuals and spot have no
    expiry: ``NEVER_MS``)."""
    out: dict[str, Listed] = {}
    for e in instruments(doc):
        state = e.get("state")
        out[e["instId"]] = Listed(state if isinstance(state, str) else "",
                                  _int(e.get("listTime"), 0), _int(e.get("expTime"), NEVER_MS))
    return out


def contract_values(doc: Mapping[str, Any]) -> dict[str, float]:
    """``instId -> ctVal`` of an instruments answer (entries without one are left out)."""
    out: dict[str, float] = {}
    for e in instruments(doc):
        value = _positive(e.get("ctVal"))
        if value:
            out[e["instId"]] = value
    return out


def activity(body: bytes | str) -> dict[str, int]:
    """``instId -> 24 h volume`` of a tickers answer (OKX counts no trades; the volume in
    contracts or coin stands in for activity); ``ValueError`` for anything else."""
    doc = msgspec.json.decode(body)
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise ValueError("tickers: expected {\"data\": [...]}")
    out: dict[str, int] = {}
    for row in doc["data"]:
        if not isinstance(row, dict) or not isinstance(row.get("instId"), str):
            raise ValueError("tickers: an entry without an instId")
        out[row["instId"]] = int(_positive(row.get("vol24h")))
    return out

