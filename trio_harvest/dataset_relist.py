"""The reader API's guard against compaction: a ``LazyFrame`` that lists its files when it is
collected, and lists them again (at most ``ATTEMPTS - 1`` times) when a file vanished between
the listing and the read.

Compaction deletes a merge's sources (a grace period after the merged file is published, see
``storage/compact.py``); a read that listed them just before that delete would fail with "file
not found". The listing names each row once (the merged file, not its sources, once both are
there), so a second listing after the delete reads every row once again. The whole query runs
inside one ``collect`` of the listed files (Polars pushes the caller's projection, filter and
row limit into it), so a retry never yields a row twice. Never writes anything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import polars as pl
from polars.io.plugins import register_io_source

__all__ = ["ATTEMPTS", "relisting", "vanished"]

ATTEMPTS = 8  # listings per collect (each a cheap listing): only merges back to back, many times
# over, outrun it; a file still gone then is an error, never a silent gap

# how a read of a file that is gone fails: local disk (FileNotFoundError), or an object store
# through Polars (its error text)
_GONE = ("no such file", "not found", "notfound", "404", "does not exist")


def vanished(exc: BaseException) -> bool:
    """Whether ``exc`` says a listed file was gone when it was read."""
    if isinstance(exc, FileNotFoundError):
        return True
    text = str(exc).lower()
    return isinstance(exc, pl.exceptions.PolarsError | OSError) and any(g in text for g in _GONE)


def relisting(build: Callable[[], pl.LazyFrame], schema: dict[str, Any],
              what: str = "trio_harvest.dataset.scan") -> pl.LazyFrame:
    """A frame of ``schema`` whose every collect calls ``build`` (which lists the files) and
    reads what it lists; if a listed file vanished meanwhile, it lists and reads again."""

    def source(with_columns: list[str] | None, predicate: pl.Expr | None,
               n_rows: int | None, batch_size: int | None) -> Iterator[pl.DataFrame]:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                # the listing itself may meet a file a compaction deleted after listing it
                lf = build()
                if predicate is not None:
                    lf = lf.filter(predicate)
                if with_columns is not None:
                    lf = lf.select(with_columns)
                if n_rows is not None:
                    lf = lf.head(n_rows)
                df = lf.collect()
            except Exception as exc:
                if attempt == ATTEMPTS or not vanished(exc):
                    raise
                continue
            yield df
            return

    return register_io_source(source, schema=schema, explain_name=what)
