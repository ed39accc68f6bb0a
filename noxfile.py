"""nox sessions: tests, lint (ruff incl. ASYNC rules), types (mypy --strict), bench."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "types"]
nox.options.default_venv_backend = "venv"


@nox.session
def tests(session: nox.Session) -> None:
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", ".")


@nox.session
def types(session: nox.Session) -> None:
    session.install("-e", ".[test]", "mypy")
    session.run("mypy")


@nox.session
def bench(session: nox.Session) -> None:
    """Every benchmark, quick by default (a few minutes); ``nox -s bench -- --full`` for the
    full runs. Each prints a table and, as its last line, one JSON object."""
    session.install("-e", ".[test,bench]")
    full = "--full" in session.posargs
    args = [a for a in session.posargs if a != "--full"]
    for script in BENCHMARKS:
        session.run("python", script, *([] if full else ["--quick"]), *args)


BENCHMARKS = ("bench/feature_table.py", "bench/throughput.py", "bench/soak.py",
              "bench/shutdown_flush.py", "bench/workers.py", "bench/journal_append.py",
              "bench/crash.py", "bench/hotpath.py", "bench/peer.py", "bench/compression.py")
