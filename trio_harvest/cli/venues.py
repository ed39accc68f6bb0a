"""The end-of-run summary of a run of several venues: each venue's own summary, one after the
other, and as one JSON object ``{"frames": total, "venues": {name: summary}}``. Reads stats;
changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..storage.backlog import Backlog
from .summary import Summary, summarize


@dataclass(slots=True)
class VenuesSummary:
    by_venue: dict[str, Summary]

    @property
    def frames(self) -> int:
        return sum(s.frames for s in self.by_venue.values())

    def as_dict(self) -> dict[str, Any]:
        return {"frames": self.frames,
                "venues": {name: s.as_dict() for name, s in self.by_venue.items()}}

    def render(self) -> str:
        return "\n\n".join(f"== venue {name} ==\n{s.render()}" for name, s in self.by_venue.items())


def summarize_venues(units: list[Any], backlog: Backlog | None,
                     config_file: str | None) -> VenuesSummary:
    """Each unit (a ``Harvester`` of one venue) summarised on its own."""
    return VenuesSummary({h.config.venue: summarize(h, backlog, config_file) for h in units})
