"""One host's ops documents from its workers' documents: metrics with a ``worker`` label,
health (the host is healthy only if every worker is up and healthy), status and the end summary.

Owns the merging only. Pure: no I/O, no trio; the supervisor fetches and serves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class WorkerView:
    """What the supervisor knows about one worker (its last fetched documents included)."""

    index: int
    symbols: tuple[str, ...]
    pid: int | None = None
    up: bool = False
    restarts: int = 0
    last_exit: int | None = None
    metrics: str | None = None  # last /metrics text
    health_code: int | None = None  # last /healthz status
    health: Any = None  # last /healthz body (JSON)
    status: Any = None  # last /status body (JSON)
    summary: dict[str, Any] | None = None  # its end-of-run summary (JSON)
    errors: list[str] = field(default_factory=list)


def _label(sample: str, worker: int) -> str:
    name, brace, rest = sample.partition("{")
    if brace:
        return f'{name}{{worker="{worker}",{rest}' if not rest.startswith("}") else \
            f'{name}{{worker="{worker}"{rest}'
    name, space, value = sample.partition(" ")
    return f'{name}{{worker="{worker}"}}{space}{value}'


def merge_metrics(texts: Mapping[int, str], host: Sequence[str] = ()) -> str:
    """Prometheus text exposition of every worker's samples, each with ``worker="i"``; a
    family's HELP/TYPE appear once and its samples stay together, as the format requires."""
    order: list[str] = []
    heads: dict[str, list[str]] = {}
    samples: dict[str, list[str]] = {}
    for worker, text in sorted(texts.items()):
        family = ""
        for line in text.splitlines():
            if not line.strip():
                continue
            if line.startswith("#"):
                parts = line.split(" ", 3)
                if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                    family = parts[2]
                    if family not in heads:
                        order.append(family)
                        heads[family], samples[family] = [], []
                    if line not in heads[family]:
                        heads[family].append(line)
                continue
            if family not in heads:
                order.append(family)
                heads[family], samples[family] = [], []
            samples[family].append(_label(line, worker))
    out = [line for fam in order for line in (*heads[fam], *samples[fam])]
    out.extend(host)
    return "\n".join(out) + "\n"


def host_metrics(workers: Sequence[WorkerView]) -> list[str]:
    lines = ["# HELP trio_harvest_worker_up 1 if the worker process is running.",
             "# TYPE trio_harvest_worker_up gauge"]
    lines += [f'trio_harvest_worker_up{{worker="{w.index}"}} {int(w.up)}' for w in workers]
    lines += ["# HELP trio_harvest_worker_restarts_total Restarts of the worker process.",
              "# TYPE trio_harvest_worker_restarts_total counter"]
    lines += [f'trio_harvest_worker_restarts_total{{worker="{w.index}"}} {w.restarts}'
              for w in workers]
    return lines


def host_health(workers: Sequence[WorkerView]) -> tuple[bool, dict[str, Any]]:
    per: dict[str, Any] = {}
    healthy = True
    for w in workers:
        ok = w.up and w.health_code == 200
        healthy &= ok
        reasons = []
        if not w.up:
            reasons.append("worker not running")
        elif w.health_code is None:
            reasons.append("no /healthz answer yet")
        elif isinstance(w.health, Mapping):
            reasons.extend(str(r) for r in w.health.get("reasons", []))
        per[str(w.index)] = {"healthy": ok, "up": w.up, "http_status": w.health_code,
                             "reasons": reasons, "restarts": w.restarts}
    return healthy, {"status": "ok" if healthy else "unhealthy", "healthy": healthy,
                     "workers": per}


def host_status(workers: Sequence[WorkerView]) -> dict[str, Any]:
    return {"workers": {str(w.index): {"pid": w.pid, "up": w.up, "restarts": w.restarts,
                                       "last_exit": w.last_exit, "symbols": list(w.symbols),
                                       "status": w.status} for w in workers}}


def _add(into: dict[str, int], more: Any) -> None:
    if isinstance(more, Mapping):
        for k, v in more.items():
            if isinstance(v, int):
                into[k] = into.get(k, 0) + v


def flatten_venues(summary: Mapping[str, Any]) -> Mapping[str, Any]:
    """A worker's summary of several venues (``{"frames", "venues": {name: summary}}``) as one
    summary of their totals (the longest run's seconds); any other summary as it is."""
    venues = summary.get("venues")
    if not isinstance(venues, Mapping):
        return summary
    out: dict[str, Any] = {"frames": 0, "seconds": 0.0, "rows_written": {},
                           "rows_deadlettered": {}, "rows_lost": {}}
    for s in venues.values():
        if not isinstance(s, Mapping):
            continue
        out["frames"] += int(s.get("frames", 0))
        out["seconds"] = max(out["seconds"], float(s.get("seconds", 0.0)))
        for key in ("rows_written", "rows_deadlettered", "rows_lost"):
            _add(out[key], s.get(key))
    return out


def merge_summaries(workers: Sequence[WorkerView]) -> dict[str, Any]:
    """One summary for the host: totals, and each worker's line."""
    frames, seconds = 0, 0.0
    rows_written: dict[str, int] = {}
    deadlettered: dict[str, int] = {}
    lost: dict[str, int] = {}
    per: dict[str, Any] = {}
    for w in workers:
        s = flatten_venues(w.summary or {})
        frames += int(s.get("frames", 0))
        seconds = max(seconds, float(s.get("seconds", 0.0)))
        _add(rows_written, s.get("rows_written"))
        _add(deadlettered, s.get("rows_deadlettered"))
        _add(lost, s.get("rows_lost"))
        per[str(w.index)] = {"symbols": len(w.symbols), "frames": s.get("frames"),
                             "rows": sum(v for v in (s.get("rows_written") or {}).values()),
                             "rows_deadlettered": sum((s.get("rows_deadlettered") or {}).values()),
                             "rows_lost": sum((s.get("rows_lost") or {}).values()),
                             "restarts": w.restarts, "exit": w.last_exit,
                             "summary": "yes" if w.summary else "missing"}
    return {"workers": per, "seconds": round(seconds, 3), "frames": frames,
            "msgs_per_sec": round(frames / seconds, 1) if seconds else 0.0,
            "rows_written": rows_written, "rows_deadlettered": deadlettered, "rows_lost": lost}


def render_summary(doc: Mapping[str, Any]) -> str:
    lines = [f"{len(doc['workers'])} workers, {doc['seconds']:.1f}s: {doc['frames']} frames "
             f"({doc['msgs_per_sec']:.0f} msg/s); rows written {sum(doc['rows_written'].values())}, "
             f"dead-lettered {sum(doc['rows_deadlettered'].values())}, "
             f"lost {sum(doc['rows_lost'].values())}",
             f"{'worker':>6} {'symbols':>7} {'frames':>10} {'rows':>10} {'dead-l.':>8} {'lost':>6} "
             f"{'restarts':>8} {'exit':>5}"]
    for i, w in doc["workers"].items():
        lines.append(f"{i:>6} {w['symbols']:>7} {w['frames'] or 0:>10} {w['rows']:>10} "
                     f"{w['rows_deadlettered']:>8} {w['rows_lost']:>6} {w['restarts']:>8} "
                     f"{w['exit'] if w['exit'] is not None else '-':>5}")
    return "\n".join(lines)
