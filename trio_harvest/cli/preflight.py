"""Start-up checks that turn a doomed run into one clear line: is the data directory (or the
bucket of an s3:// one) usable?

Owns the checks of the environment that configuration alone cannot see. Raises ``ConfigError``
(exit code 2); never changes anything beyond creating the configured directories.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..config import Config, ConfigError


def check_writable_dir(path: Path, what: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # exist_ok covers directories: this is a file (or a broken link)
        raise ConfigError(f"{what} {path}: exists and is not a directory") from None
    except OSError as exc:
        raise ConfigError(f"{what} {path}: cannot create it ({exc.strerror or exc})") from None
    if not path.is_dir():
        raise ConfigError(f"{what} {path}: exists and is not a directory")
    probe = path / f".tmp-probe-{os.getpid()}"
    try:
        with open(probe, "wb") as fh:
            fh.write(b"ok")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"{what} {path}: not writable ({exc.strerror or exc})") from None


def preflight(config: Config) -> None:
    check_writable_dir(config.data_dir, "local dir" if config.data_url else "data dir")
    check_writable_dir(config.deadletter_path, "dead-letter dir")
    if config.journal:  # a journal or archive that cannot start is a user mistake
        from ..journal.settings import journal_path

        check_writable_dir(journal_path(config), "journal dir")
        if config.raw_dir is not None:
            check_writable_dir(config.raw_dir, "raw dir")
    check_object_store(config)


def check_object_store(config: Config) -> None:
    """An ``s3://`` data dir: the bucket must answer one listing now, not at the first rotation."""
    if not config.data_url:
        return
    from ..storage.backends import data_store
    from ..storage.s3store import S3Store

    store = data_store(config)
    assert isinstance(store, S3Store)
    try:
        store.probe()
    except OSError as exc:
        raise ConfigError(f"data dir {config.data_url}: cannot reach the bucket ({exc}); check "
                          "--s3-endpoint, --s3-region and the AWS_* credentials") from None
