"""The real ``python -m trio_harvest`` in a subprocess, its output
and its exit code (honest exits, progress, suggestions, symbols, a second Ctrl-C)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

from .test_cli import run_cli


def test_a_run_that_never_receives_a_frame_says_why_and_exits_3(tmp_path: Path) -> None:
    out = run_cli("run", "--ws-url", "ws://127.0.0.1:1", "--duration", "4", "--health-interval",
                  "0.25", "--backoff-max", "0.5", "--data-dir", str(tmp_path / "d"))
    assert out.returncode == 3, out.stderr
    reach = [x for x in out.stderr.splitlines() if "cannot reach ws://127.0.0.1:1 " in x]
    # first after two health intervals, then every twelve: repeated while it lasts
    assert len(reach) == 2, out.stderr
    assert "no frame received yet" in reach[0] and "last error: OSError" in reach[0]
    assert "NO DATA: not a single frame was received from ws://127.0.0.1:1" in out.stdout
    assert "exit code 3" in out.stdout


def test_a_dns_failure_names_the_host(tmp_path: Path) -> None:
    out = run_cli("run", "--ws-url", "ws://no-such-host.invalid", "--duration", "2",
                  "--health-interval", "0.5", "--data-dir", str(tmp_path / "d"))
    assert out.returncode == 3
    assert "DNS lookup of 'no-such-host.invalid' failed" in out.stderr, out.stderr


def test_help_documents_the_exit_codes() -> None:
    out = run_cli("run", "--help")
    assert "3 the run ended without ever receiving a frame" in " ".join(out.stdout.split())


def test_progress_lines_between_connected_and_stopping(tmp_path: Path) -> None:
    out = run_cli("run", "--sim", "--duration", "3.5", "--progress-interval", "1",
                  "--data-dir", str(tmp_path / "d"), "--rotate-sec", "1", "--min-file-rows", "1",
                  "--max-file-age", "1")
    assert out.returncode == 0, out.stderr
    lines = out.stderr.splitlines()
    progress = [x for x in lines if " progress: up " in x]
    assert len(progress) >= 2, out.stderr
    assert all("msg/s; written " in x and "lag " in x and "dead letter empty" in x
               for x in progress)
    assert any("healthy" in x for x in progress)
    first_connected = next(i for i, x in enumerate(lines) if "connected" in x)
    stopping = next(i for i, x in enumerate(lines) if "app: stopping" in x)
    assert all(first_connected < lines.index(x) < stopping for x in progress)


def test_summary_is_per_kind_for_many_symbols_and_per_symbol_on_request(tmp_path: Path) -> None:
    symbols = ",".join(f"S{i}USDT" for i in range(6))
    out = run_cli("run", "--sim", "--symbols", symbols, "--duration", "2", "--data-dir",
                  str(tmp_path / "d"))
    assert out.returncode == 0, out.stderr
    table = out.stdout.splitlines()
    header = next(i for i, x in enumerate(table) if x.startswith("kind "))
    kinds = [x.split()[0] for x in table[header + 1:] if x.split()[0] in
             ("prices", "orderbook", "gaps", "ofi", "cvd", "fusion", "events", "features")]
    assert kinds[:2] == ["prices", "orderbook"] and len(kinds) == len(set(kinds))  # fixed order
    assert "S3USDT" not in out.stdout  # no per-symbol table
    detail = run_cli("run", "--sim", "--symbols", symbols, "--duration", "2", "--data-dir",
                     str(tmp_path / "d2"), "--summary-by-symbol")
    assert "S3USDT" in detail.stdout


def test_mistakes_get_suggestions(tmp_path: Path) -> None:
    out = run_cli("run", "--duraton", "5")
    assert out.returncode == 2
    assert out.stderr.strip() == ("trio_harvest: error: unrecognized arguments: --duraton 5 (did "
                                  "you mean --duration?) (see python -m trio_harvest run --help)")
    out = run_cli("recovr", "--data-dir", str(tmp_path))
    assert out.returncode == 2 and "(did you mean 'recover'?)" in out.stderr
    toml = tmp_path / "h.toml"
    toml.write_text("rotat_sec = 3\n")
    out = run_cli("run", "--config", str(toml))
    assert out.returncode == 2 and "unknown setting 'rotat_sec' (did you mean 'rotate_sec'?)" \
        in out.stderr
    toml.write_text("[signals]\nz_windw_s = 5\n")
    out = run_cli("run", "--config", str(toml))
    assert out.returncode == 2 and "signals: unknown setting 'z_windw_s' (did you mean " \
        "'z_window_s'?)" in out.stderr
    env = {**os.environ, "TRIO_HARVEST_ROTAT_SEC": "3"}
    res = subprocess.run([sys.executable, "-m", "trio_harvest", "run"], capture_output=True,
                         text=True, env=env, timeout=60)
    assert res.returncode == 2 and "(did you mean 'TRIO_HARVEST_ROTATE_SEC'?)" in res.stderr
    out = run_cli("run", "--symbols", "BTCUSDT,ETHUSDT,BTCUSDT")
    assert out.returncode == 2 and "symbols: listed twice: BTCUSDT" in out.stderr


def test_log_level_in_lower_case_and_delivery_contracts(tmp_path: Path) -> None:
    data = tmp_path / "d"
    out = run_cli("run", "--sim", "--symbols", "BTCUSDT_260327,1000PEPEUSDT", "--log-level",
                  "debug", "--duration", "2", "--data-dir", str(data), "--summary-json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["rows_written"]["prices/BTCUSDT_260327"] > 0
    prices = pl.read_parquet(data / "venue=*" / "date=*" / "symbol=BTCUSDT_260327" / "kind=prices"
                             / "*.parquet")
    assert prices.height == summary["rows_written"]["prices/BTCUSDT_260327"]


def test_a_second_ctrl_c_logs_one_line(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "trio_harvest", "run", "--sim", "--sim-rate", "20000",
         "--data-dir", str(tmp_path / "d"), "--symbols", "BTCUSDT,ETHUSDT,SOLUSDT,BNBUSDT"],
        stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    lines: list[str] = []
    for line in proc.stderr:
        lines.append(line)
        if "harvesting 4 symbols" in line:
            break
    time.sleep(2.0)  # rows pile up in the lanes, so the final flush has something to do
    proc.send_signal(signal.SIGINT)
    for line in proc.stderr:
        lines.append(line)
        if "app: stopping" in line:
            break
    for _ in range(3):
        proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    lines += err.splitlines()
    assert proc.returncode == 0, "".join(lines)
    second = [x for x in lines if "stop request" in x or "aborted at shutdown" in x]
    assert len(second) == 1, "".join(lines)
    assert "second stop request (SIGINT): dead-lettering what is not yet written" in second[0]
    assert "Traceback" not in "".join(lines)


def test_a_backlog_is_named_at_start_and_in_the_summary_with_the_command(tmp_path: Path) -> None:
    from ..storage.test_recover_merged import make_backlog

    data, dl = tmp_path / "d", tmp_path / "dl"
    make_backlog(dl, {"BTCUSDT": 3})
    out = run_cli("run", "--sim", "--duration", "1", "--data-dir", str(data), "--deadletter-dir",
                  str(dl), "--no-auto-recover")
    assert out.returncode == 0, out.stderr
    command = f"python -m trio_harvest recover --data-dir {data} --deadletter-dir {dl}"
    start = next(x for x in out.stderr.splitlines() if "dead letter holds" in x)
    assert f"dead letter holds 3 files, 30 rows in {dl} from an earlier run" in start
    assert start.endswith(command)
    assert f"DEAD LETTER: 3 files, 30 rows wait in {dl}; replay them with: {command}" in out.stdout
    assert run_cli(*command.split()[3:]).returncode == 0  # and that command does it


def test_rerunning_the_simulator_into_the_same_data_dir_warns(tmp_path: Path) -> None:
    data = tmp_path / "d"
    first = run_cli("run", "--sim", "--duration", "1.5", "--data-dir", str(data))
    assert first.returncode == 0 and "would collide" not in first.stderr
    again = run_cli("run", "--sim", "--duration", "0.5", "--data-dir", str(data))
    line = next(x for x in again.stderr.splitlines() if "would collide" in x)
    assert f"{data} already holds prices of BTCUSDT, ETHUSDT" in line and "--sim-seed" in line


def test_a_symbol_the_venue_does_not_list_gets_one_warning(tmp_path: Path) -> None:
    sim = subprocess.Popen([sys.executable, "-m", "trio_harvest", "sim", "--port", "0",
                            "--symbols", "BTCUSDT,BTCUSDT_260327", "--duration", "20"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert sim.stdout is not None
        first = sim.stdout.readline()
        ws = first.split("listening on ")[1].split()[0]
        rest = ws.replace("ws://", "http://")
        out = run_cli("run", "--ws-url", ws, "--rest-url", rest, "--symbols",
                      "BTCUSDT,BTCUSDT_260327,NOPEUSDT", "--duration", "2", "--data-dir",
                      str(tmp_path / "d"))
    finally:
        sim.terminate()
        sim.communicate(timeout=20)
    assert out.returncode == 0, out.stderr
    warned = [x for x in out.stderr.splitlines() if "not listed by" in x]
    assert len(warned) == 1, out.stderr
    assert f"1 symbol not listed by {rest}/fapi/v1/exchangeInfo: NOPEUSDT" in warned[0]
