"""The reader API's side of an ``s3://bucket/prefix`` dataset: which part objects ``scan``
reads, and the Polars ``storage_options`` it reads them with.

Owns the listing (one LIST of the prefix, then the compacted objects' footers for their
sources, so no row is counted twice) and the connection settings: the ones ``run`` uses, from
``TRIO_HARVEST_S3_ENDPOINT``, ``TRIO_HARVEST_S3_REGION``, ``TRIO_HARVEST_S3_ALLOW_HTTP`` and
the standard AWS variables, unless the caller passes its own ``S3Options``. Every failure is a
``DatasetError`` of one line. Blocking and read-only.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import PurePath
from typing import Any

import polars as pl

from .dataset import DatasetError, day_within
from .errors import ConfigError
from .storage.fileschema import is_compacted, live_names, sources_in
from .storage.location import TRUTHY, S3Options, effective, parse_s3, validate_endpoint


def options_from_env(env: Mapping[str, str] | None = None) -> S3Options:
    """The S3 settings ``run`` would take from the environment: ``TRIO_HARVEST_S3_*``, then
    the standard AWS variables for what those leave empty."""
    env = os.environ if env is None else env
    own = S3Options(env.get("TRIO_HARVEST_S3_ENDPOINT", ""), env.get("TRIO_HARVEST_S3_REGION", ""),
                    env.get("TRIO_HARVEST_S3_ALLOW_HTTP", "").lower() in TRUTHY)
    return effective(own, env)


def _hive(rel: PurePath) -> tuple[str, str, str] | None:
    parts = rel.parent.parts
    keys = ("date=", "symbol=", "kind=")
    if len(parts) != 3 or not all(p.startswith(k) for p, k in zip(parts, keys, strict=True)):
        return None
    return parts[0][5:], parts[1][7:], parts[2][5:]


class S3Listing:
    """The part objects of a bucket's dataset, listed once."""

    def __init__(self, url: str, options: S3Options | None = None) -> None:
        from .storage.s3store import S3Store

        try:
            loc = parse_s3(url, "dataset root")
            self.options = options if options is not None else options_from_env()
            validate_endpoint(self.options.endpoint, self.options.allow_http)
        except ConfigError as exc:
            raise DatasetError(str(exc)) from None
        self.url = loc.url
        self.store = S3Store(loc, self.options)
        try:
            rels = list(self.store.list(None, ".parquet"))
        except OSError as exc:
            raise DatasetError(f"dataset root {self.url}: cannot list it ({exc})") from None
        self.parts: dict[tuple[str, str, str], list[PurePath]] = {}
        for rel in rels:
            key = _hive(rel)
            if key is not None:
                self.parts.setdefault(key, []).append(rel)
        if not self.parts:
            raise DatasetError(f"dataset root {self.url}: holds no partition")

    @property
    def symbols(self) -> list[str]:
        return sorted({symbol for _, symbol, _ in self.parts})

    def storage_options(self) -> dict[str, str]:
        return self.options.polars()

    def files(self, kind: str, symbols: Iterable[str] | None, first: date | None,
              last: date | None) -> list[tuple[date, str, list[str]]]:
        """``(date, symbol, live object URLs)`` of ``kind``'s partitions that can match."""
        wanted = set(symbols) if symbols is not None else None
        out = []
        for (raw, symbol, k), rels in sorted(self.parts.items()):
            if k != kind or (wanted is not None and symbol not in wanted):
                continue
            day = day_within(raw, first, last)
            if day is None:
                continue
            by_name = {r.name: r for r in rels}
            live = live_names(by_name, lambda n: self._sources(by_name[n]))  # noqa: B023
            out.append((day, symbol, [f"{self.url}/{by_name[n].as_posix()}" for n in live]))
        return out

    def _sources(self, rel: PurePath) -> list[str]:
        if not is_compacted(rel.name):
            return []
        meta: Any = pl.read_parquet_metadata(io.BytesIO(self.store.read_bytes(rel)))
        return sources_in(meta)
