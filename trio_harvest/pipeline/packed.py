"""Packed shapes: builders whose fixed-width columns live in one record buffer.

Owns the packed layout: a row's integer, float and flag values are packed into one
little-endian record by a single ``struct`` call (one C call per row instead of one Python-level
``array.append`` per column) and appended to a ``bytearray``; text columns stay Python lists.
At a chunk's join, NumPy reads the records as a structured array and copies each field into
its own contiguous column (C-level, per chunk). A value a column cannot hold (an id beyond
int64, ``None`` or text where a number goes) makes ``struct`` refuse the whole record, so a
row is appended whole or not at all.

A builder's record buffer holds exactly ``n`` records: a row is packed whole before it is
appended, and ``rollback`` cuts back to ``n``.

Pure: no trio, no I/O. Never changes what a column holds: the frame a packed chunk becomes is
the frame per-column arrays made (the same dtypes, NaN standing for null where declared).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from ..kinds import Schema
from .chunks import Builder

# struct code -> (NumPy field type, the column's NumPy dtype in a frame)
_CODES = {"q": ("<i8", np.int64), "d": ("<f8", np.float64), "b": ("i1", np.bool_)}

PACK_ERRORS = (struct.error, OverflowError, TypeError, ValueError)  # a value no field holds


class Packed(Builder):
    """A builder of ``RECORD`` rows (``FIELDS``: (column name, ``q`` int64 / ``d`` float64 /
    ``b`` flag)) plus the text columns ``TEXT`` (attribute names, lists). Subclasses append a
    row with ``self.rec += self.PACK(...)`` (and their text values), then ``self.n += 1``."""

    __slots__ = ("rec",)
    FIELDS: ClassVar[tuple[tuple[str, str], ...]] = ()
    TEXT: ClassVar[tuple[tuple[str, str], ...]] = ()  # (attribute, column name)
    RECORD: ClassVar[struct.Struct]
    PACK: ClassVar[Any]
    DTYPE: ClassVar[np.dtype[Any]]
    SIZE: ClassVar[int]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.FIELDS:
            cls.RECORD = struct.Struct("<" + "".join(code for _, code in cls.FIELDS))
            cls.PACK = cls.RECORD.pack
            cls.SIZE = cls.RECORD.size
            cls.DTYPE = np.dtype([(name, _CODES[code][0]) for name, code in cls.FIELDS])

    def __init__(self) -> None:
        super().__init__()
        self.rec = bytearray()
        for attr, _name in self.TEXT:
            setattr(self, attr, [])

    def _fields(self, buf: Any, names: Sequence[str] | None = None) -> dict[str, Any]:
        """The fields ``names`` (None: all) of the records in ``buf``, each copied into a new
        contiguous NumPy array (so no view of ``buf`` outlives the call: a builder's own
        buffer can grow again)."""
        records = np.frombuffer(buf, dtype=self.DTYPE)
        out: dict[str, Any] = {}
        for name, code in self.FIELDS:
            if names is None or name in names:
                col = records[name]
                out[name] = col.astype(np.bool_) if code == "b" else np.ascontiguousarray(col)
        return out

    def column(self, name: str) -> Any:
        """One fixed-width column of this chunk: a new contiguous NumPy array."""
        return self._fields(self.rec, (name,))[name]

    def ts_values(self) -> Sequence[int]:
        return self.column("ts_ms")  # type: ignore[no-any-return]

    def _cols(self) -> list[Any]:
        """Every column (fixed-width ones as NumPy copies, then the text lists)."""
        return [*self._fields(self.rec).values(), *(getattr(self, attr) for attr, _ in self.TEXT)]

    def rollback(self) -> None:
        del self.rec[self.n * self.SIZE:]
        for attr, _name in self.TEXT:
            del getattr(self, attr)[self.n:]

    def nbytes(self) -> int:
        return len(self.rec) + 8 * sum(len(getattr(self, attr)) for attr, _ in self.TEXT)

    def column_buffers(self, schema: Schema) -> dict[str, Any]:
        return self.join_columns([self], schema)

    def join_columns(self, members: Sequence[Builder], schema: Schema) -> dict[str, Any]:
        """The records of ``members`` joined once (one bytes copy), then cut into one column
        per field by NumPy; the text lists joined end to end."""
        packed = [c for c in members if isinstance(c, Packed)]
        out = self._fields(packed[0].rec if len(packed) == 1 else b"".join(c.rec for c in packed))
        for attr, name in self.TEXT:
            text: list[Any] = []
            for c in packed:
                text.extend(getattr(c, attr)[: c.n])
            out[name] = text
        return out
