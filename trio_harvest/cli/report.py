"""``python -m trio_harvest report``, and the dataset filters it shares with ``inspect``
(``--venue``, ``--symbols``, ``--start``, ``--end``).

Owns the flags, turning a bad filter into one line (exit 2: an unknown venue, a symbol the
dataset does not hold, with a did-you-mean, a time that cannot be read, an end before the
start) and writing the page. Never builds the page itself: that is ``report/``'s.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..config import ConfigError
from ..dataset import (
    VENUES,
    DatasetError,
    check_venue,
    dataset_venues,
    resolve_symbols,
    to_ms,
)
from ..hints import plural

EXIT_OK = 0
DEFAULT_OUT = "report.html"
log = logging.getLogger("trio_harvest.report")


@dataclass(frozen=True, slots=True)
class Filters:
    symbols: list[str] | None
    start_ms: int | None
    end_ms: int | None
    venue: str | None = None

    def keeps(self, date: str, symbol: str) -> bool:
        """Whether the partition of ``symbol`` on UTC ``date`` (YYYY-MM-DD) can hold rows the
        filters select."""
        if self.symbols is not None and symbol not in self.symbols:
            return False
        if self.start_ms is not None and date < _day(self.start_ms):
            return False
        return self.end_ms is None or date <= _day(self.end_ms - 1)

    @property
    def active(self) -> bool:
        return (self.symbols, self.start_ms, self.end_ms) != (None, None, None)

    def describe(self) -> str:
        parts = []
        if self.symbols is not None:
            shown = ",".join(self.symbols[:5]) + (" …" if len(self.symbols) > 5 else "")
            parts.append(f"symbols {shown}")
        if self.start_ms is not None or self.end_ms is not None:
            lo = _iso(self.start_ms) if self.start_ms is not None else "…"
            hi = _iso(self.end_ms) if self.end_ms is not None else "…"
            parts.append(f"{lo} .. {hi}")
        return "; ".join(parts)


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).date().isoformat()


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def add_filter_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("filters")
    g.add_argument("--venue", metavar="VENUE", default=None,
                   help=f"only this venue, e.g. {', '.join(VENUES)} (default all; partitions "
                   "written before venues belong to binance-usdm)")
    g.add_argument("--symbols", metavar="LIST", default=None,
                   help="comma-separated symbols, any case (default all in the dataset)")
    g.add_argument("--start", metavar="TIME", default=None,
                   help="from this UTC time on, ISO 8601 (2024-01-31 or 2024-01-31T12:00Z; "
                   "default the first row)")
    g.add_argument("--end", metavar="TIME", default=None,
                   help="up to (not including) this UTC time, ISO 8601 (default the last row)")


def filters(args: argparse.Namespace, data_dir: Path | None) -> Filters:
    """The filters of ``args``, checked against the dataset at ``data_dir`` (None: a bucket,
    whose symbols are taken as given, in upper case)."""
    try:
        check_venue(args.venue, dataset_venues(data_dir) if data_dir is not None else ())
        symbols = None
        if args.symbols is not None:
            raw = [s for s in args.symbols.split(",") if s.strip()]
            if not raw:
                raise ConfigError("--symbols: no symbol given")
            symbols = (resolve_symbols(data_dir, raw, args.venue) if data_dir is not None
                       else [r.strip().upper() for r in raw])
        start = to_ms(_as_utc(args.start), "--start") if args.start is not None else None
        end = to_ms(_as_utc(args.end), "--end") if args.end is not None else None
    except DatasetError as exc:
        raise ConfigError(str(exc).replace("venue:", "--venue:", 1)) from None
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if start is not None and end is not None and end <= start:
        raise ConfigError(f"--end must be after --start ({args.end} <= {args.start})")
    return Filters(symbols, start, end, args.venue)


def _as_utc(raw: str) -> str:
    """``…Z`` as ``…+00:00`` (older Pythons' ``fromisoformat`` refuse the ``Z``)."""
    raw = raw.strip()
    return raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw


def add_subcommand(sub: Any) -> None:
    from .ops import add_dir_flags

    rep = sub.add_parser(
        "report",
        help="write one self-contained HTML page: coverage, gaps, uptime, sizes, dead letter",
        description="Write one HTML file (it opens with no network) about a dataset: a coverage "
        "heat map (rows per symbol and hour, and where data is missing), a gap timeline with "
        "reasons and filled/unfilled status, uptime per symbol and day, rows and bytes per "
        "kind, the dead letter and the quarantine. Reads Parquet footers and the gaps kind, "
        "not every row.",
    )
    add_dir_flags(rep)
    add_filter_flags(rep)
    rep.add_argument("--out", metavar="FILE", default=DEFAULT_OUT,
                     help=f"the HTML file to write (default {DEFAULT_OUT})")
    rep.add_argument("--title", metavar="TEXT", default=None,
                     help="the page's title (default 'trio_harvest report: DATA_DIR')")


def run_report(args: argparse.Namespace) -> int:
    from ..report.build import build
    from .ops import deadletter_dirs, local_dirs

    data, _dl = local_dirs(args)
    f = filters(args, data)
    out = Path(args.out).expanduser()
    if out.is_dir():
        raise ConfigError(f"--out {out}: is a directory; give a file name")
    if not out.parent.is_dir():
        raise ConfigError(f"--out {out}: no such directory {out.parent}")
    title = args.title or f"trio_harvest report: {data}"
    try:
        built = build(data, deadletter_dirs(args, data), f.symbols, f.start_ms, f.end_ms, title)
        out.write_text(built.html, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot {'write' if exc.filename == str(out) else 'read'} "
                          f"{exc.filename or 'the data'}: {exc.strerror or exc}") from None
    print(f"wrote {out} ({built.seconds:.2f} s: {plural(len(built.data.files), 'file')}, "
          f"{plural(built.symbols, 'symbol')}, {plural(built.gaps, 'gap row')})", flush=True)
    return EXIT_OK
