"""The websockets (>= 17) transport: its sans-I/O client protocol on a trio stream we own, with
the data frames read in place.

Owns one connection's socket from connect to close: the TCP (or TLS) stream is opened here, the
opening handshake (``websockets.client.ClientProtocol``: the request, the response's checks, its
errors) runs inside ``connect_timeout``, and the stream is closed, forcefully, whatever happens on
the way out. Options, chosen for Binance: no permessage-deflate (Binance does not need it;
inflating every frame costs CPU), no proxy, no redirects, no client keepalive pings (the server's
pings are answered; Binance pings every 3 minutes; silence is the stall watchdog's job),
``max_size`` = ``max_message_bytes`` (a larger message fails the connection with close code
1009: a recoverable ``ConnectionClosedError``).

Reading has no task of its own: ``get_message`` reads the socket in the caller's task (one
schedule point per call, as a channel receive; a plain TCP socket is read directly, one wait
for it to be readable and one read, a TLS stream through its ``receive_some``) and ``poll``
cuts the next message out of what was read already, with no checkpoint. A whole, unmasked,
unfragmented text or binary frame within ``max_size`` (what an exchange sends) is cut out of
the buffer by its header alone; every other frame (ping, close, fragments, anything malformed
or oversized) goes through the library's protocol, one whole frame at a time, so pongs, close
replies, fragment assembly and protocol errors are the library's. Messages come back as bytes
(msgspec decodes them); text is not validated as UTF-8 here (the decoder rejects it). Never
interprets messages.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import trio
from websockets.client import ClientProtocol
from websockets.exceptions import (
    ConnectionClosed,
    ConnectionClosedError,
    InvalidHandshake,
    PayloadTooBig,
    ProtocolError,
)
from websockets.frames import Frame, Opcode
from websockets.http11 import USER_AGENT
from websockets.protocol import State
from websockets.uri import parse_uri

from . import tls

RECOVERABLE: tuple[type[BaseException], ...] = (
    ConnectionClosed,  # closed by the server, a network error, an oversized message (1009)
    InvalidHandshake,  # HTTP 4xx/5xx, not a websocket, a bad upgrade (InvalidStatus, ...)
    ProtocolError,
    PayloadTooBig,
)

CLOSE_TIMEOUT = 2.0  # the closing handshake's bound
RECEIVE_BYTES = 1 << 16  # one read of the socket at most

_TEXT, _BINARY, _CONT = Opcode.TEXT, Opcode.BINARY, Opcode.CONT
_OPEN, _CLOSED = State.OPEN, State.CLOSED
_FAST_FIRST = (0x81, 0x82)  # FIN, no RSV bits, text or binary
_OVERSIZED = -2  # ``_frame_end``: a frame over ``max_size`` (the protocol fails it at once)
_ERRORS = (OSError, trio.BrokenResourceError, trio.ClosedResourceError)


class WebsocketsSource:
    """A ``MessageSource`` over a websockets client protocol: ``get_message`` reads the socket,
    ``poll`` the next message already read whole, ``send`` one text frame."""

    __slots__ = ("_buf", "_fragments", "_max", "_pos", "_reading", "_send_lock", "_sock",
                 "protocol", "stream")

    def __init__(self, stream: trio.abc.Stream, protocol: ClientProtocol, buffered: bytes,
                 max_size: int) -> None:
        self.stream = stream
        self.protocol = protocol
        self._buf = buffered  # read from the socket, not yet handed on from ``_pos``
        self._pos = 0
        self._max = max_size
        self._fragments: list[bytes] | None = None  # a fragmented message under way
        self._send_lock = trio.Lock()
        self._reading = False
        # a plain TCP stream's socket, read directly (``_receive_plain``); None: the stream's
        # own ``receive_some`` (TLS, or a test's stream)
        self._sock = stream.socket if type(stream) is trio.SocketStream else None

    def poll(self) -> bytes | None:
        """The next message when it is a whole fast frame in the buffer (what ``get_message``
        would return at once, minus the schedule point), else None (then ``get_message``)."""
        buf = self._buf
        pos = self._pos
        end = len(buf)
        if end - pos < 2 or buf[pos] not in _FAST_FIRST or self._fragments is not None:
            return None
        length = buf[pos + 1]
        if length < 126:
            start = pos + 2
        elif length == 126:  # 126..65535 bytes (a depth message): two bytes of length
            start = pos + 4
            if start > end:
                return None
            length = buf[pos + 2] << 8 | buf[pos + 3]
            if length > self._max:
                return None
        elif length == 127:
            start = pos + 10
            if start > end:
                return None
            length = int.from_bytes(buf[pos + 2:start], "big")
            if length > self._max:
                return None
        else:  # a masked frame (a server must not send one): the protocol fails it
            return None
        stop = start + length
        if stop > end:
            return None
        self._pos = stop
        return buf[start:stop]

    async def get_message(self) -> bytes:
        """The next message; a recoverable error once the connection is gone. Cancelled, it
        loses nothing (a message leaves the buffer only when returned)."""
        if self._pos >= len(self._buf):  # all handed on (the usual case after a burst): read
            await self._read()
        elif self._frame_end() != -1:  # something to hand on now: still one schedule point
            await trio.lowlevel.checkpoint()
        while True:
            message = self.poll()
            if message is not None:
                return message
            end = self._frame_end()
            if end == -1:
                await self._read()
                continue
            message = await self._by_protocol(end)
            if message is not None:
                return message

    async def send(self, message: str) -> None:
        protocol = self.protocol
        if protocol.state is not _OPEN:
            raise _closed(protocol)
        protocol.send_text(message.encode())
        await self._flush()

    # -- reading -------------------------------------------------------------------------------

    def _frame_end(self) -> int:
        """Where the next frame in the buffer ends; -1 if it is not whole yet, ``_OVERSIZED``
        if its length is over ``max_size``."""
        buf, pos = self._buf, self._pos
        have = len(buf) - pos
        if have < 2:
            return -1
        second = buf[pos + 1]
        length, head = second & 0x7F, 2
        if length >= 126:
            head = 4 if length == 126 else 10
            if have < head:
                return -1
            length = int.from_bytes(buf[pos + 2:pos + head], "big")
        if second & 0x80:
            head += 4  # a mask key (a server must not send one: the protocol fails the frame)
        if length > self._max:
            return _OVERSIZED
        end = pos + head + length
        return end if end <= len(buf) else -1

    async def _read(self) -> None:
        """Append what the socket has (waiting for it); a recoverable error at its end."""
        self._reading = True
        try:
            sock = self._sock
            if sock is None:
                data = await self.stream.receive_some(RECEIVE_BYTES)
            else:
                data = await _receive_plain(sock)
        except _ERRORS as exc:
            self.protocol.receive_eof()
            raise _closed(self.protocol) from exc
        finally:
            self._reading = False
        if not data:
            self.protocol.receive_eof()
            raise _closed(self.protocol)
        if type(data) is not bytes:
            data = bytes(data)
        buf, pos = self._buf, self._pos
        self._buf = data if pos >= len(buf) else buf[pos:] + data
        self._pos = 0

    async def _by_protocol(self, end: int) -> bytes | None:
        """Hand the next frame (all that was read, if it is oversized) to the protocol; the
        message it completes, if any. Answers what the protocol answers (a pong, a close); a
        connection the protocol closed ends here, recoverably."""
        buf, pos = self._buf, self._pos
        if end == _OVERSIZED:
            end = len(buf)
        self._pos = end
        protocol = self.protocol
        protocol.receive_data(buf[pos:end])
        message = None
        for event in protocol.events_received():
            if not isinstance(event, Frame):
                continue
            opcode = event.opcode
            if opcode is _TEXT or opcode is _BINARY:
                if event.fin:
                    message = bytes(event.data)
                else:
                    self._fragments = [bytes(event.data)]
            elif opcode is _CONT and self._fragments is not None:
                self._fragments.append(bytes(event.data))
                if event.fin:
                    message, self._fragments = b"".join(self._fragments), None
        if message is not None:  # a data frame: nothing to answer (return it before a checkpoint)
            return message
        if protocol.state is not _OPEN:  # a close frame, or a frame the protocol failed
            await self._finish()
        await self._flush()  # a pong
        return None

    async def _finish(self) -> None:
        """The protocol closed the connection: send its close frame, wait (bounded) for the
        server to end the TCP connection, and raise the connection's close."""
        protocol = self.protocol
        try:
            with trio.move_on_after(CLOSE_TIMEOUT):
                await self._flush()
                while True:
                    data = await self.stream.receive_some(RECEIVE_BYTES)
                    if not data:
                        break
                    protocol.receive_data(data)  # discarded: the protocol has closed
        except (*_ERRORS, ConnectionClosed):
            pass
        protocol.receive_eof()
        raise _closed(protocol)

    async def _flush(self) -> None:
        """Write what the protocol has to send (in order: one writer at a time)."""
        async with self._send_lock:
            for data in self.protocol.data_to_send():
                if not data:
                    continue  # the end of our side: the stream is closed on the way out
                try:
                    await self.stream.send_all(data)
                except _ERRORS as exc:
                    raise ConnectionClosedError(None, None) from exc

    async def close(self) -> None:
        """The closing handshake (bounded; not waited for while another task reads)."""
        protocol = self.protocol
        if protocol.state is not _OPEN:
            return
        protocol.send_close(1000)
        with trio.move_on_after(CLOSE_TIMEOUT):
            try:
                await self._flush()
                if self._reading:
                    return  # closing the stream ends that read
                protocol.receive_data(self._buf[self._pos:])
                self._pos = len(self._buf)
                while protocol.state is not _CLOSED:
                    data = await self.stream.receive_some(RECEIVE_BYTES)
                    if not data:
                        break
                    protocol.receive_data(data)
                    protocol.events_received()
            except (*_ERRORS, ConnectionClosed, EOFError):
                pass


async def _receive_plain(sock: trio.socket.SocketType) -> bytes:
    """What a plain TCP socket has, once trio says it is readable: one wait and one read, where
    ``SocketStream.receive_some`` first tries a read that fails (the buffer was drained: the
    usual case between bursts), then waits, then reads again, through two context managers.
    A closed socket (the handover's supervisor, the session's end) ends the wait with
    ``ClosedResourceError``; a reset, or a read after the close, is an ``OSError``. Cancelled,
    it has read nothing."""
    while True:
        fd = sock.fileno()
        if fd < 0:
            raise trio.ClosedResourceError("the socket was closed")
        await trio.lowlevel.wait_readable(fd)
        try:
            return os.read(fd, RECEIVE_BYTES)
        except BlockingIOError:  # woken with nothing to read after all: wait again
            continue


def _closed(protocol: ClientProtocol) -> ConnectionClosed:
    """The error for a connection that is gone (the protocol's own once it is closed)."""
    if protocol.state is _CLOSED:
        return protocol.close_exc
    return ConnectionClosedError(protocol.close_rcvd, protocol.close_sent)


async def _handshake(stream: trio.abc.Stream, url: str, max_size: int) -> WebsocketsSource:
    """The opening handshake; the source, holding any frame bytes read past the response."""
    protocol = ClientProtocol(parse_uri(url), max_size=max_size)
    request = protocol.connect()
    request.headers.setdefault("User-Agent", USER_AGENT)
    protocol.send_request(request)
    for out in protocol.data_to_send():
        await stream.send_all(out)
    seen, fed, body = b"", 0, False
    while protocol.state is State.CONNECTING and protocol.handshake_exc is None:
        data = await stream.receive_some(RECEIVE_BYTES)
        if not data:
            protocol.receive_eof()
            break
        seen += bytes(data)
        # only the response's head is the protocol's (a 101 has no body): what follows it is
        # frames, read in place; a refusal's body is the protocol's too
        head_end = seen.find(b"\r\n\r\n")
        cut = len(seen) if body or head_end < 0 else head_end + 4
        if cut > fed:
            protocol.receive_data(seen[fed:cut])
            fed = cut
        if head_end >= 0 and protocol.state is State.CONNECTING:
            body = True
            if fed < len(seen):
                protocol.receive_data(seen[fed:])
                fed = len(seen)
    protocol.events_received()
    if protocol.handshake_exc is not None:
        raise protocol.handshake_exc
    if protocol.state is not _OPEN:
        raise ConnectionClosedError(None, None)
    protocol.data_to_send()
    return WebsocketsSource(stream, protocol, seen[fed:], max_size)


@asynccontextmanager
async def open_websocket(url: str, *, max_message_bytes: int, connect_timeout: float = 10.0,
                         ssl_context: ssl.SSLContext | None = None,
                         ) -> AsyncIterator[WebsocketsSource]:
    """One websocket connection to ``url`` (``ws://`` or ``wss://``). ``ssl_context``: the TLS
    trust for ``wss://`` (None: the process's, ``tls.py``: the system's trust store and
    ``--ca-file``, the host name checked; a test passes its own CA's)."""
    uri = parse_uri(url)
    stream: trio.abc.Stream | None = None
    try:
        with trio.fail_after(connect_timeout):
            stream = await trio.open_tcp_stream(uri.host, uri.port)
            if uri.secure:
                stream = await _tls(stream, uri.host, uri.port, ssl_context)
            source = await _handshake(stream, url, max_message_bytes)
        yield source
        await source.close()  # a failed or cancelled session just drops the link
    finally:
        if stream is not None:
            await trio.aclose_forcefully(stream)


async def _tls(tcp: trio.SocketStream, host: str, port: int,
               context: ssl.SSLContext | None) -> trio.SSLStream[trio.SocketStream]:
    """The TLS stream over ``tcp``, its handshake done (SNI and the certificate's host name are
    ``host``); a failed handshake (a certificate that does not verify, the server hanging up)
    is a recoverable ``ConnectionError`` naming the host and the reason."""
    if context is None:
        context = await tls.client_context()
    stream = trio.SSLStream(tcp, context, server_hostname=host, https_compatible=True)
    try:
        await stream.do_handshake()
    except trio.BrokenResourceError as exc:  # the caller closes ``tcp``
        cause = exc.__cause__
        if isinstance(cause, ssl.SSLCertVerificationError):
            reason = f"certificate verify failed: {cause.verify_message}"
        else:
            reason = str(cause or "the connection was closed")
        raise ConnectionError(f"TLS handshake with {host}:{port} failed: {reason}") from exc
    return stream


def websockets_connector(
    max_message_bytes: int, connect_timeout: float = 10.0,
    ssl_context: ssl.SSLContext | None = None,
) -> Callable[[str], AbstractAsyncContextManager[WebsocketsSource]]:
    def connect_one(url: str) -> AbstractAsyncContextManager[WebsocketsSource]:
        return open_websocket(url, max_message_bytes=max_message_bytes,
                              connect_timeout=connect_timeout, ssl_context=ssl_context)

    return connect_one
