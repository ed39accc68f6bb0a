"""A tiny trio-native HTTP/1.1 server (h11 over ``trio.serve_listeners``) for the ops endpoints.

Owns the socket side only: binding (a port in use is a ``ConfigError`` at start-up, exit code 2),
parsing requests with h11, keep-alive, timeouts and limits, and writing responses. What a path
answers is decided by the injected ``route`` function. Runs as tasks in the caller's nursery (no
thread). Never lets a bad client or a failing handler take down the harvester.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable
from dataclasses import dataclass

import h11
import trio

from ..config import ConfigError

log = logging.getLogger("trio_harvest.httpd")

MAX_REQUEST_BYTES = 16 * 1024
IDLE_TIMEOUT = 30.0
MAX_CONNECTIONS = 64


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"


Route = Callable[[Request], Response]


async def open_listeners(host: str, port: int) -> list[trio.SocketListener]:
    """Bind now, so a port in use stops the start-up with one clear line."""
    try:
        return await trio.open_tcp_listeners(port, host=host)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"metrics_port: {host}:{port} is already in use (choose another --metrics-port, "
                f"or 0 to turn the endpoint off)") from None
        raise ConfigError(f"metrics endpoint {host}:{port}: cannot bind ({exc.strerror or exc})") \
            from None


def bound_port(listeners: list[trio.SocketListener]) -> int:
    port = listeners[0].socket.getsockname()[1]
    return int(port)


class HttpServer:
    def __init__(self, route: Route, *, idle_timeout: float = IDLE_TIMEOUT,
                 max_connections: int = MAX_CONNECTIONS) -> None:
        self.route = route
        self.idle_timeout = idle_timeout
        self._slots = trio.Semaphore(max_connections)
        self.requests = 0
        self.errors = 0

    async def serve(self, listeners: list[trio.SocketListener], *,
                    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, self._handle, listeners)
            task_status.started()

    async def _handle(self, stream: trio.abc.Stream) -> None:
        try:
            self._slots.acquire_nowait()
        except trio.WouldBlock:
            await stream.aclose()
            return
        try:
            await self._connection(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError):
            pass
        except Exception:  # a handler bug must not reach the root nursery
            self.errors += 1
            log.exception("ops endpoint: unexpected error while serving a request")
        finally:
            self._slots.release()
            with trio.move_on_after(1.0):
                await stream.aclose()

    async def _connection(self, stream: trio.abc.Stream) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST_BYTES)
        while True:
            request = await self._next_request(conn, stream)
            if request is None:
                return
            self.requests += 1
            try:
                response = self.route(request)
            except Exception:
                self.errors += 1
                log.exception("ops endpoint: %s %s failed", request.method, request.path)
                response = Response(500, b"internal error\n")
            await self._send(conn, stream, response, head=request.method == "HEAD")
            if conn.our_state is h11.MUST_CLOSE:
                return
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                return

    async def _next_request(self, conn: h11.Connection, stream: trio.abc.Stream) -> Request | None:
        request: h11.Request | None = None
        with trio.move_on_after(self.idle_timeout):
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await stream.receive_some(4096)
                    conn.receive_data(bytes(data))  # b"" marks the end of the stream
                    continue
                if isinstance(event, h11.Request):
                    request = event
                    continue
                if isinstance(event, h11.EndOfMessage) and request is not None:
                    target = request.target.decode("ascii", "replace")
                    path, _, query = target.partition("?")
                    return Request(
                        request.method.decode("ascii", "replace").upper(), path, query,
                        {k.decode("latin-1").lower(): v.decode("latin-1")
                         for k, v in request.headers},
                    )
                if isinstance(event, h11.Data):
                    continue  # request bodies are ignored (bounded by h11's size limit)
                return None  # ConnectionClosed, PAUSED without a request, anything else
        return None

    async def _send(self, conn: h11.Connection, stream: trio.abc.Stream, response: Response,
                    *, head: bool = False) -> None:
        headers = [
            ("Content-Type", response.content_type),
            ("Content-Length", str(len(response.body))),
            ("Cache-Control", "no-store"),
        ]
        reason = {200: b"OK", 404: b"Not Found", 405: b"Method Not Allowed",
                  500: b"Internal Server Error", 503: b"Service Unavailable"}.get(
            response.status, b"")
        out = conn.send(h11.Response(status_code=response.status, headers=headers, reason=reason))
        if not head:
            out = (out or b"") + (conn.send(h11.Data(data=response.body)) or b"")
        out = (out or b"") + (conn.send(h11.EndOfMessage()) or b"")
        await stream.send_all(out)
