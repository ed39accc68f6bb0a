"""deploy/grafana and deploy/prometheus against what the harvester really exports: every metric
name (and every label a query selects or groups by) in the dashboard and the alert rules is on a
live ``/metrics`` (or on the ``--workers`` host's, for the worker metrics); the rules pass
``promtool check rules``; docs/operations.md names every exported metric and no other. Real
sockets, real clock, journal on as users run it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import trio
import yaml
from prometheus_client.parser import text_string_to_metric_families

from trio_harvest.app import Harvester
from trio_harvest.ops.metrics import HarvestMetrics
from trio_harvest.scale.aggregate import WorkerView, host_metrics, merge_metrics

from ..conftest import make_config
from ..opsfakes import FakeExchange, wait_for
from ..ports import free_port

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "trio_harvest.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
DOCS = DEPLOY.parent / "docs" / "operations.md"
NAME = re.compile(r"\b(trio_harvest_[a-z0-9_]+)\b(\{[^}]*\})?")
BY = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
# labels Prometheus adds at scrape time, and the host endpoint's worker label
ADDED_LABELS = {"instance", "job", "worker"}


def exported(text: str) -> dict[str, set[str] | None]:
    """Sample name -> its label names, as a scrape of ``text`` would store them (None: the family
    has no sample now, e.g. no gap yet, so its labels cannot be seen)."""
    out: dict[str, set[str] | None] = {}
    for family in text_string_to_metric_families(text):
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"),
                    "summary": ("_count", "_sum")}.get(family.type, ("",))
        for suffix in suffixes:
            out.setdefault(family.name + suffix, None)
        for s in family.samples:
            seen = out.get(s.name) or set()
            out[s.name] = seen | set(s.labels)
    return out


async def live_metrics(tmp_path: Path) -> tuple[str, str]:
    """(what /metrics serves by default, the same with the per-symbol families), each as a
    ``--workers`` host would serve it too: a worker label, plus the host's own series."""
    exchange = FakeExchange(symbols=("BTCUSDT", "ETHUSDT"), interval=0.01)
    cfg = make_config(tmp_path, symbols=("BTCUSDT", "ETHUSDT"), depth_levels=5, rotate_sec=0.2,
                      min_file_rows=1, health_interval=0.1, metrics_port=free_port(),
                      auto_recover=False, journal=True)
    h = Harvester(cfg, connect=exchange.connect)
    async with trio.open_nursery() as nursery:
        await nursery.start(h.run)
        await wait_for(lambda: h.rotation.stats.kind("prices").files_written >= 1)
        async with httpx.AsyncClient(timeout=5.0) as client:
            text = (await client.get(f"http://127.0.0.1:{h.ops.port}/metrics")).text
        full = HarvestMetrics()
        full.bind(h.ops, per_symbol=True)
        full_text = full.exposition()[0].decode()
        h.request_stop("test over")
    host = host_metrics([WorkerView(0, ("BTCUSDT",), up=True)])
    return merge_metrics({0: text}, host), merge_metrics({0: full_text}, host)


def expressions() -> list[tuple[str, str]]:
    """(where, PromQL) of every dashboard query and every alert rule."""
    out: list[tuple[str, str]] = []
    dash = json.loads(DASHBOARD.read_text())
    for panel in dash["panels"]:
        for target in panel["targets"]:
            out.append((f"panel {panel['title']!r} {target['refId']}", target["expr"]))
    for var in dash["templating"]["list"]:
        if var["type"] == "query":
            out.append((f"variable {var['name']}", var["query"]["query"]))
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        for rule in group["rules"]:
            out.append((f"alert {rule['alert']}", rule["expr"]))
    return out


async def test_every_dashboard_and_alert_expression_resolves_against_live_metrics(
    tmp_path: Path,
) -> None:
    default, full = await live_metrics(tmp_path)
    names = exported(default)
    assert sum(labels is not None for labels in names.values()) >= 40
    exprs = expressions()
    assert len(exprs) >= 25
    problems = []
    for where, expr in exprs:
        found = NAME.findall(expr)
        if not found:
            if re.fullmatch(r'up\{job="trio_harvest"\} == 0', expr):
                continue  # Prometheus's own series for the scrape target
            problems.append(f"{where}: no trio_harvest metric in {expr!r}")
        labels: set[str] = set()
        unseen = False  # a family without samples now: its labels cannot be checked here
        for name, matchers in found:
            if name not in names:
                problems.append(f"{where}: {name} is not exported")
                continue
            have = names[name]
            if have is None:
                unseen = True
                continue
            labels |= have
            for label in re.findall(r"([a-z_]+)\s*=~?", matchers or ""):
                if label not in have | ADDED_LABELS:
                    problems.append(f"{where}: {name} has no label {label}")
        for group in [] if unseen else BY.findall(expr):
            for label in (g.strip() for g in group.split(",") if g.strip()):
                if label not in labels | ADDED_LABELS | {"le"}:
                    problems.append(f"{where}: no metric in it has the label {label}")
    assert problems == []

    # docs/operations.md: every metric its tables name is exported (per-symbol ones with the flag)
    every = exported(full)
    documented = {f"trio_harvest_{token}"
                  for line in DOCS.read_text().splitlines() if line.startswith("| `")
                  for token in re.findall(r"`([a-z_]+)`", line.split("|")[1])}
    assert len(documented) >= 60
    assert sorted(n for n in documented if n not in every and n + "_bucket" not in every) == []
    undocumented = {n for n in names if n.startswith("trio_harvest_")} - documented - {
        n + s for n in documented for s in ("_bucket", "_count", "_sum", "_created")}
    assert sorted(undocumented) == []


def test_dashboard_is_a_grafana_dashboard() -> None:
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] and dash["title"] and dash["schemaVersion"] >= 36
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)) >= 12
    for p in dash["panels"]:
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        grid = p["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["h"] > 0
        assert {t["refId"] for t in p["targets"]} == {chr(65 + i) for i in range(len(p["targets"]))}


def test_alert_rules_pass_promtool() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: apt-get install prometheus (.ci/run does it)"
    done = subprocess.run([promtool, "check", "rules", str(ALERTS)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout
