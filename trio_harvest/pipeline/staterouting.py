"""The router's path for a futures contract's state: a ``derivatives`` update (mark price,
funding, open interest) or a ``liquidations`` order, from a frame or polled over REST.

Owns ``StateRouting``, the part of ``Router`` that turns such a record into its row (the
venue-neutral ``venues.rows``), asks the gate (a restart replay writes only rows not yet on
disk), puts the row into its lane (waiting when full: both kinds are authoritative) and hands
it to the symbol's signal hook. About one row a second per symbol: rows are tuples, not
columns built in place. Never does I/O, never raises for a bad value (it is counted).
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from ..kinds import DERIVATIVES, LIQUIDATIONS, Row
from ..venues.base import DERIVATIVE
from ..venues.rows import derivative_row, liquidation_row
from .chunks import BadValue

if TYPE_CHECKING:
    from .lanes import Sink


class StateRouting:
    """Mixed into ``Router``, which provides the attributes and methods declared here."""

    gate: Any  # its ``admit_row(kind, row)`` (the live repair gate, or a replay's), or None
    hooks: dict[str, Any]  # symbol -> its signal hook (``on_state(kind, row)``)

    def lane_of(self, kind: str, symbol: str) -> Sink:  # pragma: no cover - Router's
        raise NotImplementedError

    def _bad(self, category: str, message: str, frame: str | bytes) -> None:  # pragma: no cover
        raise NotImplementedError

    def _hook_failed(self, symbol: str, exc: Exception) -> None:  # pragma: no cover
        raise NotImplementedError

    def _state(self, stream: str, data: Any, recv_ms: int,
               frame: str | bytes) -> Coroutine[Any, Any, None] | None:
        """A derivatives update or a liquidation: its row into its lane (waiting when full),
        the same row to the symbol's signal hook. A replay writes only rows not yet on disk."""
        try:
            if data.kind == DERIVATIVE:
                kind, row = DERIVATIVES, derivative_row(data, recv_ms)
            else:
                kind, row = LIQUIDATIONS, liquidation_row(data, recv_ms)
        except (ValueError, TypeError) as exc:  # e.g. a funding rate that is not a number
            self._bad("rejected", f"{stream}: {exc}", frame)
            return None
        return self.put_state(kind, row)

    def put_state(self, kind: str, row: Row) -> Coroutine[Any, Any, None] | None:
        """A ``derivatives`` or ``liquidations`` row (from a frame, or polled over REST) into
        its lane and the symbol's hook; the coroutine to await when the lane is full."""
        symbol = row[3]
        gate = self.gate
        if gate is not None and not gate.admit_row(kind, row):
            return None
        lane = self.lane_of(kind, symbol)
        try:
            if not lane.put_nowait(row):
                return self._put_state(lane, kind, row)
        except BadValue as exc:
            self._bad("rejected", f"{symbol} {kind}: {exc}", repr(row))
            return None
        self._state_hook(kind, row)
        return None

    async def _put_state(self, lane: Sink, kind: str, row: Row) -> None:
        await lane.put(row)
        self._state_hook(kind, row)

    def _state_hook(self, kind: str, row: Row) -> None:
        hook = self.hooks.get(row[3])
        if hook is not None:
            try:
                hook.on_state(kind, row)
            except Exception as exc:
                self._hook_failed(row[3], exc)

