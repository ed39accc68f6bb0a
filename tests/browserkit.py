"""Headless Chromium for tests: open a page, collect console errors, read the DOM, take a screenshot.

Owns one short-lived browser per call, driven over the DevTools protocol with the websockets
client the project already depends on (no Selenium, no Playwright, no browser download: Debian's
``chromium`` package). It never leaves a browser running: the process is killed and its profile
directory removed when the call returns.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def chromium_path() -> str | None:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class Rendered:
    """What the browser saw: errors from the console and uncaught exceptions, the final DOM, and
    whatever ``evaluate`` expressions returned."""

    console_errors: list[str] = field(default_factory=list)
    dom: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    screenshot: Path | None = None


class _Cdp:
    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, timeout: float = 20.0, **params: Any) -> dict[str, Any]:
        msg_id = next(self._ids)
        self._ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"DevTools call {method} got no answer in {timeout} s")
            msg = json.loads(self._ws.recv(timeout=left))
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"DevTools {method}: {msg['error']}")
                result: dict[str, Any] = msg.get("result", {})
                return result
            self.events.append(msg)

    def pump(self, seconds: float) -> None:
        """Collect events for a while (scripts that run after load, timers, fetches)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                self.events.append(json.loads(self._ws.recv(timeout=left)))
            except TimeoutError:
                return

    def wait_for(self, method: str, timeout: float) -> None:
        for event in self.events:
            if event.get("method") == method:
                return
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = json.loads(self._ws.recv(timeout=left))
            except TimeoutError:
                break
            self.events.append(msg)
            if msg.get("method") == method:
                return
        raise TimeoutError(f"the page sent no {method} within {timeout} s")


def _errors(events: list[dict[str, Any]]) -> list[str]:
    out: list[str] = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text", "")
            out.append(f"uncaught: {text}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            args = [str(a.get("value", a.get("description", ""))) for a in params.get("args", [])]
            out.append("console.error: " + " ".join(args))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            out.append(f"log ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}".strip())
    return out


def render(url: str, screenshot: Path | None = None, *, settle: float = 1.5,
           evaluate: dict[str, str] | None = None, width: int = 1400, height: int = 1000,
           full_page: bool = True) -> Rendered:
    """Open ``url`` (``http://…`` or a local file path) in headless Chromium, wait for the load
    event plus ``settle`` seconds, and return what it saw. ``evaluate`` maps names to JavaScript
    expressions whose JSON values land in ``Rendered.values``. The browser runs offline: any
    request that leaves loopback would show up as a console error."""
    binary = chromium_path()
    if binary is None:
        raise RuntimeError("no chromium on PATH: apt-get install chromium (.ci/run does it)")
    if "://" not in url:
        url = Path(url).resolve().as_uri()
    profile = tempfile.mkdtemp(prefix="browserkit-")
    proc = subprocess.Popen(
        [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--no-first-run", "--no-default-browser-check", "--disable-extensions",
         "--disable-background-networking", "--disable-component-update",
         "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
         f"--user-data-dir={profile}", f"--window-size={width},{height}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        port_file = Path(profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {proc.returncode} before it listened")
            if time.monotonic() > deadline:
                raise TimeoutError("chromium did not open its DevTools port within 30 s")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
            targets = json.load(resp)
        page = next(t for t in targets if t.get("type") == "page")
        with connect(page["webSocketDebuggerUrl"], max_size=64 * 2**20, open_timeout=10) as ws:
            return _drive(_Cdp(ws), url, screenshot, settle, evaluate or {}, width, height, full_page)
    finally:
        try:
            os.killpg(proc.pid, 9)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)


def _drive(cdp: _Cdp, url: str, screenshot: Path | None, settle: float, evaluate: dict[str, str],
           width: int, height: int, full_page: bool) -> Rendered:
    for domain in ("Page", "Runtime", "Log"):
        cdp.call(f"{domain}.enable")
    cdp.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
             deviceScaleFactor=1, mobile=False)
    cdp.call("Page.navigate", url=url)
    cdp.wait_for("Page.loadEventFired", timeout=30)
    cdp.pump(settle)
    result = Rendered()
    for name, expression in evaluate.items():
        value = cdp.call("Runtime.evaluate", expression=expression, returnByValue=True,
                         awaitPromise=True)
        result.values[name] = value.get("result", {}).get("value")
    dom = cdp.call("Runtime.evaluate", expression="document.documentElement.outerHTML",
                   returnByValue=True)
    result.dom = str(dom.get("result", {}).get("value", ""))
    if screenshot is not None:
        params: dict[str, Any] = {"format": "png", "captureBeyondViewport": full_page}
        shot = cdp.call("Page.captureScreenshot", timeout=60, **params)
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        result.screenshot = screenshot
    cdp.pump(0.1)
    result.console_errors = _errors(cdp.events)
    return result
