"""A session's errors beside the stop's cancellation: only what is not an error leaves the
connection; a server's close that arrives as the harvest stops must not end the harvest."""

from __future__ import annotations

from websockets.exceptions import ConnectionClosedOK
from websockets.frames import Close

from trio_harvest.ingest.connection import RECOVERABLE, not_ours


def _closed_ok() -> ConnectionClosedOK:
    return ConnectionClosedOK(Close(1000, "OK"), Close(1000, "OK"), rcvd_then_sent=True)


def test_a_recoverable_error_beside_an_interrupt_is_left_behind() -> None:
    assert isinstance(_closed_ok(), RECOVERABLE)
    group = BaseExceptionGroup("session", [_closed_ok(), KeyboardInterrupt()])
    fatal = not_ours(group)
    assert fatal is not None
    assert [type(e) for e in fatal.exceptions] == [KeyboardInterrupt]


def test_nested_groups_are_judged_leaf_by_leaf() -> None:
    inner_errors = ExceptionGroup("keepalive", [_closed_ok(), ValueError("bug")])
    inner_mixed = BaseExceptionGroup("reader", [KeyboardInterrupt(), _closed_ok()])
    fatal = not_ours(BaseExceptionGroup("session", [inner_errors, inner_mixed]))
    assert fatal is not None
    (only,) = fatal.exceptions
    assert isinstance(only, BaseExceptionGroup)
    assert [type(e) for e in only.exceptions] == [KeyboardInterrupt]


def test_errors_alone_stay_the_sessions_own() -> None:
    assert not_ours(ExceptionGroup("session", [_closed_ok(), OSError("reset")])) is None
