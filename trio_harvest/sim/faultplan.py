"""What the simulator does wrong on purpose: the fault plan and its one-line text form.

Owns the names, defaults, units and validation of every fault, and the parsing of
``disconnect=5,garbage=0.01,skip=0.002`` (``--faults`` on ``sim``, ``--sim-faults`` on ``run``).
Pure data: the plan is carried out by ``faultinject.py`` (events and frames) and ``disrupt.py``
(connections); an empty plan means an exact simulator.

Keys (probabilities are per frame, per trade or per diff event, 0..1; times in seconds):

=================  ==========================================================================
disconnect=S       every S s, close every open connection
disconnect_random=S  at random (exponential, mean S s, seeded), close one open connection
stall=S            every S s, every open connection goes silent (socket open, no frames) ...
stall_for=S        ... for S s (default 5; longer than the client's stall timeout forces a reconnect)
garbage=P          a junk frame (not JSON, or JSON of no known shape) before a frame
truncate=P         a frame cut short (its message is lost)
oversize=P         a frame of ``oversize_bytes`` before a frame (over the client's size limit)
oversize_bytes=N   size of those frames (default 4 MiB + 1 KiB)
skip=P             an aggTrade not sent on the websocket (still on the tape, so REST has it)
dup_id=P           an aggTrade sent twice (same ``a``)
drop_diff=P        a diff-depth event not sent (breaks the ``pu`` chain)
dup_frame=P        a frame sent twice
reset=P            a venue-side book reset before a diff event. OKX: before a ``books`` update
                   (seqId restarts low, ``seqId < prevSeqId`` once, as after maintenance);
                   Bybit: the event goes out as a snapshot to every subscriber, half of them a
                   service restart with ``u`` back to 1
skew=MS            the exchange clock runs MS ms ahead of the harvester's (negative: behind)
lifetime=S         close connections S s after they opened (Binance: 24 h)
listing=S          every S s, list one new symbol and delist one (its streams stop; exchangeInfo
                   says TRADING / SETTLING)
weight=N           REST request weight allowed per minute (default the venue's: 2400 on USD-M
                   and COIN-M, 6000 on Spot; 429 above it)
seed=N             the faults' random seed (default: the simulator's seed)
=================  ==========================================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

OVERSIZE_BYTES = 4 * 1024 * 1024 + 1024
REST_WEIGHT_PER_MIN = 2400

_PROBABILITIES = ("garbage", "truncate", "oversize", "skip", "dup_id", "drop_diff", "dup_frame",
                  "reset")
_SECONDS = ("disconnect", "disconnect_random", "stall", "stall_for", "lifetime", "listing")
_INTS = ("oversize_bytes", "skew", "weight", "seed")


class FaultSpecError(ValueError):
    """A fault spec that cannot be parsed (one readable line)."""


@dataclass(frozen=True, slots=True)
class FaultPlan:
    disconnect: float | None = None
    disconnect_random: float | None = None
    stall: float | None = None
    stall_for: float = 5.0
    garbage: float = 0.0
    truncate: float = 0.0
    oversize: float = 0.0
    oversize_bytes: int = OVERSIZE_BYTES
    skip: float = 0.0
    dup_id: float = 0.0
    drop_diff: float = 0.0
    dup_frame: float = 0.0
    reset: float = 0.0
    skew: int = 0
    lifetime: float | None = None
    listing: float | None = None
    weight: int | None = None  # None: the venue's limit (REST_WEIGHT_PER_MIN on USD-M)
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in _PROBABILITIES:
            p = getattr(self, name)
            if not (isinstance(p, int | float) and 0.0 <= p <= 1.0):
                raise FaultSpecError(f"{name}: a probability between 0 and 1, got {p!r}")
        for name in _SECONDS:
            s = getattr(self, name)
            if s is not None and not (math.isfinite(s) and s > 0):
                raise FaultSpecError(f"{name}: a positive number of seconds, got {s!r}")
        if self.oversize_bytes < 1:
            raise FaultSpecError(f"oversize_bytes: must be at least 1, got {self.oversize_bytes}")
        if self.weight is not None and self.weight < 1:
            raise FaultSpecError(f"weight: must be at least 1, got {self.weight}")

    @property
    def frame_faults(self) -> bool:
        return any((self.garbage, self.truncate, self.oversize, self.dup_frame))

    @property
    def event_faults(self) -> bool:
        return any((self.skip, self.dup_id, self.drop_diff, self.reset))

    @property
    def connection_faults(self) -> bool:
        return any(x is not None for x in (self.disconnect, self.disconnect_random, self.stall,
                                           self.lifetime))

    @property
    def active(self) -> bool:
        return (self.frame_faults or self.event_faults or self.connection_faults
                or bool(self.skew) or bool(self.reset))

    def with_seed(self, seed: int) -> FaultPlan:
        """This plan with ``seed`` filled in if it had none."""
        return self if self.seed is not None else replace(self, seed=seed)

    def describe(self) -> str:
        """The non-default settings, in spec form (``""`` for an exact simulator)."""
        default = FaultPlan()
        parts = [f"{f.name}={getattr(self, f.name):g}" if isinstance(getattr(self, f.name), float)
                 else f"{f.name}={getattr(self, f.name)}"
                 for f in fields(self) if getattr(self, f.name) != getattr(default, f.name)]
        return ",".join(parts)


def parse_faults(spec: str) -> FaultPlan:
    """``"disconnect=5,garbage=0.01"`` -> ``FaultPlan``. Raises ``FaultSpecError``."""
    known = {f.name for f in fields(FaultPlan)}
    values: dict[str, float | int] = {}
    for item in spec.replace(" ", "").split(","):
        if not item:
            continue
        key, eq, raw = item.partition("=")
        key = key.replace("-", "_")
        if key not in known:
            raise FaultSpecError(f"unknown fault {key!r} (known: {', '.join(sorted(known))})")
        if not eq or not raw:
            raise FaultSpecError(f"{key}: expected {key}=VALUE")
        try:
            values[key] = int(raw) if key in _INTS else float(raw)
        except ValueError:
            raise FaultSpecError(f"{key}: {raw!r} is not a number") from None
    return FaultPlan(**values)  # type: ignore[arg-type]
