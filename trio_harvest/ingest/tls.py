"""The process's TLS trust for every client it opens: websockets over ``wss://`` and REST over
``https://``. The system's trust store, plus the CA certificates of ``--ca-file`` when given (a
TLS-intercepting proxy's, a private gateway's, a venue behind a corporate CA).

Owns one verifying ``ssl.SSLContext`` per process (the host name checked, SNI sent): made once,
since loading a CA bundle is tens to hundreds of ms of blocking work, in a worker thread when
asked from the loop; and the check of a CA file, whose failure is one line naming the file.
Never opens a connection.
"""

from __future__ import annotations

import ssl

import trio

_CA_FILE: list[str] = [""]  # the operator's extra CA file ("" none): ``trust``
_CONTEXT: list[ssl.SSLContext] = []  # the context made for it, once


class TrustError(ValueError):
    """A CA file that cannot be used (one line: the file and why)."""


def _add(context: ssl.SSLContext, ca_file: str) -> None:
    try:
        context.load_verify_locations(cafile=ca_file)
    except FileNotFoundError:
        raise TrustError(f"ca_file: {ca_file} does not exist") from None
    except IsADirectoryError:
        raise TrustError(f"ca_file: {ca_file} is a directory, not a PEM file") from None
    except PermissionError:
        raise TrustError(f"ca_file: {ca_file} cannot be read (permission denied)") from None
    except (ssl.SSLError, OSError, ValueError):
        raise TrustError(f"ca_file: {ca_file} holds no usable PEM certificate (it needs one "
                         "or more -----BEGIN CERTIFICATE----- blocks)") from None


def check(ca_file: str) -> None:
    """``TrustError`` unless ``ca_file`` holds at least one usable CA certificate (quick: the
    system's store is not loaded)."""
    _add(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), ca_file)


def load(ca_file: str = "") -> ssl.SSLContext:
    """A verifying client context: the system's trust store and ``ca_file`` ("" none)."""
    context = ssl.create_default_context()
    if ca_file:
        _add(context, ca_file)
    return context


def trust(ca_file: str) -> None:
    """Make ``ca_file`` ("" none) the process's extra trust from now on. A file is checked and
    its context made at once (``TrustError``); without one the context is made on first use."""
    if ca_file == _CA_FILE[0] and (_CONTEXT or not ca_file):
        return
    context = load(ca_file) if ca_file else None
    _CA_FILE[0] = ca_file
    _CONTEXT[:] = [context] if context is not None else []


def ca_file() -> str:
    """The extra CA file in force ("" none)."""
    return _CA_FILE[0]


async def client_context() -> ssl.SSLContext:
    """The process's verifying context (made on first use in a worker thread, off the loop)."""
    if not _CONTEXT:
        context = await trio.to_thread.run_sync(load, _CA_FILE[0])
        if not _CONTEXT:
            _CONTEXT.append(context)
    return _CONTEXT[0]
