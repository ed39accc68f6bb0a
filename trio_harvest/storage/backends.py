"""The storage seam as a type, and the one place that picks a backend for a location.

Owns the ``Store`` protocol (what rotation, recovery and resume may call) and ``open_store``:
a path is a ``LocalStore``, ``s3://bucket/prefix`` an ``S3Store``. Never does I/O itself
(building an S3 client opens no connection).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path, PurePath
from typing import Any, BinaryIO, Protocol

from .gate import PublishGate
from .location import S3Options, as_s3_url, parse_s3
from .store import LocalStore


class Store(Protocol):
    @property
    def location(self) -> str: ...

    def write_atomic(
        self, rel: PurePath, produce: Callable[[BinaryIO], None], gate: PublishGate | None = None
    ) -> int: ...

    def list(self, prefix: PurePath | None = None, suffix: str = "") -> Iterator[PurePath]: ...

    def list_modified(self, prefix: PurePath, suffix: str = "") -> Iterator[tuple[PurePath, float]]: ...

    def read_bytes(self, rel: PurePath) -> bytes: ...

    def delete(self, rel: PurePath) -> None: ...

    def temp_files(self) -> Iterator[Path]: ...

    def remove_stale_temps(self, now: float | None = None) -> int: ...


def is_remote(location: str | Path) -> bool:
    return as_s3_url(location) is not None


def open_store(location: str | Path, options: S3Options | None = None) -> Store:
    url = as_s3_url(location)
    if url is None:
        return LocalStore(Path(location))
    from .s3store import S3Store

    return S3Store(parse_s3(url), options or S3Options())


def data_location(config: Any) -> str | Path:
    """Where ``config``'s Parquet goes: its ``data_url`` if it has one, else its ``data_dir``."""
    url: str = config.data_url
    path: Path = config.data_dir
    return url or path


def data_store(config: Any) -> Store:
    return open_store(data_location(config), S3Options.of(config))
