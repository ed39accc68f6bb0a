"""The flags reach the config, and a faulty simulated run exits
cleanly with the adversity line in its summary; ``inspect`` shows the gaps."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from trio_harvest.cli.commands import build_parser, main
from trio_harvest.config import ConfigError, load_config


def test_flags_reach_the_config() -> None:
    args = build_parser().parse_args([
        "run", "--sim", "--sim-faults", "skip=0.01", "--no-backfill", "--backfill-weight", "600",
        "--backfill-delay", "2", "--ws-lifetime", "600", "--handover-lead", "30",
        "--handover-overlap", "3"])
    cli = {k: v for k, v in vars(args).items() if k not in {"config", "summary_json", "command"}}
    cfg = load_config(cli, {})
    assert (cfg.sim_faults, cfg.backfill, cfg.backfill_weight, cfg.backfill_delay) == \
        ("skip=0.01", False, 600, 2.0)
    assert (cfg.ws_lifetime, cfg.handover_lead, cfg.handover_overlap) == (600.0, 30.0, 3.0)
    with pytest.raises(ConfigError, match="handover_lead must be shorter"):
        load_config({"ws_lifetime": 10.0, "handover_lead": 20.0}, {})
    with pytest.raises(ConfigError, match="backfill_weight"):
        load_config({"backfill_weight": 5}, {})


def test_faulty_simulated_run_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        code = main(["run", "--sim", "--duration", "2.5", "--data-dir", str(data),
                     "--sim-faults", "disconnect=1,skip=0.02,dup_frame=0.02,dup_id=0.05,"
                     "garbage=0.01",
                     "--summary-json", "--log-level", "ERROR"])
    finally:
        root.handlers[:], root.level = handlers, level
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    adversity = summary["adversity"]
    assert adversity["gaps"]["disconnect"] >= 1 and adversity["backfill"]["rows"] > 0
    assert adversity["trade_duplicates_dropped"] > 0
    assert main(["inspect", "--data-dir", str(data), "--json"]) == 0
    inventory = json.loads(capsys.readouterr().out)
    assert inventory["gaps"]["rows"] >= 2
    assert all(c["holes"] == 0 for c in inventory["prices_continuity"].values())
    assert main(["inspect", "--data-dir", str(data)]) == 0
    text = capsys.readouterr().out
    assert "gaps: " in text and "disconnect" in text and "agg ids backfilled" in text
