"""What "healthy" means: a pure verdict over a snapshot of the harvester's state.

Owns the health rules (stream liveness against each stream's expected cadence, streams that never
delivered, decayed error counts, lane levels, writer saturation, time since the last good write)
and the wording of the reasons. Pure: no trio, no I/O, no clock; the snapshot carries the time.
Never stops, cancels or changes anything (old fault 5): a verdict is information, and at most a
*suggestion* to reconnect a connection, which the health task may act on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .. import venues
from ..hints import plural

DEPTH_SPEED_S = {"100ms": 0.1, "250ms": 0.25, "500ms": 0.5}
STALE_MULTIPLE = 100.0  # a stream is stale after this many expected intervals without a frame...
STALE_MIN_S = 10.0  # ...and never sooner than this


def stale_after(stream_kind: str, depth_speed: str = "100ms",
                venue: venues.Venue | None = None) -> float:
    """Seconds without a frame after which a stream of this kind counts as stale. The expected
    interval between frames is the venue's (``venue.cadence``, by its stream kind: quotes and
    partial depth are continuous on a listed contract, trades follow trading activity); the
    harvested venue's, the default one's when none is given."""
    v = venue or venues.default()
    cadence = DEPTH_SPEED_S.get(depth_speed, 0.1) if stream_kind == v.depth_kind else \
        v.cadence.get(stream_kind, 1.0)
    return max(STALE_MIN_S, STALE_MULTIPLE * cadence)


@dataclass(frozen=True, slots=True)
class StreamView:
    connection: str
    symbol: str
    stream: str  # wire name, e.g. btcusdt@depth20@100ms
    kind: str  # the venue's stream kind (trades, depth, quotes)
    stale_after: float
    age: float | None  # seconds since its last frame (any session); None: never
    since_connect: float | None  # seconds since its connection (re)opened; None: not connected
    delivered_this_session: bool


@dataclass(frozen=True, slots=True)
class ConnectionView:
    label: str
    connected: bool
    down_for: float  # seconds it has been disconnected (0 when connected)
    frames: int = 0
    connects: int = 0
    reconnects: int = 0
    failures: int = 0
    last_error: str = ""


@dataclass(frozen=True, slots=True)
class LaneView:
    kind: str
    symbol: str
    level: int
    high: int
    capacity: int
    spill: int = 0
    dropped: int = 0


@dataclass(frozen=True, slots=True)
class KindView:
    kind: str
    pending: int  # rows buffered in its lanes now
    rows_written: int = 0
    rows_deadlettered: int = 0
    rows_lost: int = 0
    write_failures: int = 0
    write_timeouts: int = 0
    since_write: float | None = None  # seconds since the last successful write; None: never
    last_error: str = ""
    failing_for: float | None = None  # seconds since the first of the failures in a row
    failures_in_a_row: int = 0  # write attempts that failed since the last success


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the verdict needs, sampled at one moment (``uptime`` seconds into the run)."""

    uptime: float
    streams: tuple[StreamView, ...] = ()
    connections: tuple[ConnectionView, ...] = ()
    lanes: tuple[LaneView, ...] = ()
    kinds: tuple[KindView, ...] = ()
    errors: Mapping[str, float] = field(default_factory=dict)  # decayed counts by ERROR_KINDS
    limiter_in_use: int = 0
    limiter_total: int = 1
    limiter_saturated_for: float = 0.0
    writer_threads: int = 0
    writer_max_stuck: int = 8
    deadletter_files: int = 0
    deadletter_rows: int = 0
    auto_recover: bool = False
    # repair.Repair.findings: gaps, backfill, duplicates, clock skew, handovers, as
    # (code, subject, message); judged there, reported here
    adversity_problems: tuple[tuple[str, str, str], ...] = ()
    adversity_notes: tuple[tuple[str, str, str], ...] = ()
    stopping: bool = False  # a stop has begun: streams and connections going quiet is expected
    # the journal (journal_failing) and the disk probe (disk_unwritable), judged there
    durability_problems: tuple[tuple[str, str, str], ...] = ()
    durability_notes: tuple[tuple[str, str, str], ...] = ()


ERROR_KINDS = ("connection", "decode", "write", "lost", "dropped")


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When a reading becomes a problem. Decayed counts compare against ``*_errors``."""

    connection_errors: float = 5.0  # reconnects worth of failures, decaying
    decode_errors: float = 50.0
    write_errors: float = 3.0  # intermittent write failures (a kind failing now is its own rule)
    lost_rows: float = 0.5
    dropped_rows: float = 0.5
    connection_down_after: float = 40.0
    limiter_saturated_after: float = 60.0
    write_stale_after: float = 180.0
    reconnect_stale_multiple: float = 2.0  # suggest a reconnect at this multiple of stale_after


# Half-lives of the decayed counts (seconds): how long a burst keeps counting; and their caps
# (twice the default threshold), so that the end of even a long outage is forgotten within one
# half-life.
HALF_LIFE = {"connection": 300.0, "decode": 300.0, "write": 30.0, "lost": 3600.0,
             "dropped": 600.0}
CAP = {"connection": 10.0, "decode": 100.0, "write": 6.0, "lost": 1.0, "dropped": 1.0}


@dataclass(frozen=True, slots=True)
class Problem:
    code: str  # stable machine-readable kind of problem
    subject: str  # what it is about (a stream, connection, kind, lane…)
    message: str  # one line for a person

    @property
    def key(self) -> tuple[str, str]:
        return (self.code, self.subject)


@dataclass(frozen=True, slots=True)
class HealthReport:
    problems: tuple[Problem, ...] = ()  # any problem makes the harvester "degraded"
    notes: tuple[Problem, ...] = ()  # worth knowing, not a failure
    reconnect: tuple[str, ...] = ()  # connection labels health suggests restarting

    @property
    def healthy(self) -> bool:
        return not self.problems

    @property
    def status(self) -> str:
        return "healthy" if self.healthy else "degraded"

    @property
    def reasons(self) -> list[str]:
        return [p.message for p in self.problems]

    @property
    def grouped_reasons(self) -> list[str]:
        """One line per problem code (``285 stream_silent: a, b, c and 282 more (e.g. …)``): what
        logs and ``/healthz`` show, so 500 symbols never make a 30 KB line."""
        return [g.message for g in group(self.problems)]

    def keys(self) -> frozenset[tuple[str, str]]:
        return frozenset(p.key for p in self.problems)

    def as_dict(self, *, full: bool = False) -> dict[str, object]:
        """``/healthz`` (problems grouped by code) or, with ``full``, every problem (``/status``)."""
        if full:
            problems: list[dict[str, object]] = [
                {"code": p.code, "subject": p.subject, "message": p.message}
                for p in self.problems]
        else:
            problems = [g.as_dict() for g in group(self.problems)]
        return {
            "status": self.status,
            "reasons": self.reasons if full else self.grouped_reasons,
            "problems": problems,
            "notes": [p.message for p in self.notes] if full else
            [g.message for g in group(self.notes)],
        }


SHOWN_SUBJECTS = 3  # a group names this many subjects, then "and N more"


@dataclass(frozen=True, slots=True)
class Group:
    """Problems of one code: how many, the first few subjects, one example message."""

    code: str
    count: int
    subjects: tuple[str, ...]
    example: str

    @property
    def more(self) -> int:
        return self.count - len(self.subjects)

    @property
    def message(self) -> str:
        if self.count == 1:
            return self.example
        more = f" and {self.more} more" if self.more else ""
        return f"{self.count} {self.code}: {', '.join(self.subjects)}{more} (e.g. {self.example})"

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code, "subject": self.subjects[0], "message": self.message,
                "count": self.count, "subjects": list(self.subjects), "more": self.more}


def group(problems: tuple[Problem, ...] | list[Problem]) -> list[Group]:
    """Problems grouped by code, in order of first appearance."""
    by_code: dict[str, list[Problem]] = {}
    for p in problems:
        by_code.setdefault(p.code, []).append(p)
    return [Group(code, len(ps), tuple(p.subject for p in ps[:SHOWN_SUBJECTS]), ps[0].message)
            for code, ps in by_code.items()]


def group_keys(keys: frozenset[tuple[str, str]] | set[tuple[str, str]]) -> str:
    """``stream_silent (282: a, b, c and 279 more), writes_failing prices`` for a set of keys."""
    by_code: dict[str, list[str]] = {}
    for code, subject in sorted(keys):
        by_code.setdefault(code, []).append(subject)
    out = []
    for code, subjects in by_code.items():
        if len(subjects) == 1:
            out.append(f"{code} {subjects[0]}")
            continue
        more = len(subjects) - SHOWN_SUBJECTS
        shown = ", ".join(subjects[:SHOWN_SUBJECTS]) + (f" and {more} more" if more > 0 else "")
        out.append(f"{code} ({len(subjects)}: {shown})")
    return ", ".join(out)


def assess(s: Snapshot, t: Thresholds = Thresholds()) -> HealthReport:
    """The verdict for one snapshot. Pure and deterministic."""
    problems: list[Problem] = []
    notes: list[Problem] = []
    reconnect: list[str] = []
    if not s.stopping:  # once a stop has begun, silence is expected: say nothing about streams
        _streams(s, t, problems, reconnect)
    for c in s.connections:
        if not c.connected and c.down_for > t.connection_down_after and not s.stopping:
            why = f" (last error: {c.last_error})" if c.last_error else ""
            problems.append(Problem("connection_down", c.label,
                                    f"connection {c.label} down for {c.down_for:.0f}s{why}"))
    _errors(s, t, problems)
    for lane in s.lanes:
        subject = f"{lane.kind}/{lane.symbol}"
        if lane.level >= lane.capacity:
            problems.append(Problem("lane_full", subject,
                                    f"lane {subject} is full ({lane.level}/{lane.capacity})"))
        elif lane.level >= lane.high:
            notes.append(Problem("lane_high", subject,
                                 f"lane {subject} above its high watermark "
                                 f"({lane.level}/{lane.high})"))
    if s.limiter_in_use >= s.limiter_total and s.limiter_saturated_for > t.limiter_saturated_after:
        problems.append(Problem("writers_saturated", "limiter",
                                f"all {s.limiter_total} writers busy for "
                                f"{s.limiter_saturated_for:.0f}s (stuck disk?)"))
    if s.writer_threads >= s.writer_max_stuck:
        problems.append(Problem("storage_stuck", "writer",
                                f"{s.writer_threads} write threads still hanging "
                                f"(limit {s.writer_max_stuck}); new writes are refused"))
    for k in s.kinds:
        if k.failures_in_a_row:
            failing = f" for {k.failing_for:.0f}s" if k.failing_for is not None else ""
            problems.append(Problem(
                "writes_failing", k.kind,
                f"{k.kind} writes failing{failing} ({k.failures_in_a_row} in a row; batches go "
                f"to the dead letter): {k.last_error}"))
    for k in s.kinds:
        since = s.uptime if k.since_write is None else k.since_write
        if k.pending and since > t.write_stale_after:
            problems.append(Problem("no_write", k.kind,
                                    f"no successful {k.kind} write for {since:.0f}s "
                                    f"with {plural(k.pending, 'row')} waiting"))
    if s.deadletter_files:
        how = "automatic recovery will replay it once writes succeed" if s.auto_recover else \
            "run 'python -m trio_harvest recover'"
        notes.append(Problem("deadletter_backlog", "deadletter",
                             f"dead letter holds {plural(s.deadletter_files, 'file')}, "
                             f"{plural(s.deadletter_rows, 'row')}; {how}"))
    problems += [Problem(*p) for p in s.adversity_problems]
    notes += [Problem(*n) for n in s.adversity_notes]
    problems += [Problem(*p) for p in s.durability_problems]
    notes += [Problem(*n) for n in s.durability_notes]
    return HealthReport(tuple(problems), tuple(notes), tuple(dict.fromkeys(reconnect)))


def _streams(s: Snapshot, t: Thresholds, problems: list[Problem], reconnect: list[str]) -> None:
    for st in s.streams:
        if st.since_connect is None:
            continue  # its connection is down: reported once, per connection
        if not st.delivered_this_session:
            if st.since_connect > st.stale_after:
                what = "has never delivered" if st.age is None else "has not delivered"
                problems.append(Problem(
                    "stream_silent", st.stream,
                    f"stream {st.stream} {what} since its connection opened "
                    f"{st.since_connect:.0f}s ago (wrong route or unknown symbol?)"))
            continue
        if st.age is not None and st.age > st.stale_after:
            problems.append(Problem(
                "stream_stale", st.stream,
                f"stream {st.stream} silent for {st.age:.0f}s "
                f"(expected a frame at least every {st.stale_after:.0f}s)"))
            if st.age > t.reconnect_stale_multiple * st.stale_after:
                reconnect.append(st.connection)


def _errors(s: Snapshot, t: Thresholds, problems: list[Problem]) -> None:
    e = s.errors
    checks = (
        ("connection", t.connection_errors, "connection_errors",
         "{n:.0f} recent connection failures"),
        ("decode", t.decode_errors, "decode_errors", "{n:.0f} recent malformed or unexpected frames"),
        ("write", t.write_errors, "write_errors",
         "writes failed recently ({n:.0f}, decaying; batches went to the dead letter){last}"),
        ("lost", t.lost_rows, "rows_lost", "{n:.0f} rows recently LOST (the dead letter failed too)"),
        ("dropped", t.dropped_rows, "preview_dropped",
         "{n:.0f} preview rows recently dropped (lane and spill full)"),
    )
    last = next((f": {k.last_error}" for k in s.kinds if k.last_error), "")
    failing_now = any(k.failures_in_a_row for k in s.kinds)
    for name, limit, code, text in checks:
        n = e.get(name, 0.0)
        if name == "write" and failing_now:
            continue  # "writes_failing" already says it, per kind
        if n >= limit:
            problems.append(Problem(code, name, text.format(n=n, last=last)))
