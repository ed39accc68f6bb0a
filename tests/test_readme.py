"""The README stays true: every `python -m trio_harvest` command in it parses with the real
command line, the quick-start blocks marked `<!-- test: runs -->` run as written (in a fresh
folder, offline), the TOML examples of it and its docs/ pages load, the flags it names
exist, its links point at files, and it stays short.

Out of scope here: `pip install` and `pytest` (CI runs both), and the production lines that
need a real exchange, systemd or a cluster (those are parsed, not run)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from trio_harvest.cli.commands import _normalize_argv, build_parser
from trio_harvest.config import load_config

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_WORDS = 2_500
# pages other parts of the project write; they are linked before they land
LINKED_ELSEWHERE = {"docs/exactly-once-s3.md", "docs/exactly-once-local.md", "docs/compaction.md",
                    "docs/workers.md", "docs/universe.md", "docs/stops-and-memory.md",
                    "docs/operations.md"}


def _commands(text: str) -> list[str]:
    """Every `python -m trio_harvest …` line of the README's bash blocks, comments removed."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("python -m trio_harvest"):
                out.append(line)
    return out


def _runnable(text: str) -> list[str]:
    return [line for block in re.findall(r"<!-- test: runs -->\n```bash\n(.*?)```", text, re.S)
            for line in _commands(f"```bash\n{block}```")]


def test_every_command_in_the_readme_parses() -> None:
    commands = _commands(README.read_text())
    assert len(commands) >= 6
    parser = build_parser()
    for line in commands:
        argv = _normalize_argv(shlex.split(line)[3:])
        try:
            parser.parse_args(argv)
        except SystemExit as exc:  # argparse's way of saying no
            pytest.fail(f"README command does not parse ({exc.code}): {line}")


def test_the_quick_start_runs_as_written(tmp_path: Path) -> None:
    lines = _runnable(README.read_text())
    assert any(" run --sim" in ln for ln in lines) and any(" report " in ln for ln in lines)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for line in lines:
        argv = [sys.executable, *shlex.split(line)[1:]]
        done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=180)
        assert done.returncode == 0, f"{line}\n{done.stderr[-2000:]}"
    assert (tmp_path / "report.html").stat().st_size > 0
    assert list((tmp_path / "data").glob("venue=*/date=*/symbol=*/kind=prices/*.parquet"))


def test_the_readme_is_short_and_its_links_resolve() -> None:
    text = README.read_text()
    assert len(text.split()) <= MAX_WORDS
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if target.startswith("http"):
            continue
        assert (ROOT / target).exists() or target in LINKED_ELSEWHERE, target
    assert "docs/img/report.png" in text and (ROOT / "docs" / "img" / "report.png").exists()


def test_toml_examples_in_the_readme_and_docs_are_valid_configs(tmp_path: Path) -> None:
    text = "\n".join(p.read_text() for p in (README, *sorted((ROOT / "docs").glob("*.md"))))
    blocks = re.findall(r"```toml\n(.*?)```", text, re.S)
    assert len(blocks) >= 2
    for i, block in enumerate(blocks):
        path = tmp_path / f"example{i}.toml"
        path.write_text(block)
        load_config(config_file=path)


def test_run_flags_named_in_the_readme_and_docs_exist() -> None:
    text = "\n".join(p.read_text() for p in (README, *sorted((ROOT / "docs").glob("*.md"))))
    run = build_parser()._subparsers._group_actions[0].choices["run"]  # type: ignore[union-attr]
    known = {opt for action in run._actions for opt in action.option_strings}
    named = set(re.findall(r"run[^`\n]*?(--[a-z][a-z-]+)", text))
    assert named and named <= known, named - known
