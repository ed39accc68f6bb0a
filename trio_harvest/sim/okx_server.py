"""One OKX v5 public socket of the simulator: ``/ws/v5/public``, streams subscribed after the
handshake, ``ping``/``pong``.

Owns a connection's life on the OKX wire: the path check (anything else is a 404), the reader
of client messages (``okx_control.py``: acks, error events, the 480 requests an hour), the
writer draining the connection's queue, and OKX's idle cut: a socket that had no subscription,
or was pushed nothing (no data, no ack, no ``pong``), for ``Simulator.idle_cut`` seconds (30)
is closed, so a client must subscribe at once and ``ping`` a quiet socket. The events, the
fan-out, the faults and the disruptor are the simulator's (``server.py``); this never generates
or encodes market data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketRequest

from .fanout import Subscriber
from .okx_control import handle_okx, request_budget
from .routes import OKX

if TYPE_CHECKING:
    from .server import Simulator

PATH = "/ws/v5/public"
IDLE_CLOSE_CODE = 4004  # the simulator's choice: OKX documents the cut, not its close code


async def handle(sim: Simulator, request: WebSocketRequest) -> None:
    """Serve one OKX socket until it closes."""
    if request.path.partition("?")[0].rstrip("/") != PATH:
        sim.stats.rejected += 1
        await request.reject(404, body=b"Not Found")
        return
    ws = await request.accept()
    hub = sim._hub
    sub = Subscriber(next(sim._ids), OKX, False, sim._queue_size)
    hub.attach(sub, ())
    sim.stats.connections_total += 1
    sim.stats.connections_open += 1
    try:
        with sub.cancel_scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_read, sim, ws, sub, nursery.cancel_scope)
                if sim.idle_cut:
                    nursery.start_soon(_idle_cut, sim, ws, sub, sim.idle_cut)
                await sim._write(ws, sub)
                nursery.cancel_scope.cancel()
    finally:
        hub.detach(sub)
        sim.stats.connections_open -= 1


async def _idle_cut(sim: Simulator, ws: WebSocketConnection, sub: Subscriber,
                    idle: float) -> None:
    """Close the socket once it had no subscription, or was pushed nothing, for ``idle`` s."""
    now = trio.current_time()
    taken, pushed_at, subscribed_at = sub.taken, now, now
    while True:
        await trio.sleep(min(1.0, idle / 4))
        now = trio.current_time()
        if sub.taken != taken:
            taken, pushed_at = sub.taken, now
        if sub.streams:
            subscribed_at = now
        if now - pushed_at >= idle or now - subscribed_at >= idle:
            sim.stats.idle_closes += 1
            with trio.move_on_after(2.0):  # a closing handshake, then the socket is gone
                await ws.aclose(IDLE_CLOSE_CODE, f"no subscription or no data for {idle:g} s")
            sub.cancel_scope.cancel()
            return


async def _read(sim: Simulator, ws: WebSocketConnection, sub: Subscriber,
                scope: trio.CancelScope) -> None:
    hub, market = sim._hub, sim.market
    budget = request_budget()
    conn_id = f"{sub.id:08x}"
    try:
        while True:
            message = await ws.get_message()
            answer = handle_okx(message, conn_id, budget, trio.current_time(),
                                lambda inst: inst in market.symbols)
            if answer.refused:
                sim.stats.refused_requests += 1
            sub.snapshots.update(n for n in answer.subscribe
                                 if n.startswith("books:") and n not in sub.streams)
            hub.subscribe(sub, answer.subscribe)
            hub.unsubscribe(sub, answer.unsubscribe)
            for reply in answer.replies:
                hub.reply(sub, reply)
    except ConnectionClosed:
        scope.cancel()
