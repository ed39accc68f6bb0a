"""The websocket transport seam: what ingest reads from, and the choice of implementation.

Owns the small protocol every transport meets (``MessageSource``: an awaitable ``get_message``
and an awaitable ``send`` of one text message; ``ConnectFn``: an async context manager per URL
that opens, holds and always closes its socket), the names of the implementations
(``TRANSPORTS``), their combined set of recoverable errors, and ``connector`` which builds the
real ``connect`` for a name. Each implementation lives in its own module and is imported only
when chosen: ``ws_websockets.py`` (websockets >= 17, its sans-I/O protocol, the default) and
``wsclient.py`` (trio-websocket). Never interprets messages, never reconnects (that is
``connection.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol

TRANSPORTS = ("websockets", "trio-websocket")
DEFAULT_TRANSPORT = "websockets"


class MessageSource(Protocol):
    """One open websocket: the next text or binary message, or a recoverable error once the
    connection is gone. Cancelling a pending ``get_message`` loses no message. ``send`` writes
    one text message (a venue's subscribe request, an app-level ping); on a connection that is
    gone it raises a recoverable error. A source may also offer ``poll()``: the next message
    if it is already received whole, else None, synchronous (no checkpoint, never raises);
    ingest then drains a burst in one scheduling round (``Poll``). A source may rebind its
    ``poll`` while its reader waits (the handover does, so that between handovers the reader
    calls the socket's own): a reader reads it again after each of its awaits."""

    @property
    def get_message(self) -> Callable[[], Awaitable[str | bytes]]: ...

    @property
    def send(self) -> Callable[[str], Awaitable[None]]: ...


ConnectFn = Callable[[str], AbstractAsyncContextManager[MessageSource]]
Poll = Callable[[], "str | bytes | None"]  # a source's optional ``poll``


def poller(source: object) -> Poll | None:
    """``source.poll`` if the source offers one."""
    poll: Poll | None = getattr(source, "poll", None)
    return poll


def recoverable_errors() -> tuple[type[BaseException], ...]:
    """Every error a transport raises for a lost, refused, rejected or timed-out connection (a
    reconnect fixes it); both libraries' errors, whichever transport runs. (The libraries are
    imported here, not at the top: the config reads ``TRANSPORTS`` without loading them.)"""
    import trio

    from . import ws_websockets, wsclient

    return (*ws_websockets.RECOVERABLE, *wsclient.RECOVERABLE, OSError,
            trio.BrokenResourceError, trio.ClosedResourceError,
            trio.TooSlowError)  # a connect or handshake over its timeout


def connector(name: str, max_message_bytes: int, connect_timeout: float = 10.0) -> ConnectFn:
    """The real ``connect`` of transport ``name`` (one of ``TRANSPORTS``)."""
    if name == "websockets":
        from .ws_websockets import websockets_connector

        return websockets_connector(max_message_bytes, connect_timeout)
    if name == "trio-websocket":
        from .wsclient import trio_websocket_connector

        return trio_websocket_connector(max_message_bytes, connect_timeout)
    raise ValueError(f"unknown transport {name!r} (known: {', '.join(TRANSPORTS)})")
