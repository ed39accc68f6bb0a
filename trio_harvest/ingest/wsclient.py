"""The real websocket ``connect``: trio-websocket over a TCP (or TLS) stream that we own.

Owns the socket's whole life. trio-websocket 0.12's ``open_websocket_url`` leaves the client
socket open when a handshake fails or is cancelled, or when the server closed the connection;
over weeks of reconnects that is a file-descriptor leak. Here the stream is opened by us, handed
to ``wrap_client_stream`` and always closed. Messages come back as ``str`` (text frames) or
``bytes``; ``send`` writes one text frame. Never interprets messages.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import h11
import trio
import trio_websocket

from . import tls

RECOVERABLE: tuple[type[BaseException], ...] = (
    trio_websocket.HandshakeError,
    trio_websocket.ConnectionClosed,
    trio_websocket.ConnectionRejected,
    trio_websocket.ConnectionTimeout,
    trio_websocket.DisconnectionTimeout,
    # a reply that is not HTTP at all: trio-websocket lets h11's error out of its reader task
    h11.ProtocolError,
)


def split_ws_url(url: str) -> tuple[str, int, str, bool]:
    """``(host, port, resource, tls)`` of a ``ws://`` or ``wss://`` URL."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError(f"not a websocket URL: {url!r}")
    tls = parts.scheme == "wss"
    port = parts.port or (443 if tls else 80)
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.hostname, port, resource, tls


class TrioWebsocketSource:
    """A ``MessageSource`` over a trio-websocket connection: its own ``get_message`` and
    ``send_message``, bound once (no extra frame per message); ``poll`` the next message its
    reader task has queued already."""

    __slots__ = ("_take", "connection", "get_message", "send")

    def __init__(self, connection: trio_websocket.WebSocketConnection) -> None:
        self.connection = connection
        self.get_message: Callable[[], Awaitable[str | bytes]] = connection.get_message
        self.send: Callable[[str], Awaitable[None]] = connection.send_message
        # the library's message channel, read without a checkpoint; ``get_message`` stays the
        # only way past its end (it raises the library's ConnectionClosed)
        self._take: Callable[[], str | bytes] = connection._recv_channel.receive_nowait

    def poll(self) -> str | bytes | None:
        """The next message if one is queued already, else None (then ``get_message``)."""
        try:
            return self._take()
        except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
            return None


@asynccontextmanager
async def open_source(url: str, *, max_message_size: int,
                      connect_timeout: float = 10.0) -> AsyncIterator[TrioWebsocketSource]:
    async with open_websocket(url, max_message_size=max_message_size,
                              connect_timeout=connect_timeout) as ws:
        yield TrioWebsocketSource(ws)


@asynccontextmanager
async def open_websocket(
    url: str,
    *,
    max_message_size: int,
    connect_timeout: float = 10.0,
    message_queue_size: int = 64,
    receive_buffer_size: int = 65536,
) -> AsyncIterator[trio_websocket.WebSocketConnection]:
    host, port, resource, secure = split_ws_url(url)
    with trio.fail_after(connect_timeout):
        stream: trio.SocketStream | trio.SSLStream[trio.SocketStream]
        if secure:
            stream = await trio.open_ssl_over_tcp_stream(
                host, port, ssl_context=await tls.client_context(), https_compatible=True)
        else:
            stream = await trio.open_tcp_stream(host, port)
    try:
        async with _unwrapped(), trio.open_nursery() as nursery:
            with trio.fail_after(connect_timeout):
                ws = await trio_websocket.wrap_client_stream(
                    nursery, stream, host if port in (80, 443) else f"{host}:{port}", resource,
                    message_queue_size=message_queue_size, max_message_size=max_message_size,
                    receive_buffer_size=receive_buffer_size)
            try:
                yield ws
            except BaseException:
                # cancelled (a stall, a stop) or failed: the reader task is cancelled with us and
                # could not read the server's close reply; a closing handshake would only wait
                # out its 2 s. Drop the link instead (the stream is closed below).
                nursery.cancel_scope.cancel()
                raise
            with trio.move_on_after(2.0):  # not shielded: a stop must not wait for the reply
                await ws.aclose()
            nursery.cancel_scope.cancel()
    finally:
        await trio.aclose_forcefully(stream)


@asynccontextmanager
async def _unwrapped() -> AsyncIterator[None]:
    """The reader task's nursery wraps a single error (a rejected handshake, a closed connection)
    in an ExceptionGroup; callers expect the error itself, as from any context manager."""
    try:
        yield
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1 and isinstance(group.exceptions[0], Exception):
            raise group.exceptions[0] from None
        raise


def trio_websocket_connector(
    max_message_bytes: int, connect_timeout: float = 10.0
) -> Callable[[str], AbstractAsyncContextManager[TrioWebsocketSource]]:
    """The ``connect`` of this transport: a large receive buffer, on a socket we close."""

    def connect_one(url: str) -> AbstractAsyncContextManager[TrioWebsocketSource]:
        return open_source(url, max_message_size=max_message_bytes,
                           connect_timeout=connect_timeout)

    return connect_one
