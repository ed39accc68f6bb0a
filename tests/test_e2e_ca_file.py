"""``--ca-file``, end to end: the simulator behind a TLS endpoint whose certificate comes from a
private CA (as behind a TLS-intercepting proxy). From the command line the harvester trusts the
CA for the websocket (``wss://``) and the REST side (``https://``) and writes its files; without
the flag the same run cannot verify the certificate, says so, and receives nothing. A CA file
that is not one is a one-line error."""

from __future__ import annotations

import ssl
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import trio
import trustme

from trio_harvest.ingest import tls

from .cli.test_cli import run_cli

HOST = "localhost"


async def _pipe(src: trio.abc.Stream, dst: trio.abc.Stream) -> None:
    try:
        while data := await src.receive_some(1 << 16):
            await dst.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    finally:
        await trio.aclose_forcefully(dst)


def _tls_front(context: ssl.SSLContext, upstream: int, ready: list[int],
               stop: threading.Event) -> None:
    """A TLS endpoint on loopback that forwards each connection to ``upstream`` (the simulator's
    port: websocket and REST alike), until ``stop``."""

    async def one(tcp: trio.SocketStream) -> None:
        front = trio.SSLStream(tcp, context, server_side=True)
        try:
            back = await trio.open_tcp_stream("127.0.0.1", upstream)
        except OSError:
            await trio.aclose_forcefully(front)
            return
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_pipe, front, back)
            nursery.start_soon(_pipe, back, front)

    async def main() -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        ready.append(listeners[0].socket.getsockname()[1])
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.serve_listeners, one, listeners)
            while not stop.is_set():
                await trio.sleep(0.1)
            nursery.cancel_scope.cancel()

    trio.run(main)


def _harvest(tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(HOST).configure_cert(context)
    pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    sim = subprocess.Popen([sys.executable, "-m", "trio_harvest", "sim", "--port", "0",
                            "--symbols", "BTCUSDT", "--rate", "100", "--duration", "60"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    ready: list[int] = []
    stop = threading.Event()
    front = None
    try:
        assert sim.stdout is not None
        port = int(sim.stdout.readline().split("listening on ")[1].split()[0].rsplit(":", 1)[1])
        front = threading.Thread(target=_tls_front, args=(context, port, ready, stop),
                                 daemon=True)
        front.start()
        for _ in range(100):
            if ready:
                break
            stop.wait(0.05)
        data = tmp_path / "d"
        out = run_cli("run", "--ws-url", f"wss://{HOST}:{ready[0]}", "--rest-url",
                      f"https://{HOST}:{ready[0]}", "--symbols", "BTCUSDT", "--duration", "4",
                      "--data-dir", str(data), *[x.replace("CA", str(pem)) for x in extra])
    finally:
        stop.set()
        if front is not None:
            front.join(timeout=10)
        sim.terminate()
        sim.communicate(timeout=20)
    return out, data


def test_the_harvester_trusts_the_ca_it_is_given(tmp_path: Path) -> None:
    out, data = _harvest(tmp_path, "--ca-file", "CA")
    assert out.returncode == 0, out.stderr
    assert "certificate verify failed" not in out.stderr
    assert "reconnects 0" in out.stdout
    assert list(data.glob("venue=*/date=*/symbol=BTCUSDT/kind=prices/*.parquet"))
    # the REST side (the listing check at the start) went through the same trust
    assert "not listed by" not in out.stderr and "cannot read the listing" not in out.stderr


def test_without_the_ca_the_certificate_does_not_verify(tmp_path: Path) -> None:
    out, data = _harvest(tmp_path)
    assert "certificate verify failed: unable to get local issuer certificate" in out.stderr
    assert "frames received: 0" in out.stdout
    assert not list(data.glob("venue=*/date=*/symbol=BTCUSDT/kind=prices/*.parquet"))


@pytest.mark.parametrize(("make", "says"), [
    (lambda p: p / "missing.pem", "does not exist"),
    (lambda p: p, "is a directory, not a PEM file"),
    (lambda p: (p / "junk.pem", (p / "junk.pem").write_text("not a certificate"))[0],
     "holds no usable PEM certificate"),
])
def test_a_ca_file_that_is_not_one_is_a_one_line_error(tmp_path: Path, make: object,
                                                       says: str) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    out = run_cli("run", "--sim", "--ca-file", str(path), "--duration", "1", "--data-dir",
                  str(tmp_path / "d"))
    assert out.returncode == 2
    [line] = out.stderr.strip().splitlines()
    assert line.startswith(f"trio_harvest: error: ca_file: {path} {says}"), line


def test_the_process_trust_is_the_system_s_and_the_file_s(tmp_path: Path) -> None:
    ca = trustme.CA()
    pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    before = len(tls.load().get_ca_certs())
    try:
        tls.trust(str(pem))
        assert tls.ca_file() == str(pem)
        context = trio.run(tls.client_context)
        subjects = [c["subject"] for c in context.get_ca_certs()]
        assert len(subjects) == before + 1
        assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    finally:
        tls.trust("")
    assert tls.ca_file() == ""
    assert len(trio.run(tls.client_context).get_ca_certs()) == before
