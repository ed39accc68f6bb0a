"""One conformance suite for every websocket transport (``ingest/transport.py``), against loopback
servers: a small trio-websocket server written here (scenarios by path), raw TCP servers for
what is not a websocket, and the built-in simulator for the 24 h handover. Each test runs once per
transport; a transport is only supported if it passes all of them."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import random
import socket
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import pytest
import trio
import trio_websocket

from trio_harvest.ingest.backoff import Backoff
from trio_harvest.ingest.connection import RECOVERABLE, Connection
from trio_harvest.ingest.handover import HandoverConnector
from trio_harvest.ingest.transport import TRANSPORTS, ConnectFn, connector
from trio_harvest.sim.server import SimConfig, Simulator
from trio_harvest.venues.binance_usdm.streams import MARKET, ConnectionPlan, StreamSpec, url_after

MAX_BYTES = 4096
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def connect_of(transport: str, connect_timeout: float = 5.0) -> ConnectFn:
    return connector(transport, MAX_BYTES, connect_timeout)


def text(frame: str | bytes) -> str:
    return frame if isinstance(frame, str) else frame.decode()


@dataclass
class WsServer:
    """A websocket server whose path picks the behaviour: ``/stream/N`` sends N frames then
    closes cleanly, ``/abort/N`` sends N frames then drops the TCP connection, ``/stall`` sends
    nothing, ``/oversize`` sends one frame then one over MAX_BYTES, ``/ping`` pings the client
    and reports whether the pong came, ``/reject/CODE`` answers the handshake with HTTP CODE,
    ``/hold`` sends one frame and waits for the client to close, ``/echo`` answers each message
with ``echo <message>``, ``/newest`` joins a feed of
    numbered frames (every 5 ms) that only the newest such connection receives."""

    port: int = 0
    pongs: list[bool] = field(default_factory=list)
    close_codes: list[int | None] = field(default_factory=list)  # what /oversize's client sent
    feed: list[trio_websocket.WebSocketConnection] = field(default_factory=list)

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            ws_server = await nursery.start(trio_websocket.serve_websocket, self._handle,
                                            "127.0.0.1", 0, None)
            self.port = ws_server.port
            nursery.start_soon(self._feed)
            task_status.started()

    async def _feed(self) -> None:
        n = 0
        while True:
            await trio.sleep(0.005)
            if self.feed:
                n += 1
                try:
                    await self.feed[-1].send_message(str(n))
                except trio_websocket.ConnectionClosed:
                    pass

    async def _handle(self, request: trio_websocket.WebSocketRequest) -> None:
        _, verb, *rest = request.path.split("/")
        arg = rest[0] if rest else ""
        if verb == "reject":
            # a client may hang up on the status line before the body is out (websockets does,
            # when the machine is loaded): the rejection was delivered, the server goes on
            try:
                await request.reject(int(arg), body=b"no")
            except trio_websocket.ConnectionClosed:
                pass
            return
        ws = await request.accept()
        try:
            if verb in ("stream", "abort"):
                for i in range(int(arg)):
                    await ws.send_message(f"frame {i}")
                if verb == "abort":
                    await trio.aclose_forcefully(ws._stream)  # no close frame: a dropped link
                    return
            elif verb == "stall":
                await trio.sleep_forever()
            elif verb == "oversize":
                await ws.send_message("small")
                await ws.send_message("x" * (MAX_BYTES * 2))
                try:
                    await ws.get_message()  # until the client closes
                except trio_websocket.ConnectionClosed as exc:
                    self.close_codes.append(exc.reason.code if exc.reason else None)
                    raise
            elif verb == "ping":
                with trio.move_on_after(5) as waited:
                    await ws.ping(b"binance")
                self.pongs.append(not waited.cancelled_caught)
                await ws.send_message("after ping")
                await ws.get_message()
            elif verb == "newest":
                self.feed.append(ws)
                try:
                    await ws.get_message()
                finally:
                    self.feed.remove(ws)
            elif verb == "hold":
                await ws.send_message("hello")
                await ws.get_message()
            elif verb == "echo":
                while True:
                    await ws.send_message("echo " + text(await ws.get_message()))
        except trio_websocket.ConnectionClosed:
            pass
        finally:
            await ws.aclose()

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"


RawReply = Callable[[trio.SocketStream, bytes], Awaitable[None]]


async def raw_server(reply: RawReply, *,
                     task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """A TCP server that reads a request head and answers it with ``reply``."""

    async def one(stream: trio.SocketStream) -> None:
        async with stream:
            head = b""
            with trio.move_on_after(5):
                while b"\r\n\r\n" not in head:
                    chunk = await stream.receive_some(4096)
                    if not chunk:
                        return
                    head += chunk
            try:
                await reply(stream, head)
            except trio.BrokenResourceError:
                pass

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, one, listeners)
        task_status.started(listeners[0].socket.getsockname()[1])


def answer(raw: bytes) -> RawReply:
    async def reply(stream: trio.SocketStream, head: bytes) -> None:
        await stream.send_all(raw)

    return reply


async def never_answer(stream: trio.SocketStream, head: bytes) -> None:
    await trio.sleep_forever()


async def upgrade(stream: trio.SocketStream, head: bytes) -> None:
    """Answer the handshake in ``head`` correctly, by hand."""
    key = next(line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
               if line.lower().startswith(b"sec-websocket-key:"))
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    await stream.send_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                          b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")


async def upgrade_then_drop(stream: trio.SocketStream, head: bytes) -> None:
    """A correct handshake by hand, one text frame, then the TCP connection just ends."""
    await upgrade(stream, head)
    await stream.send_all(b"\x81\x05hello")


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A port that refuses connections while the block runs: bound (so no other socket can take
    it, nor a connect's own source port) but not listening."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# -- handshake errors, refused connections, timeouts ---------------------------------------------


@pytest.mark.parametrize("raw", [
    pytest.param(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n", id="http-503"),
    pytest.param(b"HTTP/1.1 429 Too Many Requests\r\nContent-Length: 4\r\n\r\nslow", id="http-429"),
    pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", id="plain-http"),
    pytest.param(b"SSH-2.0-OpenSSH_9.6\r\n\r\n", id="not-http"),
    pytest.param(b"", id="closed-at-once"),
])
async def test_a_failed_handshake_is_recoverable(transport: str, raw: bytes) -> None:
    async with trio.open_nursery() as nursery:
        port = await nursery.start(raw_server, answer(raw))
        with trio.fail_after(10), pytest.raises(RECOVERABLE):
            # trio-websocket waits out connect_timeout when the server closes during the
            # handshake (websockets raises at once): keep that short here
            async with connect_of(transport, connect_timeout=1.0)(f"ws://127.0.0.1:{port}/x"):
                pass  # pragma: no cover
        nursery.cancel_scope.cancel()


async def test_a_rejected_upgrade_and_a_refused_connection_are_recoverable(transport: str) -> None:
    server = WsServer()
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        for code in (400, 404, 500):
            with pytest.raises(RECOVERABLE):
                async with connect_of(transport)(server.url(f"/reject/{code}")):
                    pass  # pragma: no cover
        with refused_port() as dead, pytest.raises(RECOVERABLE):
            async with connect_of(transport)(f"ws://127.0.0.1:{dead}/x"):
                pass  # pragma: no cover
        nursery.cancel_scope.cancel()


async def test_connect_timeout_bounds_a_silent_handshake(transport: str) -> None:
    async with trio.open_nursery() as nursery:
        port = await nursery.start(raw_server, never_answer)
        with trio.fail_after(10), pytest.raises(RECOVERABLE):
            async with connect_of(transport, connect_timeout=0.2)(f"ws://127.0.0.1:{port}/x"):
                pass  # pragma: no cover
        nursery.cancel_scope.cancel()


# -- in the stream: closes, drops, oversized frames, pings ---------------------------------------


async def test_server_closing_or_dropping_mid_stream_ends_reading_recoverably(
    transport: str,
) -> None:
    server = WsServer()
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        raw_port = await nursery.start(raw_server, upgrade_then_drop)
        for url in (server.url("/stream/3"), server.url("/abort/3"),
                    f"ws://127.0.0.1:{raw_port}/x"):
            got: list[str] = []
            with trio.fail_after(10), pytest.raises(RECOVERABLE):
                async with connect_of(transport)(url) as ws:
                    while True:
                        got.append(text(await ws.get_message()))
            assert got == (["hello"] if "/x" in url else ["frame 0", "frame 1", "frame 2"])
        nursery.cancel_scope.cancel()


async def test_an_oversized_frame_is_a_clean_recoverable_close(transport: str) -> None:
    server = WsServer()
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        got: list[str] = []
        with trio.fail_after(10), pytest.raises(RECOVERABLE):
            async with connect_of(transport)(server.url("/oversize")) as ws:
                while True:
                    got.append(text(await ws.get_message()))
        assert got == ["small"]
        with trio.fail_after(5):
            while not server.close_codes:
                await trio.sleep(0.01)
        assert server.close_codes == [1009]  # a clean close: "message too big"
        # the next connection is fine
        async with connect_of(transport)(server.url("/hold")) as ws:
            assert text(await ws.get_message()) == "hello"
        nursery.cancel_scope.cancel()


async def test_a_ping_from_the_server_is_answered(transport: str) -> None:
    server = WsServer()
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        with trio.fail_after(10):
            async with connect_of(transport)(server.url("/ping")) as ws:
                assert text(await ws.get_message()) == "after ping"
        nursery.cancel_scope.cancel()
    assert server.pongs == [True]


# -- supervised by a Connection: stall and reconnect ---------------------------------------------


def plan() -> ConnectionPlan:
    return ConnectionPlan(MARKET, (StreamSpec("BTCUSDT", "aggTrade", "btcusdt@aggTrade"),))


async def run_connection(transport: str, base_url: str, *, stall: float,
                         until: Callable[[Connection, list[str]], bool]) -> tuple[Connection, list[str]]:
    got: list[str] = []

    async def handle(frame: str | bytes) -> None:
        got.append(text(frame))

    conn = Connection(plan(), base_url, connect_of(transport), handle, stall_timeout=stall,
                      backoff=Backoff(0.001, 0.01, random.Random(1)))
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(conn.run)
            while not until(conn, got):
                await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
    return conn, got


async def test_a_stalled_connection_is_reconnected_by_the_watchdog(transport: str) -> None:
    server = WsServer()
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        conn, _ = await run_connection(transport, server.url("/stall"), stall=0.2,
                                       until=lambda c, got: c.stats.connects >= 3)
        nursery.cancel_scope.cancel()
    assert conn.stats.last_error.startswith("stalled")


async def test_a_server_close_mid_stream_is_reconnected(transport: str) -> None:
    server = WsServer()
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        conn, got = await run_connection(transport, server.url("/stream/3"), stall=5.0,
                                         until=lambda c, got: len(got) >= 9)
        nursery.cancel_scope.cancel()
    assert got[:9] == ["frame 0", "frame 1", "frame 2"] * 3
    assert conn.stats.connects >= 3 and not conn.stats.last_error.startswith("unexpected")


# -- no file descriptor leaks --------------------------------------------------------------------


async def test_no_file_descriptor_leaks_over_a_thousand_reconnects(transport: str) -> None:
    """1 000 sessions, each ending another way: the client closes, the server closes, the server
    drops the link, an oversized frame, a rejected handshake, a refused connection, a cancelled
    connect. Afterwards the process holds the descriptors it held before."""
    server = WsServer()
    connect = connect_of(transport)
    with refused_port() as dead:
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve)
            raw_port = await nursery.start(raw_server, upgrade_then_drop)
            urls = [server.url("/hold"), server.url("/stream/1"), server.url("/abort/1"),
                    server.url("/oversize"), server.url("/reject/503"), f"ws://127.0.0.1:{dead}/x",
                    f"ws://127.0.0.1:{raw_port}/x", "cancel"]
            before = open_fds()
            with trio.fail_after(60):
                for i in range(1000):
                    url = urls[i % len(urls)]
                    if url == "cancel":
                        with trio.move_on_after(0):
                            async with connect(server.url("/hold")):
                                pass  # pragma: no cover
                        continue
                    try:
                        async with connect(url) as ws:
                            await ws.get_message()
                            if "/hold" not in url:
                                while True:
                                    await ws.get_message()
                    except RECOVERABLE:
                        pass
                for _ in range(200):  # the server side finishes its closing handshakes
                    if open_fds() <= before:
                        break
                    await trio.sleep(0.01)
            assert open_fds() == before
            nursery.cancel_scope.cancel()


# -- draining what was received already ----------------------------------------------------------


async def fragmented_then_whole(stream: trio.SocketStream, head: bytes) -> None:
    """A correct handshake by hand, a text message in two fragments, a whole one, then waits."""
    await upgrade(stream, head)
    await stream.send_all(b"\x01\x03hel" + b"\x80\x02lo" + b"\x81\x05world")
    await trio.sleep_forever()


async def test_poll_drains_received_messages_in_order_and_loses_none(transport: str) -> None:
    """``poll`` returns what ``get_message`` would, in order, and None when nothing is there;
    a stream read with both loses nothing up to the close, which only ``get_message`` reports."""
    server = WsServer()
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        got: list[str] = []
        polled = 0
        with trio.fail_after(10), pytest.raises(RECOVERABLE):
            async with connect_of(transport)(server.url("/stream/300")) as ws:
                poll = ws.poll  # type: ignore[attr-defined]
                got.append(text(await ws.get_message()))
                await trio.sleep(0.2)  # let the library receive (and queue) what follows
                while True:
                    frame = poll()
                    if frame is None:
                        got.append(text(await ws.get_message()))
                    else:
                        polled += 1
                        got.append(text(frame))
        assert got == [f"frame {i}" for i in range(300)]
        assert polled > 0
        nursery.cancel_scope.cancel()


async def test_poll_never_returns_part_of_a_fragmented_message(transport: str) -> None:
    async with trio.open_nursery() as nursery:
        port = await nursery.start(raw_server, fragmented_then_whole)
        with trio.fail_after(10):
            async with connect_of(transport)(f"ws://127.0.0.1:{port}/x") as ws:
                poll = ws.poll  # type: ignore[attr-defined]
                await trio.sleep(0.2)  # both messages received (or fragments of them)
                first = poll()
                got = [text(first if first is not None else await ws.get_message())]
                second = poll()
                got.append(text(second if second is not None else await ws.get_message()))
                assert poll() is None
        assert got == ["hello", "world"]
        nursery.cancel_scope.cancel()


# -- sending -----------------------------------------------------------------------------------


async def test_send_writes_text_messages_in_order(transport: str) -> None:
    server = WsServer()
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        async with connect_of(transport)(server.url("/echo")) as ws:
            for i in range(5):
                await ws.send(f"m{i} é")
            got = [text(await ws.get_message()) for _ in range(5)]
        nursery.cancel_scope.cancel()
    assert got == [f"echo m{i} é" for i in range(5)]


async def test_send_on_a_connection_the_server_dropped_is_recoverable(transport: str) -> None:
    server = WsServer()
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        with pytest.raises(RECOVERABLE):
            async with connect_of(transport)(server.url("/abort/1")) as ws:
                await ws.get_message()
                with trio.fail_after(5):
                    while True:  # the drop is noticed by a read, then every send fails
                        with trio.move_on_after(0.05):
                            await ws.get_message()
                        await ws.send("still there?")
        nursery.cancel_scope.cancel()


def _plan(*names: str) -> ConnectionPlan:
    return ConnectionPlan(MARKET, tuple(StreamSpec(n.split("@")[0].upper(), "aggTrade", n)
                                        for n in names))


async def test_a_live_subscribe_adds_a_stream_without_disturbing_the_others(transport: str) -> None:
    """``Connection.retarget`` + ``tell``: SUBSCRIBE on the open socket; the old stream goes on
    on the same connection (no reconnect), the new one starts; UNSUBSCRIBE stops a stream."""
    sim = Simulator(SimConfig(symbols=("BTCUSDT", "ETHUSDT"), rate=400.0))
    seen: dict[str, list[int]] = {}

    def handle(frame: str | bytes) -> None:
        doc = json.loads(frame)
        if "stream" in doc:
            seen.setdefault(doc["stream"], []).append(doc["data"]["a"])

    async with trio.open_nursery() as nursery:
        port = await nursery.start(sim.serve)
        conn = Connection(_plan("btcusdt@aggTrade"), f"ws://127.0.0.1:{port}",
                          connect_of(transport), handle, stall_timeout=10.0,
                          backoff=Backoff(0.05, 0.1, random.Random(1)))
        nursery.start_soon(conn.run)
        with trio.fail_after(10):
            while len(seen.get("btcusdt@aggTrade", ())) < 5:
                await trio.sleep(0.02)
            conn.retarget(add=_plan("ethusdt@aggTrade").streams)
            await conn.tell()
            while len(seen.get("ethusdt@aggTrade", ())) < 5:
                await trio.sleep(0.02)
            conn.retarget(remove=frozenset({"btcusdt@aggTrade"}))
            await conn.tell()
            await trio.sleep(0.3)  # frames already on their way
            before = len(seen["btcusdt@aggTrade"])
            after_eth = len(seen["ethusdt@aggTrade"])
            await trio.sleep(0.5)
        nursery.cancel_scope.cancel()
    assert conn.stats.connects == 1 and conn.stats.failures == 0
    assert len(seen["btcusdt@aggTrade"]) == before  # unsubscribed: nothing more
    assert len(seen["ethusdt@aggTrade"]) > after_eth  # still flowing
    for ids in seen.values():
        assert ids == list(range(ids[0], ids[0] + len(ids)))  # no hole, no repeat
    assert [s.name for s in conn.plan.streams] == ["ethusdt@aggTrade"]
    assert "ethusdt@aggTrade" in conn.url and "btcusdt" not in conn.url  # what a reconnect opens


async def handover_ids(transport: str, seconds: float, *, lifetime: float, lead: float,
                       subscribe: str = "") -> tuple[HandoverConnector, list[int]]:
    """The simulator's aggTrade ids a handover connection delivers over ``seconds`` (of
    ``btcusdt``, or of the stream ``subscribe`` added live on the session)."""
    sim = Simulator(SimConfig(symbols=("BTCUSDT", "ETHUSDT") if subscribe else ("BTCUSDT",),
                              rate=400.0))
    connector_ = HandoverConnector(connector(transport, 1 << 20), lifetime=lifetime, lead=lead,
                                   overlap=0.3, url_after=url_after)
    want = subscribe or "btcusdt@aggTrade"
    ids: list[int] = []
    async with trio.open_nursery() as nursery:
        port = await nursery.start(sim.serve)
        await nursery.start(connector_.run)
        url = f"ws://127.0.0.1:{port}/market/stream?streams=btcusdt@aggTrade"
        with trio.move_on_after(seconds):
            async with connector_.connect(url) as ws:
                if subscribe:
                    await ws.send(json.dumps({"method": "SUBSCRIBE", "params": [subscribe],
                                              "id": 1}))
                while True:
                    doc = json.loads(await ws.get_message())
                    if doc.get("stream") == want:
                        ids.append(doc["data"]["a"])
        nursery.cancel_scope.cancel()
    return connector_, ids


async def test_the_handover_resends_live_subscriptions_to_the_replacement(transport: str) -> None:
    connector_, ids = await handover_ids(transport, 3.5, lifetime=1.2, lead=0.5,
                                         subscribe="ethusdt@aggTrade")
    st = connector_.stats
    assert st.handovers >= 2 and st.failures == 0
    # the subscription outlived every replacement: no hole, no repeat in the added stream
    assert len(ids) > 20 and ids == list(range(ids[0], ids[0] + len(ids)))


# -- the 24 h handover ---------------------------------------------------------------------------


async def test_the_handover_replaces_connections_without_a_gap_or_a_duplicate(
    transport: str,
) -> None:
    connector_, ids = await handover_ids(transport, 2.6, lifetime=0.8, lead=0.4)
    st = connector_.stats
    assert st.handovers >= 3 and st.failures == 0 and st.old_closed_first == 0
    assert ids == list(range(ids[0], ids[0] + len(ids))) and len(ids) > 100


async def test_the_handover_switches_away_from_a_quiet_old_connection(transport: str) -> None:
    """The old connection gets nothing once its replacement opens: its pending read is ended by
    closing it at the overlap deadline, and no frame is lost or repeated."""
    server = WsServer()
    connector_ = HandoverConnector(connect_of(transport), lifetime=0.6, lead=0.3, overlap=0.15)
    got: list[int] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        await nursery.start(connector_.run)
        with trio.move_on_after(2.0):
            async with connector_.connect(server.url("/newest")) as ws:
                while True:
                    got.append(int(text(await ws.get_message())))
        nursery.cancel_scope.cancel()
    st = connector_.stats
    assert st.handovers >= 3 and st.timed_out == st.handovers and st.old_closed_first == 0
    assert got == list(range(got[0], got[0] + len(got)))


async def test_failed_handshakes_are_retried_as_disconnects_not_bugs(transport: str) -> None:
    server = WsServer()
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        raw_port = await nursery.start(raw_server, answer(b"SSH-2.0-OpenSSH_9.6\r\n\r\n"))
        with refused_port() as dead:
            for base in (server.url("/reject/503"), f"ws://127.0.0.1:{raw_port}/x",
                         f"ws://127.0.0.1:{dead}/x"):
                conn, _ = await run_connection(transport, base, stall=5.0,
                                               until=lambda c, got: c.stats.failures >= 3)
                assert conn.stats.connects == 0
                assert conn.stats.last_error and not conn.stats.last_error.startswith("unexpected")
        nursery.cancel_scope.cancel()
