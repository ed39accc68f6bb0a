"""The simulator as a websocket server speaking Binance USD-M's wire format, and its command.

Owns the trio side: binding the port, one market task that steps the model on a schedule (trio
time for pacing, an injectable ``clock_ms`` for timestamps) whether or not anyone is connected,
one handler per connection (route check, control messages, a writer draining the bounded send
queue), and ``sim_main`` (the body of ``python -m trio_harvest sim``). It never generates market
data itself (``market.py``), never formats payloads (``wire.py``) and never blocks the market
on a slow connection (``fanout.py`` drops it instead).

Misbehaving on purpose: ``SimConfig.faults`` (``faultplan.py``) builds the injector
that sits between the model and the connections (``faultinject.py``, the ``faults.py`` seam) and
the task that disconnects, stalls and ages connections (``disrupt.py``); a skew moves the clock.
The port also answers REST (``front.py`` + ``rest.py``) from the book snapshot and the trade tape,
with ids consistent with the streams. On the futures venues a contract model (``derivs.py``)
adds mark prices, funding, liquidations and the open interest REST answers.

``SimConfig.venue`` picks the venue whose wire it speaks (``venue.py``: USD-M by default,
Spot, COIN-M): paths, payload fields, REST prefix and weights, the server's pings (Spot
every 20 s, COIN-M every 3 min; a connection that does not answer in time is closed) and the
client message rate (Spot 5/s, COIN-M 10/s; over it the connection is closed with 1008). The
Bybit categories (``bybit-linear``, ``bybit-spot``) bring their own fan-out, REST, path and
control handler (``bybit_venue.py``).
"""

from __future__ import annotations

import itertools
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketRequest, WebSocketServer

from . import okx_server
from .bybit_rest import BybitRestApi
from .bybit_venue import BybitParts
from .control import MessageRate, handle_control
from .derivs import Derivatives
from .disrupt import Disruptor
from .fanout import Hub, Subscriber
from .faultinject import FaultInjector
from .faultplan import FaultPlan
from .faults import Faults
from .front import Front
from .listing import ListingChanges
from .market import Market
from .okx_rest import OkxRestApi
from .okx_wire import OkxSymbolWire
from .rest import RestApi
from .routes import parse_target
from .sender import FrameSender
from .stats import SimStats
from .tape import DEFAULT_CAPACITY, TradeTape
from .venue import BYBIT, OKX, USDM, profile

__all__ = ["SimConfig", "Simulator", "sim_main"]

QUEUE_SIZE = 200_000  # frames per connection before it counts as a slow consumer
STEP_SECONDS = 0.01  # the market advances every 10 ms
MAX_STEP_MS = 1000  # a longer clock jump is skipped rather than replayed in one burst
MAX_BATCH = 50_000  # frames per write at most (about 10 MB): drain what the market queued
CONTROL_MAX_BYTES = 64 * 1024


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class SimConfig:
    symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT")
    rate: float = 300.0  # total messages/s over all symbols and streams
    seed: int = 1
    host: str = "127.0.0.1"
    port: int = 0  # 0 = pick a free port
    faults: FaultPlan | None = None  # misbehave on purpose (faultplan.py); None: exact
    venue: str = USDM  # the venue whose wire the simulator speaks (venue.py)
    ping_seconds: float | None = None  # server ping interval; None: the venue's (USD-M: none)
    # OKX: close a socket with no subscription, or pushed nothing, this long (None: the
    # venue's, 30 s; 0: never)
    idle_seconds: float | None = None

    def __post_init__(self) -> None:
        profile(self.venue)  # ValueError naming the known venues
        if not self.symbols:
            raise ValueError("SimConfig.symbols: at least one symbol is needed")
        if not self.rate > 0:
            raise ValueError(f"SimConfig.rate: must be positive, got {self.rate}")


class Simulator:
    """An offline stand-in for Binance USD-M market streams (see the module docstring)."""

    def __init__(
        self,
        config: SimConfig,
        *,
        clock_ms: Callable[[], int] | None = None,
        faults: Faults | None = None,
        queue_size: int = QUEUE_SIZE,
        tape_capacity: int = DEFAULT_CAPACITY,
    ) -> None:
        self.config = config
        clock = clock_ms if clock_ms is not None else wall_clock_ms
        plan = config.faults
        self.injector: FaultInjector | None = None
        if plan is not None and plan.active and faults is None:
            faults = self.injector = FaultInjector(plan, now=trio.current_time, seed=config.seed)
        if plan is not None and plan.skew:  # the exchange's clock is off: streams and REST alike
            skew, base = plan.skew, clock
            clock = lambda: base() + skew  # noqa: E731
        self._clock_ms = clock
        self._faults = faults
        self._queue_size = queue_size
        self.venue = venue = profile(config.venue)
        self.market = Market(config.symbols, rate=config.rate, seed=config.seed,
                             tape_capacity=tape_capacity, spec=venue.spec)
        self.stats = SimStats()
        # the venue's limit on new connections (per IP; here, per simulator)
        self._connects = (MessageRate(*venue.connect_limit) if venue.connect_limit is not None
                          else None)
        specs = [m.spec for m in self.market.symbols.values()]
        # the futures contract around each market: mark price, funding, OI, liquidations
        self.derivs = Derivatives(config.seed) if venue.futures else None
        self.bybit = BybitParts(venue, plan, config.seed) if venue.family == BYBIT else None
        self._hub = (self.bybit.make_hub(specs, self.stats, faults, self.derivs)
                     if self.bybit is not None else Hub(specs, self.stats, faults, venue))
        self._ids = itertools.count(1)
        self.rest: RestApi | OkxRestApi | BybitRestApi
        if venue.family == OKX:
            self.rest = OkxRestApi(self.market, self._clock_ms, self._hub.wires,  # type: ignore[arg-type]
                                   venue.inst_type, plan.weight if plan is not None else None)
        elif self.bybit is not None:
            self.rest = self.bybit.make_rest(self.market, self._clock_ms)
        else:
            self.rest = RestApi(self.market, self._clock_ms, venue=venue,
                                weight_limit=plan.weight if plan is not None else None,
                                derivs=self.derivs)
        ping = venue.ping_seconds if config.ping_seconds is None else config.ping_seconds
        self._ping = (ping, venue.pong_timeout_seconds) if ping else None
        idle = venue.idle_cut_seconds if config.idle_seconds is None else config.idle_seconds
        self.idle_cut = idle or None
        self.disruptor: Disruptor | None = None
        if plan is not None and plan.connection_faults and self.injector is not None:
            self.disruptor = Disruptor(plan, lambda: self._hub.connections, self.injector,
                                       seed=config.seed)
        self._port: int | None = None
        self._last_ms: int | None = None
        for symbol in self.market.symbols:
            self._seed(symbol)

    def _seed(self, symbol: str) -> None:
        """OKX: the wire's book starts as the model's (a subscriber's snapshot comes from it)."""
        wire = self._hub.wires.get(symbol)
        if isinstance(wire, OkxSymbolWire):
            wire.seed(self.market[symbol].snapshot(10**9))

    # -- public -----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the simulator is not listening yet")
        return self._port

    @property
    def url(self) -> str:
        """``ws://host:port`` (append ``/market/stream?streams=...``, or on Spot and COIN-M
        ``/stream?streams=...``, etc.)."""
        host = self.config.host
        return f"ws://{f'[{host}]' if ':' in host else host}:{self.port}"

    @property
    def rest_url(self) -> str:
        """``http://host:port``: the REST API is served on the websocket port (``/fapi/...``,
        Spot ``/api/...``, COIN-M ``/dapi/...``)."""
        return "http" + self.url[2:]

    @property
    def connections(self) -> dict[int, Subscriber]:
        """Open connections by id (the seam for forced disconnects and stalls)."""
        return self._hub.connections

    def tape(self, symbol: str) -> TradeTape:
        """Every aggTrade produced for ``symbol`` (bounded), for conservation checks."""
        return self.market[symbol].tape

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Bind, start the market, call ``task_status.started(port)``, serve until cancelled.
        A port in use raises ``OSError`` before ``started``."""
        listeners = await trio.open_tcp_listeners(self.config.port, host=self.config.host)
        port = listeners[0].socket.getsockname()[1]
        # a host name resolving to several addresses with port 0 gets several ports: keep one
        keep = [ls for ls in listeners if ls.socket.getsockname()[1] == port]
        for extra in listeners:
            if extra not in keep:
                await extra.aclose()
        server = WebSocketServer(
            self._handle,
            keep,
            message_queue_size=16,
            max_message_size=CONTROL_MAX_BYTES,
            connect_timeout=10.0,
            disconnect_timeout=2.0,
        )
        front = Front(self._handle, self.rest, server)  # REST and websocket on one port
        async with trio.open_nursery() as nursery:
            self.step()  # the market's clock starts now
            nursery.start_soon(self._run_market)
            if self.disruptor is not None:
                nursery.start_soon(self.disruptor.run)
            if self.config.faults is not None and self.config.faults.listing is not None:
                nursery.start_soon(self._run_listing, self.config.faults.listing)
            await nursery.start(trio.serve_listeners, front.handle, keep)
            self._port = port
            task_status.started(port)

    # -- the market task --------------------------------------------------------------------

    async def _run_market(self) -> None:
        deadline = trio.current_time()
        while True:
            deadline += STEP_SECONDS
            now = trio.current_time()
            if deadline < now - 1.0:  # far behind (overloaded or suspended): don't catch up
                deadline = now
            await trio.sleep_until(deadline)
            self.step()

    def step(self) -> None:
        """Advance the market to ``clock_ms()`` and queue its events to subscribers. A clock
        jump of more than MAX_STEP_MS (a suspended laptop) is skipped, not replayed."""
        now = self._clock_ms()
        derivs = self.derivs
        if self._last_ms is not None and now - self._last_ms > MAX_STEP_MS:
            self.market.skip_to(now - MAX_STEP_MS)
            if derivs is not None:
                derivs.skip_to(now - MAX_STEP_MS)
        self._last_ms = now
        events = self.market.step(now)
        if derivs is not None:
            events += derivs.step(now, (m.spec for m in self.market.symbols.values()), events)
        self.stats.events += len(events)
        if self.venue.family == OKX:
            self._hub.observe(events)
        if self._faults is not None:
            events = self._faults.on_events(events)
        self._hub.publish(events)

    async def _run_listing(self, every: float) -> None:
        """``listing=S``: every S s one new symbol is listed and one trading symbol delisted."""
        changes = ListingChanges(self.config.seed, self.venue.new_listing)
        while True:
            await trio.sleep(every)
            self.change_listing(*changes.next(tuple(self.market.symbols),
                                              {*self.market.symbols, *self.market.closed}))

    def change_listing(self, listed: str | None, delisted: str | None) -> None:
        """List ``listed`` (streams and REST from now on), delist ``delisted`` (its streams stop;
        exchangeInfo says SETTLING; REST keeps its trade tape)."""
        if delisted is not None and delisted in self.market.symbols:
            self.market.delist(delisted, self._clock_ms())
            self.stats.delisted.append(delisted)
        if listed is not None and listed not in self.market:
            model = self.market.list_symbol(listed, self._clock_ms())
            self._hub.add_wire(model.spec)
            self._seed(listed)
            self.stats.listed.append(listed)

    # -- one connection ---------------------------------------------------------------------

    async def _handle(self, request: WebSocketRequest) -> None:
        connects = self._connects
        if connects is not None and not connects.allow(trio.current_time()):
            self.stats.connect_refused += 1  # as the venue does: too many new connections
            await request.reject(429, body=b"Too Many Requests")
            return
        if self.venue.family == OKX:  # its own path, subscribe messages and pings
            await okx_server.handle(self, request)
            return
        route = (self.bybit.route(request.path) if self.bybit is not None
                 else parse_target(request.path, self.venue.routed))
        if route is None:
            self.stats.rejected += 1
            await request.reject(404, body=b"Not Found")
            return
        ws = await request.accept()
        sub = Subscriber(next(self._ids), route.area, route.combined, self._queue_size)
        self._hub.attach(sub, route.streams)
        self.stats.connections_total += 1
        self.stats.connections_open += 1
        try:
            with sub.cancel_scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._read_control, ws, sub, nursery.cancel_scope)
                    if self._ping is not None:
                        nursery.start_soon(self._keepalive, ws, sub, *self._ping)
                    await self._write(ws, sub)
                    nursery.cancel_scope.cancel()
        finally:
            self._hub.detach(sub)
            self.stats.connections_open -= 1
        if sub.overflowed:
            # Drop the TCP connection without a closing handshake, as Binance does to a slow
            # consumer: closing under a cancelled scope makes trio-websocket close the stream.
            with trio.CancelScope() as abort:
                abort.cancel()
                await ws.aclose(1008, "slow consumer")

    async def _write(self, ws: WebSocketConnection, sub: Subscriber) -> None:
        sender = FrameSender(ws)
        try:
            while True:
                await sender.send(await sub.take(MAX_BATCH))
        except (ConnectionClosed, trio.EndOfChannel, trio.ClosedResourceError):
            return

    async def _keepalive(self, ws: WebSocketConnection, sub: Subscriber, every: float,
                         pong_within: float) -> None:
        """Ping every ``every`` s, as the venue's server does; no pong within ``pong_within`` s:
        the connection is closed (a client that answers pings never sees this)."""
        while True:
            await trio.sleep(every)
            with trio.move_on_after(pong_within) as waited:
                try:
                    await ws.ping()
                except ConnectionClosed:
                    return
            if waited.cancelled_caught:
                self.stats.ping_timeouts += 1
                sub.cancel_scope.cancel()
                return
            self.stats.pings += 1

    async def _read_control(
        self, ws: WebSocketConnection, sub: Subscriber, scope: trio.CancelScope
    ) -> None:
        limit = self.venue.messages_per_second
        rate = MessageRate(limit) if limit is not None else None
        try:
            while True:
                message = await ws.get_message()
                if rate is not None and not rate.allow(trio.current_time()):
                    self.stats.rate_closes += 1  # as the venue does: close, no reply
                    await ws.aclose(1008, "Too many requests")
                    scope.cancel()
                    return
                result = (self.bybit.control(message, sub) if self.bybit is not None
                          else handle_control(message, list(sub.streams)))
                self._hub.subscribe(sub, result.subscribe)
                self._hub.unsubscribe(sub, result.unsubscribe)
                self._hub.reply(sub, result.reply)
        except ConnectionClosed:
            scope.cancel()


# -- `python -m trio_harvest sim` --------------------------------------------------------------


def sim_main(config: SimConfig, duration: float | None) -> int:
    """Serve until Ctrl-C, SIGTERM or ``duration`` seconds; 0 on a clean stop, 2 when the
    address cannot be bound (one line on stderr, no traceback)."""
    try:
        return trio.run(_sim_main, config, duration)
    except KeyboardInterrupt:  # Ctrl-C outside the main thread's signal receiver
        return 0


async def _sim_main(config: SimConfig, duration: float | None) -> int:
    sim = Simulator(config)
    started = trio.current_time()
    async with trio.open_nursery() as nursery:
        try:
            await nursery.start(sim.serve)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            print(f"trio-harvest sim: cannot listen on {config.host}:{config.port}: {reason}",
                  file=sys.stderr, flush=True)
            return 2
        n = len(config.symbols)
        example = sim.venue.example_path(f"{config.symbols[0].lower()}@aggTrade")
        print(
            f"simulator listening on {sim.url} ({n} symbol{'s' * (n != 1)}, "
            f"{config.rate:g} msg/s, seed {config.seed}); venue {config.venue}, e.g. "
            f"{sim.url}{example}",
            flush=True,
        )
        plan = config.faults.describe() if config.faults is not None else ""
        paths = ("(public/instruments|market/history-trades|market/books|market/tickers)"
                 if sim.venue.family == OKX else
                 "(recent-trade|instruments-info|orderbook|tickers)" if sim.bybit is not None
                 else "(depth|aggTrades|exchangeInfo)")
        print(f"REST on {sim.rest_url}{sim.venue.rest_prefix}/{paths}; "
              f"faults: {plan or 'none'}", flush=True)
        if threading.current_thread() is threading.main_thread():
            nursery.start_soon(_stop_on_signal, nursery.cancel_scope)
        if duration is not None:
            nursery.cancel_scope.deadline = trio.current_time() + duration
    elapsed = trio.current_time() - started
    faults = sim.injector.stats.render() if sim.injector is not None else "none"
    print(f"faults injected: {faults}; {sim.rest.stats.render()}", flush=True)
    print(f"simulator stopped after {elapsed:.1f} s: {sim.stats.render()}", flush=True)
    return 0


async def _stop_on_signal(scope: trio.CancelScope) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            scope.cancel()
            return
