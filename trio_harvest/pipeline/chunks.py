"""Columnar row buffers: what a lane holds instead of Python tuples.

Owns the in-memory layout of buffered rows. A *builder* appends one row's values to typed column
buffers (``array.array`` of int64 / float64 / int8, a list for strings; float nulls are NaN, so a
float costs 8 bytes, not a boxed object); once full it is *sealed* and becomes a chunk that the
lane's channel carries to rotation. Builders come in shapes, each with a hot-path ``add_*`` that
reads a decoded message directly (no row tuple is ever built; ``shapes.py``), and a generic one
here for rows that arrive as tuples (gaps, backfill, local diff books, rare derived rows). A
``Batch`` (the chunks drained from one lane) becomes one Polars frame (each shape's columns
joined once; no Polars query for a file).

Pure: no trio, no I/O. An ``add_*`` either appends a whole row or, if a value does not fit its
column (an id beyond int64), rolls its columns back and raises ``BadValue``: a chunk's columns
always have equal lengths.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Sequence
from functools import cache
from itertools import chain
from operator import call as _call
from typing import Any

import numpy as np
import polars as pl

from ..kinds import EPOCH_MS_COLUMNS, ORDERBOOK, TIMESTAMP, Row, Schema, orderbook_schema, schema_for

NAN = float("nan")


CHUNK_ROWS_MAX = 4096


@cache  # a few capacities, asked once per lane (thousands at a whole venue)
def chunk_rows_for(capacity: int) -> int:
    """Rows per chunk: the largest divisor of ``capacity`` not above ``capacity // 4`` (and
    ``CHUNK_ROWS_MAX``), so that whole chunks add up to the emergency watermark exactly."""
    limit = max(1, min(CHUNK_ROWS_MAX, capacity // 4))
    for rows in range(limit, 0, -1):
        if capacity % rows == 0:
            return rows
    return 1  # pragma: no cover - 1 divides everything


class BadValue(ValueError):
    """A value that its column cannot hold (e.g. an integer beyond int64)."""


def _typecode(dtype: Any) -> str:
    """The ``array`` typecode of a column of ``dtype``; "" for a plain list."""
    if dtype == pl.Int64:
        return "q"
    if dtype == pl.Float64:
        return "d"
    if dtype == pl.Boolean:
        return "b"
    return ""


# per schema: its names, each column's typecode and whether it is a float column, worked out
# once (a whole venue opens a builder per derived lane after every file)
Layout = tuple[Schema, list[str], tuple[str, ...], tuple[bool, ...]]
_LAYOUTS: dict[int, Layout] = {}


def _layout(schema: Schema) -> Layout:
    entry = _LAYOUTS.get(id(schema))
    if entry is None or entry[0] is not schema:
        if len(_LAYOUTS) > 256:  # schemas made on the fly (tests): stay bounded
            _LAYOUTS.clear()
        codes = tuple(_typecode(dtype) for _, dtype in schema.columns)
        entry = _LAYOUTS[id(schema)] = (schema, schema.names, codes,
                                        tuple(code == "d" for code in codes))
    return entry


class Builder:
    """Column buffers of one shape. ``n`` rows; ``columns`` pairs each buffer with its name."""

    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0

    def column_buffers(self, schema: Schema) -> dict[str, Any]:  # pragma: no cover - abstract
        """This chunk's columns by name (``symbol`` excluded: it is the lane's): an ``array`` or
        a list each, ``n`` long. A column of ``schema`` the shape does not have is absent."""
        raise NotImplementedError

    def nan_columns(self) -> set[str]:
        """Float columns whose NaN values stand for null (missing levels, absent values)."""
        return set()

    def group_key(self) -> Any:
        """Chunks with equal keys have the same columns: ``join_columns`` joins them."""
        return type(self)

    def join_columns(self, members: Sequence[Builder], schema: Schema) -> dict[str, Any]:
        """The columns of ``members`` (chunks of this chunk's group, in order) joined end to
        end: one new buffer (``array``, list or NumPy array) per column, by name."""
        parts = [c.column_buffers(schema) for c in members]
        sizes = [c.n for c in members]
        dtypes = schema.polars
        return {name: join_buffers([p.get(name) for p in parts], sizes, dtypes.get(name))
                for name in parts[0]}

    def nbytes(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def rollback(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def ts_values(self) -> Sequence[int]:  # pragma: no cover - abstract
        """The ``ts_ms`` column (for a batch's date range without building a frame)."""
        raise NotImplementedError


class GenericBuilder(Builder):
    """Rows that arrive as tuples in ``schema`` order. A column that meets a value its typed
    buffer cannot take (``None`` in an int column, say) becomes a plain list for this chunk."""

    __slots__ = ("_apps", "_float", "_names", "_nan", "cols", "schema")

    def __init__(self, schema: Schema) -> None:
        super().__init__()
        self.schema = schema
        _, self._names, codes, floats = _layout(schema)
        self.cols: list[Any] = [array(code) if code else [] for code in codes]
        self._apps = [col.append for col in self.cols]  # bound once; ``_promote`` renews one
        self._float = list(floats)
        self._nan: set[str] = set()

    def append(self, row: Row) -> None:
        cols = self.cols
        if len(row) != len(cols):
            raise BadValue(f"{self.schema.kind} row has {len(row)} values, expected {len(cols)}")
        values: Sequence[Any] = row
        if None in row:  # a float column takes NaN for null (and remembers it)
            fl = self._float
            names = self._names
            nan = self._nan
            values = filled = list(row)
            for i, v in enumerate(filled):
                if v is None and fl[i]:
                    filled[i] = NAN
                    nan.add(names[i])
        try:  # each column's append, called in C (lengths checked above)
            any(map(_call, self._apps, values))
        except (TypeError, OverflowError, ValueError):
            n = self.n  # the columns before the one that refused have taken their value
            self._append_slow(values, next(i for i, col in enumerate(cols) if len(col) == n))
        self.n += 1

    def add_columns(self, columns: Sequence[list[Any]], n: int) -> bool:
        """``n`` rows given as columns (lists, in ``schema`` order) at once, storing what
        ``append`` of each row would store, when every value is one its column takes as it is
        (no null, none a typed buffer refuses). False, and nothing taken, otherwise: ``append``
        the rows one by one instead."""
        cols = self.cols
        if len(columns) != len(cols):
            return False
        try:
            for col, values in zip(cols, columns, strict=True):
                if len(values) != n:
                    raise ValueError("columns of different lengths")
                if type(col) is array:
                    col.fromlist(values)  # all or nothing: a null or a refused value raises
                else:
                    col.extend(values)
        except (TypeError, OverflowError, ValueError):
            self.rollback()
            return False
        self.n += n
        return True

    def _append_slow(self, row: Sequence[Any], start: int) -> None:
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
            self._apps[i] = values.append
            self._float[i] = False

    def rollback(self) -> None:
        for col in self.cols:
            del col[self.n:]

    def nbytes(self) -> int:
        return sum(c.itemsize * len(c) if isinstance(c, array) else 8 * len(c) for c in self.cols)

    def column_buffers(self, schema: Schema) -> dict[str, Any]:
        return {name: col for name, col in zip(self._names, self.cols, strict=True)
                if name != "symbol"}

    def nan_columns(self) -> set[str]:
        return self._nan


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

    def add_columns(self, columns: Sequence[list[Any]], n: int) -> bool:
        """``GenericBuilder.add_columns``: False, nothing taken, for columns of another width."""
        if (self.cols and len(columns) != len(self.cols)) or any(len(v) != n for v in columns):
            return False
        if not self.cols:
            self.cols = [[] for _ in columns]
        for col, values in zip(self.cols, columns, strict=True):
            col.extend(values)
        self.n += n
        return True

    def rollback(self) -> None:
        for col in self.cols:
            del col[self.n:]

    def nbytes(self) -> int:
        return 8 * self.n * len(self.cols)

    def ts_values(self) -> Sequence[int]:
        return self.cols[0] if self.cols else []

    def column_buffers(self, schema: Schema) -> dict[str, Any]:
        """Positional: the rows must follow ``schema``'s columns."""
        return {name: col for name, col in zip(schema.names, self.cols, strict=True)
                if name != "symbol"}


class Batch:
    """Chunks drained from one lane, in order, with the lane's schema and symbol; becomes one
    frame of that schema. Iterating it yields tuples (tests, and rare slow paths)."""

    __slots__ = ("_ts_range", "chunks", "n", "schema", "symbol")

    def __init__(self, chunks: Sequence[Builder], schema: Schema, symbol: str) -> None:
        self.chunks = list(chunks)
        self.n = sum(c.n for c in self.chunks)
        self.schema = schema
        self.symbol = symbol
        self._ts_range: tuple[int, int] | None = None

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
        self._ts_range = None

    def nbytes(self) -> int:
        return sum(c.nbytes() for c in self.chunks)

    def ts_range(self) -> tuple[int, int]:
        """(min, max) of ``ts_ms`` without building a frame (once: a drained batch's chunks
        are sealed; ``extend`` forgets it)."""
        if self._ts_range is None:
            self._ts_range = self._scan_ts()
        return self._ts_range

    def _scan_ts(self) -> tuple[int, int]:
        parts = [c.ts_values() for c in self.chunks if c.n]
        if len(parts) > 1 and all(_int64(ts) for ts in parts):
            # one NumPy pass over the chunks' times joined (a C-level copy), not two per chunk
            view = np.concatenate([np.asarray(ts, dtype=np.int64) for ts in parts])
            return int(view.min()), int(view.max())
        lo, hi = None, None
        for ts in parts:
            if not len(ts):
                continue
            if _int64(ts):
                view = np.asarray(ts, dtype=np.int64)
                a, b = int(view.min()), int(view.max())
            else:
                a, b = min(ts), max(ts)
            lo = a if lo is None or a < lo else lo
            hi = b if hi is None or b > hi else hi
        if lo is None or hi is None:
            raise ValueError("empty batch")
        return int(lo), int(hi)

    def to_frame(self, schema: Schema | None = None, *, for_file: bool = False,
                 timestamps: bool = False) -> pl.DataFrame:
        """All chunks as one frame with the schema's columns in order (``schema`` overrides the
        lane's; ``for_file`` leaves out the ``symbol`` column, which the path carries).
        ``timestamps`` makes the time columns UTC timestamps (as a file holds them) while a
        batch of one shape is built, saving a second pass; a caller that needs them checks the
        types (a batch of several shapes keeps int64 ms).

        Chunks of one shape are joined column by column in C (array ``extend``), so the Python
        work is O(shapes x columns + chunks), not O(chunks x columns); each joined buffer goes
        to Polars through NumPy without a per-value step (NaN becomes null on the way for the
        columns that use NaN for null). Shapes that interleave (quote and depth rows)
        become one frame each and are put in time order, ties kept in arrival order."""
        schema = schema or self.schema
        chunks = [c for c in self.chunks if c.n]
        if not chunks:
            empty = pl.DataFrame(schema=schema.polars)
            return empty.drop("symbol") if for_file and "symbol" in empty.columns else empty
        groups: dict[Any, list[Builder]] = {}
        for c in chunks:
            groups.setdefault(c.group_key(), []).append(c)
        nan: set[str] = set()
        for c in chunks:
            nan |= c.nan_columns()
        joined = [(members, members[0].join_columns(members, schema))
                  for members in groups.values()]
        floats = [n for n, t in schema.columns if t == pl.Float64 and n != "symbol"]
        if len(joined) > 1:  # as ever: a float column one shape lacks means NaN is null in it
            for _members, cols in joined:
                nan.update(n for n in floats if n not in cols)
        if len(joined) == 1:
            df = _frame(joined[0][1], schema, nan, len(self), timestamps=timestamps)
        else:  # time order, ties in arrival order: one gather, not a sort query
            offsets, at = {}, 0
            for c in chunks:
                offsets[id(c)] = at
                at += c.n
            frames, pos = [], []
            for members, cols in joined:
                pos += [np.arange(offsets[id(c)], offsets[id(c)] + c.n, dtype=np.int64)
                        for c in members]
                # times stay int64 here: Polars 2.1 gathers a frame with UTC timestamp
                # columns about ten times slower than one with int64 ones
                frames.append(_frame(cols, schema, nan, 0, nulls=False))
            # the columns a shape lacks come as nulls from the concat; then schema order
            both = pl.concat(frames, how="diagonal")
            df = pl.DataFrame([both.get_column(n) for n, _t in schema.columns if n != "symbol"])
            order = np.lexsort((np.concatenate(pos), df.get_column("ts_ms").to_numpy()))
            if len(order) > 1 and not bool((order[1:] > order[:-1]).all()):
                df = df[order]  # else the shapes' rows are in time order already
        if for_file or "symbol" not in schema.polars:
            return df
        return df.with_columns(pl.lit(self.symbol, pl.String).alias("symbol")).select(
            schema.names)


def _int64(ts: Sequence[int]) -> bool:
    """A column NumPy reads as int64 without a per-value step."""
    return (isinstance(ts, array) and ts.typecode == "q") or (
        isinstance(ts, np.ndarray) and ts.dtype == np.int64)


_NUMPY = {"q": np.int64, "d": np.float64, "b": np.int8}


_SMALL = 256  # below this many values a column goes to Polars as an array (less overhead)


def _frame(cols: dict[str, Any], schema: Schema, nan: set[str], n: int, *,
           nulls: bool = True, timestamps: bool = False) -> pl.DataFrame:
    """One shape's ``n`` joined rows as a frame of the ``schema`` columns but ``symbol``, in
    order, without a query: a column the shape lacks is all null (left out without ``nulls``);
    ``nan`` names the float columns whose NaN values mean null. ``timestamps``: the epoch-ms
    time columns become UTC timestamps (a reinterpretation of the int64 values)."""
    series: list[pl.Series] = []
    for name, dtype in schema.columns:
        if name == "symbol":
            continue
        buf = cols.get(name)
        if buf is None:
            if not nulls:
                continue
            s = pl.Series(name, [None] * n, dtype=dtype)
        elif isinstance(buf, pl.Series):  # a slice of one Series holding several columns
            s = buf.alias(name)
            if name in nan:
                s = s.fill_nan(None)
        elif isinstance(buf, np.ndarray):
            s = pl.Series(name, buf, nan_to_null=name in nan)
        elif isinstance(buf, array):
            if len(buf) < _SMALL and name not in nan:
                s = pl.Series(name, buf)
            else:
                s = pl.Series(name, np.frombuffer(buf, dtype=_NUMPY[buf.typecode]),
                              nan_to_null=name in nan)
            if dtype == pl.Boolean:
                s = s.cast(pl.Boolean)
        else:
            s = pl.Series(name, buf, dtype=dtype, strict=False)
            if name in nan and dtype == pl.Float64:
                s = s.fill_nan(None)
        if timestamps and name in EPOCH_MS_COLUMNS and s.dtype == pl.Int64:
            s = s.cast(TIMESTAMP)
        series.append(s)
    return pl.DataFrame(series)


def join_buffers(parts: list[Any], sizes: list[int], dtype: Any) -> Any:
    """One column from its chunks' buffers (None: the chunk lacks it), always a new buffer
    (an ``array`` when every part is one, else a list) that no builder appends to."""
    if all(isinstance(p, array) for p in parts):
        out = parts[0][:]
        for p in parts[1:]:
            out.extend(p)
        return out
    if dtype == pl.Float64 and all(p is None or isinstance(p, array) for p in parts):
        out = array("d")
        for p, n in zip(parts, sizes, strict=True):
            out.extend(p if p is not None else _NAN1 * n)
        return out
    values: list[Any] = []  # a list column somewhere (strings, or values an array refused)
    for p, n in zip(parts, sizes, strict=True):
        values.extend(p if p is not None else [None] * n)
    return values


_NAN1 = array("d", [NAN])


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

    def to_frame(self, schema: Schema | None = None, *, for_file: bool = False,
                 timestamps: bool = False) -> pl.DataFrame:
        if for_file and "symbol" in self.frame.columns:
            return self.frame.drop("symbol")
        return self.frame


def default_schema(kind: str, depth_levels: int) -> Schema:
    """The frame schema of a lane built without one: the kind's own."""
    return orderbook_schema(depth_levels) if kind == ORDERBOOK else schema_for(kind)
