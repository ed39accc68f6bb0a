"""A loopback TLS websocket server for the transport's tests, and a client session against it.

The server answers the handshake and parses the client's frames with websockets' sans-I/O server
protocol, and writes its own frames as raw bytes, cut into TLS records where the test says; it
records the SNI of each TLS handshake and each HTTP request head that arrived."""

from __future__ import annotations

import socket
import ssl
import struct
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

import trio
import trustme
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from trio_harvest.ingest.connection import RECOVERABLE
from trio_harvest.ingest.ws_websockets import WebsocketsSource, websockets_connector

MAX_BYTES = 1 << 17
HOST = "localhost"  # a name, not an address: SNI is only sent for names
T = TypeVar("T")


def server_context(ca: trustme.CA, name: str = HOST) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(name).configure_cert(context)
    return context


class Peer:
    """The server's side of one upgraded connection: raw writes, parsed reads."""

    def __init__(self, tls: trio.SSLStream[trio.SocketStream], protocol: ServerProtocol,
                 pongs: list[bytes]) -> None:
        self.tls = tls
        self.protocol = protocol
        self.pongs = pongs  # the payloads of the client's pongs, in order

    async def write(self, data: bytes, cuts: Iterable[int] = ()) -> None:
        """``data``, one ``send_all`` (one or more TLS records) per piece between ``cuts``."""
        start = 0
        for cut in [*cuts, len(data)]:
            if cut > start:
                await self.tls.send_all(data[start:cut])
                start = cut

    async def frame(self) -> Frame:
        """The client's next frame (what the protocol answers is sent back)."""
        while True:
            for event in self.protocol.events_received():
                if isinstance(event, Frame):
                    return event
            chunk = await self.tls.receive_some(1 << 16)
            if not chunk:
                self.protocol.receive_eof()
                raise EOFError
            self.protocol.receive_data(chunk)

    async def text(self) -> str:
        """The client's next text message (pongs, seen on the way, go to ``pongs``)."""
        while True:
            event = await self.frame()
            if event.opcode is Opcode.TEXT:
                return bytes(event.data).decode()
            if event.opcode is Opcode.PONG:
                self.pongs.append(bytes(event.data))

    def reset(self) -> None:
        """End the TCP connection with a reset (SO_LINGER 0), no TLS close_notify."""
        sock = self.tls.transport_stream.socket
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


Script = Callable[[Peer], Awaitable[None]]


@dataclass
class TlsServer:
    context: ssl.SSLContext
    script: Script
    names: list[str | None] = field(default_factory=list)  # the SNI of each TLS handshake
    requests: list[bytes] = field(default_factory=list)  # the HTTP request heads that arrived
    pongs: list[bytes] = field(default_factory=list)
    with_response: bytes = b""  # sent in the same write (TLS record) as the 101 response

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
                    ) -> None:
        self.context.sni_callback = lambda _sock, name, _ctx: self.names.append(name)
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, self.one, listeners)
            task_status.started(listeners[0].socket.getsockname()[1])

    async def one(self, tcp: trio.SocketStream) -> None:
        tls = trio.SSLStream(tcp, self.context, server_side=True)
        try:
            await tls.do_handshake()
            protocol = ServerProtocol(max_size=None)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = await tls.receive_some(4096)
                if not chunk:
                    return
                head += chunk
            self.requests.append(head)
            protocol.receive_data(head)
            [request] = protocol.events_received()
            assert isinstance(request, Request)
            protocol.send_response(protocol.accept(request))
            await tls.send_all(b"".join(protocol.data_to_send()) + self.with_response)
            await self.script(Peer(tls, protocol, self.pongs))
        except (trio.BrokenResourceError, trio.ClosedResourceError, EOFError):
            pass
        finally:
            await trio.aclose_forcefully(tls)


async def session(server: TlsServer, client_context: ssl.SSLContext | None,
                  client: Callable[[WebsocketsSource], Awaitable[T]]) -> T:
    """Run ``client`` on a connection to ``server`` through the real connector; its result, or
    the (recoverable) error that ended it, raised as itself."""
    outcome: list[T] = []
    error: BaseException | None = None
    connect = websockets_connector(MAX_BYTES, 5.0, ssl_context=client_context)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(server.serve)
        with trio.fail_after(5):  # a hang fails the test
            try:
                async with connect(f"wss://{HOST}:{port}/ws") as ws:
                    outcome.append(await client(ws))
            except RECOVERABLE as exc:
                error = exc
        nursery.cancel_scope.cancel()
    if error is not None:
        raise error
    return outcome[0]


async def read(ws: WebsocketsSource, count: int, got: list[bytes] | None = None) -> list[bytes]:
    """``count`` messages the way ingest reads them: ``poll`` first, then ``get_message``."""
    got = [] if got is None else got
    while len(got) < count:
        message = ws.poll()
        got.append(message if message is not None else await ws.get_message())
    return got
