"""deploy/: the Dockerfile, the systemd template unit and the Kubernetes StatefulSet parse, name
only flags the command line has, probe /healthz, and give the stop enough time."""

from __future__ import annotations

import argparse
import json
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from trio_harvest.cli.commands import build_parser
from trio_harvest.config import build_config

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
# the harvester's bounded stop with the defaults: backfill finish (<= 5 s), the final flush
# (shutdown_grace), the dead-letter dump (deadletter_timeout + 1 s)
_DEFAULTS = build_config()
BOUNDED_STOP = 5 + _DEFAULTS.shutdown_grace + _DEFAULTS.deadletter_timeout + 1


def run_flags() -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {opt for action in sub.choices["run"]._actions for opt in action.option_strings}


def check_run_args(args: list[str]) -> None:
    assert args[0] == "run", args
    known = run_flags()
    flags = [a.split("=", 1)[0] for a in args if a.startswith("--")]
    assert flags, args
    unknown = [f for f in flags if f not in known]
    assert not unknown, f"flags the CLI does not have: {unknown}"


def test_dockerfile_runs_the_cli_with_existing_flags() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    entry = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M).group(1))  # type: ignore[union-attr]
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))  # type: ignore[union-attr]
    assert entry == ["python", "-m", "trio_harvest"]
    check_run_args(cmd)
    assert "STOPSIGNAL SIGTERM" in text and "EXPOSE 9108" in text
    assert cmd[cmd.index("--metrics-port") + 1] == "9108"


def _unit(path: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    section = ""
    text = path.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.setdefault(f"{section}.{key}", []).append(value)
    return out


def test_systemd_template_unit_instance_is_the_shard() -> None:
    unit = _unit(DEPLOY / "systemd" / "trio-harvest@.service")
    (exec_start,) = unit["Service.ExecStart"]
    argv = shlex.split(exec_start)
    assert argv[:3] == ["/usr/bin/env", "python3", "-m"] and argv[3] == "trio_harvest"
    check_run_args(argv[4:])
    assert argv[argv.index("--shard") + 1] == "%i/${SHARDS}"
    assert int(unit["Service.TimeoutStopSec"][0]) >= BOUNDED_STOP + 5
    assert unit["Service.KillSignal"] == ["SIGTERM"]
    assert unit["Service.RestartPreventExitStatus"] == ["2"]  # a user mistake is not retried


def _statefulset() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    docs = list(yaml.safe_load_all((DEPLOY / "kubernetes" / "statefulset.yaml").read_text()))
    (sts,) = [d for d in docs if d["kind"] == "StatefulSet"]
    return sts, docs


def test_kubernetes_statefulset_maps_the_pod_ordinal_to_the_shard() -> None:
    sts, docs = _statefulset()
    assert {d["kind"] for d in docs} == {"Service", "StatefulSet"}
    spec = sts["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    args = container["args"]
    check_run_args(args)
    env = {e["name"]: e for e in container["env"]}
    assert args[args.index("--shard") + 1] == "$(POD_INDEX)/$(SHARDS)"
    assert env["POD_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"] == \
        "metadata.labels['apps.kubernetes.io/pod-index']"
    assert int(env["SHARDS"]["value"]) == sts["spec"]["replicas"]
    # probes: readiness is /healthz; liveness never on /healthz (a 503 must not kill the pod)
    port = args[args.index("--metrics-port") + 1]
    assert container["ports"][0]["containerPort"] == int(port)
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["livenessProbe"]["httpGet"]["path"] != "/healthz"
    assert args[args.index("--metrics-host") + 1] == "0.0.0.0"
    # the stop: grace sized to the bounded stop of the flags it runs with
    grace = float(args[args.index("--shutdown-grace") + 1])
    dl = float(args[args.index("--deadletter-timeout") + 1])
    assert spec["terminationGracePeriodSeconds"] >= 5 + grace + dl + 1 + 5
    # S3 credentials from a secret, the local dead letter on a volume of its own
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert env[var]["valueFrom"]["secretKeyRef"]["key"] == var
    assert args[args.index("--data-dir") + 1].startswith("s3://")
    local = args[args.index("--local-dir") + 1]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert local in mounts
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "local"
