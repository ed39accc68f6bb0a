"""The seam holds: outside ``venues/`` and ``sim/`` the package names no venue's wire terms (code,
comments and docstrings alike), and the venue adapters import no trio and do no I/O."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import trio_harvest

PACKAGE = Path(trio_harvest.__file__).resolve().parent
WIRE = re.compile(r"aggTrade|bookTicker|depthUpdate|lastUpdateId|fapi|dapi|fstream|dstream|"
                  r"x-mbx", re.IGNORECASE)
INSIDE = ("venues", "sim")


def test_no_venue_wire_term_outside_venues_and_sim() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] in INSIDE:
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if WIRE.search(line):
                found.append(f"{rel}:{n}: {line.strip()}")
    assert not found, "venue wire terms outside venues/ and sim/:\n" + "\n".join(found)


def test_the_wire_pattern_would_see_a_leak() -> None:
    assert WIRE.search('stream = f"{symbol.lower()}@aggTrade"')
    assert WIRE.search("# GET /FAPI/v1/depth, X-MBX-USED-WEIGHT-1M")
    assert not WIRE.search("trades, quotes and book levels")


def test_the_adapters_import_neither_trio_nor_an_http_client() -> None:
    code = ("import sys, trio_harvest.venues as v\n"
            "assert v.VENUES\n"
            "print(sorted(m for m in ('trio', 'httpx', 'websockets', 'trio_websocket') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]"
