"""Shared test helpers: configs in a temp dir, the fixtures folder, fake I/O; the ``alone``
mark (``alone.py``); the order tests start in and the number of xdist workers (``order.py``);
bytecode for the processes the tests start (``bytecode.py``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from trio_harvest.config import Config, build_config

from .alone import MARK, held
from .bytecode import compile_package, written
from .order import slowest_first

# wall-clock speed is never asserted, nor by hypothesis's per-example deadline (200 ms by
# default), which a loaded machine or a busy xdist worker overruns
settings.register_profile("trio_harvest", deadline=None)
settings.load_profile("trio_harvest")

# ``shared/fixtures`` beside the checkout (a worktree may sit one level deeper than the repo)
FIXTURES = next((p / "shared" / "fixtures" for p in Path(__file__).resolve().parents
                 if (p / "shared" / "fixtures").is_dir()),
                Path(__file__).resolve().parents[2] / "shared" / "fixtures")


def make_config(tmp_path: Path, **overrides: Any) -> Config:
    # The journal is on by default for users; tests of other parts run without it
    # (its worker thread would make an autojump MockClock leap). tests/journal/ turn it on.
    # Background compaction (on by default) likewise: tests/storage/ turn it on.
    layer: dict[str, Any] = {"data_dir": tmp_path / "data", "journal": False,
                             "auto_compact": False}
    layer.update(overrides)
    return build_config(layer)


@pytest.fixture
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.skip("../shared/fixtures is not present")
    return FIXTURES


def pytest_configure(config: pytest.Config) -> None:
    compile_package()
    config.addinivalue_line(
        "markers", f"{MARK}: runs with no other test beside it, also under pytest-xdist "
        "(a timing bound measured on a machine only the test loads)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    with held(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_collection(session: pytest.Session) -> Iterator[None]:
    with written():
        return (yield)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    slowest_first(items)


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist, which ``-p no:xdist`` leaves out
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: five workers per two cores. Most tests wait on real processes, sockets and
    timers rather than compute: on 2 cores, four workers left the cores about half idle (the
    whole suite in 4:39), five kept them about two-thirds busy (3:58); six, with other work
    on the machine too, saturated them and timing-bound tests failed."""
    return max(1, 5 * (os.cpu_count() or 1) // 2)
