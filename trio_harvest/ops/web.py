"""The ops endpoints' web server: a small Starlette app served by hypercorn's trio worker
(both imported when it starts serving, so a run without an ops port never loads them).

Owns the socket side and the routing: binding (a port in use is a ``ConfigError`` at start-up,
exit code 2), GET/HEAD routes from a table of paths, 404 and 405 answers, and containment of a
failing handler (a 500, logged, counted). What a path answers is decided by the injected
handlers, which are plain functions (``Request`` in, ``Response`` out) run on the trio loop, never
in a thread. Runs as tasks in the caller's nursery. Never lets a bad client or a failing handler
take down the harvester.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import trio

from ..errors import ConfigError

if TYPE_CHECKING:  # the server itself is imported when it serves (``serve``), not at start-up
    from hypercorn.config import Config as HypercornConfig
    from starlette.applications import Starlette
    from starlette.requests import Request as StarletteRequest
    from starlette.responses import Response as StarletteResponse

log = logging.getLogger("trio_harvest.web")

IDLE_TIMEOUT = 30.0  # seconds a keep-alive connection may sit idle
MAX_REQUEST_BYTES = 16 * 1024
MAX_IN_FLIGHT = 64  # requests served at once; more are answered 503 at once


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: str
    headers: Mapping[str, str]  # lower-case names


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"


Handler = Callable[[Request], Response]


async def open_sockets(host: str, port: int) -> list[socket.socket]:
    """Bind now, so a port in use stops the start-up with one clear line. The sockets are
    listening before this returns (a client may connect before the server task runs)."""
    try:
        infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                              flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise ConfigError(f"metrics endpoint {host}:{port}: cannot resolve ({exc})") from None
    sockets: list[socket.socket] = []
    try:
        for family, _type, proto, _name, addr in dict.fromkeys(
                (i[0], i[1], i[2], "", i[4]) for i in infos):
            sock = socket.socket(family, socket.SOCK_STREAM, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:  # "localhost": ::1 and 127.0.0.1 side by side
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(addr)
            sock.listen(128)
            sock.setblocking(False)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"metrics_port: {host}:{port} is already in use (choose another --metrics-port, "
                f"or 0 to turn the endpoint off)") from None
        raise ConfigError(f"metrics endpoint {host}:{port}: cannot bind ({exc.strerror or exc})") \
            from None
    return sockets


def bound_port(sockets: list[socket.socket]) -> int:
    return int(sockets[0].getsockname()[1])


class WebServer:
    """Serves ``routes`` (path -> handler), GET and HEAD only."""

    def __init__(self, routes: Mapping[str, Handler], *, idle_timeout: float = IDLE_TIMEOUT,
                 max_in_flight: int = MAX_IN_FLIGHT) -> None:
        self.routes = dict(routes)
        self.requests = 0
        self.errors = 0
        self._in_flight = 0
        self._max_in_flight = max_in_flight
        self._idle_timeout = idle_timeout
        server_log = logging.getLogger("trio_harvest.web.server")
        if server_log.level == logging.NOTSET:  # its "Running on …" line: we say it ourselves
            server_log.setLevel(logging.WARNING)

    def _app(self) -> Starlette:
        from starlette.applications import Starlette
        from starlette.routing import Route as StarletteRoute

        app = Starlette(routes=[
            StarletteRoute(path, self._endpoint(handler), methods=["GET"])
            for path, handler in self.routes.items()])
        app.add_exception_handler(404, self._not_found)
        app.add_exception_handler(405, self._not_allowed)
        return app

    def _config(self) -> HypercornConfig:
        from hypercorn.config import Config as HypercornConfig

        config = HypercornConfig()
        config.keep_alive_timeout = self._idle_timeout
        config.h11_max_incomplete_size = MAX_REQUEST_BYTES
        config.include_server_header = False
        config.graceful_timeout = 1.0
        config.errorlog = logging.getLogger("trio_harvest.web.server")
        config.accesslog = None
        return config

    def _endpoint(self, handler: Handler) -> Callable[[StarletteRequest], object]:
        from starlette.responses import Response as StarletteResponse

        async def endpoint(request: StarletteRequest) -> StarletteResponse:
            self.requests += 1
            if self._in_flight >= self._max_in_flight:
                return StarletteResponse(b"busy\n", 503, media_type="text/plain")
            self._in_flight += 1
            req = Request(request.method.upper(), request.url.path, request.url.query,
                          {k.lower(): v for k, v in request.headers.items()})
            try:
                out = handler(req)
            except Exception:  # a handler bug must not reach the root nursery
                self.errors += 1
                log.exception("ops endpoint: %s %s failed", req.method, req.path)
                out = Response(500, b"internal error\n")
            finally:
                self._in_flight -= 1
            return StarletteResponse(out.body, out.status, headers={"Cache-Control": "no-store"},
                                     media_type=out.content_type)
        return endpoint

    def _hint(self) -> str:
        return " ".join(sorted(p for p in self.routes if p != "/"))

    async def _not_found(self, request: StarletteRequest, exc: Exception) -> StarletteResponse:
        from starlette.responses import Response as StarletteResponse

        return StarletteResponse(f"not found; try / {self._hint()}\n".encode(), 404,
                                 media_type="text/plain")

    async def _not_allowed(self, request: StarletteRequest, exc: Exception) -> StarletteResponse:
        from starlette.responses import Response as StarletteResponse

        return StarletteResponse(b"only GET\n", 405, media_type="text/plain",
                                 headers={"Allow": "GET, HEAD"})

    async def serve(self, sockets: list[socket.socket], *,
                    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve on ``sockets`` (bound by ``open_sockets``) until cancelled; closes them.
        Started once it accepts, with the bound URLs."""
        try:
            from hypercorn.config import Sockets
            from hypercorn.trio.run import worker_serve
            from hypercorn.typing import ASGIFramework
            from hypercorn.utils import wrap_app

            config = self._config()
            # Starlette's ASGI signature is typed looser than hypercorn's; they speak the same ASGI 3
            app = cast(ASGIFramework, self._app())
            await worker_serve(wrap_app(app, config.wsgi_max_body_size, "asgi"),
                               config, sockets=Sockets([], list(sockets), []),
                               task_status=task_status)
        finally:
            for sock in sockets:
                sock.close()
