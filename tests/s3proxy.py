"""A fault proxy in front of the moto S3 server, on loopback: every request is forwarded as is,
unless a fault is armed for it.

- ``store_then_503``: the request reaches the server (the object is stored) and the client gets
  ``503 Slow Down`` instead of the server's reply: a reply lost after the write happened;
- ``store_then_stall``: the request reaches the server and the reply is held back ``stall_s``
  (past the client's timeout): a timeout after the write happened;
- ``down``: every request is answered ``503`` without reaching the server (the bucket is cut
  off).

``match`` picks the requests a one-shot fault applies to (method and a substring of the path);
``log`` records what was forwarded, with its time.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "upgrade"}


@dataclass
class Faults:
    mode: str = ""  # "", "store_then_503", "store_then_stall", "down"
    method: str = "PUT"
    match: str = ""
    times: int = 1  # one-shot faults left
    stall_s: float = 3.0
    injected: int = 0
    log: list[tuple[float, str, str, int]] = field(default_factory=list)  # time, method, path, status
    lock: threading.Lock = field(default_factory=threading.Lock)

    def arm(self, mode: str, match: str = "", method: str = "PUT", times: int = 1) -> None:
        with self.lock:
            self.mode, self.match, self.method, self.times = mode, match, method, times

    def take(self, method: str, path: str) -> str:
        with self.lock:
            if self.mode == "down":
                self.injected += 1
                return "down"
            if self.mode and self.times > 0 and method == self.method and self.match in path:
                self.times -= 1
                self.injected += 1
                return self.mode
            return ""


@dataclass
class Proxy:
    server: ThreadingHTTPServer
    faults: Faults

    @property
    def endpoint(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def puts(self, match: str = "", since: float = 0.0) -> list[tuple[float, str, int]]:
        """PUTs that reached the server (time, path, status)."""
        return [(t, p, s) for t, m, p, s in list(self.faults.log)
                if m == "PUT" and match in p and t >= since]


def _handler(upstream: tuple[str, int], faults: Faults) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path = unquote(self.path)
            fault = faults.take(self.command, path)
            if fault == "down":
                self._reply(503, {"Content-Type": "application/xml"},
                            b"<Error><Code>SlowDown</Code></Error>")
                return
            conn = http.client.HTTPConnection(*upstream, timeout=30)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                # a HEAD's Content-Length is the object's size: passed on as is
                status, rheaders = resp.status, {k: v for k, v in resp.getheaders()
                                                 if k.lower() not in HOP and (
                                                     k.lower() != "content-length"
                                                     or self.command == "HEAD")}
            finally:
                conn.close()
            with faults.lock:
                faults.log.append((time.time(), self.command, path, status))
            if fault == "store_then_503":
                self._reply(503, {"Content-Type": "application/xml"},
                            b"<Error><Code>SlowDown</Code></Error>")
                return
            if fault == "store_then_stall":
                time.sleep(faults.stall_s)
            self._reply(status, rheaders, data)

        def _reply(self, status: int, headers: dict[str, str], data: bytes) -> None:
            try:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if "Content-Length" not in headers and "content-length" not in headers:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
            except OSError:  # the client gave up (a timeout): nothing to tell it
                self.close_connection = True

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

    return Handler


@contextmanager
def fault_proxy(upstream_endpoint: str) -> Iterator[Proxy]:
    host, _, port = upstream_endpoint.removeprefix("http://").partition(":")
    faults = Faults()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler((host, int(port)), faults))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Proxy(server, faults)
    finally:
        server.shutdown()
        server.server_close()
