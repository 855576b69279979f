"""The deployment files in infra/, checked by the tools that would read them: `docker compose
config`, Kubernetes schemas (kubernetes-validate, and KEDA's kinds against tests/support/schemas),
`promtool check` and `promtool test rules`; and every metric the dashboard and the alerts query
is one the code exports."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from handlers.registry import Registry
from workers.celery_app import MAINTENANCE_QUEUE

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
K8S = INFRA / "k8s"
KEDA_SCHEMA = json.loads((ROOT / "tests/support/schemas/keda-v1alpha1.json").read_text())
SOURCE_PACKAGES = ("fleet", "handlers", "tasks", "schedules", "infra", "workers")


def tool(*names: str) -> list[str]:
    """The first of `names` installed (a command may be two words, `docker compose`)."""
    for name in names:
        argv = name.split()
        if not shutil.which(argv[0]):
            continue
        # `docker` without its compose plugin exists but cannot `compose`.
        if (
            len(argv) == 1
            or subprocess.run([*argv, "version"], capture_output=True, check=False).returncode == 0
        ):
            return argv
    message = f"none of {names} is installed (`make tools` installs them from Debian)"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


# -- compose --------------------------------------------------------------------------------------
def compose_config(path: Path) -> subprocess.CompletedProcess[str]:
    compose = tool("docker compose", "docker-compose")
    return subprocess.run(
        [*compose, "-f", str(path), "-p", "fleet", "config"], capture_output=True, text=True, check=False
    )


def test_compose_file_is_valid_and_runs_the_whole_fleet() -> None:
    result = compose_config(INFRA / "compose.yaml")
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    services = config["services"]
    assert set(services) >= {
        "redis",
        "postgres",
        "migrate",
        "worker",
        "beat",
        "web",
        "bridge",
        "prometheus",
        "grafana",
    }
    for name in ("worker", "beat", "web", "bridge"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["beat"]["deploy"]["replicas"] == 2  # safe: the leader lock
    grafana_mounts = " ".join(str(volume) for volume in services["grafana"]["volumes"])
    assert "provisioning" in grafana_mounts
    assert "dashboards" in grafana_mounts


def test_compose_validation_catches_a_broken_file(tmp_path: Path) -> None:
    broken = yaml.safe_load((INFRA / "compose.yaml").read_text())
    broken["services"]["web"]["restrat"] = "always"
    path = tmp_path / "compose.yaml"
    path.write_text(yaml.safe_dump(broken))
    result = compose_config(path)
    assert result.returncode != 0
    assert "restrat" in result.stderr


# -- Kubernetes -----------------------------------------------------------------------------------
def k8s_documents() -> list[tuple[Path, dict[str, Any]]]:
    documents = []
    for path in sorted(K8S.rglob("*.yaml")):
        if path.name in {"kustomization.yaml", "worker-trigger.yaml"}:
            continue
        documents += [(path, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return documents


def validate_k8s(document: dict[str, Any]) -> None:
    if document["apiVersion"].startswith("keda.sh/"):
        schema = {**KEDA_SCHEMA, "$ref": f"#/$defs/{document['kind']}"}
        jsonschema.validate(document, schema, cls=jsonschema.Draft202012Validator)
    else:
        kubernetes_validate.validate(document, kubernetes_validate.latest_version(), strict=True)


def test_every_manifest_is_valid_against_its_schema() -> None:
    documents = k8s_documents()
    kinds = {doc["kind"] for _, doc in documents}
    assert kinds >= {
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "ScaledObject",
        "TriggerAuthentication",
        "Job",
    }
    for path, document in documents:
        try:
            validate_k8s(document)
        except (kubernetes_validate.ValidationError, jsonschema.ValidationError) as exc:
            pytest.fail(f"{path.relative_to(ROOT)} {document['kind']}/{document['metadata']['name']}: {exc}")


def test_schema_validation_catches_typos() -> None:
    deployment = copy.deepcopy(
        next(
            doc
            for _, doc in k8s_documents()
            if doc["kind"] == "Deployment" and doc["metadata"]["name"] == "fleet-worker"
        )
    )
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_k8s(deployment)
    scaled = copy.deepcopy(next(doc for _, doc in k8s_documents() if doc["kind"] == "ScaledObject"))
    scaled["spec"]["triggers"][0]["metadata"]["listLength"] = 200  # KEDA wants strings
    with pytest.raises(jsonschema.ValidationError):
        validate_k8s(scaled)


def test_kustomizations_name_existing_files_and_the_service_bus_patch_applies() -> None:
    schema = {**KEDA_SCHEMA, "$ref": "#/$defs/Kustomization"}
    for path in K8S.rglob("kustomization.yaml"):
        kustomization = yaml.safe_load(path.read_text())
        jsonschema.validate(kustomization, schema, cls=jsonschema.Draft202012Validator)
        for resource in kustomization["resources"]:
            assert (path.parent / resource).exists(), f"{path}: {resource} does not exist"
        for patch in kustomization.get("patches", []):
            assert (path.parent / patch["path"]).exists()
    scaled = next(doc for _, doc in k8s_documents() if doc["kind"] == "ScaledObject")
    patched = copy.deepcopy(scaled)
    for operation in yaml.safe_load((K8S / "servicebus/worker-trigger.yaml").read_text()):
        assert (operation["op"], operation["path"]) == ("add", "/spec/triggers/-")
        patched["spec"]["triggers"].append(operation["value"])
    validate_k8s(patched)
    assert {t["type"] for t in patched["spec"]["triggers"]} == {"redis", "azure-servicebus"}


def test_deployments_are_production_shaped() -> None:
    documents = [doc for _, doc in k8s_documents()]
    deployments = {doc["metadata"]["name"]: doc for doc in documents if doc["kind"] == "Deployment"}
    assert set(deployments) >= {"fleet-worker", "fleet-beat", "fleet-web", "fleet-bridge-redis-stream"}
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        for container in pod["containers"]:
            assert container["resources"]["requests"], name
            assert "livenessProbe" in container, name
    assert deployments["fleet-worker"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 300
    assert deployments["fleet-beat"]["spec"]["replicas"] >= 2
    web = deployments["fleet-web"]["spec"]["template"]["spec"]["containers"][0]
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    budgets = [doc for doc in documents if doc["kind"] == "PodDisruptionBudget"]
    labels = {
        d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] for d in deployments.values()
    }
    for budget in budgets:
        assert budget["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] in labels


def test_every_web_replica_reads_the_console_key_and_users_from_one_mounted_secret() -> None:
    web = next(
        doc
        for _, doc in k8s_documents()
        if doc["kind"] == "Deployment" and doc["metadata"]["name"] == "fleet-web"
    )
    pod = web["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    secrets_dir = {item["name"]: item.get("value") for item in container["env"]}["FLEET_SECRETS_DIR"]
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == secrets_dir)
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert {item["path"] for item in volume["secret"]["items"]} == {
        "FLEET_CONSOLE_SECRET",
        "FLEET_CONSOLE_USERS",
    }
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"], "readable by the process"

    compose = yaml.safe_load((INFRA / "compose.yaml").read_text())
    service = compose["services"]["web"]
    assert service["environment"]["FLEET_SECRETS_DIR"] == "/run/secrets"  # where compose mounts secrets
    assert (
        set(service["secrets"]) == {"FLEET_CONSOLE_SECRET", "FLEET_CONSOLE_USERS"} <= set(compose["secrets"])
    )


def test_keda_scales_workers_on_every_queue_of_the_routing_table() -> None:
    scaled = next(doc for _, doc in k8s_documents() if doc["kind"] == "ScaledObject")
    assert scaled["spec"]["scaleTargetRef"]["name"] == "fleet-worker"
    lists = {t["metadata"]["listName"] for t in scaled["spec"]["triggers"] if t["type"] == "redis"}
    assert lists == {*Registry().queues(), MAINTENANCE_QUEUE}


# -- Prometheus -----------------------------------------------------------------------------------
def test_alert_rules_pass_promtool_and_their_unit_tests() -> None:
    promtool = tool("promtool")
    for args in (
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts.test.yml"],
        ["check", "config", "prometheus.yml"],
    ):
        result = subprocess.run(
            [*promtool, *args], cwd=INFRA / "prometheus", capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr
    alerts = {
        rule["alert"]
        for group in yaml.safe_load((INFRA / "prometheus/alerts.yml").read_text())["groups"]
        for rule in group["rules"]
    }
    assert alerts >= {
        "FleetDeadLettersGrowing",
        "FleetOldestMessageTooOld",
        "FleetNoWorkerOnline",
        "FleetGraphSubscriptionExpiring",
        "FleetScheduledJobLate",
        "FleetBridgeDisconnected",
        "FleetOutboxLagging",
        "FleetDeadLetterUnattended",
        "FleetEventTypeStopped",
    }
    runbooks = (ROOT / "docs/deployment.md").read_text()
    for alert in alerts:
        assert f"### {alert}" in runbooks, f"no runbook for {alert} in docs/deployment.md"


def test_promtool_catches_a_broken_rule(tmp_path: Path) -> None:
    promtool = tool("promtool")
    (tmp_path / "bad.yml").write_text(
        "groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: rate(fleet_x[5m]\n"
    )
    result = subprocess.run(
        [*promtool, "check", "rules", str(tmp_path / "bad.yml")], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0


# -- metrics: what the dashboard and alerts query, the code exports ---------------------------------
_DEFINITION = re.compile(
    r"\b(Counter|Gauge|Histogram|Summary|CounterMetricFamily|GaugeMetricFamily|HistogramMetricFamily|_family)"
    r"\(\s*(\"fleet_\w+\"|[A-Z_]+)"
)
_CONSTANT = re.compile(r"^([A-Z_]+)\s*=\s*\"(fleet_\w+)\"", re.MULTILINE)


def exported_metric_names() -> set[str]:
    """Sample names the code's metric definitions produce (a Counter `x` exports `x_total`, a
    Histogram `x` exports `x_bucket`, `x_sum`, `x_count`)."""
    names: set[str] = set()
    for package in SOURCE_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text()
            constants = dict(_CONSTANT.findall(text))
            for kind, argument in _DEFINITION.findall(text):
                name = argument.strip('"') if argument.startswith('"') else constants.get(argument)
                if not name:
                    continue
                if kind.startswith("Counter"):
                    names.add(name.removesuffix("_total") + "_total")
                elif kind.startswith("Histogram"):
                    names.update(f"{name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
                else:
                    names.add(name)
    return names


def queried_metric_names(expression: str) -> set[str]:
    return set(re.findall(r"\bfleet_[a-z0-9_]+", expression))


def dashboard_expressions() -> list[str]:
    dashboard = json.loads((INFRA / "grafana/dashboards/fleet.json").read_text())
    assert dashboard["uid"] == "fleet"
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def alert_expressions() -> list[str]:
    groups = yaml.safe_load((INFRA / "prometheus/alerts.yml").read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def test_every_metric_the_dashboard_and_alerts_query_is_exported_by_the_code() -> None:
    exported = exported_metric_names()
    assert "fleet_schedule_last_success_timestamp_seconds" in exported
    assert "fleet_schedule_runs_total" in exported
    assert "fleet_handler_duration_seconds_bucket" in exported
    queried = {
        name
        for expression in dashboard_expressions() + alert_expressions()
        for name in queried_metric_names(expression)
    }
    assert len(queried) >= 15
    assert sorted(queried - exported) == []


def test_the_dashboard_is_provisioned_from_its_folder() -> None:
    provider = yaml.safe_load((INFRA / "grafana/provisioning/dashboards/fleet.yaml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    datasource = yaml.safe_load((INFRA / "grafana/provisioning/datasources/prometheus.yaml").read_text())
    uid = datasource["datasources"][0]["uid"]
    dashboard = json.loads((INFRA / "grafana/dashboards/fleet.json").read_text())
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == uid
            assert panel["targets"], panel["title"]


# -- the image --------------------------------------------------------------------------------------
def test_the_image_is_multi_stage_non_root_and_health_checked() -> None:
    dockerfile = (INFRA / "docker/Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", dockerfile, re.MULTILINE)) >= 2
    user = re.findall(r"^USER (\S+)", dockerfile, re.MULTILINE)
    assert user
    assert not user[-1].startswith(("root", "0"))
    assert re.search(r"^HEALTHCHECK ", dockerfile, re.MULTILINE)
    assert re.search(r"^COPY --from=build ", dockerfile, re.MULTILINE)
    assert 'ENTRYPOINT ["fleet"]' in dockerfile
