"""An S3 API on loopback for tests: moto's server in a thread, started and stopped by fixtures
(no network, no credentials). ``restart()`` brings it back on the same port with its objects."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest
from moto.server import ThreadedMotoServer

BUCKET = "harvest-test"
ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
       "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass
class MotoS3:
    server: ThreadedMotoServer
    host: str
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        self.server.stop()

    def restart(self) -> None:
        deadline = time.monotonic() + 10
        while True:
            try:
                self.server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
                self.server.start()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def client(self):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, **{
            "aws_access_key_id": ENV["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": ENV["AWS_SECRET_ACCESS_KEY"], "region_name": "us-east-1"})


@contextmanager
def moto_s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoS3]:
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    for k in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(k, raising=False)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    s3 = MotoS3(server, host, port)
    # moto keeps its buckets in the process, across servers: every test starts from nothing
    httpx.post(f"{s3.endpoint}/moto-api/reset", timeout=10).raise_for_status()
    s3.client().create_bucket(Bucket=BUCKET)
    try:
        yield s3
    finally:
        try:
            s3.server.stop()
        except Exception:  # already stopped by the test
            pass

