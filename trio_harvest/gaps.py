"""The ``gaps`` kind: what a row means, how it is built, and how its detail is read back.

Owns the reasons (``disconnect``, ``stall``, ``agg-id break``, ``book sequence break``, ``write
lost``: rows that neither their write nor the dead letter could take) and the
detail text of agg-id rows, which carries the id range and whether REST backfill repaired it:

- ``agg_id 101..105 (5 ids): filled`` — the ids were missing on the stream and backfill wrote
  every one of them into ``prices``: the data is complete, the row only records that it happened.
- ``agg_id 101..103 (3 ids): unfilled (<why>)`` — these ids are *not* in ``prices``. One row per
  maximal range still missing; ``<why>`` says why (e.g. not on the exchange's tape any more,
  REST failing, stopped before backfill, backfill off).

A disconnect or stall row covers a time interval of one stream (``start_ms`` = its last frame
before, ``end_ms`` = its first frame after) and says nothing about ids. A ``poll failed (<cause>)``
row covers an outage of a REST poll (open interest) from its last good answer to its next one.
Pure.
"""

from __future__ import annotations

import re

from .kinds import Row

DISCONNECT = "disconnect"
STALL = "stall"
AGG_ID_BREAK = "agg-id break"
BOOK_SEQUENCE_BREAK = "book sequence break"  # the wording diffbook.py uses too
WRITE_LOST = "write lost"
POLL_FAILED = "poll failed"  # a REST poll's outage; the reason adds its cause in parentheses
RESTART = "restart"  # from the last journaled data before a crash to the first after it
REASONS = (DISCONNECT, STALL, AGG_ID_BREAK, BOOK_SEQUENCE_BREAK, WRITE_LOST, POLL_FAILED)

FILLED = "filled"
UNFILLED = "unfilled"

_AGG_RE = re.compile(r"^agg_id (\d+)\.\.(\d+) \(\d+ ids?\): (filled|unfilled)")


def gap_row(symbol: str, stream: str, start_ms: int, end_ms: int, reason: str, detail: str) -> Row:
    """A row of ``kinds.GAPS_SCHEMA`` (``ts_ms`` = ``start_ms``, the partitioning key)."""
    return (start_ms, symbol, stream, start_ms, max(end_ms, start_ms), reason, detail)


def agg_detail(first_id: int, last_id: int, status: str, why: str = "") -> str:
    n = last_id - first_id + 1
    text = f"agg_id {first_id}..{last_id} ({n} id{'s' * (n != 1)}): {status}"
    return f"{text} ({why})" if why else text


def parse_agg_detail(detail: str) -> tuple[int, int, bool] | None:
    """``(first_id, last_id, filled)`` of an agg-id row's detail; None for other rows."""
    m = _AGG_RE.match(detail)
    if m is None:
        return None
    return int(m.group(1)), int(m.group(2)), m.group(3) == FILLED


def disconnect_reason(error: str) -> str:
    """``stall`` when the session ended because the connection went silent."""
    return STALL if error.startswith("stalled") else DISCONNECT
