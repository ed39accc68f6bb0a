"""The kinds of data trio_harvest writes: their class, columns and default watermarks.

Owns the row contract shared by decoding, lanes, storage, dead letter and recovery: a record in a
lane is a plain ``tuple`` whose values follow ``Schema.names`` exactly, and ``ts_ms`` (exchange
event time, the partitioning key) is always the first column. Pure data; never does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from functools import cache
from typing import Any

import polars as pl

Row = tuple[Any, ...]


class DataClass(Enum):
    """Authoritative data is never dropped; preview data is derived and may spill."""

    AUTHORITATIVE = "authoritative"
    PREVIEW = "preview"


@dataclass(frozen=True, slots=True)
class Schema:
    kind: str
    columns: tuple[tuple[str, Any], ...]

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.columns]

    @property
    def polars(self) -> dict[str, Any]:
        return dict(self.columns)

    def index(self, column: str) -> int:
        return self.names.index(column)


PRICES = "prices"
ORDERBOOK = "orderbook"
OFI = "ofi"
CVD = "cvd"
FUSION = "fusion"
EVENTS = "events"
FEATURES = "features"
GAPS = "gaps"
QUOTES = "quotes"  # best bid/ask updates (before: rows inside orderbook)
BOOK_UPDATES = "book_updates"  # every price-level change, snapshot levels flagged
DERIVATIVES = "derivatives"  # mark/index price, funding, open interest of a futures contract
LIQUIDATIONS = "liquidations"  # liquidation orders

AUTHORITATIVE_KINDS = (PRICES, ORDERBOOK, GAPS, QUOTES, BOOK_UPDATES, DERIVATIVES, LIQUIDATIONS)
PREVIEW_KINDS = (OFI, CVD, FUSION, EVENTS, FEATURES)
ALL_KINDS = AUTHORITATIVE_KINDS + PREVIEW_KINDS

# Default (high, emergency) watermarks per kind, in records per symbol: the old harvester's values.
DEFAULT_WATERMARKS: dict[str, tuple[int, int]] = {
    PRICES: (20_000, 40_000),
    ORDERBOOK: (12_000, 24_000),
    OFI: (8_000, 16_000),
    CVD: (8_000, 16_000),
    FEATURES: (8_000, 16_000),
    FUSION: (5_000, 10_000),
    EVENTS: (5_000, 10_000),
    GAPS: (5_000, 10_000),
    QUOTES: (12_000, 24_000),
    BOOK_UPDATES: (20_000, 40_000),  # a diff message is a row per level it changes
    DERIVATIVES: (5_000, 10_000),  # about one row a second per stream
    LIQUIDATIONS: (5_000, 10_000),  # bursty, but at most one a second per symbol on Binance
}

OFI_LEVELS_MAX = 10

_I64 = pl.Int64
_F64 = pl.Float64
_STR = pl.String
_BOOL = pl.Boolean


def data_class(kind: str) -> DataClass:
    if kind in AUTHORITATIVE_KINDS:
        return DataClass.AUTHORITATIVE
    if kind in PREVIEW_KINDS:
        return DataClass.PREVIEW
    raise KeyError(f"unknown kind {kind!r}")


def is_authoritative(kind: str) -> bool:
    return data_class(kind) is DataClass.AUTHORITATIVE


PRICES_SCHEMA = Schema(
    PRICES,
    (
        ("ts_ms", _I64),
        ("event_ms", _I64),
        ("recv_ms", _I64),
        ("symbol", _STR),
        ("agg_id", _I64),
        ("price", _F64),
        ("qty", _F64),
        ("first_id", _I64),
        ("last_id", _I64),
        ("is_buyer_maker", _BOOL),
        # the venue's own trade id where it is not an integer (a Bybit linear UUID; ``agg_id``
        # then holds a 63-bit key of it); null where ``agg_id`` is the venue's id. Last, so the
        # positions of the columns before it never moved; files written before it lack it and
        # read it as null.
        ("trade_id", _STR),
    ),
)

# columns added to a kind after files and dead-letter records were written without them: a
# record that lacks one holds null there
ADDED_COLUMNS: dict[str, frozenset[str]] = {PRICES: frozenset({"trade_id"})}


def full_rows(schema: Schema, rows: list[Row]) -> list[Row]:
    """``rows`` as wide as ``schema``: a tuple row that lacks only the kind's added columns (they
    are last) gets null there; any other row is left as it is (``rows`` itself when none is
    short)."""
    width = len(schema.columns)
    added = len(ADDED_COLUMNS.get(schema.kind, ()))
    if not added or all(len(r) == width for r in rows):
        return rows
    return [r + (None,) * (width - len(r)) if width - added <= len(r) < width else r
            for r in rows]


@cache  # one shared (immutable) schema per depth: a venue's lanes are made by the thousand
def orderbook_schema(levels: int) -> Schema:
    """One row per book message. ``source`` says which stream: ``depth<N>``, ``depth`` (diff-built
    local book) or the venue's quote stream (level 1 only; deeper levels are null)."""
    cols: list[tuple[str, Any]] = [
        ("ts_ms", _I64),
        ("event_ms", _I64),
        ("recv_ms", _I64),
        ("symbol", _STR),
        ("source", _STR),
        ("update_id", _I64),
        ("first_update_id", _I64),
        ("prev_update_id", _I64),
    ]
    for i in range(1, levels + 1):
        cols += [
            (f"bid_px_{i}", _F64),
            (f"bid_sz_{i}", _F64),
            (f"ask_px_{i}", _F64),
            (f"ask_sz_{i}", _F64),
        ]
    return Schema(ORDERBOOK, tuple(cols))


GAPS_SCHEMA = Schema(
    GAPS,
    (
        ("ts_ms", _I64),  # = start_ms; the partitioning key
        ("symbol", _STR),
        ("stream", _STR),
        ("start_ms", _I64),
        ("end_ms", _I64),
        ("reason", _STR),
        ("detail", _STR),
    ),
)

QUOTES_SCHEMA = Schema(
    QUOTES,
    (
        ("ts_ms", _I64),  # the event time (the receive time where the venue sends none)
        ("event_ms", _I64),  # null where the venue sends no event time
        ("recv_ms", _I64),
        ("symbol", _STR),
        ("update_id", _I64),  # the book's update id the quote belongs to (null: none sent)
        ("bid", _F64),
        ("bid_qty", _F64),
        ("ask", _F64),
        ("ask_qty", _F64),
    ),
)

BOOK_UPDATES_SCHEMA = Schema(
    BOOK_UPDATES,
    (
        ("ts_ms", _I64),
        ("event_ms", _I64),
        ("recv_ms", _I64),
        ("symbol", _STR),
        ("first_update_id", _I64),  # the diff's first update id (a snapshot's rows: its update id)
        ("update_id", _I64),  # u: the last update id the diff covers
        ("prev_update_id", _I64),  # pu where the venue sends it (the rule that proves no gap)
        ("side", _STR),  # "bid" | "ask"
        ("price", _F64),
        ("qty", _F64),  # the level's new size; 0: the level is gone
        ("is_snapshot", _BOOL),  # a level of a full snapshot: the book restarts from these
    ),
)

DERIVATIVES_SCHEMA = Schema(
    DERIVATIVES,
    (
        ("ts_ms", _I64),  # the event time (the venue's; the receive time where it sends none)
        ("event_ms", _I64),
        ("recv_ms", _I64),
        ("symbol", _STR),
        ("source", _STR),  # the venue's stream or REST call the row came from (markPrice, …)
        # each of these is null where the message does not carry it (never a stale copy)
        ("mark_price", _F64),
        ("index_price", _F64),
        ("settle_price", _F64),  # the estimated or predicted settle price, where given
        ("funding_rate", _F64),  # the current period's rate (0.0001 = 0.01 %)
        ("next_funding_ms", _I64),  # when the current period's funding settles
        ("open_interest", _F64),  # in the venue's size unit (contracts on COIN-M)
    ),
)

LIQUIDATIONS_SCHEMA = Schema(
    LIQUIDATIONS,
    (
        ("ts_ms", _I64),  # the liquidation order's time (its event time where it has none)
        ("event_ms", _I64),
        ("recv_ms", _I64),
        ("symbol", _STR),
        ("side", _STR),  # "buy" | "sell": the liquidation order's side (sell: a long closed)
        ("price", _F64),  # the order's price
        ("qty", _F64),  # the order's quantity (contracts on COIN-M)
        ("avg_price", _F64),  # average fill price; null where the venue gives none
        ("filled_qty", _F64),  # accumulated filled quantity; null where none is given
        ("status", _STR),  # the order status (FILLED, …); "" where none is given
        ("order_type", _STR),  # LIMIT, …; "" where none is given
        ("time_in_force", _STR),  # IOC, …; "" where none is given
    ),
)

OFI_SCHEMA = Schema(
    OFI,
    (
        ("ts_ms", _I64),
        ("symbol", _STR),
        ("source", _STR),  # the book row's source: the quote stream | depth<N> | depth
        ("ofi_l1", _F64),  # null: first state (after start or a gap), or depth when quotes are L1
        ("ofi_ml", _F64),  # sum over levels 1..M (null when the source has one level)
        ("bid", _F64),
        ("ask", _F64),
        ("bid_sz", _F64),
        ("ask_sz", _F64),
    ),
)

CVD_SCHEMA = Schema(
    CVD,
    (
        ("ts_ms", _I64),
        ("symbol", _STR),
        ("agg_id", _I64),
        ("delta", _F64),  # this trade's signed qty: + aggressive buy, - aggressive sell
        ("cvd", _F64),  # since harvester start
        ("gap", _BOOL),  # an agg-id break was seen at or before this trade (sticky)
    ),
)

FUSION_SCHEMA = Schema(
    FUSION,
    (
        ("ts_ms", _I64),
        ("symbol", _STR),
        ("ofi_n", _F64),
        ("dcvd_n", _F64),
        ("z_ofi", _F64),  # clipped at ±z_clip; null until z_min_periods seconds of history
        ("z_dcvd", _F64),
        ("score", _F64),  # w_ofi·z_ofi + w_cvd·z_dcvd
    ),
)

EVENTS_SCHEMA = Schema(
    EVENTS,
    (
        ("ts_ms", _I64),
        ("symbol", _STR),
        ("type", _STR),
        ("value", _F64),
        ("detail", _STR),
    ),
)

FEATURES_SCHEMA = Schema(
    FEATURES,
    (
        ("ts_ms", _I64),
        ("symbol", _STR),
        ("last", _F64),
        ("vwap", _F64),
        ("volume", _F64),
        ("notional", _F64),
        ("n_trades", _I64),
        ("buy_vol", _F64),
        ("sell_vol", _F64),
        ("delta", _F64),
        ("cvd", _F64),
        ("ofi_l1", _F64),
        ("ofi_ml", _F64),
        ("bid", _F64),
        ("ask", _F64),
        ("spread", _F64),
        ("mid", _F64),
        ("wmid", _F64),
        ("imb_l1", _F64),
        ("imb_l5", _F64),
        ("book_updates", _I64),
        ("flags", _STR),  # sorted, comma-separated subset of gap,resync,stale; "" if none
        # a futures contract's state (signals/marketstate.py): null on spot, or when stale
        ("mark_price", _F64),  # the last mark price at the second's end (at most 30 s old)
        ("funding_rate", _F64),  # the last funding rate (at most 30 s old)
        ("open_interest", _F64),  # the last open interest (at most 180 s old)
        ("liq_count", _I64),  # liquidation orders in the second
        ("liq_notional", _F64),  # their price x quantity (COIN-M: USD contracts x price)
    ),
)


def schema_for(kind: str, depth_levels: int = 20) -> Schema:
    if kind == ORDERBOOK:
        return orderbook_schema(depth_levels)
    try:
        return _FIXED[kind]
    except KeyError:
        raise KeyError(f"unknown kind {kind!r}") from None


_FIXED: dict[str, Schema] = {
    PRICES: PRICES_SCHEMA,
    GAPS: GAPS_SCHEMA,
    QUOTES: QUOTES_SCHEMA,
    BOOK_UPDATES: BOOK_UPDATES_SCHEMA,
    DERIVATIVES: DERIVATIVES_SCHEMA,
    LIQUIDATIONS: LIQUIDATIONS_SCHEMA,
    OFI: OFI_SCHEMA,
    CVD: CVD_SCHEMA,
    FUSION: FUSION_SCHEMA,
    EVENTS: EVENTS_SCHEMA,
    FEATURES: FEATURES_SCHEMA,
}


MAX_DEPTH_LEVELS = 20


def _dataset_schema() -> Schema:
    """The union of every kind's columns (orderbook at the maximum depth): the schema every file
    of the first version carried, each kind's own columns filled and the rest null. Files are
    now written with their kind's columns only (``storage/fileschema.py``); this stays to
    describe, read and test those first-version files."""
    columns: dict[str, Any] = {}
    for kind in ALL_KINDS:
        for name, dtype in schema_for(kind, MAX_DEPTH_LEVELS).columns:
            if name in columns and columns[name] != dtype:
                raise TypeError(f"column {name!r} has two types across kinds")
            columns.setdefault(name, dtype)
    return Schema("dataset", tuple(columns.items()))


DATASET_SCHEMA = _dataset_schema()

# Time columns: epoch milliseconds (Int64) in memory (rows, lanes, dead letter), Parquet UTC
# timestamps in files (``TIMESTAMP``; files of versions before this one hold the Int64 ms).
EPOCH_MS_COLUMNS = ("ts_ms", "event_ms", "recv_ms", "start_ms", "end_ms", "next_funding_ms")
TIMESTAMP = pl.Datetime("ms", "UTC")


def stored_type(name: str, dtype: Any) -> Any:
    """The type a column of a row has in a file: a time column is a UTC timestamp."""
    return TIMESTAMP if name in EPOCH_MS_COLUMNS else dtype


# The venue every row of a dataset written before venues existed belongs to, and the default of
# every part that carries a venue (lanes, writer, partitions, recovery, journal, reader).
DEFAULT_VENUE = "binance-usdm"
# venues whose ``prices`` rows each cover the trade ids ``first_id..agg_id`` (the next row starts
# at ``agg_id + 1``): continuity is read over those spans (readers below the venues need it; the
# registry checks it against the adapters)
SPAN_ID_VENUES = frozenset({"okx-swap", "okx-spot"})
# venues whose trade ids prove no continuity (Bybit: linear UUIDs, kept as a 63-bit key; spot
# numbers with no documented step): readers count duplicate ids, never holes between them
UNCHAINED_ID_VENUES = frozenset({"bybit-linear", "bybit-spot"})

# The Hive path carries these (``venue=…/date=…/symbol=…/kind=…``; files written before venues
# had no ``venue=`` level); a file never repeats them, or PyArrow and DuckDB would see one column
# twice with two types. ``FILE_SCHEMA``: a first-version file.
PARTITION_COLUMNS = ("venue", "date", "symbol", "kind")
FILE_SCHEMA = Schema("file", tuple(c for c in DATASET_SCHEMA.columns
                                   if c[0] not in PARTITION_COLUMNS))
# Every kind's columns as files hold them today (times as timestamps): to read every kind at
# once, ``pl.scan_parquet("data/venue=*/**/*.parquet", schema=STORED_FILE_SCHEMA.polars, …)``.
STORED_FILE_SCHEMA = Schema("stored", tuple((n, stored_type(n, t)) for n, t in FILE_SCHEMA.columns))


def columns_of(kind: str, depth_levels: int = MAX_DEPTH_LEVELS) -> list[str]:
    """The columns that belong to ``kind`` (select these after filtering on ``kind``)."""
    return schema_for(kind, depth_levels).names
