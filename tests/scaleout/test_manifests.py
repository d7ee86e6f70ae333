"""The deployment files, checked offline: no Docker engine or Kubernetes cluster runs here.

Kubernetes: every object of every rendered overlay validates against the Kubernetes 1.30 schemas that
kubernetes-validate bundles (strict: an unknown field fails), the RayCluster against the subset of KubeRay's
CRD in raycluster-v1.schema.json (its pod templates against Kubernetes' PodTemplateSpec) and KubeRay's own
spec checks; the committed rendered files are what deploy/k8s/render.py makes of the overlays now (and, where
kubectl is installed, what `kubectl kustomize` makes of them); the settings the manifests set load as Settings
and price on the catalog. Compose: its services, health checks, start order, environment, Prometheus targets
and Grafana provisioning. The Dockerfile, .dockerignore, the Grafana dashboard and deploy/README.md too.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import schema_contents
from referencing import Registry, Resource

from reelfoundry.config import Settings
from reelfoundry.finops.catalog import load_catalog
from reelfoundry.finops.rates import Rates, worker_rates
from reelfoundry.routing.state import fleet_rates

pytestmark = pytest.mark.scaleout

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE_DIR = DEPLOY / "compose"
DASHBOARD = DEPLOY / "grafana" / "reelfoundry.json"
RAYCLUSTER_SCHEMA = Path(__file__).parent / "raycluster-v1.schema.json"

#: The Kubernetes version the manifests are validated for (the oldest the README promises).
K8S_VERSION = "1.30"
#: The uid of the image's user (deploy/docker/Dockerfile), which the pod security contexts name.
IMAGE_UID = 10001
#: Variables that are not ReelFoundry settings but that its processes read: boto3's (S3 storage).
AWS_VARS = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION"}
#: The compose file's third-party services and the variables their images document.
THIRD_PARTY_ENV = {
    "postgres": {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"},
    "grafana": {"GF_SECURITY_ADMIN_USER", "GF_SECURITY_ADMIN_PASSWORD", "GF_USERS_ALLOW_SIGN_UP"},
}


def _load_render() -> ModuleType:
    spec = importlib.util.spec_from_file_location("reelfoundry_k8s_render", K8S / "render.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


render = _load_render()
OVERLAYS = render.overlays()


def _rendered(overlay: str) -> list[dict[str, Any]]:
    text = (K8S / "rendered" / f"{overlay}.yaml").read_text()
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


def _one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name)
    return found[0]


# ---- validation: Kubernetes schemas, the RayCluster subset, KubeRay's checks ----


def _raycluster_validator() -> jsonschema.protocols.Validator:
    folder = f"kubernetes-json-schema/v{K8S_VERSION}.0-local-strict"
    definitions = schema_contents(f"{folder}/_definitions.json", K8S_VERSION)
    registry: Registry = Resource.from_contents(definitions) @ Registry()
    schema = json.loads(RAYCLUSTER_SCHEMA.read_text())
    return jsonschema.Draft202012Validator(schema, registry=registry)


RAYCLUSTER = _raycluster_validator()


def validate(doc: dict[str, Any]) -> None:
    """Raise if ``doc`` is not a valid object (Kubernetes kinds strictly; the RayCluster by our CRD subset)."""
    if doc.get("apiVersion") == "ray.io/v1" and doc.get("kind") == "RayCluster":
        RAYCLUSTER.validate(doc)
        _kuberay_checks(doc)
    else:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def _kuberay_checks(doc: dict[str, Any]) -> None:
    """What KubeRay's operator refuses beyond its CRD (ValidateRayCluster*, v1.7.0) for the fields we use."""
    name = doc["metadata"]["name"]
    if len(name) > 53 or not re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", name):
        raise ValueError(f"RayCluster name {name!r}: at most 53 characters, a DNS-1035 label")
    spec = doc["spec"]
    if not spec["headGroupSpec"]["template"]["spec"].get("containers"):
        raise ValueError("headGroupSpec should have at least one container")
    groups = spec.get("workerGroupSpecs", [])
    if len({g["groupName"] for g in groups}) != len(groups):
        raise ValueError("worker group names repeat")
    for group in groups:
        if not group["template"]["spec"].get("containers"):
            raise ValueError(f"worker group {group['groupName']} has no container")
        low, high = group["minReplicas"], group["maxReplicas"]
        if not 0 <= low <= group.get("replicas", low) <= high:
            raise ValueError(f"worker group {group['groupName']}: want 0 <= minReplicas <= replicas <= maxReplicas")
    if spec.get("autoscalerOptions", {}).get("idleTimeoutSeconds", 0) < 0:
        raise ValueError("autoscalerOptions.idleTimeoutSeconds must be non-negative")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_object_validates(overlay: str) -> None:
    docs = _rendered(overlay)
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "RayCluster"} <= kinds
    assert {"ConfigMap", "Secret", "ServiceAccount"} <= kinds
    for doc in docs:
        validate(doc)


def test_overlays_exist() -> None:
    assert OVERLAYS == ["cpu", "gpu", "mig"]


@pytest.mark.parametrize(
    ("kind", "old", "new"),
    [
        ("Deployment", "readinessProbe:", "readinesProbe:"),  # a misspelt field
        ("Deployment", "replicas: 2", "replicas: two"),  # a wrong type
        ("HorizontalPodAutoscaler", "averageUtilization: 70", "averageUtilisation: 70"),
        ("RayCluster", "maxReplicas: 4", "maxReplica: 4"),  # misspelt in our CRD subset
        ("RayCluster", "num-cpus: '0'", "num-cpus: 0"),  # rayStartParams values are strings
        ("RayCluster", "containerPort: 10001", "containerPort: '10001'"),  # inside a pod template
        ("RayCluster", "minReplicas: 0", "minReplicas: 9"),  # KubeRay: minReplicas above maxReplicas
    ],
)
def test_a_broken_copy_of_a_manifest_fails(tmp_path: Path, kind: str, old: str, new: str) -> None:
    copied = tmp_path / "gpu.yaml"
    shutil.copy(K8S / "rendered" / "gpu.yaml", copied)
    docs = [d for d in yaml.safe_load_all(copied.read_text()) if d is not None]
    target = next(d for d in docs if d["kind"] == kind)
    validate(target)  # intact, it passes
    text = yaml.safe_dump(target, sort_keys=True, default_flow_style=False, width=120)
    assert old in text, (old, kind)
    copied.write_text(text.replace(old, new, 1))
    broken = yaml.safe_load(copied.read_text())
    with pytest.raises((kubernetes_validate.ValidationError, jsonschema.ValidationError, ValueError)):
        validate(broken)


# ---- rendering ----


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_committed_rendered_files_are_current(overlay: str) -> None:
    committed = (K8S / "rendered" / f"{overlay}.yaml").read_text()
    assert committed == render.render(overlay), "run: python deploy/k8s/render.py"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with its built-in kustomize) is not installed")
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_render_matches_kubectl_kustomize(overlay: str) -> None:
    out = subprocess.run(
        ["kubectl", "kustomize", str(K8S / "overlays" / overlay)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    real = [d for d in yaml.safe_load_all(out.stdout) if d is not None]
    assert real == render.build(K8S / "overlays" / overlay)


def test_render_refuses_what_it_does_not_implement(tmp_path: Path) -> None:
    (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n")
    (tmp_path / "kustomization.yaml").write_text("resources: [cm.yaml]\nnamePrefix: x-\n")
    with pytest.raises(render.RenderError, match="namePrefix"):
        render.build(tmp_path)
    (tmp_path / "kustomization.yaml").write_text("resources: [cm.yaml]\npatches: [{path: p.yaml}]\n")
    (tmp_path / "p.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {l: [1]}\n")
    with pytest.raises(render.RenderError, match="JSON 6902"):
        render.build(tmp_path)


# ---- what the issue asks of the objects ----


def _pod_templates(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    if doc["kind"] == "Deployment":
        yield doc["metadata"]["name"], doc["spec"]["template"]
    elif doc["kind"] == "RayCluster":
        yield "ray-head", doc["spec"]["headGroupSpec"]["template"]
        for group in doc["spec"]["workerGroupSpecs"]:
            yield f"ray-{group['groupName']}", group["template"]


def _container_env(docs: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, str]:
    """The environment a container gets from its envFrom sources and env entries (later ones win)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(_one(docs, "ConfigMap", source["configMapRef"]["name"]).get("data", {}))
        else:
            env.update(_one(docs, "Secret", source["secretRef"]["name"]).get("stringData", {}))
    env.update({e["name"]: e["value"] for e in container.get("env", [])})
    return env


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_api_scheduler_and_workers_as_specified(overlay: str) -> None:
    docs = _rendered(overlay)
    api = _one(docs, "Deployment", "reelfoundry-api")
    assert api["spec"]["replicas"] == 2
    pod = api["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert container["args"][:3] == ["serve", "--role", "api"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    labels = pod["metadata"]["labels"]

    service = _one(docs, "Service", "reelfoundry-api")
    assert service["spec"]["selector"].items() <= labels.items()
    port_names = {p["name"] for p in container["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    hpa = _one(docs, "HorizontalPodAutoscaler", "reelfoundry-api")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "reelfoundry-api"}
    assert hpa["spec"]["minReplicas"] >= 2
    pdb = _one(docs, "PodDisruptionBudget", "reelfoundry-api")
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()

    scheduler = _one(docs, "Deployment", "reelfoundry-scheduler")
    assert scheduler["spec"]["replicas"] == 1
    assert scheduler["spec"]["strategy"] == {"type": "Recreate"}
    (sched,) = scheduler["spec"]["template"]["spec"]["containers"]
    assert sched["args"][:3] == ["serve", "--role", "scheduler"]

    # The scheduler reaches the Ray client port of the head service KubeRay names <cluster>-head-svc.
    (ray,) = [d for d in docs if d["kind"] == "RayCluster"]
    executor = _container_env(docs, sched)["REELFOUNDRY_EXECUTOR"]
    assert executor == f"ray://{ray['metadata']['name']}-head-svc:10001"
    head = ray["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert 10001 in {p["containerPort"] for p in head["ports"]}

    (group,) = ray["spec"]["workerGroupSpecs"]
    resources = group["template"]["spec"]["containers"][0]["resources"]
    gpu_kinds = {k for part in resources.values() for k in part if k.startswith("nvidia.com/")}
    expected = {"cpu": set(), "gpu": {"nvidia.com/gpu"}, "mig": {"nvidia.com/mig-3g.40gb"}}[overlay]
    assert gpu_kinds == expected
    for key in expected:
        assert resources["requests"][key] == resources["limits"][key] == "1"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_is_non_root_with_requests_limits_and_existing_references(overlay: str) -> None:
    docs = _rendered(overlay)
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    tag = "cpu" if overlay == "cpu" else "cuda"
    for where, template in (t for d in docs for t in _pod_templates(d)):
        spec = template["spec"]
        security = spec["securityContext"]
        assert security["runAsNonRoot"] is True and security["runAsUser"] == IMAGE_UID, where
        assert spec["enableServiceLinks"] is False, where  # service links would inject REELFOUNDRY_*_PORT
        if "serviceAccountName" in spec:
            assert ("ServiceAccount", spec["serviceAccountName"]) in names
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                assert ("Secret", volume["secret"]["secretName"]) in names, where
        for container in spec["containers"]:
            assert container["image"] == f"reelfoundry:{tag}", where
            assert container["resources"]["requests"] and container["resources"]["limits"], where
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, where
            mounts = {m["name"] for m in container.get("volumeMounts", [])}
            assert mounts <= {v["name"] for v in spec.get("volumes", [])}, where
            for source in container.get("envFrom", []):
                kind, ref = ("ConfigMap", "configMapRef") if "configMapRef" in source else ("Secret", "secretRef")
                assert (kind, source[ref]["name"]) in names, where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_hold_only_marked_placeholders(overlay: str) -> None:
    for secret in (d for d in _rendered(overlay) if d["kind"] == "Secret"):
        assert "data" not in secret
        for key, value in secret["stringData"].items():
            assert "CHANGE-ME" in value, (secret["metadata"]["name"], key)


# ---- settings: every variable is a setting (or boto3's), and the values load and price ----


def _check_names(env: dict[str, str], allowed: set[str], where: str) -> None:
    fields = set(Settings.model_fields)
    for name in env:
        if name.startswith("REELFOUNDRY_"):
            assert name.removeprefix("REELFOUNDRY_").lower() in fields, f"{where}: {name} is not a setting"
        else:
            assert name in allowed, f"{where}: {name} is neither a setting nor a known variable"


def _settings(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], data_dir: Path) -> Settings:
    """Settings as a process with exactly ``env`` would load them (its data dir moved under ``data_dir``)."""
    with monkeypatch.context() as m:
        for name in [n for n in os.environ if n.startswith("REELFOUNDRY_")]:
            m.delenv(name)
        for name, value in env.items():
            m.setenv(name, value)
        m.setenv("REELFOUNDRY_DATA_DIR", str(data_dir))
        return Settings()


def _prices(settings: Settings) -> tuple[Rates, dict[str, Rates]]:
    """This node's worker rates and the fleet's, as the server computes them at start (raises if unpriced)."""
    rates = worker_rates(settings, load_catalog())
    return rates, fleet_rates(settings, load_catalog(), rates)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_manifest_settings_load_and_price(overlay: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    docs = _rendered(overlay)
    for where, template in (t for d in docs for t in _pod_templates(d)):
        for container in template["spec"]["containers"]:
            env = _container_env(docs, container)
            _check_names(env, AWS_VARS, f"{overlay}/{where}/{container['name']}")
            settings = _settings(monkeypatch, env, tmp_path / where)
            assert settings.environment == "production"
            rates, fleet = _prices(settings)
            assert fleet, where  # the API nodes route for a fleet the catalog prices
            if where.startswith("ray-") and where != "ray-head":  # what a job on this worker costs
                assert rates.device == ("cpu" if overlay == "cpu" else "H100"), where
                assert rates.device_share == Decimal({"mig": "0.428571429"}.get(overlay, "1")), where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_schedulers_tasks_ask_for_what_one_ray_worker_offers(
    overlay: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The resource the scheduler's Ray executor asks for (computed as the server does: device_<class> at the
    slot's share) fits a worker pod once and only once, and the scheduler runs as many tasks as there are pods."""
    from reelfoundry.execution.ray_executor import device_resource
    from reelfoundry.scheduling.live import node_slot_type

    docs = _rendered(overlay)
    (sched,) = _one(docs, "Deployment", "reelfoundry-scheduler")["spec"]["template"]["spec"]["containers"]
    settings = _settings(monkeypatch, _container_env(docs, sched), tmp_path / "scheduler")
    slot = node_slot_type(settings, worker_rates(settings, load_catalog()))
    asked = {device_resource(slot.device): float(slot.share)}
    (ray,) = [d for d in docs if d["kind"] == "RayCluster"]
    (group,) = ray["spec"]["workerGroupSpecs"]
    offered = json.loads(json.loads(group["rayStartParams"]["resources"]))  # a JSON string inside quotes
    assert offered.keys() == asked.keys(), (offered, asked)
    for name, want in asked.items():
        have = round(offered[name], 4)  # Ray counts resources in steps of 0.0001
        assert round(want, 4) <= have < 2 * round(want, 4), (name, want, have)
    assert settings.worker_slots == group["maxReplicas"]
    expected = {"cpu": ("cpu", 1.0), "gpu": ("H100", 1.0), "mig": ("H100", 3 / 7)}[overlay]
    assert (slot.device, float(slot.share)) == pytest.approx(expected)


def test_compose_settings_are_settings_and_load(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    services = _compose()["services"]
    for name, service in services.items():
        env = {k: str(v) for k, v in service.get("environment", {}).items()}
        if _is_reelfoundry(service):
            _check_names(env, AWS_VARS, f"compose/{name}")
            settings = _settings(monkeypatch, env, tmp_path / name)
            assert settings.environment == "development"
            assert settings.s3_endpoint_url == "http://seaweedfs:8333"
            _prices(settings)
        else:
            _check_names(env, THIRD_PARTY_ENV.get(name, set()), f"compose/{name}")


# ---- compose ----


def _compose() -> dict[str, Any]:
    return yaml.safe_load((COMPOSE_DIR / "docker-compose.yml").read_text())


def _is_reelfoundry(service: dict[str, Any]) -> bool:
    return str(service.get("image", "")).startswith("reelfoundry:")


def test_compose_has_the_laptop_cluster() -> None:
    services = _compose()["services"]
    assert set(services) == {
        "postgres", "seaweedfs", "redis", "scheduler", "api-1", "api-2", "worker", "prometheus", "grafana",
    }  # fmt: skip
    roles = {name: s["command"][s["command"].index("--role") + 1] for name, s in services.items() if _is_reelfoundry(s)}
    assert roles == {"scheduler": "scheduler", "api-1": "api", "api-2": "api", "worker": "worker"}
    for name, service in services.items():
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name} has no health check"
        if _is_reelfoundry(service):
            assert service["build"] == {
                "context": "../..", "dockerfile": "deploy/docker/Dockerfile", "args": {"VARIANT": "cpu"},
            }  # fmt: skip
            assert (COMPOSE_DIR / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
            assert "/readyz" in " ".join(test)
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond this machine"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE_DIR / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in _compose()["volumes"], f"{name}: undeclared volume {source}"


def test_compose_start_order_waits_for_health() -> None:
    services = _compose()["services"]
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services, (name, dependency)
            assert condition == {"condition": "service_healthy"}, (name, dependency)
    app = [n for n, s in services.items() if _is_reelfoundry(s)]
    for name in app:
        assert {"postgres", "redis", "seaweedfs"} <= set(services[name]["depends_on"])
        if name != "scheduler":  # the scheduler migrates and creates the bucket before the others start
            assert "scheduler" in services[name]["depends_on"]
    assert services["scheduler"]["environment"]["REELFOUNDRY_S3_CREATE_BUCKET"] == "true"
    assert not any("REELFOUNDRY_S3_CREATE_BUCKET" in services[n]["environment"] for n in app if n != "scheduler")


def test_compose_services_agree_on_credentials_and_addresses() -> None:
    services = _compose()["services"]
    postgres = services["postgres"]["environment"]
    seaweed = json.loads((COMPOSE_DIR / "seaweedfs" / "s3.json").read_text())
    keys = {(c["accessKey"], c["secretKey"]) for i in seaweed["identities"] for c in i.get("credentials", [])}
    for name, service in services.items():
        if not _is_reelfoundry(service):
            continue
        env = service["environment"]
        user, password, database = postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"], postgres["POSTGRES_DB"]
        assert env["REELFOUNDRY_DATABASE_URL"] == f"postgresql+psycopg://{user}:{password}@postgres:5432/{database}"
        assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) in keys, name
        assert env["REELFOUNDRY_RATE_LIMIT_STORAGE_URL"].startswith("redis://redis:6379/")
        assert "-s3.port=8333" in services["seaweedfs"]["command"]


def test_prometheus_scrapes_every_app_node() -> None:
    services = _compose()["services"]
    config = yaml.safe_load((COMPOSE_DIR / "prometheus.yml").read_text())
    targets = {t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    assert targets == {f"{name}:8000" for name, s in services.items() if _is_reelfoundry(s)}
    assert all(job["metrics_path"] == "/metrics" for job in config["scrape_configs"])


def test_grafana_provisions_the_dashboard_and_its_datasource() -> None:
    grafana = _compose()["services"]["grafana"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"])
    provisioning = COMPOSE_DIR / "grafana" / "provisioning"
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    (datasource,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert datasource["type"] == "prometheus" and datasource["isDefault"] is True
    assert datasource["url"] == "http://prometheus:9090"
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "reelfoundry.yml").read_text())["providers"]
    assert provider["type"] == "file"
    target = mounts["../grafana/reelfoundry.json"]
    assert (COMPOSE_DIR / "../grafana/reelfoundry.json").resolve() == DASHBOARD
    assert str(Path(target).parent) == provider["options"]["path"]


# ---- the Grafana dashboard ----


def test_dashboard_works_with_file_provisioning() -> None:
    text = DASHBOARD.read_text()
    dashboard = json.loads(text)
    assert "__inputs" not in dashboard and "${DS_" not in text
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in dashboard["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        for target in panel["targets"]:
            assert target.get("datasource", panel["datasource"])["uid"] == "${datasource}", panel["title"]


def test_dashboard_does_not_add_up_figures_every_node_repeats() -> None:
    """Jobs, money, energy, carbon and budgets come from the database: each node reports the same totals."""
    repeated = (
        r"reelfoundry_(jobs|cost_usd_total|energy_kwh_total|co2e_kg_total|device_seconds_total|budget_remaining_usd)"
    )
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            for match in re.finditer(repeated, target["expr"]):
                before = target["expr"][: match.start()]
                assert re.search(r"max by \([^)]*\) \((rate\()?$", before), (panel["title"], target["expr"])


# ---- the image ----


def _dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's instructions, continuation lines joined, grouped by stage (index 0: before FROM)."""
    lines: list[str] = []
    pending = ""
    for raw in (DEPLOY / "docker" / "Dockerfile").read_text().splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    stages: list[list[tuple[str, str]]] = [[]]
    for line in lines:
        instruction, _, args = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), args.strip()))
    return stages


def test_dockerfile_is_multi_stage_non_root_with_a_health_check() -> None:
    stages = _dockerfile_stages()
    global_args = dict(a.partition("=")[::2] for i, a in stages[0] if i == "ARG")
    assert global_args["VARIANT"] == "cpu"
    assert global_args["CUDA_IMAGE"].startswith("nvidia/cuda:")
    named = {s[0][1].split(" AS ")[1]: s for s in stages[1:]}
    assert {"os-cpu", "os-cuda", "builder", "runtime"} <= set(named)
    assert named["builder"][0][1] == "os-${VARIANT} AS builder"
    assert named["runtime"][0][1] == "os-${VARIANT} AS runtime"
    assert stages[-1] is named["runtime"], "the runtime is the last stage (the default target)"
    builder = " ".join(a for i, a in named["builder"] if i == "RUN")
    assert "cpu)  pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in builder
    assert "cuda) pip install torch==2.13.0 ;;" in builder
    runtime = named["runtime"]
    assert ("COPY", "--from=builder /opt/reelfoundry /opt/reelfoundry") in runtime
    (user,) = [a for i, a in runtime if i == "USER"]
    assert user == f"{IMAGE_UID}:{IMAGE_UID}"
    (health,) = [a for i, a in runtime if i == "HEALTHCHECK"]
    assert '"python"' in health and "/healthz" in health and "curl" not in health
    assert ("ENTRYPOINT", '["reelfoundry"]') in runtime


def test_dockerignore_sends_what_the_wheel_needs() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    readme = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["readme"]
    assert patterns[0] == "*"
    assert {"!pyproject.toml", f"!{readme}", "!src/"} <= set(patterns)


# ---- deploy/README.md ----


def test_deploy_readme_names_real_files_settings_and_commands() -> None:
    text = (DEPLOY / "README.md").read_text()
    for command in (
        "docker build -f deploy/docker/Dockerfile --build-arg VARIANT=cuda -t reelfoundry:cuda .",
        "docker compose -f deploy/compose/docker-compose.yml up",
        "kubectl apply -k deploy/k8s/overlays/gpu",
    ):
        assert command in text
    # (not `kubectl … deploy/reelfoundry-api`, a Deployment)
    for path in set(re.findall(r"(?<![\w/.])(deploy/(?:docker|compose|grafana|k8s)\b[\w./-]*[\w/])", text)):
        assert (ROOT / path).exists(), path
    fields = set(Settings.model_fields)
    for name in set(re.findall(r"REELFOUNDRY_([A-Z0-9_]+)", text)):
        assert name.lower() in fields, f"REELFOUNDRY_{name}"
