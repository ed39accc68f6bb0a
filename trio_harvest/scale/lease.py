"""The shard lease on object storage: keeps two *hosts* off the same shard of one bucket.

Owns one small object per shard, ``<prefix>/_locks/shard-I-of-N.lease`` (JSON: holder host,
expiry), written with conditional PUTs only: created if absent, renewed or taken over only if it
is still the version read (``If-Match`` on its ETag), so two hosts can never both win. A lease
held by another host and not expired refuses the start with one line (``ConfigError``, exit 2); a
lease of *this* host is taken over at once (on one host the ``flock`` of lock.py already keeps a
second process out, so its holder can only be this host's dead predecessor — a restarted worker
or pod). Blocking: call from a thread. Never deletes a lease it does not hold.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import PurePath

from ..errors import ConfigError
from ..storage.s3store import Changed, S3Store
from .lock import LOCK_DIR
from .shards import Shard

log = logging.getLogger("trio_harvest.lease")

LEASE_TTL = 60.0  # a crashed host's shard is free again this long after its last renewal
RENEW_EVERY = 20.0


def lease_key(shard: Shard) -> PurePath:
    return PurePath(LOCK_DIR, f"{shard.slug}.lease")


class ShardLease:
    def __init__(self, store: S3Store, shard: Shard, *, holder: str | None = None,
                 ttl: float = LEASE_TTL, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.shard = shard
        self.holder = holder or socket.gethostname()
        self.ttl = ttl
        self.clock = clock
        self.key = lease_key(shard)
        self.e_tag: str | None = None
        self.lost = False

    def _body(self) -> bytes:
        expires = int((self.clock() + self.ttl) * 1000)
        return json.dumps({"holder": self.holder, "expires_ms": expires}).encode()

    def acquire(self) -> None:
        try:
            self.e_tag = self.store.create(self.key, self._body())
            return
        except FileExistsError:
            pass
        try:
            raw, tag = self.store.read_tagged(self.key)
        except FileNotFoundError:  # released in between: try once more from the start
            self.e_tag = self.store.create(self.key, self._body())
            return
        try:
            doc = json.loads(raw)
            holder, expires = str(doc["holder"]), int(doc["expires_ms"])
        except (ValueError, KeyError, TypeError):
            holder, expires = "?", 0  # unreadable: treat as expired
        if holder != self.holder and expires > self.clock() * 1000:
            until = datetime.fromtimestamp(expires / 1000, UTC).strftime("%H:%M:%SZ")
            raise ConfigError(f"shard {self.shard} of {self.store.location} is leased by host "
                              f"{holder} until {until} (lease {self.key}); stop it first or give "
                              "another --shard")
        try:
            self.e_tag = self.store.replace_if(self.key, self._body(), tag)
        except Changed:
            raise ConfigError(f"shard {self.shard} of {self.store.location}: another host took "
                              f"its lease ({self.key}) just now") from None
        if holder != self.holder:
            log.warning("took over the expired lease of shard %s from host %s", self.shard, holder)

    def renew(self) -> bool:
        """Extend the lease; False (and logged) if another host took it meanwhile."""
        if self.e_tag is None or self.lost:
            return False
        try:
            self.e_tag = self.store.replace_if(self.key, self._body(), self.e_tag)
            return True
        except Changed:
            self.lost = True
            log.error("the lease of shard %s was taken by another host: two hosts may now "
                      "harvest the same symbols (duplicates, never a loss)", self.shard)
            return False
        except OSError as exc:  # the bucket is away: try again at the next renewal
            log.warning("could not renew the lease of shard %s: %s", self.shard, exc)
            return True

    def release(self) -> None:
        if self.e_tag is None or self.lost:
            return
        try:
            _raw, tag = self.store.read_tagged(self.key)
            if tag == self.e_tag:
                self.store.delete(self.key)
        except OSError as exc:
            log.warning("could not release the lease of shard %s: %s (it expires by itself)",
                        self.shard, exc)
        self.e_tag = None


class Renewer:
    """Renews a lease every ``every`` seconds in a daemon thread until ``stop()``."""

    def __init__(self, lease: ShardLease, every: float = RENEW_EVERY) -> None:
        self.lease = lease
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="shard-lease", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            if not self.lease.renew():
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
