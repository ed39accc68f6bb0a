"""The ops endpoint of a run of several venues: ``/metrics``, ``/healthz`` and ``/status`` over
every venue's own operations, served by the first venue's endpoint.

Owns the merge only. ``/metrics``: each venue's families, every series labelled by its venue (a
family that has no ``venue`` label of its own gets one), so a family appears once with the
series of all venues; the process-wide families (memory, the shared dead letter and its
recovery) once, from the first venue, which owns them. The series stay aggregated per venue
(kind, connection), so the lines grow with the venues, never with their symbols. ``/healthz``:
healthy only if every venue is, each reason prefixed with its venue. ``/status``: the totals and
every venue's problems, and each venue's own document (its connections, roll-ups, top-N lanes
and streams) under ``venues`` (the live page draws one section per venue).
Reads the units' operations; never changes them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from .health import HealthReport

P = "trio_harvest_"
# one process, one dead letter: said once, by the first venue (which recovers it)
PROCESS_WIDE = frozenset(P + n for n in (
    "resident_memory_bytes", "deadletter_files", "deadletter_rows", "recovered_files",
    "recovered_rows", "recovery_failures"))
PROCESS_STATUS = ("deadletter", "recovery", "rss_bytes")


class VenueOps(Protocol):
    """What the merge reads of one venue's operations (``Operations`` has it)."""

    venue: str

    @property
    def registry(self) -> CollectorRegistry: ...

    def health_report(self) -> HealthReport: ...

    def status(self) -> dict[str, Any]: ...


class AllVenues:
    """The documents of the endpoint, over ``units`` (the first owns the process-wide parts)."""

    def __init__(self, units: Sequence[VenueOps]) -> None:
        self.units = list(units)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Merged(self.units))

    def exposition(self, accept: str = "") -> tuple[bytes, str]:
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type

    def health(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, the ``/healthz`` document)."""
        reports = {u.venue: u.health_report() for u in self.units}
        healthy = all(r.healthy for r in reports.values())
        docs = {v: r.as_dict() for v, r in reports.items()}
        return healthy, {
            "status": "healthy" if healthy else "degraded",
            "reasons": _prefixed(docs, "reasons"),
            "problems": [{"venue": v, **p} for v, d in docs.items() for p in _list(d, "problems")],
            "notes": _prefixed(docs, "notes"),
            "venues": docs,
        }

    def status(self) -> dict[str, Any]:
        """The ``/status`` document: totals, every venue's connections, each venue's own."""
        docs = {u.venue: u.status() for u in self.units}
        first = docs[self.units[0].venue]
        healthy = all(d.get("status") == "healthy" for d in docs.values())
        out: dict[str, Any] = {
            "status": "healthy" if healthy else "degraded",
            "reasons": _prefixed(docs, "reasons"),
            "problems": [{"venue": v, **p} for v, d in docs.items() for p in _list(d, "problems")],
            "notes": _prefixed(docs, "notes"),
            "uptime_s": first.get("uptime_s"),
            "stopping": any(d.get("stopping") for d in docs.values()),
        }
        for key in ("frames", "streams_total", "lanes_total"):
            out[key] = sum(int(d.get(key) or 0) for d in docs.values())
        conns = [c for d in docs.values() for c in _list(d, "connections")]  # each venue lists its
        out["connections_total"] = len(conns)  # own (their URLs name every stream: not twice)
        out["connections_up"] = sum(1 for c in conns if c.get("connected"))
        out.update({k: first.get(k) for k in PROCESS_STATUS})
        out["venues"] = docs
        return out


class _Merged(Collector):
    def __init__(self, units: Sequence[VenueOps]) -> None:
        self.units = units

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        for index, unit in enumerate(self.units):
            for family in unit.registry.collect():
                if family.name in PROCESS_WIDE and index:
                    continue
                into = merged.get(family.name)
                if into is None:
                    into = merged[family.name] = Metric(family.name, family.documentation,
                                                        family.type, family.unit)
                into.samples.extend(
                    s if "venue" in s.labels or family.name in PROCESS_WIDE
                    else s._replace(labels={"venue": unit.venue, **s.labels})
                    for s in family.samples)
        yield from merged.values()


def _list(doc: Mapping[str, Any], key: str) -> list[Any]:
    value = doc.get(key)
    return list(value) if isinstance(value, list) else []


def _prefixed(docs: Mapping[str, Mapping[str, Any]], key: str) -> list[str]:
    return [f"[{v}] {line}" for v, d in docs.items() for line in _list(d, key)]
