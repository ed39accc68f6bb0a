"""A worker's life line (parent.py): end of file on its stdin pipe asks for the clean stop;
outputs whose reader died are quieted; ``--workers auto``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio

from trio_harvest.cli.scale import cores, workers_arg
from trio_harvest.errors import ConfigError
from trio_harvest.scale.parent import (
    REASON,
    check_stdin_is_pipe,
    quiet_broken_outputs,
    stop_on_eof,
)


async def test_end_of_file_asks_for_the_stop_and_bytes_before_it_do_not() -> None:
    r, w = os.pipe()
    reasons: list[str] = []
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stop_on_eof, reasons.append, r)
            os.write(w, b"anything")
            await trio.sleep(0.2)
            assert reasons == []
            os.close(w)
            w = -1
            with trio.fail_after(5):
                while not reasons:
                    await trio.sleep(0.01)
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
    assert reasons == [REASON]


def test_only_a_pipe_or_socket_is_accepted_as_the_life_line(tmp_path: Path) -> None:
    r, w = os.pipe()
    try:
        check_stdin_is_pipe(r)
    finally:
        os.close(r)
        os.close(w)
    with (tmp_path / "f").open("w") as f, pytest.raises(ConfigError, match="--stop-on-eof"):
        check_stdin_is_pipe(f.fileno())


def test_an_output_whose_reader_died_goes_to_dev_null_and_a_read_one_stays(tmp_path: Path) -> None:
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    os.close(r1)  # its reader is gone
    try:
        assert quiet_broken_outputs((w1, w2)) == [w1]
        os.write(w1, b"no broken pipe")  # /dev/null now
        os.write(w2, b"still read")
        assert os.read(r2, 100) == b"still read"
    finally:
        for fd in (w1, r2, w2):
            os.close(fd)


def test_workers_auto_is_one_per_core() -> None:
    assert workers_arg("auto") == min(cores(), 64) >= 1
    assert workers_arg("3") == 3
