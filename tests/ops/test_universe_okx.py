"""OKX's liquidations of a symbol the universe adds while running: ``liquidation-orders`` is one
subscription per instType, on the connection that carries every instId's liquidation stream,
so a new symbol's liquidation stream joins that connection (room or not): a drop of that
connection, and of no other, interrupts it (gap rows follow ``plan.streams``), no other
connection subscribes the channel a second time (now or on a reconnect), and no request goes
out that asks for nothing."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from trio_harvest.channels import stream_plan
from trio_harvest.config import Config
from trio_harvest.ingest.backoff import Backoff
from trio_harvest.ingest.connection import Connection
from trio_harvest.ops.universe import Universe
from trio_harvest.venues.base import Listed
from trio_harvest.venues.okx.adapter import OkxSwap

LIQ = {"channel": "liquidation-orders", "instType": "SWAP"}
FIRST = ("BTC-USDT-SWAP", "ETH-USDT-SWAP", "SOL-USDT-SWAP")


class Socket:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, message: str) -> None:
        self.sent.append(message)


def harvest(venue: OkxSwap, per_connection: int) -> Any:
    """A host of open connections over FIRST, as the app plans them."""
    cfg = Config(venue="okx-swap", symbols=FIRST, universe=("ALL",),
                 streams_per_connection=per_connection)
    specs = stream_plan(venue, FIRST, cfg.harvested, depth_levels=5, depth_speed="100ms",
                        book="partial", book_ticker=True)
    conns = []
    for plan in venue.plan_connections(specs, per_connection):
        conn = Connection(plan, "wss://x", None, None, stall_timeout=60,  # type: ignore[arg-type]
                          backoff=Backoff(1, 2), venue=venue)
        venue.open_messages(conn.url)  # what the open socket subscribed
        conn._ws, conn._told = Socket(), {s.name for s in plan.streams}  # type: ignore[assignment]
        conns.append(conn)
    added: list[Connection] = []

    def open_connection(plan: Any) -> Connection:
        conn = Connection(plan, "wss://x", None, None, stall_timeout=60,  # type: ignore[arg-type]
                          backoff=Backoff(1, 2), venue=venue)
        conns.append(conn)
        added.append(conn)
        return conn

    router = SimpleNamespace(symbols=set(FIRST), add_symbol=lambda s, names, e: None,
                             remove_symbol=lambda s: [sp.name for c in conns
                                                      for sp in c.plan.streams if sp.symbol == s],
                             unwindow=lambda s: None, stats=SimpleNamespace(last_seen={}))
    repair = SimpleNamespace(add_symbol=lambda s, fresh=False: None,
                             remove_symbol=lambda names: None)
    return SimpleNamespace(config=cfg, router=router, repair=repair, diff_books=None,
                           engines={}, make_engine=lambda s: None, connections=conns,
                           open_connection=open_connection, lanes=[], added=added,
                           exchange_ms=lambda: 0, wall_ms=lambda: 0)


def liq_of(conn: Connection) -> set[str]:
    return {s.name for s in conn.plan.streams if s.kind == "liquidation-orders"}


def args(messages: list[str]) -> list[dict[str, str]]:
    return [a for m in messages for a in json.loads(m)["args"]]


async def test_a_new_symbols_liquidations_join_the_connection_that_carries_the_channel() -> None:
    venue = OkxSwap()
    host = harvest(venue, per_connection=12)  # 3 symbols x 8 streams: 2 connections, room in #2
    carrier, other = host.connections
    assert liq_of(carrier) == {f"liquidation-orders:{s}" for s in FIRST} and not liq_of(other)
    assert carrier.room(12) == 0 and other.room(12) > 0
    await Universe(host, "http://venue", venue=venue).add(["XRP-USDT-SWAP"])

    # the carrier is full, yet the new liquidation stream is its: a drop of the carrier
    # interrupts it, a drop of any other connection does not
    assert "liquidation-orders:XRP-USDT-SWAP" in liq_of(carrier)
    for conn in host.connections[1:]:
        assert not liq_of(conn), conn.plan.label
    names = {s.name for c in host.connections for s in c.plan.streams}
    assert {"trades:XRP-USDT-SWAP", "mark-price:XRP-USDT-SWAP"} <= names
    # nothing subscribes the instType channel again, and no request asks for nothing
    sent = [m for c in host.connections if isinstance(c._ws, Socket) for m in c._ws.sent]
    assert LIQ not in args(sent) and all(json.loads(m)["args"] for m in sent)
    assert isinstance(carrier._ws, Socket) and carrier._ws.sent == []
    # a reconnect of any connection but the carrier subscribes no liquidations
    for conn in host.connections[1:]:
        assert LIQ not in args(venue.open_messages(conn.url))
    assert args(venue.open_messages(carrier.url)).count(LIQ) == 1

    # unsubscribing it asks nothing of the carrier (the channel stays, for the others)
    await Universe(host, "http://venue", venue=venue).remove(
        ["XRP-USDT-SWAP"], {"XRP-USDT-SWAP": Listed("live")})
    assert "liquidation-orders:XRP-USDT-SWAP" not in liq_of(carrier)
    assert isinstance(carrier._ws, Socket) and carrier._ws.sent == []


async def test_without_a_carrier_the_first_connection_becomes_it() -> None:
    venue = OkxSwap()
    host = harvest(venue, per_connection=12)
    carrier = host.connections[0]
    await Universe(host, "http://venue", venue=venue).remove(
        list(FIRST[:1]), {FIRST[0]: Listed("live")})
    assert liq_of(carrier)  # still the others'
    assert venue.pinned([], [c.plan for c in host.connections]) == {}
    specs = stream_plan(venue, ("XRP-USDT-SWAP",), host.config.harvested, depth_levels=5,
                        depth_speed="100ms", book="partial", book_ticker=True)
    plans = [c.plan for c in host.connections]
    assert venue.pinned(specs, plans) == {0: [s for s in specs
                                              if s.kind == "liquidation-orders"]}
    none = [p.with_streams(remove=frozenset(liq_of(c))) for p, c in zip(plans, host.connections,
                                                                       strict=True)]
    assert list(venue.pinned(specs, none)) == [0] and venue.pinned(specs, []) == {}
