"""The parts of the simulator that speak Bybit, bound together for the server.

Owns the choice, for a Bybit profile (``venue.family == "bybit"``), of the fan-out
(``bybit_hub``), the REST API (``bybit_rest``), the accepted path (``/v5/public/linear`` or
``/spot``, the category's own: another one is refused with 404) and the control handler
(``bybit_control``); on linear the hub also speaks the contract model (``derivs.py``) as
``tickers`` and ``allLiquidation``. The server asks this object at those four points and nothing else. Pure
wiring: no I/O of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from ..venues.bybit.facts import CATEGORIES
from . import bybit_control
from .bybit_hub import BybitHub
from .bybit_rest import BybitRestApi
from .control import ControlResult
from .derivs import Derivatives
from .fanout import Subscriber
from .faultplan import FaultPlan
from .faults import Faults
from .market import Market
from .routes import Route
from .specs import SymbolSpec
from .stats import SimStats
from .venue import VenueProfile

AREA = "bybit"


class BybitParts:
    def __init__(self, venue: VenueProfile, plan: FaultPlan | None, seed: int) -> None:
        self.venue = venue
        self.category = CATEGORIES[venue.name]
        self.plan = plan
        self.seed = seed if plan is None or plan.seed is None else plan.seed
        self.hub: BybitHub | None = None

    def make_hub(self, specs: Iterable[SymbolSpec], stats: SimStats, faults: Faults | None,
                 derivs: Derivatives | None = None) -> BybitHub:
        reset = self.plan.reset if self.plan is not None else 0.0
        self.hub = BybitHub(specs, stats, faults, self.venue, reset=reset, seed=self.seed,
                            derivs=derivs)
        return self.hub

    def make_rest(self, market: Market, clock_ms: Callable[[], int]) -> BybitRestApi:
        limit = self.plan.weight if self.plan is not None else None
        return BybitRestApi(market, clock_ms, self.category, limit=limit)

    def route(self, target: str) -> Route | None:
        """The category's websocket path; its topics come by subscribe requests."""
        if urlsplit(target).path.rstrip("/") != self.category.ws_path:
            return None
        return Route(AREA, False, ())

    def control(self, message: str | bytes, sub: Subscriber) -> ControlResult:
        result = bybit_control.handle(message, sub.streams, conn_id=sub.id,
                                      spot=self.category.category == "spot")
        if result.subscribe and self.hub is not None:
            self.hub.bybit.subscribe_requests += 1
        return result
