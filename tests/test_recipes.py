"""Every Python snippet of the README runs against a dataset that mixes first-version (union
schema) and per-kind files of every kind, and the reading recipes return every row once."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pytest

from trio_harvest.kinds import ALL_KINDS, schema_for

from .dsrows import rows, write_new
from .legacy import write_legacy

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RECIPES = ROOT / "docs" / "data-layout.md"  # the reading recipes, linked from the README
NOON = 1_796_083_200_000 + 12 * 3_600_000  # 2026-12-01T12:00:00Z
SYMBOLS = ("BTCUSDT", "ETHUSDT")


def make_dataset(data: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for kind in ALL_KINDS:
        schema = schema_for(kind)
        for symbol in SYMBOLS:
            write_legacy(data, "2026-12-01", symbol, schema, rows(schema, NOON, 3, symbol))
            # where versions before venues wrote (the layout the README's recipes read)
            write_new(data, "2026-12-01", symbol, schema, rows(schema, NOON + 1_800_000, 2, symbol),
                      "part-new.parquet", venue=None)
        counts[kind] = 5 * len(SYMBOLS)
    dead = data / "_deadletter" / "prices" / "BTCUSDT_1_1.ndjson"
    dead.parent.mkdir(parents=True)
    dead.write_text('{"ts_ms": 1}\n')  # not Parquet: the recipes must not trip on it
    return counts


def rows_of(result: Any) -> tuple[int, list[str]]:
    if isinstance(result, pl.LazyFrame):
        result = result.collect()
    if isinstance(result, pl.DataFrame):
        return result.height, result.columns
    if isinstance(result, duckdb.DuckDBPyRelation):
        return len(result.fetchall()), list(result.columns)
    if isinstance(result, pa.Table):
        return result.num_rows, result.column_names
    raise AssertionError(f"a recipe returned {type(result).__name__}")


def snippets() -> list[str]:
    """The Python snippets of the README and of its reading recipes (docs/data-layout.md) that
    read a local dataset. Those that read a bucket (``s3://``) need an S3 server:
    tests/storage/test_s3.py runs that recipe against moto."""
    text = README.read_text() + RECIPES.read_text()
    return [code for code in re.findall(r"```python\n(.*?)```", text, re.S)
            if "s3://" not in code]


def run_snippet(code: str) -> list[tuple[str, int, list[str]]]:
    """Each top-level expression of the snippet, evaluated and materialized."""
    scope: dict[str, Any] = {}
    out = []
    for node in ast.parse(code).body:
        source = ast.get_source_segment(code, node) or ""
        if isinstance(node, ast.Expr):
            n, cols = rows_of(eval(compile(ast.Expression(node.value), "README", "eval"), scope))
            out.append((source, n, cols))
        else:
            exec(compile(ast.Module([node], []), "README", "exec"), scope)
    return out


@pytest.fixture
def dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    monkeypatch.chdir(tmp_path)  # the README reads "data"
    return make_dataset(tmp_path / "data")


def test_readme_has_the_reading_recipes() -> None:
    code = "\n".join(snippets())
    for needle in ('missing_columns="insert"', "union_by_name=true", "schema=arrow_schema",
                   *(f'scan("data", "{kind}"' for kind in ALL_KINDS)):
        assert needle in code, needle


def test_every_python_snippet_runs(dataset: dict[str, int]) -> None:
    results = [r for code in snippets() for r in run_snippet(code)]
    assert len(results) >= 12
    for source, n, _cols in results:
        if source.startswith(("pl.scan_parquet(", "duckdb.sql(", "ds.dataset(")) and (
                "data/**/" not in source):
            assert n == dataset["prices"], source
        if source.startswith('scan("data", "prices", symbols="BTCUSDT"'):
            assert n == dataset["prices"] // 2, source  # one symbol, all within that hour
    (every,) = [r for r in results if "data/**/" in r[0]]  # every kind at once
    assert every[1] == sum(dataset.values())


def test_each_recipe_reads_every_kind_with_its_own_columns(dataset: dict[str, int]) -> None:
    """The one-line recipes, with the kind swapped in as the README says."""
    (code,) = [c for c in snippets() if "union_by_name" in c]
    lines = code.splitlines()
    header = [ln for ln in lines if ln.startswith(("import", "from"))]
    recipes = [ln for ln in lines if ln not in header and "every kind" not in ln]
    assert len(recipes) == 3
    for kind in ALL_KINDS:
        swapped = "\n".join(header + [r.replace('"prices"', f'"{kind}"').replace(
            "kind=prices", f"kind={kind}").replace("'prices'", f"'{kind}'") for r in recipes])
        for source, n, cols in run_snippet(swapped):
            assert n == dataset[kind], (kind, source)
            assert set(schema_for(kind).names) <= set(cols), (kind, source)
