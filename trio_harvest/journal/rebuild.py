"""``python -m trio_harvest replay``: rebuild a dataset from a raw archive.

Owns the offline pipeline: the archive's segments in seq order, filtered by symbol and receive
time, through the harvester's own decode/route path (``Router.handle``) into lanes, signal
engines and the same rotation and writer into ``--data-dir``. Receive times are the journaled
ones; seconds of features close on the live features clock where the archive carries it (its
TICK records, in any segment), else on the archive's receive times (``grace_ms`` after each
second's end), so derived kinds are recomputed with the given config's parameters. A stop (its
last tick, or the archive's end) routes the frames the time guard still holds, as the live stop
did (a stream's lone first frame: a symbol's only liquidation). Off-stream rows (gaps,
backfilled trades) are put back as they were, and the REST snapshots and states of diff books
(``--book diff``) are handed back to the books where the live run took them, so
``book_updates`` and the books' ``orderbook`` rows come back too. The venue is
the archive's own (its connections' records name it; older archives: ``--venue``, default
binance-usdm), and so is the book mode (the depth streams it subscribed). Exit codes as
everywhere: 0 done, 2 a user mistake. Messages go through the logger (formatted like the
harvester's, on stderr); stdout carries only the result. Never touches the archive.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import msgspec
import trio
import zstandard

from .. import venues
from ..errors import ConfigError
from ..kinds import DERIVATIVES, LIQUIDATIONS
from ..ops.logs import setup_logging
from . import format as fmt
from .replay import book_record

_row = msgspec.json.Decoder(dict[str, Any])
log = logging.getLogger("trio_harvest.replay")


def parse_time(text: str | None, flag: str) -> int | None:
    """Unix ms from ``--start``/``--end`` (unix ms, or ISO 8601; naive means UTC)."""
    if text is None:
        return None
    if text.strip().isdigit():
        return int(text)
    try:
        t = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{flag}: {text!r} is not a time (ISO 8601 UTC or unix ms)") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return int(t.timestamp() * 1000)


def _symbols_of(url: str, venue: str = venues.DEFAULT) -> set[str]:
    """The symbols of the streams a connection's URL opens (the venue reads its own URLs)."""
    return set(venues.get(venue).stream_symbols(url))


def venue_archives(raw_dir: Path) -> list[tuple[str, list[Path]]]:
    """A run of several venues archives each under ``RAW_DIR/<venue>/``: (venue, its segments)
    per venue folder holding any; [] for the archive of one venue (segments at the top)."""
    out = [(name, archive_files(raw_dir / name)) for name in venues.VENUES]
    return [(name, files) for name, files in out if files]


def _opened(files: list[Path]) -> list[dict[str, Any]]:
    """The OPEN records of the archive's first segment (one per connection it opened)."""
    named = sorted(files, key=lambda p: fmt.parse_segment_name(p.name) or 0)
    if not named:
        return []
    try:
        records = fmt.read_segment(named[0])
    except (OSError, zstandard.ZstdError):
        return []
    out: list[dict[str, Any]] = []
    for rec in records:
        if rec.type == fmt.OPEN:
            with contextlib.suppress(msgspec.DecodeError):
                out.append(_row.decode(rec.payload))
    return out


def archive_symbols(files: list[Path], venue: str = venues.DEFAULT) -> set[str]:
    """The symbols of the connections opened in the archive's first segment."""
    out: set[str] = set()
    for doc in _opened(files):
        out |= _symbols_of(str(doc.get("url", "")), venue)
    return out


def archive_venue(files: list[Path]) -> str | None:
    """The venue the archive's connections name (None: an archive written before they did)."""
    named = {str(doc["venue"]) for doc in _opened(files) if "venue" in doc}
    if len(named) > 1:
        raise ConfigError(f"--raw-dir: the archive holds several venues ({', '.join(sorted(named))}"
                          "); keep one venue's segments per folder")
    return next(iter(named), None)


def archive_diff_books(files: list[Path], venue: str, symbols: set[str], speed: str) -> bool:
    """Whether the live run kept diff books (``--book diff``): its connections subscribed the
    diff depth stream of a symbol."""
    adapter = venues.get(venue)
    diff = {adapter.depth_stream(s, 0, speed, "diff") for s in symbols}
    return any(diff.intersection(re.split(r"[/=?&,]", str(doc.get("url", ""))))
               for doc in _opened(files))


def archive_ticks(files: list[Path]) -> bool:
    """Whether the archive carries the live features clock (TICK records): its segments are read
    in order until the first one (blocking). Not only the first segment: the clock ticks once
    ingest runs, so a short first segment (``journal_segment_s``, a slow start) may hold none."""
    for path in sorted(files, key=lambda p: fmt.parse_segment_name(p.name) or 0):
        try:
            if any(rec.type == fmt.TICK for rec in fmt.read_segment(path)):
                return True
        except (OSError, zstandard.ZstdError):
            continue  # the rebuild reports it
    return False


def archive_files(raw_dir: Path) -> list[Path]:
    return [p for p in raw_dir.glob("date=*/seg-*") if fmt.parse_segment_name(p.name) is not None]


def main(args: argparse.Namespace) -> int:
    from ..config import load_config, read_toml

    raw = Path(args.raw_dir)
    if not raw.is_dir():
        raise ConfigError(f"--raw-dir: {raw} is not a directory")
    cli: dict[str, Any] = {"data_dir": args.data_dir, "journal": False, "resume": False,
                           "backfill": False, "auto_recover": False}
    files = archive_files(raw)
    if not files and (parts := venue_archives(raw)):
        return _main_venues(args, cli, parts)
    toml = read_toml(Path(args.config)) if args.config else {}
    named, asked = archive_venue(files), getattr(args, "venue", None)
    if named is not None and asked is not None and named != asked:
        raise ConfigError(f"--venue {asked}: the archive in {raw} is of {named}")
    cli["venue"] = venue = named or asked or str(toml.get("venue", venues.DEFAULT))
    if venue not in venues.VENUES:
        raise ConfigError(f"--venue: unknown venue {venue!r} (known: {', '.join(venues.VENUES)})")
    if args.symbols:
        cli["symbols"] = args.symbols
    elif "symbols" not in toml:
        found = archive_symbols(files, venue)  # default: what the live run harvested
        if found:
            cli["symbols"] = ",".join(sorted(found))
    config = load_config(cli, os.environ, Path(args.config) if args.config else None)
    setup_logging(config.log_level, config.log_format)  # every message formatted, on stderr
    config = _book_of(config, files, "book" in toml)
    start, end = parse_time(args.start, "--start"), parse_time(args.end, "--end")
    _check_empty(config.data_dir)
    result = trio.run(_rebuild, config, files, start, end)
    return _report(args, result, config.data_dir)


def _main_venues(args: argparse.Namespace, cli: dict[str, Any],
                 parts: list[tuple[str, list[Path]]]) -> int:
    """The archive of a run of several venues: each venue's segments through that venue's own
    harvester into its ``venue=`` partitions of the one dataset (symbols: the archive's, or
    those of ``--symbols`` it holds)."""
    import dataclasses

    from ..config import load_config

    base = load_config(cli, os.environ, Path(args.config) if args.config else None)
    setup_logging(base.log_level, base.log_format)
    start, end = parse_time(args.start, "--start"), parse_time(args.end, "--end")
    _check_empty(base.data_dir)
    wanted = {s.strip().upper() for s in args.symbols.split(",")} if args.symbols else None
    total: dict[str, Any] = {"segments": 0, "frames": 0, "rows": 0, "unreadable": 0, "lost": 0,
                             "written": {}, "deadlettered": {}, "venues": {}}
    for venue, files in parts:
        found = archive_symbols(files, venue)
        symbols = found & wanted if wanted is not None else found
        if not symbols:
            continue
        config = _book_of(dataclasses.replace(base, venue_tables=(), venue=venue, ws_url="",
                                              rest_url="", symbols=tuple(sorted(symbols))),
                          files, False)
        result = trio.run(_rebuild, config, files, start, end)
        total["venues"][venue] = result
        for key in ("segments", "frames", "rows", "unreadable", "lost"):
            total[key] += result[key]
        for key in ("written", "deadlettered"):
            for kind, n in result[key].items():
                total[key][kind] = total[key].get(kind, 0) + n
    return _report(args, total, base.data_dir)


def _book_of(config: Any, files: list[Path], asked: bool) -> Any:
    """``config`` with the book mode of the live run (unless the config file names one)."""
    import dataclasses

    if not asked and config.book != "diff" and archive_diff_books(
            files, config.venue, set(config.symbols), config.depth_speed):
        log.info("the archive's run kept diff books: replaying with book = \"diff\"")
        return dataclasses.replace(config, book="diff")
    return config


def _check_empty(data_dir: Path) -> None:
    if any(data_dir.glob("date=*")) or any(data_dir.glob("venue=*/date=*")):
        raise ConfigError(f"--data-dir: {data_dir} already holds a dataset; replay into "
                          "an empty directory (a second replay would write every row again)")


def _report(args: argparse.Namespace, result: dict[str, Any], data_dir: Path) -> int:
    if args.json:
        print(json.dumps(result))
    else:
        print(f"replayed {result['segments']} segments: {result['frames']} frames, "
              f"{result['rows']} off-stream rows -> {data_dir}; rows written: "
              + ", ".join(f"{k} {v}" for k, v in sorted(result["written"].items())))
    return 0 if not (result["lost"] or result["unreadable"]) else 1


async def _rebuild(config: Any, files: list[Path], start: int | None,
                   end: int | None) -> dict[str, Any]:
    from ..app import Harvester
    from ..signals.task import emit_closed, flush_all

    h = Harvester(config)
    symbols = set(config.symbols)
    stats = {"segments": 0, "frames": 0, "rows": 0, "unreadable": 0}
    async with trio.open_nursery() as nursery:
        await nursery.start(h.rotation.run)
        clock = [0]
        h.router.wall_ms = lambda: clock[0]  # the gate stays: duplicates dropped as live
        emitted_upto = 0
        # the archive carries the live features clock (TICK records): then it alone closes seconds
        ticks = await trio.to_thread.run_sync(archive_ticks, files)
        conns: dict[int, set[str]] = {}
        for path in sorted(files, key=lambda p: fmt.parse_segment_name(p.name) or 0):
            try:
                records = await trio.to_thread.run_sync(fmt.read_segment, path)
            except (OSError, zstandard.ZstdError) as exc:
                log.warning("skipped %s: cannot read it (%s)", path, exc)
                stats["unreadable"] += 1
                continue
            stats["segments"] += 1
            for rec in records:
                ms = rec.recv_ns // 1_000_000
                if (start is not None and ms < start) or (end is not None and ms >= end):
                    continue
                if not ticks and ms // 1000 > emitted_upto:  # no journaled clock: follow frames
                    emit_closed(h.engines, h.lanes.offer, ms)
                    emitted_upto = ms // 1000
                if rec.type == fmt.TICK:  # the live features clock, as it was
                    tick = _row.decode(rec.payload)
                    if not tick["grace"]:  # a stop's last tick: as live, held frames go first
                        await h.router.release_held()
                    emit_closed(h.engines, h.lanes.offer, int(tick["now_ms"]),
                                grace=bool(tick["grace"]))
                elif rec.type == fmt.FRAME:
                    clock[0] = ms
                    stats["frames"] += 1
                    await h.router.handle(rec.payload)
                elif rec.type == fmt.OPEN:  # which symbols a connection carries
                    url = str(_row.decode(rec.payload).get("url", ""))
                    conns[rec.conn] = _symbols_of(url, config.venue) & symbols
                elif rec.type == fmt.CLOSE:  # as live: no OFI across a disconnect
                    reason = str(_row.decode(rec.payload).get("reason", ""))
                    for symbol in conns.pop(rec.conn, set()):
                        h.engines[symbol].on_gap(ms, reason)
                elif rec.type in (fmt.SNAPSHOT, fmt.BOOK_STATE):  # a diff book's, as live
                    await book_record(h.router, config.venue, rec)
                elif rec.type == fmt.ROW:
                    doc = _row.decode(rec.payload)
                    kind, row = str(doc["kind"]), tuple(doc["row"])
                    symbol = str(row[1] if kind == "gaps" else row[3])
                    if symbol in symbols:
                        if kind == "prices":  # a backfilled trade: no longer missing
                            tracker = h.repair.trackers[symbol]
                            agg_id = int(str(row[4]))
                            if (not tracker.fill(agg_id) and tracker.last_id is not None
                                    and agg_id <= tracker.last_id):
                                continue  # not missing: a frame brought it already
                        stats["rows"] += 1
                        if kind in (DERIVATIVES, LIQUIDATIONS):  # polled: features read it too
                            waiting = h.router.put_state(kind, row)
                            if waiting is not None:
                                await waiting
                            continue
                        await h.lanes.get(kind, symbol).put(row, unseen=True)
        # The archive's end is a stop: frames the time guard still holds (a stream's lone
        # first frame, e.g. a symbol's only liquidation) are routed as the live stop routed them.
        await h.router.release_held()
        if not ticks:
            flush_all(h.engines, h.lanes.offer, clock[0])
        with trio.CancelScope(shield=True):
            await h.rotation.flush_everything()
        nursery.cancel_scope.cancel()
    kinds = h.rotation.stats.kinds
    written = {k: v.rows_written for k, v in kinds.items()}
    lost = sum(v.rows_lost for v in kinds.values())
    if lost:
        log.error("%d rows could not be written", lost)
    return {**stats, "written": written, "lost": lost,
            "deadlettered": {k: v.rows_deadlettered for k, v in kinds.items()}}
