"""Dead-letter recovery: replay dead-letter files into their partitions, exactly once.

Owns the per-file procedure, shared by ``python -m trio_harvest recover`` and the automatic
recovery inside ``run``:

1. read and validate every line (in a worker thread); nothing on disk changes;
2. bad lines, if any, go to ``<deadletter>/_rejected/<kind>/<same name>`` with their reason
   (atomic, deterministic name) — reported, kept aside, never silently dropped;
3. good rows are split by UTC date and written with the same atomic writer under a part-file
   name derived from the dead-letter file's name (``part-<first>-<last>-dl<hash>.parquet``);
4. only then is the dead-letter file removed.

Killed between any two steps and run again, every step repeats onto the same names, so each row
lands exactly once. Reads from disk only: it never puts rows into a lane and never writes a
dead-letter file (so it cannot re-create the fail → re-queue loop of old fault 4).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, BinaryIO

import msgspec
import polars as pl
import trio

from ..kinds import Row, Schema
from .backlog import REJECTED_DIR, DeadLetterFile, list_deadletter
from .encoding import BadLine, decode_ndjson_line
from .gate import PublishGate
from .partitions import Partition, part_name, split_by_date
from .store import LocalStore
from .writer import Writer

StepHook = Callable[[str, DeadLetterFile], None]  # step name, file: for tests of interruptions

_json = msgspec.json.Encoder()


@dataclass(slots=True)
class Loaded:
    groups: list[tuple[Schema, list[Row]]] = field(default_factory=list)
    bad: list[tuple[int, str, bytes]] = field(default_factory=list)  # line number, reason, raw


@dataclass(slots=True)
class FileOutcome:
    file: str  # "<kind>/<name>" relative to the dead-letter folder
    rows: int = 0  # rows written into partitions
    partitions: list[str] = field(default_factory=list)  # part files written (relative paths)
    rejected: int = 0  # bad lines set aside
    rejected_path: str | None = None
    first_reason: str = ""
    error: str = ""  # non-empty: the file could not be recovered and was left in place
    gone: bool = False  # someone else recovered it first

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "rows": self.rows, "partitions": list(self.partitions),
                "rejected": self.rejected, "rejected_path": self.rejected_path,
                "error": self.error}


@dataclass(slots=True)
class RecoveryReport:
    files: list[FileOutcome] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)

    @property
    def recovered(self) -> list[FileOutcome]:
        return [f for f in self.files if not f.error and not f.gone]

    @property
    def failed(self) -> list[FileOutcome]:
        return [f for f in self.files if f.error]

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.recovered)

    @property
    def rejected_lines(self) -> int:
        return sum(f.rejected for f in self.recovered)

    def as_dict(self) -> dict[str, Any]:
        return {
            "files_recovered": len(self.recovered),
            "rows_recovered": self.rows,
            "partition_files": sum(len(f.partitions) for f in self.recovered),
            "rejected_lines": self.rejected_lines,
            "rejected_files": [f.rejected_path for f in self.recovered if f.rejected_path],
            "failed": [{"file": f.file, "error": f.error} for f in self.failed],
            "unknown": list(self.unknown),
            "files": [f.as_dict() for f in self.files if not f.gone],
        }

    def render(self) -> str:
        lines: list[str] = []
        for f in self.files:
            if f.gone:
                continue
            if f.error:
                lines.append(f"FAILED    {f.file}: {f.error} (left in place)")
                continue
            where = ", ".join(f.partitions) or "no partition (no good rows)"
            lines.append(f"recovered {f.file}: {f.rows} rows -> {where}")
            if f.rejected:
                lines.append(f"rejected  {f.rejected} bad lines of {f.file} -> {f.rejected_path} "
                             f"(first: {f.first_reason})")
        for name in self.unknown:
            lines.append(f"skipped   {name}: not a dead-letter file (left alone)")
        lines.append(
            f"recovered {len(self.recovered)} files, {self.rows} rows into "
            f"{sum(len(f.partitions) for f in self.recovered)} partition files; "
            f"{self.rejected_lines} bad lines set aside; {len(self.failed)} failed; "
            f"{len(self.unknown)} unknown files left alone"
        )
        return "\n".join(lines)


# -- validation (pure) ------------------------------------------------------------------------


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _check_value(name: str, dtype: Any, value: Any) -> Any:
    if value is None:
        if name == "ts_ms":
            raise ValueError("ts_ms is null")
        return None
    if dtype == pl.Int64:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} is not an integer ({value!r})")
        if not INT64_MIN <= value <= INT64_MAX:  # would fail the whole file's write, every time
            raise ValueError(f"{name} does not fit in 64 bits ({str(value)[:40]})")
        return value
    if dtype == pl.Float64:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name} is not a number ({value!r})")
        try:
            return float(value)
        except OverflowError:  # a huge integer in a float column
            raise ValueError(f"{name} is too large for a float ({str(value)[:40]})") from None
    if dtype == pl.Boolean:
        if not isinstance(value, bool):
            raise ValueError(f"{name} is not true/false ({value!r})")
        return value
    if dtype == pl.String:
        if not isinstance(value, str):
            raise ValueError(f"{name} is not a string ({value!r})")
        return value
    return value


MAX_TS_MS = 253_402_300_800_000  # 10000-01-01: the end of what a date partition can name


def validate_row(schema: Schema, row: Row, symbol: str, lineno: int) -> Row:
    """A decoded row whose every value fits its column, or ``BadLine``."""
    try:
        out = tuple(_check_value(n, t, v) for (n, t), v in zip(schema.columns, row, strict=True))
    except ValueError as exc:
        raise BadLine(lineno, str(exc)) from None
    got = out[schema.index("symbol")]
    if got != symbol:
        raise BadLine(lineno, f"symbol {got!r} does not match the file's {symbol!r}")
    if not 0 <= out[0] < MAX_TS_MS:  # no date partition can hold it; it would block the file
        raise BadLine(lineno, f"ts_ms {out[0]} is not a plausible time")
    return out


def load_file(path: Path, kind: str, symbol: str) -> Loaded:
    """Read and validate one dead-letter file (blocking). Rows of one schema stay together, in
    their order; blank lines carry nothing and are skipped."""
    data = path.read_bytes()
    loaded = Loaded()
    by_schema: dict[Schema, list[Row]] = {}
    for lineno, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            schema, row = decode_ndjson_line(kind, line, lineno)
            row = validate_row(schema, row, symbol, lineno)
        except BadLine as exc:
            loaded.bad.append((lineno, str(exc).split(": ", 1)[-1], line))
            continue
        rows = by_schema.get(schema)
        if rows is None:
            rows = by_schema[schema] = []
            loaded.groups.append((schema, rows))
        rows.append(row)
    return loaded


def recovery_token(f: DeadLetterFile, group: int = 0) -> str:
    """The deterministic ``unique`` part of the part-file names written for ``f``."""
    digest = hashlib.sha256(f"{f.kind}/{f.name}".encode()).hexdigest()[:12]
    return f"dl{digest}" + (f"g{group}" if group else "")


def _rejected_payload(f: DeadLetterFile, bad: Sequence[tuple[int, str, bytes]]) -> bytes:
    return b"".join(
        _json.encode({"source": f"{f.kind}/{f.name}", "line": n, "reason": reason,
                      "text": raw.decode("utf-8", "replace")}) + b"\n"
        for n, reason, raw in bad
    )


# -- the procedure ----------------------------------------------------------------------------


class Recoverer:
    """Recovers dead-letter files one at a time. ``limiter`` and ``write_timeout`` make it share
    the writers fairly with a running harvester; the command line uses neither."""

    def __init__(
        self,
        data_dir: Path,
        deadletter_dir: Path,
        *,
        limiter: trio.CapacityLimiter | None = None,
        write_timeout: float | None = None,
        hook: StepHook | None = None,
    ) -> None:
        self.data = LocalStore(data_dir)
        self.deadletter = LocalStore(deadletter_dir)
        self.limiter = limiter
        self.write_timeout = write_timeout
        self.hook = hook or (lambda step, f: None)

    async def pending(self, unknown: list[str] | None = None) -> list[DeadLetterFile]:
        return await trio.to_thread.run_sync(list_deadletter, self.deadletter.root, unknown,
                                             abandon_on_cancel=True)

    async def recover_all(self, limit: int | None = None) -> RecoveryReport:
        report = RecoveryReport()
        files = await self.pending(report.unknown)
        for f in files[:limit]:
            report.files.append(await self.recover_file(f))
        return report

    async def recover_file(self, f: DeadLetterFile) -> FileOutcome:
        out = FileOutcome(f"{f.kind}/{f.name}")
        try:
            loaded = await trio.to_thread.run_sync(
                load_file, self.deadletter.path(f.rel), f.kind, f.symbol, abandon_on_cancel=True)
        except FileNotFoundError:
            out.gone = True
            return out
        except OSError as exc:
            out.error = f"{type(exc).__name__}: {exc}"
            return out
        self.hook("loaded", f)
        try:
            if loaded.bad:
                await self._write_rejected(f, loaded, out)
                self.hook("rejected", f)
            for i, (schema, rows) in enumerate(loaded.groups):
                await self._write_rows(f, schema, rows, recovery_token(f, i), out)
            await trio.to_thread.run_sync(self.deadletter.delete, f.rel, abandon_on_cancel=True)
        except Exception as exc:  # this file's failure is this file's alone; it stays in place
            out.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            return out
        self.hook("deleted", f)
        return out

    async def _write_rejected(self, f: DeadLetterFile, loaded: Loaded, out: FileOutcome) -> None:
        rel = PurePath(REJECTED_DIR, f.kind, f.name)
        payload = _rejected_payload(f, loaded.bad)

        def produce(fh: BinaryIO) -> None:
            fh.write(payload)

        await trio.to_thread.run_sync(self.deadletter.write_atomic, rel, produce,
                                      abandon_on_cancel=True)
        out.rejected = len(loaded.bad)
        out.rejected_path = str(PurePath(self.deadletter.root.name, rel))
        out.first_reason = f"line {loaded.bad[0][0]}: {loaded.bad[0][1]}"

    async def _write_rows(self, f: DeadLetterFile, schema: Schema, rows: list[Row], token: str,
                          out: FileOutcome) -> None:
        meta = {"trio_harvest.recovered_from": f"{f.kind}/{f.name}"}
        writer = Writer(self.data, self.deadletter, lambda _kind: schema, lambda _kind: meta,
                        max_stuck=1)
        for part in split_by_date(f.kind, f.symbol, rows):
            gate = PublishGate()
            if self.limiter is not None:
                async with self.limiter:
                    written = await self._save(writer, part, gate, token)
            else:
                written = await self._save(writer, part, gate, token)
            out.rows += len(part.rows)
            out.partitions.append(str(written))
            self.hook("partition", f)

    async def _save(self, writer: Writer, part: Partition, gate: PublishGate, token: str) -> PurePath:
        if self.write_timeout is None:
            return (await writer.save(part, gate, unique=token)).path
        with trio.move_on_after(self.write_timeout) as scope:
            return (await writer.save(part, gate, unique=token)).path
        if scope.cancelled_caught and gate.abandon():
            raise TimeoutError(f"recovery write timed out after {self.write_timeout:g}s")
        # the thread had already decided to publish: the file is (or will be) in place
        return part.directory() / part_name(part.first_ts, part.last_ts, token)
