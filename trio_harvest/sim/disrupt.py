"""Connection-level faults: forced disconnects (periodic or random), stalls, and the maximum
connection lifetime (Binance closes every connection after 24 h).

Owns the timing of those faults (trio time, seeded randomness) and acting on the simulator's
open connections: a disconnect cancels the connection's handler (the socket is then closed),
a stall asks the injector to send that connection nothing for a while. Never touches the market
or the frames themselves (``faultinject.py`` does).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping

import trio

from .fanout import Subscriber
from .faultinject import FaultInjector
from .faultplan import FaultPlan

log = logging.getLogger("trio_harvest.sim.faults")

LIFETIME_CHECK = 0.05  # seconds between lifetime checks


class Disruptor:
    def __init__(
        self,
        plan: FaultPlan,
        connections: Callable[[], Mapping[int, Subscriber]],
        injector: FaultInjector,
        *,
        seed: int = 1,
    ) -> None:
        self.plan = plan
        self._connections = connections
        self._injector = injector
        self._rng = random.Random(f"trio_harvest.sim.disrupt/{seed if plan.seed is None else plan.seed}")
        self._opened: dict[int, float] = {}

    async def run(self) -> None:
        plan = self.plan
        async with trio.open_nursery() as nursery:
            if plan.disconnect is not None:
                nursery.start_soon(self._every, plan.disconnect, self._disconnect_all)
            if plan.disconnect_random is not None:
                nursery.start_soon(self._random_disconnects, plan.disconnect_random)
            if plan.stall is not None:
                nursery.start_soon(self._every, plan.stall, self._stall_all)
            if plan.lifetime is not None:
                nursery.start_soon(self._enforce_lifetime, plan.lifetime)

    def kill(self, sub: Subscriber, why: str) -> None:
        if sub.closed or sub.cancel_scope.cancel_called:
            return
        self._injector.stats.add(why)
        sub.cancel_scope.cancel()

    async def _every(self, seconds: float, action: Callable[[], None]) -> None:
        deadline = trio.current_time()
        while True:
            deadline += seconds
            await trio.sleep_until(deadline)
            action()

    def _disconnect_all(self) -> None:
        for sub in list(self._connections().values()):
            self.kill(sub, "disconnects")

    def _stall_all(self) -> None:
        for conn_id in list(self._connections()):
            self._injector.stall(conn_id, self.plan.stall_for)

    async def _random_disconnects(self, mean: float) -> None:
        while True:
            await trio.sleep(self._rng.expovariate(1.0 / mean))
            subs = sorted(self._connections().items())
            if subs:
                self.kill(self._rng.choice(subs)[1], "disconnects")

    async def _enforce_lifetime(self, lifetime: float) -> None:
        while True:
            now = trio.current_time()
            conns = self._connections()
            for conn_id, sub in list(conns.items()):
                opened = self._opened.setdefault(conn_id, now)
                if now - opened >= lifetime:
                    self.kill(sub, "lifetime_closes")
            for gone in [c for c in self._opened if c not in conns]:
                del self._opened[gone]
            await trio.sleep(LIFETIME_CHECK)
