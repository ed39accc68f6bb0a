"""One port for both protocols: REST (``/fapi/...``, or the venue's ``/api/...``, ``/dapi/...``)
and websocket streams, as on Binance's hosts.

Owns the first bytes of every accepted TCP connection: it reads the request head (bounded in
size and time), answers plain REST requests (under the venue's prefix) itself with h11
(keep-alive, Binance-like headers), and hands every other request (any websocket upgrade) to
trio-websocket by replaying the bytes it read in front of the socket (``PrefixedStream``), so
the websocket handshake sees an untouched stream. Never decides what a REST path answers
(``rest.py``) nor what a websocket connection gets (``server.py``).
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

import h11
import trio
from trio_websocket import WebSocketRequest, WebSocketServer, wrap_server_stream

from .rest import RestReply


class RestHandler(Protocol):
    """A venue's REST API as the front serves it (``rest.RestApi``, ``okx_rest.OkxRestApi``,
    ``bybit_rest.BybitRestApi``)."""

    root: bytes  # what every path starts with (``/fapi/``, ``/api/``)

    def handle(self, method: str, target: str) -> RestReply: ...


log = logging.getLogger("trio_harvest.sim.front")

MAX_HEAD_BYTES = 16 * 1024
HEAD_TIMEOUT = 10.0
IDLE_TIMEOUT = 30.0
REST_PREFIX = b"/fapi/"
_REASONS = {200: b"OK", 400: b"Bad Request", 404: b"Not Found", 405: b"Method Not Allowed",
            429: b"Too Many Requests"}


class PrefixedStream(trio.abc.Stream):
    """A stream whose first bytes were already read: they are received again, first."""

    def __init__(self, stream: trio.abc.Stream, prefix: bytes) -> None:
        self.transport_stream = stream
        self._prefix = prefix

    @property
    def socket(self) -> object:  # trio-websocket reads endpoints from ``stream.socket``
        return getattr(self.transport_stream, "socket", None)

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._prefix:
            n = len(self._prefix) if max_bytes is None else max_bytes
            data, self._prefix = self._prefix[:n], self._prefix[n:]
            await trio.lowlevel.checkpoint()
            return data
        return bytes(await self.transport_stream.receive_some(max_bytes))

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.transport_stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.transport_stream.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self.transport_stream.aclose()


async def read_head(stream: trio.abc.Stream) -> bytes | None:
    """Bytes up to and including the end of the first request head (plus whatever came with
    them); None when the peer closes, sends too much, or takes too long."""
    buf = b""
    with trio.move_on_after(HEAD_TIMEOUT):
        while b"\r\n\r\n" not in buf:
            if len(buf) > MAX_HEAD_BYTES:
                return None
            data = await stream.receive_some(4096)
            if not data:
                return None
            buf += data
        return buf
    return None


def is_rest(head: bytes, prefix: bytes = REST_PREFIX) -> bool:
    """A plain HTTP request for ``/fapi/...`` (or ``prefix``; a websocket upgrade never is,
    whatever its path)."""
    _method, _, rest = head.partition(b" ")
    end = head.find(b"\r\n\r\n")
    return rest.startswith(prefix) and b"\r\nupgrade:" not in head[:end].lower()


class Front:
    def __init__(
        self,
        ws_handler: Callable[[WebSocketRequest], Awaitable[None]],
        rest: RestHandler | None,
        server: WebSocketServer,
    ) -> None:
        self._ws_handler = ws_handler
        self._rest = rest
        self._server = server  # not run: used for its per-connection handling only
        self.http_requests = 0

    async def handle(self, stream: trio.abc.Stream) -> None:
        try:
            head = await read_head(stream)
            if head is None:
                return
            if self._rest is not None and is_rest(head, self._rest.root):
                await self._serve_rest(stream, head)
                return
            await self._serve_websocket(PrefixedStream(stream, head))
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError):
            pass
        finally:
            with trio.move_on_after(1.0):
                await stream.aclose()

    async def _serve_websocket(self, stream: trio.abc.Stream) -> None:
        handle_connection = getattr(self._server, "_handle_connection", None)
        if handle_connection is not None:  # trio-websocket 0.12: handshake timeout + close
            await handle_connection(stream)
            return
        async with trio.open_nursery() as nursery:  # public API: the same, without a close frame
            with trio.move_on_after(HEAD_TIMEOUT) as scope:
                request = await wrap_server_stream(nursery, stream)
            if not scope.cancelled_caught:
                await self._ws_handler(request)
            nursery.cancel_scope.cancel()

    async def _serve_rest(self, stream: trio.abc.Stream, head: bytes) -> None:
        assert self._rest is not None
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
        conn.receive_data(head)
        request: h11.Request | None = None
        while True:
            with trio.move_on_after(IDLE_TIMEOUT) as idle:
                event = conn.next_event()
                while event is h11.NEED_DATA:
                    conn.receive_data(bytes(await stream.receive_some(4096)))
                    event = conn.next_event()
            if idle.cancelled_caught:
                return
            if isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.EndOfMessage) and request is not None:
                self.http_requests += 1
                reply = self._rest.handle(request.method.decode("ascii", "replace").upper(),
                                          request.target.decode("ascii", "replace"))
                await stream.send_all(_response(conn, reply, head=request.method == b"HEAD"))
                request = None
                if conn.our_state is h11.MUST_CLOSE:
                    return
                try:
                    conn.start_next_cycle()
                except h11.LocalProtocolError:
                    return
            elif isinstance(event, h11.Data):
                continue
            else:  # ConnectionClosed, PAUSED, ...
                return


def _response(conn: h11.Connection, reply: RestReply, *, head: bool) -> bytes:
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(reply.body))),
               *reply.headers]
    out = conn.send(h11.Response(status_code=reply.status, headers=headers,
                                 reason=_REASONS.get(reply.status, b""))) or b""
    if not head:
        out += conn.send(h11.Data(data=reply.body)) or b""
    out += conn.send(h11.EndOfMessage()) or b""
    return out
