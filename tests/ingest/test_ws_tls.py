"""The default transport (``ws_websockets.py``) over TLS, as every real venue is ``wss://``: a
loopback TLS websocket server (``tls_server.py``) with a certificate made for the test (trustme),
the client trusting it through an injected SSL context."""

from __future__ import annotations

import datetime
import json
import random
import ssl
from collections.abc import Callable

import pytest
import trio
import trustme
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK
from websockets.frames import Frame, Opcode

from trio_harvest.ingest.backoff import Backoff
from trio_harvest.ingest.connection import RECOVERABLE, Connection
from trio_harvest.ingest.ws_websockets import WebsocketsSource, websockets_connector
from trio_harvest.venues.binance_usdm.streams import MARKET, ConnectionPlan, StreamSpec

from .test_ws_frames import frame
from .tls_server import HOST, MAX_BYTES, Peer, TlsServer, read, server_context, session


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def client_context(ca: trustme.CA) -> ssl.SSLContext:
    """What a caller injects: the default context (host name checked) trusting the test CA."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def payloads() -> list[bytes]:
    # every length encoding at and around its edges, then many short numbered messages
    edges = [b"e" * n for n in (0, 1, 125, 126, 127, 65535, 65536, 100_000)]
    return edges + [json.dumps({"n": i, "p": "x" * (i % 300)}).encode() for i in range(400)]


def record_cuts(size: int, seed: int) -> list[int]:
    """Cut points: the first 300 bytes one per TLS record, then records of random sizes."""
    rng = random.Random(seed)
    cuts, at = list(range(1, 300)), 300
    while at < size:
        cuts.append(at)
        at += rng.randint(1, 6000)
    return cuts


SUBSCRIBE = '{"method":"SUBSCRIBE","params":["btcusdt@aggTrade"],"id":1}'


async def test_many_messages_of_every_length_split_across_tls_records(
    ca: trustme.CA, client_context: ssl.SSLContext,
) -> None:
    sent = payloads()
    data = b"".join(frame(p) for p in sent[:200])
    data += frame(b"ping-1", first=0x89)  # a ping among the data frames: the client pongs it
    data += b"".join(frame(p, first=0x82 if i % 2 else 0x81) for i, p in enumerate(sent[200:]))
    subscribes: list[str] = []

    async def script(peer: Peer) -> None:
        subscribes.append(await peer.text())  # nothing is sent before the subscribe
        await peer.write(data, record_cuts(len(data), seed=7))
        assert await peer.text() == "done"

    async def client(ws: WebsocketsSource) -> list[bytes]:
        await ws.send(SUBSCRIBE)
        got = await read(ws, len(sent))
        await ws.send("done")
        return got

    server = TlsServer(server_context(ca), script)
    got = await session(server, client_context, client)
    assert got == sent
    assert subscribes == [SUBSCRIBE]
    assert server.pongs == [b"ping-1"]
    assert server.names == [HOST]  # SNI: the URL's host name
    assert len(server.requests) == 1 and f"Host: {HOST}:".encode() in server.requests[0]


async def test_a_clean_close_by_the_server_after_its_messages(
    ca: trustme.CA, client_context: ssl.SSLContext,
) -> None:
    client_close: list[Frame] = []

    async def script(peer: Peer) -> None:
        await peer.write(frame(b"a") + frame(b"b" * 70_000), cuts=[1, 3, 20_000])
        peer.protocol.send_close(1000, "bye")
        await peer.write(b"".join(peer.protocol.data_to_send()))
        client_close.append(await peer.frame())  # the client answers the close
        await peer.tls.aclose()

    got: list[bytes] = []
    with pytest.raises(ConnectionClosedOK) as closed:
        await session(TlsServer(server_context(ca), script), client_context,
                      lambda ws: read(ws, 3, got))
    assert got == [b"a", b"b" * 70_000]
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000
    assert [f.opcode for f in client_close] == [Opcode.CLOSE]


@pytest.mark.parametrize("end", ["reset", "tcp-close-without-tls-close"])
async def test_an_abrupt_end_of_the_connection_is_recoverable_not_a_hang(
    ca: trustme.CA, client_context: ssl.SSLContext, end: str,
) -> None:
    async def script(peer: Peer) -> None:
        await peer.write(frame(b"one") + frame(b"t" * 300), cuts=[2])
        assert await peer.text() == "read"  # the client has both before the end
        await peer.write(frame(b"x" * 1000)[:500])  # half a frame, then the end
        if end == "reset":
            peer.reset()
        else:
            await peer.tls.transport_stream.aclose()
        await trio.sleep_forever()

    async def client(ws: WebsocketsSource) -> list[bytes]:
        got = await read(ws, 2)
        await ws.send("read")
        return await read(ws, 3, got)

    with pytest.raises(ConnectionClosedError) as lost:
        await session(TlsServer(server_context(ca), script), client_context, client)
    assert isinstance(lost.value, RECOVERABLE)
    # a reset is an error of the socket; a TCP close without TLS's close_notify, an end of stream
    broken = isinstance(lost.value.__cause__, trio.BrokenResourceError)
    assert broken is (end == "reset"), repr(lost.value.__cause__)


@pytest.mark.parametrize("trust", ["unknown-ca", "other-host", "expired", "default-trust-store"])
async def test_a_certificate_that_does_not_verify_is_a_clear_recoverable_error(
    ca: trustme.CA, client_context: ssl.SSLContext, trust: str,
) -> None:
    if trust == "unknown-ca":
        context, client = server_context(trustme.CA()), client_context
    elif trust == "other-host":
        context, client = server_context(ca, "other.example"), client_context
    elif trust == "expired":
        context, client = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH), client_context
        ended = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)
        ca.issue_cert(HOST, not_before=ended - datetime.timedelta(days=30),
                      not_after=ended).configure_cert(context)
    else:  # no context injected: the system's trust store does not know the test CA
        context, client = server_context(ca), None

    async def never(_: object) -> None:
        raise AssertionError("connected")

    server = TlsServer(context, never)
    with pytest.raises(ConnectionError) as failed:
        await session(server, client, never)
    message = str(failed.value)
    assert isinstance(failed.value, RECOVERABLE)
    assert f"TLS handshake with {HOST}:" in message
    assert "failed: certificate verify failed: " in message, message
    reason = {"other-host": "Hostname mismatch", "expired": "certificate has expired"}
    assert reason.get(trust, "unable to get local issuer certificate") in message, message
    assert server.requests == []  # no request went over it: the harvester did not connect


@pytest.mark.parametrize("size", [60, 300, 100_000])
async def test_cancelling_get_message_mid_frame_loses_nothing(
    ca: trustme.CA, client_context: ssl.SSLContext, size: int,
) -> None:
    payload = bytes(i % 251 for i in range(size))
    data = frame(payload) + frame(b"after")
    # a cut inside the first header byte pair, the extended length, the payload
    cuts = sorted({1, 3, 9, len(data) // 2, len(data) - 8})
    halted, resumed = trio.open_memory_channel[None](0)
    go, going = trio.open_memory_channel[None](0)

    async def script(peer: Peer) -> None:
        start = 0
        for cut in cuts:
            await peer.write(data[start:cut])
            start = cut
            await halted.send(None)  # the client now cancels a get_message
            await going.receive()
        await peer.write(data[start:])
        await peer.text()

    async def client(ws: WebsocketsSource) -> list[bytes]:
        for _ in cuts:
            await resumed.receive()
            with trio.move_on_after(0.05) as scope:
                message = await ws.get_message()
                raise AssertionError(f"a message from part of a frame: {len(message)} bytes")
            assert scope.cancelled_caught
            await go.send(None)
        got = await read(ws, 2)
        await ws.send("done")
        return got

    assert await session(TlsServer(server_context(ca), script), client_context, client) == [
        payload, b"after"]


async def test_frames_in_the_same_tls_record_as_the_upgrade_response(
    ca: trustme.CA, client_context: ssl.SSLContext,
) -> None:
    first = frame(b"first") + frame(b"f" * 200) + frame(b"part")[:3]

    async def script(peer: Peer) -> None:
        await peer.write(frame(b"part")[3:] + frame(b"last"))
        await peer.text()

    async def client(ws: WebsocketsSource) -> list[bytes]:
        got = await read(ws, 4)
        await ws.send("done")
        return got

    server = TlsServer(server_context(ca), script, with_response=first)
    assert await session(server, client_context, client) == [b"first", b"f" * 200, b"part",
                                                             b"last"]


async def test_sends_from_another_task_while_reading(
    ca: trustme.CA, client_context: ssl.SSLContext,
) -> None:
    sent = payloads()[:300]
    data = b"".join(frame(p) for p in sent)
    texts = [f"sub-{i}" for i in range(100)]
    received: list[str] = []

    async def script(peer: Peer) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(peer.write, data, record_cuts(len(data), seed=3))
            while len(received) < len(texts):
                received.append(await peer.text())
        assert await peer.text() == "done"

    async def client(ws: WebsocketsSource) -> list[bytes]:
        async def sending() -> None:
            for text in texts:
                await ws.send(text)
                await trio.lowlevel.checkpoint()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(sending)
            got = await read(ws, len(sent))
        await ws.send("done")
        return got

    assert await session(TlsServer(server_context(ca), script), client_context, client) == sent
    assert received == texts


async def test_the_client_closes_with_a_complete_closing_handshake(
    ca: trustme.CA, client_context: ssl.SSLContext,
) -> None:
    closes: list[Frame] = []

    async def script(peer: Peer) -> None:
        await peer.write(frame(b"hello"))
        closes.append(await peer.frame())  # the client's close; the protocol queues the reply
        await peer.write(b"".join(peer.protocol.data_to_send()))
        await peer.tls.aclose()  # then, as a server does, ends TLS and TCP

    async def client(ws: WebsocketsSource) -> WebsocketsSource:
        assert await ws.get_message() == b"hello"
        return ws

    ws = await session(TlsServer(server_context(ca), script), client_context, client)
    assert [f.opcode for f in closes] == [Opcode.CLOSE]
    assert closes[0].data[:2] == (1000).to_bytes(2, "big")
    # the server's reply was read: the closing handshake completed over TLS
    assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 1000


@pytest.mark.parametrize("server", ["silent", "hangs-up"])
async def test_a_server_that_fails_the_tls_handshake_is_recoverable(
    client_context: ssl.SSLContext, server: str,
) -> None:
    async def tcp_only(tcp: trio.SocketStream) -> None:
        if server == "silent":
            await trio.sleep_forever()
        await tcp.aclose()

    connect = websockets_connector(MAX_BYTES, 0.3, ssl_context=client_context)
    expected = trio.TooSlowError if server == "silent" else ConnectionError
    async with trio.open_nursery() as nursery:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        await nursery.start(trio.serve_listeners, tcp_only, listeners)
        port = listeners[0].socket.getsockname()[1]
        with trio.fail_after(5), pytest.raises(expected) as failed:
            async with connect(f"wss://{HOST}:{port}/ws"):
                raise AssertionError("connected")
        assert isinstance(failed.value, RECOVERABLE)
        if server == "hangs-up":
            assert str(failed.value).startswith(f"TLS handshake with {HOST}:{port} failed: ")
        nursery.cancel_scope.cancel()


# -- supervised by a Connection ------------------------------------------------------------------


async def supervise(server: TlsServer, client_context: ssl.SSLContext,
                    until: Callable[[Connection, list[bytes]], bool]
                    ) -> tuple[Connection, list[bytes]]:
    """A real ``Connection`` on the TLS transport, run until ``until`` holds."""
    got: list[bytes] = []

    async def handle(message: str | bytes) -> None:
        got.append(message.encode() if isinstance(message, str) else message)

    async with trio.open_nursery() as nursery:
        port = await nursery.start(server.serve)
        plan = ConnectionPlan(MARKET, (StreamSpec("BTCUSDT", "aggTrade", "btcusdt@aggTrade"),))
        conn = Connection(plan, f"wss://{HOST}:{port}",
                          websockets_connector(MAX_BYTES, 5.0, ssl_context=client_context),
                          handle, stall_timeout=10.0,
                          backoff=Backoff(0.001, 0.01, random.Random(1)))
        nursery.start_soon(conn.run)
        with trio.fail_after(5):
            while not until(conn, got):
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    return conn, got


async def test_a_connection_over_tls_receives_and_retries_a_certificate_it_cannot_trust(
    ca: trustme.CA, client_context: ssl.SSLContext,
) -> None:
    async def script(peer: Peer) -> None:
        await peer.write(frame(b"one") + frame(b"two" * 100), cuts=[1, 50])
        await trio.sleep_forever()

    trusted = TlsServer(server_context(ca), script)
    conn, got = await supervise(trusted, client_context, lambda c, got: len(got) >= 2)
    assert got == [b"one", b"two" * 100]
    assert conn.stats.failures == 0 and trusted.names == [HOST]

    untrusted = TlsServer(server_context(trustme.CA()), script)
    conn, got = await supervise(untrusted, client_context, lambda c, got: c.stats.failures >= 3)
    assert got == [] and untrusted.requests == []  # retried, never connected
    assert conn.stats.last_error.startswith(f"ConnectionError: TLS handshake with {HOST}:")
    assert "certificate verify failed: unable to get local issuer certificate" in (
        conn.stats.last_error)
