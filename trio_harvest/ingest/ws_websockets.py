"""The websockets (>= 17) trio client as a transport: ``websockets.trio.client.connect``.

Owns one connection's socket from connect to close: the TCP (or TLS) stream is opened by the
library inside ``open_timeout`` (= our ``connect_timeout``), closed by it on a failed handshake,
and closed again, forcefully, whatever happens on the way out. Options, chosen for Binance:
no permessage-deflate (Binance does not need it; inflating every frame costs CPU), no proxy
from the environment (as trio-websocket), no client keepalive pings (the library answers the
server's pings by itself; Binance pings every 3 minutes; a client ping whose pong sits unread
while ingest waits for the disk would close a healthy connection; silence is the stall
watchdog's job), ``max_size`` = ``max_message_bytes`` (a larger message fails the connection
with close code 1009: a recoverable ``ConnectionClosedError``). Messages come back as bytes
(text frames are not decoded to ``str``: msgspec decodes the bytes). ``poll`` hands over a
message the library has already received whole, with no checkpoint (ingest drains a burst in one
scheduling round). Never interprets messages.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import trio
from websockets.exceptions import ConnectionClosed, InvalidHandshake, PayloadTooBig, ProtocolError
from websockets.trio.client import ClientConnection, connect

RECOVERABLE: tuple[type[BaseException], ...] = (
    ConnectionClosed,  # closed by the server, a network error, an oversized message (1009)
    InvalidHandshake,  # HTTP 4xx/5xx, not a websocket, a bad upgrade (InvalidStatus, ...)
    ProtocolError,
    PayloadTooBig,
)

MAX_QUEUE = 64  # messages received ahead of ingest before the library stops reading the socket
CLOSE_TIMEOUT = 2.0  # the closing handshake's bound


class WebsocketsSource:
    """A ``MessageSource`` over a websockets connection: ``get_message`` is the library's own
    ``recv`` (bytes), bound once, so a message costs no extra coroutine frame; ``send`` is its
    ``send`` of one text frame; ``poll`` the next message if the library holds it whole."""

    __slots__ = ("_assembler", "_queued", "connection", "get_message")

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.get_message: Callable[[], Awaitable[str | bytes]] = functools.partial(
            connection.recv, False)
        # the library's queue of received data frames (a trio memory channel's deque), read
        # here without a checkpoint; ``recv`` stays the only way past the end of the stream
        self._assembler = connection.recv_messages
        self._queued = self._assembler.recv_frames._state.data

    def poll(self) -> bytes | None:
        """The next message when its frame is already received and unfragmented (what ``recv``
        would return at once, minus the scheduling round), else None (then ``get_message``)."""
        queued = self._queued
        if not queued or not queued[0].fin:
            return None
        assembler = self._assembler
        if assembler.get_in_progress:
            return None
        # the queue is unbounded (no sender ever waits) and this task its only reader, so the
        # frame is taken off the deque itself, as the library does when a read is cancelled
        data = queued.popleft().data
        if assembler.paused:
            assembler.maybe_resume()  # below the low mark: the library reads the socket again
        return data if type(data) is bytes else bytes(data)

    async def send(self, message: str) -> None:
        await self.connection.send(message)


@asynccontextmanager
async def open_websocket(url: str, *, max_message_bytes: int,
                         connect_timeout: float = 10.0) -> AsyncIterator[WebsocketsSource]:
    conn: ClientConnection | None = None
    try:
        async with connect(
            url,
            ssl=ssl.create_default_context() if url.startswith("wss://") else None,
            compression=None,
            proxy=None,
            open_timeout=connect_timeout,
            ping_interval=None,
            close_timeout=CLOSE_TIMEOUT,
            max_size=max_message_bytes,
            max_queue=MAX_QUEUE,
        ) as conn:
            yield WebsocketsSource(conn)
    finally:
        if conn is not None:  # closed already but for a bug or a cancelled close: no fd leak
            await trio.aclose_forcefully(conn.stream)


def websockets_connector(
    max_message_bytes: int, connect_timeout: float = 10.0
) -> Callable[[str], AbstractAsyncContextManager[WebsocketsSource]]:
    def connect_one(url: str) -> AbstractAsyncContextManager[WebsocketsSource]:
        return open_websocket(url, max_message_bytes=max_message_bytes,
                              connect_timeout=connect_timeout)

    return connect_one
