"""S3-compatible object storage of whole files: one PUT per file that refuses to overwrite.

Owns the same seam as ``LocalStore`` (write a file atomically, list, read, delete) on a bucket,
through obstore's *sync* API (blocking: call it from a worker thread, never from the trio loop;
obstore's async API is asyncio-only). A file is encoded in memory and sent as one non-multipart
PUT with ``If-None-Match: *`` (obstore ``mode="create"``), so a partial object is never visible
and a name is never reused. Never retries for long: a failed PUT is an ``OSError`` within
seconds and rotation dead-letters the batch on local disk.

Idempotent: names are unique per process, so an object that a retry finds under our name with
our bytes (size and MD5 ETag, else the bytes) is our own earlier attempt whose reply was lost: a
success, never a second copy; after a failed PUT one HEAD looks for it the same way. Fenced:
no PUT of a file and no DELETE while ``fence.py`` refuses writes to this location (the shard
lease could not be renewed, or was lost).

Publishing: an object store has no rename, so the gate is decided *after* the PUT. If the waiter
gave up meanwhile (it has dead-lettered the batch), the object is deleted again and the write
reports ``Abandoned``; a crash in that instant leaves rows both in the bucket and in the dead
letter (a duplicate, never a loss).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, BinaryIO

import obstore
from obstore.exceptions import AlreadyExistsError, NotFoundError, PreconditionError
from obstore.store import S3Store as _ObStore

from . import fence
from .gate import PublishGate
from .location import S3Location, S3Options, effective
from .partitions import TMP_PREFIX
from .store import Abandoned

if TYPE_CHECKING:
    from obstore.store import ClientConfig

log = logging.getLogger("trio_harvest.s3")

CONNECT_TIMEOUT = timedelta(seconds=5)
REQUEST_TIMEOUT = timedelta(seconds=20)
RETRIES = 2
RETRY_TIMEOUT = timedelta(seconds=10)


class Changed(OSError):
    """A conditional write lost: the object is no longer the version it was read as."""


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


class S3Store:
    def __init__(self, loc: S3Location, options: S3Options | None = None) -> None:
        options = effective(options or S3Options(), os.environ)
        self.loc = loc
        self.options = options
        client: ClientConfig = {"connect_timeout": CONNECT_TIMEOUT, "timeout": REQUEST_TIMEOUT}
        if options.allow_http:
            client["allow_http"] = True
        retry: Any = {"max_retries": RETRIES, "retry_timeout": RETRY_TIMEOUT,
                      "backoff": {"init_backoff": timedelta(milliseconds=100),
                                  "max_backoff": timedelta(seconds=2), "base": 2}}
        self._store = _ObStore(loc.bucket, prefix=loc.prefix or None, client_options=client,
                               retry_config=retry, **options.store_kwargs())

    @property
    def location(self) -> str:
        return self.loc.url

    def url(self, rel: PurePath | str) -> str:
        return f"{self.loc.url}/{PurePath(rel).as_posix()}"

    def write_atomic(
        self, rel: PurePath, produce: Callable[[BinaryIO], None], gate: PublishGate | None = None
    ) -> int:
        """PUT ``rel`` whole; returns its size. ``FileExistsError`` if the name exists (never
        overwritten), ``Abandoned`` if the gate was abandoned, ``OSError`` on any other failure."""
        buf = io.BytesIO()
        produce(buf)
        data = buf.getvalue()
        key = rel.as_posix()
        if gate is not None and gate.state == "abandoned":
            raise Abandoned(str(rel))
        fenced = fence.refusal(self.loc.url)
        if fenced is not None:
            raise OSError(f"PUT {self.url(rel)}: {fenced}")
        try:
            obstore.put(self._store, key, data, mode="create", use_multipart=False)
        except (AlreadyExistsError, FileExistsError):
            # our names are unique per process: an object already there is either our own
            # earlier attempt (the server stored it, its reply was lost, the retry met it) or
            # a stranger's; only the same bytes count as ours
            if not self._holds(key, data):
                raise FileExistsError(f"{self.url(rel)} already exists; not overwritten") from None
            log.info("PUT %s: the object is our own earlier attempt (reply lost); done", key)
        except Exception as exc:
            # a timeout or an error after the server may have stored it: look once
            if not self._holds(key, data, quiet=True):
                raise OSError(f"PUT {self.url(rel)}: {_one_line(exc)}") from None
            log.info("PUT %s failed (%s) but the object is there, whole: done", key,
                     _one_line(exc))
        if gate is not None and not gate.try_publish():
            with contextlib.suppress(Exception):  # the batch is in the dead letter: take it back
                obstore.delete(self._store, key)
            raise Abandoned(str(rel))
        return len(data)

    def _holds(self, key: str, data: bytes, *, quiet: bool = False) -> bool:
        """Whether the object at ``key`` is exactly ``data``: its size, then its ETag (the MD5 of
        a single-part PUT on S3 and its clones), else its bytes. ``quiet``: an error is a no."""
        try:
            meta = obstore.head(self._store, key)
            if int(meta["size"]) != len(data):
                return False
            if str(meta.get("e_tag") or "").strip('"').lower() == hashlib.md5(data).hexdigest():
                return True
            return bytes(obstore.get(self._store, key).bytes()) == data  # e.g. SSE-KMS ETags
        except (NotFoundError, FileNotFoundError):
            return False
        except Exception as exc:
            if quiet:
                return False
            raise OSError(f"HEAD {self.url(key)}: {_one_line(exc)}") from None

    def list(self, prefix: PurePath | None = None, suffix: str = "") -> Iterator[PurePath]:
        """Objects below ``prefix``, relative to the store's prefix."""
        pre = None if prefix is None or str(prefix) in ("", ".") else prefix.as_posix().rstrip("/") + "/"
        try:
            for batch in obstore.list(self._store, prefix=pre):
                for meta in batch:
                    path = meta["path"]
                    name = path.rsplit("/", 1)[-1]
                    if not name.startswith(TMP_PREFIX) and path.endswith(suffix):
                        yield PurePath(path)
        except Exception as exc:
            raise OSError(f"LIST {self.loc.url}/{pre or ''}: {_one_line(exc)}") from None

    def list_modified(self, prefix: PurePath, suffix: str = "") -> Iterator[tuple[PurePath, float]]:
        """``list`` with each object's last-modified time (Unix seconds, the server's clock)."""
        pre = prefix.as_posix().rstrip("/") + "/"
        try:
            for batch in obstore.list(self._store, prefix=pre):
                for meta in batch:
                    path = meta["path"]
                    if not path.rsplit("/", 1)[-1].startswith(TMP_PREFIX) and path.endswith(suffix):
                        yield PurePath(path), meta["last_modified"].timestamp()
        except Exception as exc:
            raise OSError(f"LIST {self.loc.url}/{pre}: {_one_line(exc)}") from None

    def children(self, prefix: PurePath | None = None) -> tuple[str, ...]:
        """Names of the "folders" directly below ``prefix`` (one delimiter listing)."""
        pre = None if prefix is None or str(prefix) in ("", ".") else prefix.as_posix().rstrip("/") + "/"
        try:
            res = obstore.list_with_delimiter(self._store, prefix=pre)
        except Exception as exc:
            raise OSError(f"LIST {self.loc.url}/{pre or ''}: {_one_line(exc)}") from None
        return tuple(sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in res["common_prefixes"]))

    def read_bytes(self, rel: PurePath) -> bytes:
        try:
            return bytes(obstore.get(self._store, rel.as_posix()).bytes())
        except (NotFoundError, FileNotFoundError):
            raise FileNotFoundError(self.url(rel)) from None
        except Exception as exc:
            raise OSError(f"GET {self.url(rel)}: {_one_line(exc)}") from None

    def delete(self, rel: PurePath, *, fenced: bool = True) -> None:
        refused = fence.refusal(self.loc.url) if fenced else None
        if refused is not None:
            raise OSError(f"DELETE {self.url(rel)}: {refused}")
        try:
            obstore.delete(self._store, rel.as_posix())
        except (NotFoundError, FileNotFoundError):
            return
        except Exception as exc:
            raise OSError(f"DELETE {self.url(rel)}: {_one_line(exc)}") from None

    def temp_files(self) -> Iterator[Path]:
        """None: an object is PUT whole under its final name, there are no temp files."""
        return iter(())

    def remove_stale_temps(self, now: float | None = None) -> int:
        return 0

    # -- conditional writes (the shard lease) -------------------------------------------------

    def create(self, rel: PurePath, data: bytes) -> str:
        """PUT only if absent; the new ETag. ``FileExistsError`` if the object exists."""
        try:
            res = obstore.put(self._store, rel.as_posix(), data, mode="create", use_multipart=False)
        except (AlreadyExistsError, FileExistsError):
            raise FileExistsError(self.url(rel)) from None
        except Exception as exc:
            raise OSError(f"PUT {self.url(rel)}: {_one_line(exc)}") from None
        return str(res["e_tag"])

    def replace_if(self, rel: PurePath, data: bytes, e_tag: str) -> str:
        """PUT only if the object still has ``e_tag``; the new ETag. ``Changed`` if not."""
        try:
            res = obstore.put(self._store, rel.as_posix(), data, mode={"e_tag": e_tag},
                              use_multipart=False)
        except PreconditionError:
            raise Changed(self.url(rel)) from None
        except Exception as exc:
            raise OSError(f"PUT {self.url(rel)}: {_one_line(exc)}") from None
        return str(res["e_tag"])

    def read_tagged(self, rel: PurePath) -> tuple[bytes, str]:
        """The object and its ETag; ``FileNotFoundError`` if absent."""
        try:
            got = obstore.get(self._store, rel.as_posix())
            return bytes(got.bytes()), str(got.meta["e_tag"])
        except (NotFoundError, FileNotFoundError):
            raise FileNotFoundError(self.url(rel)) from None
        except Exception as exc:
            raise OSError(f"GET {self.url(rel)}: {_one_line(exc)}") from None

    def probe(self) -> None:
        """One cheap request: ``OSError`` with one line if the bucket cannot be reached."""
        try:
            next(iter(obstore.list(self._store, prefix="venue=", chunk_size=1)), None)
        except Exception as exc:
            raise OSError(_one_line(exc)) from None
