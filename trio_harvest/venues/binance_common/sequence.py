"""The proofs that nothing was missed: diff-depth sequencing and aggregate-trade continuity.

Owns the two Binance book rules and the trade rule as pure functions of ids:

- ``pu`` chaining (USD-M, COIN-M): a delta continues the book when its ``pu`` equals the
  previous delta's ``u``. A REST snapshot (``lastUpdateId`` = L) is bridged by the first delta
  with ``U <= L <= u`` (or ``pu == L``: the snapshot was taken on an event boundary); deltas with
  ``u < L`` are older than the snapshot.
- ``U`` chaining (Spot, which has no ``pu``): a delta continues the book when ``U == prev u + 1``.
  A snapshot is bridged by the first delta with ``U <= L + 1 <= u``; deltas with ``u <= L`` are
  older than it.
- trades: ``a == previous a + 1`` per symbol (never ``f``/``l``: fills outside the aggregation
  can skip raw ids).

Each check answers with one of a few constants and never keeps state: the caller (a local book,
a tracker) holds the previous id. No trio, no I/O.
"""

from __future__ import annotations

from ..base import BookLevels

# a delta against the previous one (``check_*``), or a trade id against the previous id
OK = "ok"  # continues: apply it
GAP = "gap"  # starts after a hole: updates or trades were missed
STALE = "stale"  # at or before what is already applied (a duplicate or a replay): ignore it

# a delta against a REST snapshot (``align_*``)
DROP = "drop"  # older than the snapshot: ignore it
BRIDGE = "bridge"  # the first delta to apply on top of the snapshot: the book is live
TOO_OLD = "too_old"  # starts after the snapshot: the snapshot is too old, fetch another


Delta = BookLevels  # what the checks read of a diff-depth event (every venue's ``DepthUpdate``)


def check_pu(prev_u: int, ev: Delta) -> str:
    """``pu`` chaining: ``OK`` when ``pu == prev_u``; ``STALE`` for ``u <= prev_u``; else ``GAP``."""
    if ev.prev_update_id == prev_u:
        return OK
    if ev.update_id <= prev_u:
        return STALE
    return GAP


def check_next(prev_u: int, ev: Delta) -> str:
    """``U`` chaining: ``OK`` when ``U == prev_u + 1``; ``STALE`` for ``u <= prev_u``; else
    ``GAP`` (including a delta that overlaps what was applied: its start is not proven)."""
    if ev.first_update_id == prev_u + 1:
        return OK
    if ev.update_id <= prev_u:
        return STALE
    return GAP


def align_pu(last_update_id: int, ev: Delta) -> str:
    """A delta against a ``pu``-chained snapshot ``L``: ``DROP`` for ``u < L``; ``BRIDGE`` for
    ``U <= L <= u`` or ``pu == L``; else ``TOO_OLD``."""
    if ev.update_id < last_update_id:
        return DROP
    if ev.first_update_id <= last_update_id or ev.prev_update_id == last_update_id:
        return BRIDGE
    return TOO_OLD


def align_next(last_update_id: int, ev: Delta) -> str:
    """A delta against a ``U``-chained snapshot ``L``: ``DROP`` for ``u <= L``; ``BRIDGE`` for
    ``U <= L + 1 <= u``; else ``TOO_OLD``."""
    if ev.update_id <= last_update_id:
        return DROP
    if ev.first_update_id <= last_update_id + 1:
        return BRIDGE
    return TOO_OLD


def check_agg_id(prev_id: int | None, agg_id: int) -> str:
    """An aggregate trade id against the previous one of its symbol (None: the first one)."""
    if prev_id is None or agg_id == prev_id + 1:
        return OK
    if agg_id <= prev_id:
        return STALE
    return GAP


def missing_ids(prev_id: int, agg_id: int) -> tuple[int, int] | None:
    """The ids a ``GAP`` skipped, inclusive (what backfill asks for), or None."""
    return (prev_id + 1, agg_id - 1) if agg_id > prev_id + 1 else None
