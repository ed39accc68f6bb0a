"""Merging the workers' ops documents into the host's (pure)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from trio_harvest.scale.aggregate import (
    WorkerView,
    host_health,
    host_metrics,
    merge_metrics,
    merge_summaries,
    render_summary,
)

W0 = """# HELP trio_harvest_healthy 1 if healthy.
# TYPE trio_harvest_healthy gauge
trio_harvest_healthy 1.0
# HELP trio_harvest_rows_written_total Rows written.
# TYPE trio_harvest_rows_written_total counter
trio_harvest_rows_written_total{kind="prices"} 10.0
"""
W1 = W0.replace("healthy 1.0", "healthy 0.0").replace("} 10.0", "} 7.0")


def test_metrics_get_a_worker_label_and_families_stay_together() -> None:
    workers = [WorkerView(0, ("A",), up=True), WorkerView(1, ("B",), up=False, restarts=3)]
    text = merge_metrics({0: W0, 1: W1}, host_metrics(workers))
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    healthy = {s.labels["worker"]: s.value for s in fams["trio_harvest_healthy"].samples}
    assert healthy == {"0": 1.0, "1": 0.0}
    rows = {(s.labels["worker"], s.labels["kind"]): s.value
            for s in fams["trio_harvest_rows_written"].samples}
    assert rows == {("0", "prices"): 10.0, ("1", "prices"): 7.0}
    assert text.count("# TYPE trio_harvest_healthy gauge") == 1
    up = {s.labels["worker"]: s.value for s in fams["trio_harvest_worker_up"].samples}
    assert up == {"0": 1.0, "1": 0.0}
    restarts = {s.labels["worker"]: s.value for s in fams["trio_harvest_worker_restarts"].samples}
    assert restarts["1"] == 3.0


def test_the_host_is_healthy_only_if_every_worker_is_up_and_healthy() -> None:
    ok = WorkerView(0, ("A",), up=True, health_code=200)
    assert host_health([ok])[0] is True
    sick = WorkerView(1, ("B",), up=True, health_code=503,
                      health={"reasons": ["prices writes failing"]})
    down = WorkerView(2, ("C",), up=False)
    healthy, doc = host_health([ok, sick, down])
    assert not healthy and doc["status"] == "unhealthy"
    assert doc["workers"]["1"]["reasons"] == ["prices writes failing"]
    assert doc["workers"]["2"]["reasons"] == ["worker not running"]


def test_one_summary_for_the_host() -> None:
    a = WorkerView(0, ("A", "B"), last_exit=0, summary={
        "frames": 100, "seconds": 10.0, "rows_written": {"prices/A": 5, "prices/B": 6},
        "rows_deadlettered": {"prices": 2}, "rows_lost": {}})
    b = WorkerView(1, ("C",), last_exit=0, restarts=1, summary={
        "frames": 50, "seconds": 9.0, "rows_written": {"prices/C": 4},
        "rows_deadlettered": {"prices": 1}, "rows_lost": {"ofi": 3}})
    doc = merge_summaries([a, b])
    assert doc["frames"] == 150 and doc["seconds"] == 10.0 and doc["msgs_per_sec"] == 15.0
    assert doc["rows_written"] == {"prices/A": 5, "prices/B": 6, "prices/C": 4}
    assert doc["rows_deadlettered"] == {"prices": 3} and doc["rows_lost"] == {"ofi": 3}
    assert doc["workers"]["1"]["restarts"] == 1
    text = render_summary(doc)
    assert "2 workers" in text and "lost 3" in text
