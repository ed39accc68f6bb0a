"""N harvester processes on one host under one trio supervisor.

Owns the worker processes: each is ``python -m trio_harvest run … --shard I/N`` in its own
session (a terminal's Ctrl-C reaches only the supervisor, which forwards it once, so a second
Ctrl-C still means "cut the grace short"); a worker that dies is restarted with exponential
backoff (its journal makes that lossless) unless it failed on a user mistake (exit 2); SIGINT and
SIGTERM go to every worker and the supervisor waits for each one's final flush (bounded:
``stop_bound`` later it is killed); one ops endpoint for the host (aggregate.py merges); one
summary at the end. Never harvests, never touches the dataset.

A worker must not outlive its supervisor, yet must still make its final flush when the supervisor
dies without a word (SIGKILL, OOM): each worker's stdin is a pipe whose write end only the
supervisor holds, and a worker started with ``--stop-on-eof`` (parent.py) stops cleanly at end of
file. Not ``PR_SET_PDEATHSIG``: Linux ties it to the forking *thread*, and trio forks from cached
threads that end after ~10 s idle, which stopped every worker ten seconds after its start.
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio

from ..ops.page import PAGE
from ..ops.web import Request, Response, WebServer, bound_port, open_sockets
from .aggregate import WorkerView, host_health, host_metrics, host_status, merge_metrics

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("trio_harvest.supervisor")

EXIT_USAGE = 2
JSON = "application/json"
TEXT = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True, slots=True)
class SupervisorSettings:
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    stable_after: float = 60.0  # a worker that ran this long restarts with the initial delay
    stop_bound: float = 60.0  # after a forwarded stop, kill a worker still running this long
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0  # the host's endpoint; worker i serves on metrics_port + 1 + i
    poll_interval: float = 2.0
    # without --duration a worker never ends on its own: one that exited 0 (someone sent it
    # SIGTERM) is restarted like a crashed one, so the host never silently stops a shard
    restart_clean_exits: bool = False


def worker_port(settings: SupervisorSettings, index: int) -> int:
    return settings.metrics_port + 1 + index if settings.metrics_port else 0


class Supervisor:
    def __init__(self, workers: Sequence[WorkerView], argv_of: Callable[[WorkerView], list[str]],
                 settings: SupervisorSettings, *, handle_signals: bool = True) -> None:
        self.workers = list(workers)
        self.argv_of = argv_of
        self.s = settings
        self.handle_signals = handle_signals
        self.stopping = trio.Event()
        self.stop_signals = 0
        self.fatal: str | None = None
        self.port: int | None = None
        self._procs: dict[int, trio.Process] = {}
        self.log_sink: Callable[[str], None] = _stderr
        self.server = WebServer({"/": self.page, "/metrics": self.scrape,
                                 "/healthz": self.healthz, "/status": self.status})

    # -- stopping ------------------------------------------------------------------------------

    def request_stop(self, signum: int = signal.SIGTERM, reason: str = "") -> None:
        """Forward ``signum`` to every running worker (again on every call)."""
        self.stop_signals += 1
        if not self.stopping.is_set():
            log.info("stopping %d workers (%s); waiting for each final flush",
                     len(self._procs), reason or signal.Signals(signum).name)
            self.stopping.set()
        for proc in list(self._procs.values()):
            if proc.returncode is None:
                proc.send_signal(signum)

    async def _watch_signals(self) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                self.request_stop(signum)

    # -- running -------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[Supervisor] = trio.TASK_STATUS_IGNORED) -> int:
        sockets = await open_sockets(self.s.metrics_host, self.s.metrics_port) \
            if self.s.metrics_port else []
        async with trio.open_nursery() as root:
            if self.handle_signals:
                root.start_soon(self._watch_signals)
            if sockets:
                self.port = bound_port(sockets)
                await root.start(self.server.serve, sockets)
                root.start_soon(self._poll)
                log.info("host ops endpoint on http://%s:%d (live page /, /metrics /healthz "
                         "/status)",
                         self.s.metrics_host, self.port)
            task_status.started(self)
            async with trio.open_nursery() as keepers:
                for w in self.workers:
                    keepers.start_soon(self._keep, w)
            root.cancel_scope.cancel()
        if self.fatal is not None:
            return EXIT_USAGE
        return 0 if all(w.last_exit == 0 for w in self.workers) else 1

    async def _keep(self, w: WorkerView) -> None:
        delay = self.s.backoff_initial
        while not self.stopping.is_set():
            started = trio.current_time()
            code = await self._run_once(w)
            if self.stopping.is_set() or (code == 0 and not self.s.restart_clean_exits):
                return  # stopped by us, or on its own (--duration)
            if code == EXIT_USAGE:
                self.fatal = f"worker {w.index} refused to start (exit 2); see its error above"
                log.error("%s: stopping the host", self.fatal)
                self.request_stop(signal.SIGTERM, "a worker failed on a user mistake")
                return
            if trio.current_time() - started >= self.s.stable_after:
                delay = self.s.backoff_initial
            wait = random.uniform(delay / 2, delay)
            log.warning("worker %d exited with %s; restarting in %.1fs (restart %d)",
                        w.index, code, wait, w.restarts + 1)
            with trio.move_on_after(wait):
                await self.stopping.wait()
            if self.stopping.is_set():
                return
            w.restarts += 1
            delay = min(delay * 2, self.s.backoff_max)

    async def _run_once(self, w: WorkerView) -> int:
        # the worker's life line: its stdin reads end of file once this process is gone (the
        # write end is close-on-exec, so no other worker inherits it); see parent.py
        life_read, life_write = os.pipe()
        try:
            proc = await trio.lowlevel.open_process(self.argv_of(w), stdin=life_read,
                                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                                    start_new_session=True)
        except BaseException:
            os.close(life_write)
            raise
        finally:
            os.close(life_read)
        self._procs[w.index] = proc
        w.pid, w.up = proc.pid, True
        w.health_code = None
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read_summary, w, proc)
                nursery.start_soon(self._relay_logs, w, proc)
                watchdog = trio.CancelScope()
                nursery.start_soon(self._bound_stop, w, proc, watchdog)
                await proc.wait()
                watchdog.cancel()
                nursery.cancel_scope.deadline = trio.current_time() + 5.0  # the pipe's last bytes
        finally:
            w.up = False
            del self._procs[w.index]
            os.close(life_write)
        w.last_exit = proc.returncode
        return proc.returncode if proc.returncode is not None else 1

    async def _relay_logs(self, w: WorkerView, proc: trio.Process) -> None:
        """The worker's log lines on the supervisor's stderr, each marked with its worker."""
        assert proc.stderr is not None
        rest = b""
        async for chunk in proc.stderr:
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            self.log_sink("".join(tag_line(w.index, ln.decode(errors="replace")) + "\n"
                                  for ln in lines))
        if rest:
            self.log_sink(tag_line(w.index, rest.decode(errors="replace")) + "\n")

    async def _read_summary(self, w: WorkerView, proc: trio.Process) -> None:
        """The worker prints its summary as one JSON line (``--summary-json``) on stdout."""
        assert proc.stdout is not None
        buf = b""
        async for chunk in proc.stdout:
            buf += chunk
        for line in reversed(buf.decode(errors="replace").splitlines()):
            if line.startswith("{"):
                try:
                    w.summary = json.loads(line)
                except ValueError:
                    continue
                return

    async def _bound_stop(self, w: WorkerView, proc: trio.Process, scope: trio.CancelScope) -> None:
        with scope:
            await self.stopping.wait()
            with trio.move_on_after(self.s.stop_bound):
                await proc.wait()
                return
        if scope.cancelled_caught:
            return
        log.error("worker %d still running %gs after the stop; killing it (its journal replays "
                  "what it held on the next start)", w.index, self.s.stop_bound)
        proc.kill()

    # -- the host's ops endpoint ---------------------------------------------------------------

    async def _poll(self) -> None:
        import httpx  # here: the command line starts (``--help``) without the HTTP client

        async with httpx.AsyncClient(timeout=2.0) as client:
            while True:
                async with trio.open_nursery() as nursery:
                    for w in self.workers:
                        nursery.start_soon(self._fetch, client, w)
                await trio.sleep(self.s.poll_interval)

    async def _fetch(self, client: httpx.AsyncClient, w: WorkerView) -> None:
        port = worker_port(self.s, w.index)
        base = f"http://{self.s.metrics_host}:{port}"
        if not w.up or not port:
            w.health_code = None
            return
        import httpx

        try:
            m = await client.get(f"{base}/metrics")
            h = await client.get(f"{base}/healthz")
            st = await client.get(f"{base}/status")
        except httpx.HTTPError as exc:
            w.health_code = None
            w.errors = [f"{type(exc).__name__}: {exc}"]
            return
        w.metrics, w.health_code, w.errors = m.text, h.status_code, []
        w.health = _json_or_none(h.text)
        w.status = _json_or_none(st.text)

    def page(self, req: Request) -> Response:
        return Response(200, PAGE, "text/html; charset=utf-8")

    def scrape(self, req: Request) -> Response:
        texts = {w.index: w.metrics for w in self.workers if w.metrics is not None}
        return Response(200, merge_metrics(texts, host_metrics(self.workers)).encode(), TEXT)

    def healthz(self, req: Request) -> Response:
        healthy, doc = host_health(self.workers)
        return Response(200 if healthy else 503, _dump(doc), JSON)

    def status(self, req: Request) -> Response:
        return Response(200, _dump(host_status(self.workers)), JSON)


def tag_line(worker: int, line: str) -> str:
    """``line`` marked with its worker: a ``"worker"`` key in a JSON log line, else a prefix."""
    if line.startswith("{"):
        try:
            doc = json.loads(line)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            return json.dumps({"worker": worker, **doc})
    return f"[worker {worker}] {line}"


def _stderr(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()


def _json_or_none(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _dump(doc: object) -> bytes:
    return (json.dumps(doc, default=str, allow_nan=False) + "\n").encode()
