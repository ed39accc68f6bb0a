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
from pathlib import Path, PurePath
from typing import Any

import polars as pl

from .dataset import DatasetError, Located, day_within
from .errors import ConfigError
from .storage.fileschema import is_compacted, live_names, sources_in
from .storage.location import TRUTHY, S3Options, effective, parse_s3, validate_endpoint
from .storage.partitions import HiveKey, parse_partition_dir


def options_from_env(env: Mapping[str, str] | None = None) -> S3Options:
    """The S3 settings ``run`` would take from the environment: ``TRIO_HARVEST_S3_*``, then
    the standard AWS variables for what those leave empty."""
    env = os.environ if env is None else env
    own = S3Options(env.get("TRIO_HARVEST_S3_ENDPOINT", ""), env.get("TRIO_HARVEST_S3_REGION", ""),
                    env.get("TRIO_HARVEST_S3_ALLOW_HTTP", "").lower() in TRUTHY)
    return effective(own, env)


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
        self.parts: dict[HiveKey, list[PurePath]] = {}
        for rel in rels:
            key = parse_partition_dir(rel.parent.parts)
            if key is not None:
                self.parts.setdefault(key, []).append(rel)
        if not self.parts:
            raise DatasetError(f"dataset root {self.url}: holds no partition")

    @property
    def venues(self) -> list[str]:
        return sorted({key.venue for key in self.parts})

    @property
    def symbols(self) -> list[str]:
        return self.symbols_of(None)

    def symbols_of(self, venue: str | None) -> list[str]:
        return sorted({key.symbol for key in self.parts if venue in (None, key.venue)})

    def storage_options(self) -> dict[str, str]:
        return self.options.polars()

    def files(self, kind: str, symbols: Iterable[str] | None, first: date | None,
              last: date | None, venue: str | None = None) -> list[tuple[Located, list[str]]]:
        """The partitions of ``kind`` that can match, each with its live object URLs."""
        wanted = set(symbols) if symbols is not None else None
        out = []
        for key, rels in sorted(self.parts.items()):
            if key.kind != kind or (wanted is not None and key.symbol not in wanted) or \
                    venue not in (None, key.venue):
                continue
            day = day_within(key.date, first, last)
            if day is None:
                continue
            by_name = {r.name: r for r in rels}
            live = live_names(by_name, lambda n: self._sources(by_name[n]))  # noqa: B023
            where = Located(key.venue, day, key.symbol, Path(rels[0].parent), key.legacy)
            out.append((where, [f"{self.url}/{by_name[n].as_posix()}" for n in live]))
        return out

    def _sources(self, rel: PurePath) -> list[str]:
        if not is_compacted(rel.name):
            return []
        meta: Any = pl.read_parquet_metadata(io.BytesIO(self.store.read_bytes(rel)))
        return sources_in(meta)
