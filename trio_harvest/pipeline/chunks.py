"""Columnar row buffers: what a lane holds instead of Python tuples.

Owns the in-memory layout of buffered rows. A *builder* appends one row's values to typed column
buffers (``array.array`` of int64 / float64 / int8, a list for strings; float nulls are NaN, so a
float costs 8 bytes, not a boxed object); once full it is *sealed* and becomes a chunk that the
lane's channel carries to rotation. Builders come in shapes, each with a hot-path ``add_*`` that
reads a decoded message directly (no row tuple is ever built; ``shapes.py``), and a generic one
here for rows that arrive as tuples (gaps, backfill, local diff books, rare derived rows). A
``Batch`` (the chunks drained from one lane) becomes one Polars frame with O(columns) Python work.

Pure: no trio, no I/O. An ``add_*`` either appends a whole row or, if a value does not fit its
column (an id beyond int64), rolls its columns back and raises ``BadValue``: a chunk's columns
always have equal lengths.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Sequence
from itertools import chain
from typing import Any

import polars as pl

from ..kinds import ORDERBOOK, Row, Schema, orderbook_schema, schema_for

NAN = float("nan")


class BadValue(ValueError):
    """A value that its column cannot hold (e.g. an integer beyond int64)."""


def _buffer(dtype: Any) -> Any:
    if dtype == pl.Int64:
        return array("q")
    if dtype == pl.Float64:
        return array("d")
    if dtype == pl.Boolean:
        return array("b")
    return []


def _series(name: str, values: Any, dtype: Any) -> pl.Series:
    """One column buffer as a Series of ``dtype`` (buffer protocol: no per-value Python work)."""
    if isinstance(values, array):
        return pl.Series(name, values)  # NaN stays NaN here: Batch.to_frame makes it null
    return pl.Series(name, values, dtype=dtype, strict=False)


class Builder:
    """Column buffers of one shape. ``n`` rows; ``columns`` pairs each buffer with its name."""

    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0

    def frame(self, symbol: str) -> pl.DataFrame:  # pragma: no cover - abstract
        raise NotImplementedError

    def nbytes(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def rollback(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def ts_values(self) -> Sequence[int]:  # pragma: no cover - abstract
        """The ``ts_ms`` column (for a batch's date range without building a frame)."""
        raise NotImplementedError

    def merge(self, others: Sequence[Builder]) -> Builder:
        """One builder with this one's rows, then ``others``' (same shape): a batch of many
        chunks becomes one frame per shape, not a concatenation of many small frames."""
        raise NotImplementedError  # pragma: no cover - abstract


class GenericBuilder(Builder):
    """Rows that arrive as tuples in ``schema`` order. A column that meets a value its typed
    buffer cannot take (``None`` in an int column, say) becomes a plain list for this chunk."""

    __slots__ = ("_float", "_names", "cols", "schema")

    def __init__(self, schema: Schema) -> None:
        super().__init__()
        self.schema = schema
        self._names = schema.names
        self.cols: list[Any] = [_buffer(dtype) for _, dtype in schema.columns]
        self._float = [dtype == pl.Float64 for _, dtype in schema.columns]

    def append(self, row: Row) -> None:
        cols = self.cols
        if len(row) != len(cols):
            raise BadValue(f"{self.schema.kind} row has {len(row)} values, expected {len(cols)}")
        if None in row:
            row = tuple(NAN if v is None and f else v for v, f in zip(row, self._float, strict=True))
        done = 0
        try:
            for col, v in zip(cols, row, strict=True):
                col.append(v)
                done += 1
        except (TypeError, OverflowError, ValueError):
            self._append_slow(row, done)
        self.n += 1

    def _append_slow(self, row: Row, start: int) -> None:
        """The rest of a row after a value its typed buffer refused: ``None`` or a string widens
        that column to a list; an integer beyond int64 rejects the whole row."""
        cols = self.cols
        for j in range(start, len(row)):
            try:
                cols[j].append(row[j])
            except TypeError:
                self._promote(j)
                cols[j].append(row[j])
            except (OverflowError, ValueError) as exc:
                for col in cols[:j]:
                    col.pop()
                raise BadValue(f"{self._names[j]}: {exc}") from None

    def ts_values(self) -> Sequence[int]:
        return self.cols[0]  # type: ignore[no-any-return]

    def _promote(self, i: int) -> None:
        col = self.cols[i]
        if isinstance(col, array):
            values: list[Any] = list(col)
            if self._float[i]:
                values = [None if v != v else v for v in values]
            self.cols[i] = values
            self._float[i] = False

    def rollback(self) -> None:
        for col in self.cols:
            del col[self.n:]

    def nbytes(self) -> int:
        return sum(c.itemsize * len(c) if isinstance(c, array) else 8 * len(c) for c in self.cols)

    def merge(self, others: Sequence[Builder]) -> Builder:
        out = GenericBuilder(self.schema)
        for i in range(len(self.cols)):
            parts = [self.cols[i], *(o.cols[i] for o in others if isinstance(o, GenericBuilder))]
            if all(isinstance(p, array) for p in parts):
                col: Any = parts[0][:]
                for p in parts[1:]:
                    col.extend(p)
            else:
                col = []
                for p in parts:
                    col.extend([None if v != v else v for v in p] if isinstance(p, array)
                               and p.typecode == "d" else p)
                out._float[i] = False
            out.cols[i] = col
        out.n = self.n + sum(o.n for o in others)
        return out

    def frame(self, symbol: str) -> pl.DataFrame:
        return pl.DataFrame([_series(name, col, dtype)
                             for (name, dtype), col in zip(self.schema.columns, self.cols,
                                                           strict=True)])


class UntypedBuilder(Builder):
    """Rows of any width in plain list columns: a lane built without a schema (tests)."""

    __slots__ = ("cols",)

    def __init__(self) -> None:
        super().__init__()
        self.cols: list[list[Any]] = []

    def append(self, row: Row) -> None:
        if not self.cols:
            self.cols = [[] for _ in row]
        for col, v in zip(self.cols, row, strict=True):
            col.append(v)
        self.n += 1

    def rollback(self) -> None:
        for col in self.cols:
            del col[self.n:]

    def nbytes(self) -> int:
        return 8 * self.n * len(self.cols)

    def ts_values(self) -> Sequence[int]:
        return self.cols[0] if self.cols else []

    def merge(self, others: Sequence[Builder]) -> Builder:
        out = UntypedBuilder()
        out.cols = [list(c) for c in self.cols]
        for o in others:
            if isinstance(o, UntypedBuilder):
                for mine, theirs in zip(out.cols, o.cols, strict=True):
                    mine.extend(theirs)
        out.n = self.n + sum(o.n for o in others)
        return out

    def frame(self, symbol: str) -> pl.DataFrame:
        raise TypeError("an untyped chunk needs a schema: use frame_as")

    def frame_as(self, schema: Schema) -> pl.DataFrame:
        """The rows as a frame of ``schema`` (they must follow its columns)."""
        return pl.DataFrame([pl.Series(name, col, dtype=dtype, strict=False)
                             for (name, dtype), col in zip(schema.columns, self.cols, strict=True)])


class Batch:
    """Chunks drained from one lane, in order, with the lane's schema and symbol; becomes one
    frame of that schema. Iterating it yields tuples (tests, and rare slow paths)."""

    __slots__ = ("chunks", "n", "schema", "symbol")

    def __init__(self, chunks: Sequence[Builder], schema: Schema, symbol: str) -> None:
        self.chunks = list(chunks)
        self.n = sum(c.n for c in self.chunks)
        self.schema = schema
        self.symbol = symbol

    def __len__(self) -> int:
        return self.n

    def __bool__(self) -> bool:
        return self.n > 0

    def __iter__(self) -> Iterator[Row]:
        if all(isinstance(c, UntypedBuilder) for c in self.chunks):
            return chain.from_iterable(zip(*c.cols, strict=True) for c in self.chunks
                                       if isinstance(c, UntypedBuilder))
        return iter(self.to_frame().iter_rows())

    def extend(self, other: Batch) -> None:
        self.chunks.extend(other.chunks)
        self.n += other.n

    def nbytes(self) -> int:
        return sum(c.nbytes() for c in self.chunks)

    def ts_range(self) -> tuple[int, int]:
        """(min, max) of ``ts_ms`` without building a frame."""
        lo, hi = None, None
        for c in self.chunks:
            ts = c.ts_values()
            if not len(ts):
                continue
            a, b = min(ts), max(ts)
            lo = a if lo is None or a < lo else lo
            hi = b if hi is None or b > hi else hi
        if lo is None or hi is None:
            raise ValueError("empty batch")
        return int(lo), int(hi)

    def to_frame(self, schema: Schema | None = None) -> pl.DataFrame:
        """All chunks as one frame with the schema's columns in order (``schema`` overrides the
        lane's). Chunks of different shapes (bookTicker and depth rows, say) are combined and
        ordered by ``ts_ms`` (stable)."""
        schema = schema or self.schema
        symbol = self.symbol
        by_shape: dict[Any, list[Builder]] = {}
        for c in self.chunks:
            if c.n:
                key = (type(c), getattr(c, "levels", None),
                       len(c.cols) if isinstance(c, (GenericBuilder, UntypedBuilder)) else 0)
                by_shape.setdefault(key, []).append(c)
        if not by_shape:
            return pl.DataFrame(schema=schema.polars)
        merged = [group[0] if len(group) == 1 else group[0].merge(group[1:])
                  for group in by_shape.values()]
        frames = [c.frame_as(schema) if isinstance(c, UntypedBuilder) else c.frame(symbol)
                  for c in merged]
        df = frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")
        have = set(df.columns)
        df = df.select([_final(n, t) if n in have else pl.lit(None, t).alias(n)
                        for n, t in schema.columns])
        if len(frames) > 1:
            df = df.sort("ts_ms", maintain_order=True)
        return df


def _final(name: str, dtype: Any) -> pl.Expr:
    col = pl.col(name)
    if dtype == pl.Float64:
        return col.cast(dtype).fill_nan(None)
    return col.cast(dtype)


class FrameBatch(Batch):
    """A batch already turned into a frame (one UTC date of a batch that spanned midnight)."""

    __slots__ = ("frame",)

    def __init__(self, frame: pl.DataFrame, schema: Schema, symbol: str) -> None:
        super().__init__((), schema, symbol)
        self.frame = frame
        self.n = frame.height

    def __iter__(self) -> Iterator[Row]:
        return iter(self.frame.iter_rows())

    def extend(self, other: Batch) -> None:
        raise TypeError("a frame batch is final")

    def nbytes(self) -> int:
        return int(self.frame.estimated_size())

    def ts_range(self) -> tuple[int, int]:
        ts = self.frame.get_column("ts_ms")
        return int(ts.min()), int(ts.max())  # type: ignore[arg-type]

    def to_frame(self, schema: Schema | None = None) -> pl.DataFrame:
        return self.frame


def default_schema(kind: str, depth_levels: int) -> Schema:
    """The frame schema of a lane built without one: the kind's own."""
    return orderbook_schema(depth_levels) if kind == ORDERBOOK else schema_for(kind)
