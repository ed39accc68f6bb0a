"""The connection plan of a Binance venue without routes (Spot, COIN-M): every stream on one
``/stream?streams=…`` URL, packed into connections of at most N streams.

Owns a ``StreamSpec`` whose route is always ``stream`` and a ``ConnectionPlan`` whose URL has no
route segment; both are USD-M's types otherwise (``with_streams``, ``label``). Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from ..binance_usdm import streams as st

ROUTE = "stream"  # the one route: ``/stream?streams=…`` carries every stream


@dataclass(frozen=True, slots=True)
class StreamSpec(st.StreamSpec):
    """A stream of a venue without routes."""

    @property
    def route(self) -> str:
        return ROUTE


@dataclass(frozen=True, slots=True)
class ConnectionPlan(st.ConnectionPlan):
    def url(self, base: str) -> str:
        joined = "/".join(quote(s.name, safe="@") for s in self.streams)
        return f"{base.rstrip('/')}/stream?streams={joined}"


def unrouted(spec: st.StreamSpec) -> StreamSpec:
    return StreamSpec(spec.symbol, spec.kind, spec.name)


def plan_connections(streams: list[st.StreamSpec], per_connection: int) -> list[st.ConnectionPlan]:
    """The streams in order, ``per_connection`` to a connection."""
    n = max(1, per_connection)
    specs = [unrouted(s) for s in streams]
    return [ConnectionPlan(ROUTE, tuple(specs[i : i + n])) for i in range(0, len(specs), n)]
