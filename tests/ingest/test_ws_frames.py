"""Websocket frames byte by byte, for every transport: every length encoding, frames split over
reads, many frames in one read, binary frames, and frames a server must not send. Raw loopback
servers answer the handshake by hand and then write exact bytes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
import trio

from trio_harvest.ingest.connection import RECOVERABLE
from trio_harvest.ingest.transport import TRANSPORTS, connector

from .test_transport_conformance import RawReply, raw_server, upgrade

MAX_BYTES = 1 << 17


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def frame(payload: bytes, *, first: int = 0x81, mask: bytes | None = None) -> bytes:
    """One frame as a server writes it (``first``: FIN, RSV and opcode bits)."""
    n = len(payload)
    bit = 0x80 if mask is not None else 0
    if n < 126:
        head = bytes([first, bit | n])
    elif n < 1 << 16:
        head = bytes([first, bit | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([first, bit | 127]) + n.to_bytes(8, "big")
    if mask is None:
        return head + payload
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


Writer = Callable[[trio.SocketStream], Awaitable[None]]


def upgrading(write: Writer) -> RawReply:
    """A raw server's reply: upgrade by hand, let ``write`` send raw bytes, hang up once the
    client closes."""

    async def reply(stream: trio.SocketStream, head: bytes) -> None:
        await upgrade(stream, head)
        await write(stream)
        await stream.receive_some(4096)

    return reply


def sizes() -> list[bytes]:
    # the 7-bit, 16-bit and 64-bit length encodings, at and around their edges
    return [b"x" * n for n in (0, 1, 125, 126, 127, 65535, 65536, 100_000)]


async def messages(transport: str, write: Writer, count: int,
                   got: list[bytes] | None = None) -> list[bytes]:
    got = [] if got is None else got
    error: BaseException | None = None
    async with trio.open_nursery() as nursery:
        port = await nursery.start(raw_server, upgrading(write))
        with trio.fail_after(10):
            try:
                async with connector(transport, MAX_BYTES, 5.0)(f"ws://127.0.0.1:{port}/x") as ws:
                    while len(got) < count:
                        m = await ws.get_message()
                        got.append(m.encode() if isinstance(m, str) else m)
            except RECOVERABLE as exc:
                error = exc
        nursery.cancel_scope.cancel()
    if error is not None:
        raise error
    return got


async def test_every_length_encoding_in_one_write(transport: str) -> None:
    payloads = sizes()

    async def write(stream: trio.SocketStream) -> None:
        await stream.send_all(b"".join(frame(p) for p in payloads))

    assert await messages(transport, write, len(payloads)) == payloads


async def test_frames_split_across_reads_at_every_byte(transport: str) -> None:
    payloads = [b"hello", b"y" * 300, b"z" * 70_000, b"end"]
    data = b"".join(frame(p) for p in payloads)

    async def write(stream: trio.SocketStream) -> None:
        for i in range(0, 400):  # the first frames a byte at a time, then the rest in chunks
            await stream.send_all(data[i:i + 1])
            await trio.lowlevel.checkpoint()
        for i in range(400, len(data), 997):
            await stream.send_all(data[i:i + 997])

    assert await messages(transport, write, len(payloads)) == payloads


async def test_binary_frames_and_pings_between_messages(transport: str) -> None:
    async def write(stream: trio.SocketStream) -> None:
        await stream.send_all(frame(b"one") + frame(b"\x00\x01", first=0x82) +
                              frame(b"ping", first=0x89) + frame(b"two"))

    assert await messages(transport, write, 3) == [b"one", b"\x00\x01", b"two"]


async def test_fragments_around_a_ping_make_one_message(transport: str) -> None:
    async def write(stream: trio.SocketStream) -> None:
        await stream.send_all(frame(b"he", first=0x01) + frame(b"ping", first=0x89) +
                              frame(b"llo", first=0x80) + frame(b"next"))

    assert await messages(transport, write, 2) == [b"hello", b"next"]


@pytest.mark.parametrize("bad", [
    pytest.param(frame(b"masked", mask=b"\x01\x02\x03\x04"), id="masked"),
    pytest.param(frame(b"rsv", first=0xC1), id="reserved-bit"),
    pytest.param(frame(b"op", first=0x83), id="reserved-opcode"),
    pytest.param(frame(b"x" * (MAX_BYTES + 1)), id="oversized"),
    pytest.param(frame(b"cont", first=0x80), id="stray-continuation"),
])
async def test_a_frame_a_server_must_not_send_ends_the_connection_recoverably(
    transport: str, bad: bytes,
) -> None:
    async def write(stream: trio.SocketStream) -> None:
        await stream.send_all(frame(b"before") + bad + frame(b"after"))

    got: list[bytes] = []
    with pytest.raises(RECOVERABLE):
        await messages(transport, write, 3, got)
    assert got == [b"before"]  # what came before it, and nothing after it


async def test_a_plain_socket_read_closed_before_or_while_it_waits_is_a_recoverable_error() -> None:
    """The websockets transport reads a plain TCP socket directly (one wait, one read): a socket
    closed before the read, or by another task while the read waits (the handover's supervisor
    ending a quiet old socket), ends it with an error the connection treats as a disconnect."""
    from trio_harvest.ingest.ws_websockets import _receive_plain

    a, b = trio.socket.socketpair()
    stream = trio.SocketStream(a)
    await stream.aclose()
    with pytest.raises(RECOVERABLE):
        await _receive_plain(stream.socket)
    b.close()
    a, b = trio.socket.socketpair()
    stream = trio.SocketStream(a)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_close_soon, stream)
        with pytest.raises(RECOVERABLE):
            await _receive_plain(stream.socket)
    b.close()
    a, b = trio.socket.socketpair()
    await b.send(b"abc")
    assert await _receive_plain(a) == b"abc"
    b.close()
    assert await _receive_plain(a) == b""  # the peer's end
    a.close()


async def _close_soon(stream: trio.SocketStream) -> None:
    await trio.sleep(0.05)
    await stream.aclose()
