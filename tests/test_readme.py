"""The README stays true: its TOML examples load, and the flags it names exist."""

from __future__ import annotations

import re
from pathlib import Path

from trio_harvest.cli.commands import build_parser
from trio_harvest.config import load_config

README = Path(__file__).resolve().parents[1] / "README.md"


def test_toml_examples_in_the_readme_are_valid_configs(tmp_path: Path) -> None:
    blocks = re.findall(r"```toml\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 2
    for i, block in enumerate(blocks):
        path = tmp_path / f"example{i}.toml"
        path.write_text(block)
        load_config(config_file=path)


def test_run_flags_named_in_the_readme_exist() -> None:
    text = README.read_text()
    run = build_parser()._subparsers._group_actions[0].choices["run"]  # type: ignore[union-attr]
    known = {opt for action in run._actions for opt in action.option_strings}
    named = set(re.findall(r"run[^`\n]*?(--[a-z][a-z-]+)", text))
    assert named and named <= known, named - known
