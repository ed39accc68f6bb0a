"""The shard lease on object storage: one owner per shard of a bucket, whoever and wherever the
contender is (another host, another container with the same hostname, another local folder).

Owns one small object per shard, ``<prefix>/_locks/shard-I-of-N.lease`` (JSON: holder host,
pid, run token, expiry), written with conditional PUTs only: created if absent, renewed or taken
over only if it is still the version read (``If-Match`` on its ETag), so two contenders can
never both win. A lease that has not expired refuses the start with one line naming its holder
(``ConfigError``, exit 2). The one exception is proof that its holder is gone: the run whose
token the local shard lock (lock.py) recorded before we took that lock; a restarted worker
or pod on the same local folder so goes on at once.

The owner fences itself: each successful renewal allows writes to the bucket for half the
lease (``storage/fence.py``), so a holder cut off from the bucket stops changing it (its rows go
to the local dead letter) well before its lease can expire and a contender may take over.
A lease seen taken by another closes the fence for good. Blocking: call from a thread. Never
deletes a lease it does not hold.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import PurePath

from ..errors import ConfigError
from ..storage import fence
from ..storage.s3store import Changed, S3Store
from .lock import LOCK_DIR
from .shards import Shard

log = logging.getLogger("trio_harvest.lease")

# A crashed owner's shard is free again this long after its last renewal. Writes stop at half
# of it without a renewal; a PUT already under way ends within the S3 client's bound (about
# 32 s: request timeout plus retry window), so with 90 s some 13 s remain for clock skew.
LEASE_TTL = 90.0
FENCE_SHARE = 0.5  # of the TTL: how long a renewal allows writes
RENEWALS_PER_FENCE = 4  # renewal attempts before the fence closes


def lease_key(shard: Shard) -> PurePath:
    return PurePath(LOCK_DIR, f"{shard.slug}.lease")


def _until(expires_ms: int) -> str:
    return datetime.fromtimestamp(expires_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


class ShardLease:
    def __init__(self, store: S3Store, shard: Shard, *, holder: str | None = None,
                 token: str | None = None, predecessor: str = "", ttl: float = LEASE_TTL,
                 clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.shard = shard
        self.holder = holder or socket.gethostname()
        self.pid = os.getpid()
        self.token = token or f"{self.holder}:{self.pid}:{os.urandom(8).hex()}"
        self.predecessor = predecessor  # a run proven gone (lock.py): its lease is ours at once
        self.ttl = ttl
        self.clock = clock
        self.monotonic = monotonic
        self.key = lease_key(shard)
        self.e_tag: str | None = None
        self.lost = False

    @property
    def renew_every(self) -> float:
        return self.ttl * FENCE_SHARE / RENEWALS_PER_FENCE

    def _body(self) -> bytes:
        expires = int((self.clock() + self.ttl) * 1000)
        return json.dumps({"holder": self.holder, "pid": self.pid, "token": self.token,
                           "expires_ms": expires}).encode()

    def _granted(self, started: float, *, acquired: bool = False) -> None:
        """A write of the lease that began at ``started`` (monotonic) succeeded."""
        why = (f"fenced: the lease of shard {self.shard} could not be renewed for "
               f"{self.ttl * FENCE_SHARE:g}s (the bucket is unreachable?); rows go to the local "
               "dead letter until it is")
        fence.allow_until(self.store.location, started + self.ttl * FENCE_SHARE, why,
                          reopen=acquired)

    def acquire(self) -> None:
        started = self.monotonic()
        try:
            self.e_tag = self.store.create(self.key, self._body())
            self._granted(started, acquired=True)
            return
        except FileExistsError:
            pass
        try:
            raw, tag = self.store.read_tagged(self.key)
        except FileNotFoundError:  # released in between: try once more from the start
            self.e_tag = self.store.create(self.key, self._body())
            self._granted(started, acquired=True)
            return
        try:
            doc = json.loads(raw)
            holder, expires = str(doc["holder"]), int(doc["expires_ms"])
            pid, token = doc.get("pid", "?"), str(doc.get("token", ""))
        except (ValueError, KeyError, TypeError, AttributeError):
            holder, expires, pid, token = "?", 0, "?", ""  # unreadable: treat as expired
        gone = bool(token) and token == self.predecessor
        if expires > self.clock() * 1000 and not gone:
            raise ConfigError(f"shard {self.shard} of {self.store.location} is leased by host "
                              f"{holder} until {_until(expires)} (pid {pid}, lease {self.key}); "
                              "stop it first, wait for the lease to expire, or give another "
                              "--shard")
        try:
            self.e_tag = self.store.replace_if(self.key, self._body(), tag)
        except Changed:
            raise ConfigError(f"shard {self.shard} of {self.store.location}: another process "
                              f"took its lease ({self.key}) just now") from None
        self._granted(started, acquired=True)
        if gone:
            log.info("took over the lease of shard %s from this folder's previous run (pid %s)",
                     self.shard, pid)
        else:
            log.warning("took over the expired lease of shard %s from host %s (pid %s)",
                        self.shard, holder, pid)

    def renew(self) -> bool:
        """Extend the lease; True only if it was extended. False if the bucket did not answer
        (the fence closes by itself unless a later renewal succeeds in time) or if another
        process took the lease meanwhile (``lost``: the fence closes for good)."""
        if self.e_tag is None or self.lost:
            return False
        started = self.monotonic()
        try:
            self.e_tag = self.store.replace_if(self.key, self._body(), self.e_tag)
        except Changed:
            self.lost = True
            fence.close(self.store.location, f"fenced: the lease of shard {self.shard} was "
                        "taken by another process; this one writes nothing more to the bucket")
            log.error("the lease of shard %s was taken by another process: writing nothing "
                      "more to the bucket (rows go to the local dead letter)", self.shard)
            return False
        except OSError as exc:
            log.warning("could not renew the lease of shard %s: %s", self.shard, exc)
            return False
        self._granted(started)
        return True

    def release(self) -> None:
        if self.e_tag is None or self.lost:
            return
        try:
            _raw, tag = self.store.read_tagged(self.key)
            if tag == self.e_tag:
                self.store.delete(self.key, fenced=False)
        except OSError as exc:
            log.warning("could not release the lease of shard %s: %s (it expires by itself)",
                        self.shard, exc)
        self.e_tag = None


class Renewer:
    """Renews a lease every ``lease.renew_every`` seconds in a daemon thread until ``stop()``
    or until the lease is lost (then ``on_lost()``, once)."""

    def __init__(self, lease: ShardLease, on_lost: Callable[[], None] = lambda: None) -> None:
        self.lease = lease
        self.on_lost = on_lost
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="shard-lease", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.lease.renew_every):
            self.lease.renew()
            if self.lease.lost:
                self.on_lost()
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
