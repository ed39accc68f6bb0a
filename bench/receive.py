"""The receive stack's own CPU per message: the socket read, the frame cutting, the 24 h handover
wrapper, the journal append and the connection loop, with a handler that does nothing.

A server in a child process speaks just enough websocket (the opening handshake, then unmasked
text frames) to send the realistic stream mix (``--symbols`` 500: aggTrade, depth20@100ms and
bookTicker frames from the simulator's own market model, ``_common.generate_frames``) in bursts
of ``--burst`` frames (20: what a whole-market run reads per successful ``recv``), one burst
every ``burst / --rate`` seconds, so the reader goes back to ``epoll`` between bursts as it does
live. The receiver (this process) is the app's stack: ``Connection`` (its ``_receive`` loop) over
``HandoverConnector.connect`` (a ``HandoverSource``) over the websockets transport
(``ws_websockets.py``), every frame appended to a real ``Journal`` (group commits in its worker
thread, into a temp dir) before the no-op handler. ``--variants`` adds the same stack without
the handover wrapper, without the journal, and with the journal's appends but no group commit
(the appended frames then stay in memory), so the share of each is visible.

CPU is counted from the ``--warmup``-th frame to the last: ``main_us_per_msg`` is the trio
thread's (``time.thread_time``), ``us_per_msg`` the whole process's (the journal's commit
thread included). Keys (last line, JSON): ``receive.us_per_msg``, ``receive.main_us_per_msg``,
``receive.frames``, ``receive.avg_frame_bytes`` and, per variant, ``variants.<name>.*``.
Run: ``python bench/receive.py [--quick]``; ``--help`` for the knobs.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing as mp
import os
import socket
import struct
import sys
import tempfile
import time
from collections.abc import Awaitable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C
import trio
from websockets.utils import accept_key

from trio_harvest import venues
from trio_harvest.ingest.backoff import Backoff
from trio_harvest.ingest.connection import Connection
from trio_harvest.ingest.handover import HandoverConnector
from trio_harvest.ingest.transport import MessageSource
from trio_harvest.ingest.ws_websockets import websockets_connector
from trio_harvest.journal.journal import Journal

MAX_BYTES = 4 * 1024 * 1024
VARIANTS = ("full", "no_handover", "no_journal", "no_commit")


# -- the server (a child process) ----------------------------------------------------------------


def _frame(payload: bytes) -> bytes:
    """One unmasked, unfragmented text frame, as a server sends it."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 1 << 16:
        return b"\x81\x7e" + struct.pack("!H", n) + payload
    return b"\x81\x7f" + struct.pack("!Q", n) + payload


def _handshake(conn: socket.socket) -> None:
    """Read the client's upgrade request and accept it (101)."""
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = conn.recv(4096)
        if not chunk:
            raise ConnectionError("the client left during the handshake")
        head += chunk
    key = next(line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
               if line.lower().startswith(b"sec-websocket-key:"))
    accept = accept_key(key.decode()).encode()
    conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")


def serve(listener: socket.socket, bursts: Sequence[bytes], interval: float,
          sessions: int) -> None:
    """Each of ``sessions`` connections in turn: the handshake, then every burst, paced."""
    for _ in range(sessions):
        conn, _addr = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            _handshake(conn)
            next_at = time.monotonic()
            for burst in bursts:
                conn.sendall(burst)
                next_at += interval
                delay = next_at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            conn.recv(1)  # the client closes once it has counted everything
        except OSError:
            pass
        finally:
            conn.close()


def _server_main(listener: socket.socket, symbols: int, rate: float, count: int, burst: int,
                 sessions: int, ready: Any) -> None:
    # the whole-market mix (the market model gives ~5 k frames per second of market time)
    tape = C.generate_frames(C.symbols(symbols), 9000.0, count / 1000 + 10.0)
    frames = [f.encode() for f in itertools.islice(tape, count)]
    if len(frames) < count:
        raise RuntimeError(f"the market model gave {len(frames)} frames, not {count}")
    wire = [_frame(f) for f in frames]
    bursts = [b"".join(wire[i:i + burst]) for i in range(0, len(wire), burst)]
    ready.set()
    serve(listener, bursts, burst / rate, sessions)


# -- the receiver ------------------------------------------------------------------------------


def _noop(frame: str | bytes) -> Awaitable[None] | None:
    return None



async def _until(st: Any, frames: int, every: float) -> None:
    """Until the connection has received ``frames`` frames; an error if its session ended."""
    while st.frames < frames:
        await trio.sleep(every)
        if st.failures:
            raise RuntimeError(f"the session ended: {st.last_error}")


async def receive_once(url: str, variant: str, count: int, warmup: int) -> dict[str, Any]:
    """One session of the app's receive stack (``variant``) until ``count`` frames arrived."""
    venue = venues.default()
    plan = C.plans_for(C.symbols(2))[0]
    plain = websockets_connector(MAX_BYTES)
    with tempfile.TemporaryDirectory() as tmp:
        journal = Journal(Path(tmp), fsync_ms=200)
        await trio.to_thread.run_sync(journal.open)
        async with trio.open_nursery() as nursery:
            connect: Any = plain
            if variant != "no_handover":
                handover = HandoverConnector(plain, lifetime=1e9, lead=1.0, overlap=1.0)
                await nursery.start(handover.run)
                connect = handover.connect
            if variant == "no_commit":  # appends only: they pile up in memory (a bench's
                # frames), so the append's cost shows apart from the group commits'
                journal._accepting = True
                journal.buffer_bytes = journal.memory_bytes = 1 << 40
            else:
                await nursery.start(journal.run)
            conn = Connection(plan, url, _base(connect), _noop, stall_timeout=60.0,
                              backoff=Backoff(0.1, 1.0), venue=venue)
            if variant != "no_journal":
                conn.journal, conn.index = journal, 0
            nursery.start_soon(conn.run)
            st = conn.stats
            await _until(st, warmup, 0.01)
            t0, c0, w0 = time.thread_time(), time.process_time(), time.monotonic()
            n0 = st.frames
            await _until(st, count, 0.05)
            t1, c1, w1 = time.thread_time(), time.process_time(), time.monotonic()
            n = st.frames - n0
            nursery.cancel_scope.cancel()
    return {"frames": n, "us_per_msg": round((c1 - c0) * 1e6 / n, 3),
            "main_us_per_msg": round((t1 - t0) * 1e6 / n, 3),
            "msg_per_s": round(n / (w1 - w0)), "reconnects": st.reconnects}


def _base(connect: Any) -> Any:
    """``connect`` ignoring the plan's path (the server sends one tape whatever is asked)."""

    def opened(url: str) -> AbstractAsyncContextManager[MessageSource]:
        return connect(url)  # type: ignore[no-any-return]

    return opened


def measure(symbols: int, rate: float, count: int, burst: int, warmup: int,
            variants: Sequence[str], repeat: int) -> dict[str, Any]:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    sessions = len(variants) * repeat
    ctx = mp.get_context("fork")
    ready = ctx.Event()
    server = ctx.Process(target=_server_main, daemon=True,
                         args=(listener, symbols, rate, count, burst, sessions, ready))
    server.start()
    listener.close()
    if not ready.wait(600):
        raise RuntimeError("the server did not get ready")
    frames = [f.encode() for f in C.generate_frames(C.symbols(symbols), 9000.0, 2.0)]
    results: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    try:
        for _ in range(repeat):
            for variant in variants:
                results[variant].append(
                    trio.run(receive_once, f"ws://127.0.0.1:{port}", variant, count, warmup))
    finally:
        server.join(timeout=10)
        if server.is_alive():
            server.kill()
    best = {v: min(rs, key=lambda r: r["us_per_msg"]) for v, rs in results.items()}
    return {"best": best, "runs": results,
            "avg_frame_bytes": round(sum(map(len, frames)) / len(frames), 1)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="60 000 frames, one run per variant")
    ap.add_argument("--symbols", type=int, default=500, help="symbols of the frame mix (500)")
    ap.add_argument("--rate", type=float, default=20_000.0,
                    help="frames per second sent (20 000; the reader idles between bursts)")
    ap.add_argument("--burst", type=int, default=20, help="frames per burst (20)")
    ap.add_argument("--frames", type=int, default=200_000, help="frames per run (200 000)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per variant (3; best is shown)")
    ap.add_argument("--variants", action="store_true",
                    help="also without the handover wrapper, without the journal, and "
                         "without the journal's group commits")
    args = ap.parse_args(argv)
    if args.quick:
        args.frames, args.repeat = 60_000, 1
    warmup = min(5_000, args.frames // 10)
    variants = VARIANTS if args.variants else VARIANTS[:1]
    load = os.getloadavg()
    got = measure(args.symbols, args.rate, args.frames, args.burst, warmup, variants,
                  args.repeat)
    rows = [(v, r["frames"], r["us_per_msg"], r["main_us_per_msg"], r["msg_per_s"])
            for v, r in got["best"].items()]
    print(f"receive stack, {args.symbols} symbols, bursts of {args.burst} at {args.rate:g} msg/s,"
          f" avg frame {got['avg_frame_bytes']} B (best of {args.repeat})")
    print(C.table(("variant", "frames", "us/msg (process)", "us/msg (main thread)", "msg/s"),
                  rows))
    full = got["best"]["full"]
    doc: dict[str, Any] = {
        "receive": {"us_per_msg": full["us_per_msg"], "main_us_per_msg": full["main_us_per_msg"],
                    "frames": full["frames"], "avg_frame_bytes": got["avg_frame_bytes"],
                    "burst": args.burst, "rate": args.rate, "symbols": args.symbols},
        "variants": got["best"],
        **C.conditions(load),
    }
    C.emit_json(doc)


if __name__ == "__main__":
    main()
