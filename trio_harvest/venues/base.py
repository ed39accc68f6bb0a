"""The venue-neutral contract: the records the core reads and the adapter every venue provides.

Owns the shapes the router, lanes, repair, signals, journal and ops speak (``Trade``, ``Quote``,
``BookLevels`` records told apart by a small ``kind`` tag, never by a venue's class), the
connection plan types, and the ``Venue`` protocol: connection plan and subscribe messages,
keepalive, decoding, the book sequencing rule, the trade continuity rule, backfill requests
and limits, the instrument listing and the symbol syntax. A venue's decoded messages *satisfy*
the record protocols by their field names (its msgspec Structs carry a class-level ``kind``),
so nothing is copied per message. Pure: no trio, no I/O, no venue's wire terms.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, Protocol

from ..kinds import Row

# record kinds: the router decides by ``record.kind`` (a class attribute of the venue's types)
TRADE = 1  # a trade (one row of ``prices``)
QUOTE = 2  # a best bid/ask update
BOOK = 3  # book levels: a top-N snapshot, or a diff (delta) event with its update ids
DERIVATIVE = 4  # a futures contract's mark/index price, funding or open interest update
LIQUIDATION = 5  # a liquidation order
BATCH = 6  # several records of one stream in one frame (``Batch``): routed one by one

CONTIGUOUS = "contiguous"  # trade ids are consecutive integers: a jump proves a loss
NO_CONTINUITY = "none"  # trade ids prove nothing (strings, or not consecutive)
# each trade covers the ids ``first_id..last_id`` (``agg_id`` is ``last_id``) and the next one
# starts at ``last_id + 1``: an aggregate of several fills, numbered by its last fill's id
SPANS = "spans"


class FrameError(ValueError):
    """A frame that is not valid JSON (``malformed``), not a message we expect
    (``unexpected``) or carries a value no column can hold (``rejected``)."""

    def __init__(self, category: str, message: str) -> None:
        super().__init__(message)
        self.category = category


class Trade(Protocol):
    """A trade as the core reads it. ``agg_id`` is the venue's integer trade id (the ``prices``
    column of that name); ``first_id``/``last_id`` the venue's underlying fill ids (the trade id
    itself where the venue has none); ``text_id`` the venue's own id where it is not an integer
    (the ``prices`` column ``trade_id``; None where ``agg_id`` is the venue's id)."""

    kind: ClassVar[int]

    @property
    def agg_id(self) -> int: ...
    @property
    def price(self) -> float: ...
    @property
    def qty(self) -> float: ...
    @property
    def first_id(self) -> int: ...
    @property
    def last_id(self) -> int: ...
    @property
    def trade_ms(self) -> int: ...
    @property
    def event_ms(self) -> int: ...
    @property
    def symbol(self) -> str: ...
    @property
    def buyer_maker(self) -> bool: ...
    @property
    def text_id(self) -> str | None: ...


class Quote(Protocol):
    """A best bid/ask update; ``event_ms``/``trade_ms`` 0 where the venue sends none."""

    kind: ClassVar[int]

    @property
    def update_id(self) -> int: ...
    @property
    def symbol(self) -> str: ...
    @property
    def bid(self) -> float: ...
    @property
    def bid_qty(self) -> float: ...
    @property
    def ask(self) -> float: ...
    @property
    def ask_qty(self) -> float: ...
    @property
    def event_ms(self) -> int: ...
    @property
    def trade_ms(self) -> int: ...


class BookLevels(Protocol):
    """Book levels with their update ids: a top-N snapshot (replace) or a diff event (apply).
    ``prev_update_id`` is -1 where the venue sends none."""

    kind: ClassVar[int]

    @property
    def event_ms(self) -> int: ...
    @property
    def symbol(self) -> str: ...
    @property
    def first_update_id(self) -> int: ...
    @property
    def update_id(self) -> int: ...
    @property
    def prev_update_id(self) -> int: ...
    @property
    def bids(self) -> list[tuple[float, float]]: ...
    @property
    def asks(self) -> list[tuple[float, float]]: ...
    @property
    def trade_ms(self) -> int: ...


class Stamped(Protocol):
    """What every record of a futures contract's state has: its symbol and times."""

    kind: ClassVar[int]

    @property
    def symbol(self) -> str: ...
    @property
    def event_ms(self) -> int: ...
    @property
    def trade_ms(self) -> int: ...


class Derivative(Stamped, Protocol):
    """An update of a futures contract's state: each value is None where the message does not
    carry it (never a stale copy). ``source`` names the venue's stream or REST call;
    ``trade_ms`` is 0 (the router times it by ``event_ms``)."""

    @property
    def source(self) -> str: ...
    @property
    def mark_price(self) -> float | None: ...
    @property
    def index_price(self) -> float | None: ...
    @property
    def settle_price(self) -> float | None: ...  # estimated or predicted settle price
    @property
    def funding_rate(self) -> float | None: ...
    @property
    def next_funding_ms(self) -> int | None: ...
    @property
    def open_interest(self) -> float | None: ...


class Liquidation(Stamped, Protocol):
    """A liquidation order: ``side`` "buy" or "sell"; ``trade_ms`` its time (0: none, then
    ``event_ms``); order fields None or "" where the venue gives none."""

    @property
    def side(self) -> str: ...
    @property
    def price(self) -> float: ...
    @property
    def qty(self) -> float: ...
    @property
    def avg_price(self) -> float | None: ...
    @property
    def filled_qty(self) -> float | None: ...
    @property
    def status(self) -> str: ...
    @property
    def order_type(self) -> str: ...
    @property
    def time_in_force(self) -> str: ...


Record = Trade | Quote | BookLevels | Derivative | Liquidation


class Batch(Protocol):
    """Several records a venue sends in one frame (all of one stream and symbol, in order).
    A venue returns one only when a frame holds more than one record: the router routes each
    record as if it had come alone. Optional: ``streams``, each record's stream name, where a
    frame carries records of several symbols (None or absent: all on the frame's stream)."""

    kind: ClassVar[int]  # BATCH

    @property
    def symbol(self) -> str: ...
    @property
    def records(self) -> Sequence[Any]: ...


class BookSnapshot(Protocol):
    """A book snapshot from REST: the book as of update ``last_update_id``, best levels first."""

    @property
    def last_update_id(self) -> int: ...
    @property
    def bids(self) -> list[tuple[float, float]]: ...
    @property
    def asks(self) -> list[tuple[float, float]]: ...


# outcomes of ``LocalBook.on_event``: the venue's book rule applied to one diff event
APPLIED = "applied"  # the book changed; emit a row
BUFFERED = "buffered"  # kept until a snapshot arrives
DROPPED = "dropped"  # older than the snapshot, or a duplicate/replay: ignored
BREAK = "break"  # the chain broke while live: book cleared, resync needed (see last_break)
STALE_SNAPSHOT = "stale_snapshot"  # the snapshot cannot be bridged to the stream: fetch again
# a full snapshot that came on the stream itself (not from REST): the book restarts from it and
# is live; its levels are written as a snapshot (``book_updates.is_snapshot``)
SNAPSHOT = "snapshot"


class SequenceBreak(Protocol):
    """A lost update while live: when (the last applied event's time, the breaking one's)."""

    @property
    def start_ms(self) -> int: ...
    @property
    def end_ms(self) -> int: ...
    @property
    def detail(self) -> str: ...
    # optional: ``rule`` (str), the venue's rule that broke, named in the gap's reason
    # ("book sequence break (<rule>)"); without it the reason is the plain one


class LocalBook(Protocol):
    """One symbol's book kept from diff events by the venue's rule (``Venue.local_book``)."""

    @property
    def symbol(self) -> str: ...
    @property
    def live(self) -> bool: ...
    @property
    def needs_snapshot(self) -> bool: ...
    @property
    def last_break(self) -> SequenceBreak | None: ...
    @property
    def stats(self) -> Any: ...  # counters: breaks, stale_snapshots, …

    def on_event(self, ev: Any, recv_ms: int = 0) -> str: ...  # one of the outcomes above
    def apply_snapshot(self, snap: Any) -> list[tuple[Any, int]] | None: ...
    def top(self, n: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]: ...
    # ``top(n)`` as columns: bid prices, bid sizes, ask prices, ask sizes (the hot path's)
    def top_columns(self, n: int) -> tuple[list[float], list[float], list[float], list[float]]: ...
    def reset(self) -> None: ...
    def as_state(self) -> dict[str, Any]: ...  # a live book as plain values (JSON-able)
    def restore(self, state: Mapping[str, Any]) -> list[tuple[Any, int]]: ...  # live again


class Frame(Protocol):
    """One decoded data frame: the stream it came on and its record."""

    @property
    def stream(self) -> str: ...
    @property
    def data(self) -> Any: ...  # a Trade, Quote or BookLevels (told apart by ``data.kind``)


# stream kinds of a plan (health's cadence, the universe's silence check are keyed by them)
TRADES = "trades"
QUOTES = "quotes"
DEPTH = "depth"
DERIVATIVES = "derivatives"  # mark price / funding streams
LIQUIDATIONS = "liquidations"  # bursty: silent for minutes is normal


class DerivativesSide(Protocol):
    """What a futures venue adds for the ``derivatives`` and ``liquidations`` kinds (a venue's
    ``derivatives`` attribute; ``derivatives_of`` reads it, None for a venue without one):
    the streams of the channels asked for, and the open-interest poll over REST (only where
    ``polls_open_interest``: a venue whose open interest is a stream polls nothing)."""

    polls_open_interest: bool

    def streams(self, symbols: tuple[str, ...], channels: frozenset[str]) -> list[Any]: ...
    def open_interest_request(self, symbol: str) -> RestRequest: ...
    def open_interest_stream(self, symbol: str) -> str: ...  # the poll's name in ``gaps`` rows
    def decode_open_interest(self, body: bytes, symbol: str) -> Derivative: ...


def derivatives_of(venue: object) -> DerivativesSide | None:
    """The venue's derivatives side, or None (spot, or a venue whose derivatives are not
    wired yet)."""
    side: DerivativesSide | None = getattr(venue, "derivatives", None)
    return side


class Stream(Protocol):
    """One stream of a plan: the venue's symbol, its stream kind and its wire name."""

    @property
    def symbol(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def name(self) -> str: ...


class Plan(Protocol):
    """The streams of one connection (a venue's ``ConnectionPlan``)."""

    @property
    def route(self) -> str: ...
    @property
    def streams(self) -> tuple[Any, ...]: ...  # the venue's ``Stream`` values
    @property
    def label(self) -> str: ...
    def url(self, base: str) -> str: ...
    def with_streams(self, add: tuple[Any, ...] = (),
                     remove: frozenset[str] = frozenset()) -> Any: ...


@dataclass(frozen=True, slots=True)
class Keepalive:
    """How a connection stays alive: the server pings and the transport answers
    (``ping_text`` None), or the client sends ``ping_text`` every ``interval`` seconds."""

    server_pings: bool
    ping_text: str | None = None
    interval: float = 0.0


@dataclass(frozen=True, slots=True)
class RestRequest:
    """One REST call: path, query parameters, and the weight it costs against the limit."""

    path: str
    params: Mapping[str, str | int]
    weight: int


NEVER_MS = 4_133_404_800_000  # 2100-01-01: the delivery time of a symbol that has none


class Listed(NamedTuple):
    """One symbol of a venue's listing: its status, and the venue's own times of its listing
    and of its delivery or delisting (``NEVER_MS`` while none is set)."""

    status: str
    onboard_ms: int = 0
    delivery_ms: int = NEVER_MS


class Venue(Protocol):
    """Everything the core needs to know about one venue. Pure: no trio, no I/O."""

    name: str
    default_ws_url: str
    default_rest_url: str
    default_symbols: tuple[str, ...]  # what a run harvests when it names no symbols

    # -- connection plan ---------------------------------------------------------------------
    max_streams_per_connection: int
    messages_per_second: int  # client messages per second per connection
    # at most (attempts, seconds): new connections per IP in any window of that many seconds
    # (None: the venue documents no such limit); every open and reconnect is paced to it
    connect_limit: tuple[int, float] | None
    keepalive: Keepalive

    def streams_for(self, symbols: tuple[str, ...], *, depth_levels: int, depth_speed: str,
                    book: str, book_ticker: bool) -> list[Any]: ...
    def plan_connections(self, streams: list[Any], per_connection: int) -> list[Any]: ...
    def subscription(self, method: str, names: list[str], request_id: int) -> str: ...
    # ``subscribe_on_open``: the plan's URL names its streams but the socket opens without them
    # (``open_url``) and subscribes with ``open_messages`` right after the handshake (False: the
    # URL itself carries the streams). ``subscribe_batch``: the most stream names one subscribe
    # or unsubscribe request may carry (0: no limit); larger changes are sent in several.
    subscribe_on_open: bool
    subscribe_batch: int
    # the venue decodes with facts of its listing (contract values): the run reads the listing
    # (``listing_request``, ``listing``) before it decodes any frame
    needs_listing: bool
    def open_url(self, url: str) -> str: ...
    def open_messages(self, url: str) -> list[str]: ...
    def url_after(self, url: str, messages: list[str]) -> str: ...
    def trade_stream(self, symbol: str) -> str: ...
    def quote_stream(self, symbol: str) -> str: ...
    def depth_stream(self, symbol: str, levels: int, speed: str, mode: str) -> str: ...
    def stream_kind(self, name: str) -> str: ...  # TRADES | QUOTES | DEPTH | ""
    def is_quote_stream(self, name: str) -> bool: ...
    def stream_symbol(self, name: str) -> str: ...  # "" for a name that is not a stream's
    def stream_prefix(self, symbol: str) -> str: ...  # what its stream names start with
    def stream_symbols(self, url: str) -> list[str]: ...
    cadence: Mapping[str, float]  # expected seconds between frames, by the venue's stream kind
    depth_kind: str  # the venue's stream kind of book streams (its cadence is the speed's)
    trade_kind: str  # the venue's stream kind of trade streams

    # -- decoding ----------------------------------------------------------------------------
    @property
    def decode_envelope(self) -> Callable[[str | bytes], Frame]: ...  # raises ``bad_frame``
    @property
    def bad_frame(self) -> type[Exception]: ...

    def decode(self, frame: str | bytes) -> Frame: ...  # raises ``FrameError``
    def reply_to(self, frame: str | bytes) -> tuple[int, str] | None: ...
    quote_source: str  # ``orderbook.source`` of a quote row

    def trade_row(self, t: Trade, recv_ms: int) -> Row: ...
    def quote_row(self, q: Quote, recv_ms: int, levels: int) -> Row: ...
    def levels_row(self, d: BookLevels, recv_ms: int, levels: int, source: str) -> Row: ...

    # -- sequencing and continuity -------------------------------------------------------------
    # CONTIGUOUS: each trade's ``agg_id`` is the previous one + 1, so a jump proves a loss that
    # backfill can page over (``repair/continuity.py`` implements the rule); NO_CONTINUITY:
    # ids prove nothing, every trade is admitted and nothing is backfilled; SPANS: each trade
    # covers ``first_id..last_id`` (its ``agg_id`` is ``last_id``) and the next one starts at
    # ``last_id + 1``: the ids it covers are never missing, the ones between two trades are
    trade_continuity: str

    # the book rule: a snapshot from ``depth_request`` (``parse_snapshot``; ValueError for
    # anything else), the first diff event it ``bridges``, then each event ``follows`` the one
    # before; an event that does not is a lost update: the book resets and resyncs. A venue
    # that also sends full snapshots on the stream has its local book answer ``SNAPSHOT`` for
    # them (the book restarts from it, no REST request)
    # ``symbol``: whose snapshot it is (a venue whose answer does not say, and whose sizes
    # depend on the instrument, needs it; "" where unknown)
    def parse_snapshot(self, body: Mapping[str, Any], symbol: str = "") -> BookSnapshot: ...
    def bridges(self, last_update_id: int, d: BookLevels) -> bool: ...
    def follows(self, prev_update_id: int, d: BookLevels) -> bool: ...
    def local_book(self, symbol: str, max_levels: int, buffer_limit: int) -> LocalBook: ...
    max_book_levels: int  # per side: the largest snapshot
    # how a book that lost its chain gets a snapshot again: False, from REST (``depth_request``);
    # True, by unsubscribing and subscribing its stream again (the stream sends a snapshot),
    # paced like REST snapshots (the same cooldown and budget), never a resubscribe storm
    resync_by_resubscribe: bool
    # the attribute of a quote or a book snapshot the gate deduplicates by: ``update_id``, or
    # an id of the venue's own that only grows where update ids may restart (a venue's reset)
    gate_id: str

    # -- backfill and limits -------------------------------------------------------------------
    weight_header: str  # the response header with the weight used in the current window
    weight_limit: int  # per minute
    trades_page: int  # trades per backfill request at most
    trades_weight: int  # the weight of one trades request

    def trades_request(self, symbol: str, from_id: int, limit: int) -> RestRequest: ...
    def decode_trades(self, body: bytes) -> Sequence[Any]: ...  # raises ``bad_frame``
    def rest_trade_row(self, symbol: str, t: Any, recv_ms: int) -> Row: ...
    def depth_request(self, symbol: str, limit: int) -> RestRequest: ...
    def ticker_request(self) -> RestRequest: ...
    def trade_counts(self, body: bytes | str) -> dict[str, int]: ...  # raises ValueError

    # -- listing -------------------------------------------------------------------------------
    trading: str  # the status of a symbol that trades
    # whether the listing gives each symbol its listing (onboard) time; where not, ``Listed``
    # carries 0 and nothing may read a symbol's age from it
    listing_dates: bool
    def listing_request(self) -> RestRequest: ...
    def listing(self, doc: Mapping[str, Any]) -> dict[str, Listed]: ...
    def valid_symbol(self, symbol: str) -> bool: ...
