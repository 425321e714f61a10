"""The Helm chart as Helm sees it, and against the code: lint, schemas, labels, pods, commands, probes, env.
Rendered offline (tests/deploy/chart.py)."""

from __future__ import annotations

import tomllib
from typing import Any

import httpx
import jsonschema
import kubernetes_validate
import pytest
import yaml

from harness.http import client_tls
from services.cli import COMMANDS
from services.common.health import serve_health
from services.common.settings import DEMO_SECRETS, Settings
from tests.deploy.chart import (
    ANNOTATION,
    CASES,
    CHART,
    DEFAULT_VALUES,
    KUBERNETES_VERSION,
    LABELS,
    NEEDS,
    READ_SECRETS,
    REPO,
    SETTINGS_FIELDS,
    SSE_TIMEOUT_MIN_S,
    WEB,
    Case,
    Manifests,
    component,
    helm_template,
    render,
    run_helm,
)

pytestmark = pytest.mark.e2e  # runs the helm binary


# -- the chart as Helm sees it ---------------------------------------------------------------------------------


def test_helm_lint_strict_passes(helm: str, case: Case) -> None:
    done = run_helm(helm, "lint", "--strict", str(CHART), *case.values)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("missing", ["externalRedis.url", "externalPostgresql.url"])
def test_render_fails_without_an_external_server(helm: str, missing: str) -> None:
    done = helm_template(helm, *DEFAULT_VALUES, "--set", f"{missing}=")
    assert done.returncode != 0
    assert missing in done.stderr


def test_chart_is_labelled_next_phase_production_only() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    for doc in ("README.md", "templates/NOTES.txt"):
        text = (CHART / doc).read_text().lower()
        assert "next phase" in text, doc
        assert "production-only" in text, doc


# Custom resources: not in kubernetes-validate's schemas; test_pod_monitor_scrapes_the_metrics_port checks them.
CRD_KINDS = {"PodMonitor"}


def test_every_manifest_passes_strict_schema_validation(manifests: Manifests) -> None:
    problems = []
    for obj in manifests.objects:
        if obj["kind"] in CRD_KINDS:
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except jsonschema.ValidationError as exc:  # its str() carries the whole schema: keep the message
            where = "/".join(map(str, exc.absolute_path))
            problems.append(f"{obj['kind']} {obj['metadata']['name']}: {exc.message} at {where}")
    assert not problems


def test_one_deployment_per_service_and_the_migration_hook(manifests: Manifests, case: Case) -> None:
    assert sorted(map(component, manifests.of("Deployment"))) == sorted(case.services)
    (job,) = manifests.of("Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    # What the Job reads must exist before it runs: chart-made ConfigMap and Secrets are earlier hooks.
    weight = int(job["metadata"]["annotations"]["helm.sh/hook-weight"])
    for obj in manifests.of("ConfigMap") + manifests.of("Secret"):
        assert "pre-install" in obj["metadata"]["annotations"]["helm.sh/hook"], obj["metadata"]["name"]
        assert int(obj["metadata"]["annotations"]["helm.sh/hook-weight"]) < weight


def test_every_object_carries_the_recommended_labels(manifests: Manifests) -> None:
    for obj in manifests.objects:
        labelled = [obj["metadata"]]
        if obj["kind"] in ("Deployment", "Job"):
            labelled.append(obj["spec"]["template"]["metadata"])
        for meta in labelled:
            missing = [k for k in LABELS if not meta["labels"].get(f"app.kubernetes.io/{k}")]
            assert not missing, f"{obj['kind']} {obj['metadata']['name']} lacks {missing}"
            assert meta["labels"]["app.kubernetes.io/part-of"] == "mdstack"
            assert meta["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    for deployment in manifests.of("Deployment"):
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_pods_run_non_root_read_only_with_resources(manifests: Manifests) -> None:
    for name, pod in manifests.workloads().items():
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["automountServiceAccountToken"] is False, name
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["capabilities"]["drop"] == ["ALL"], name
            assert {m["mountPath"] for m in container["volumeMounts"]} == {"/tmp"}, name
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= container["resources"][bound].keys(), f"{name} {bound}"


# -- the chart against the code --------------------------------------------------------------------------------


def test_every_container_runs_a_real_mdstack_command(manifests: Manifests) -> None:
    script = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]["mdstack"]
    assert script == "services.cli:main"
    for name, pod in manifests.workloads().items():
        for container in pod["containers"]:
            assert container["command"] == ["mdstack"], name
            assert container["args"][0] == name, "the component label names the service it runs"
            assert container["args"][0] in COMMANDS, f"{name}: `mdstack {container['args'][0]}` does not exist"


def test_processes_listen_where_the_probes_and_services_look(
    manifests: Manifests, case: Case, parse_as_service: Any
) -> None:
    for name, pod in manifests.workloads().items():
        (container,) = pod["containers"]
        options, settings = parse_as_service(container["args"], manifests.env(container, case.external_secrets))
        assert settings.is_production, name
        if name == "migrate":
            assert "ports" not in container
            continue
        if name in WEB:
            host, port = options.host, options.port
            declared, metrics = container["ports"]  # the public port, then METRICS_PORT's
            assert metrics["name"] == "metrics", name
            assert metrics["containerPort"] == settings.METRICS_PORT != port, f"{name}: METRICS_PORT"
        else:
            # serve_health binds API_HOST; the feeder's CLI source parses the flag as text, validated later
            host, port = settings.API_HOST, int(options.metrics_port)
            (declared,) = container["ports"]
        assert host == "0.0.0.0", f"{name} listens on {host}: kubelet probes and Services could not reach it"
        assert declared["containerPort"] == port, name
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert container[probe]["httpGet"]["port"] == declared["name"], f"{name} {probe}"


def probe_paths(manifests: Manifests, names: tuple[str, ...]) -> set[str]:
    return {
        container[probe]["httpGet"]["path"]
        for name, pod in manifests.workloads().items()
        if name in names
        for container in pod["containers"]
        for probe in ("startupProbe", "livenessProbe", "readinessProbe")
    }


def test_probe_paths_are_routes_of_the_apps(manifests: Manifests, api_paths: set[str], gateway_paths: set[str]) -> None:
    assert probe_paths(manifests, ("api",)) == {"/health/liveness", "/health/readiness"}
    assert probe_paths(manifests, ("api",)) <= api_paths
    assert probe_paths(manifests, ("gateway",)) <= gateway_paths
    assert {"/metrics"} <= api_paths & gateway_paths  # the prometheus.io/path annotation


def test_probe_paths_answer_on_the_health_server_of_worker_flusher_feeder(manifests: Manifests) -> None:
    paths = probe_paths(manifests, ("worker", "flusher", "feeder", "kafka-consumer")) | {"/metrics"}
    server = serve_health("127.0.0.1", 0, lambda: [])
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{server.server_port}", trust_env=False, timeout=5, verify=client_tls()
        ) as client:
            for path in sorted(paths):
                assert client.get(path).status_code == 200, path
    finally:
        server.shutdown()
        server.server_close()


def test_env_names_are_settings_fields(manifests: Manifests) -> None:
    for obj in manifests.of("ConfigMap") + manifests.of("Secret"):
        unknown = set(obj["data"]) - SETTINGS_FIELDS
        assert not unknown, f"{obj['kind']} {obj['metadata']['name']}: {unknown} are not Settings fields"
    for name, pod in manifests.workloads().items():
        for container in pod["containers"]:
            unknown = {item["name"] for item in container.get("env", [])} - SETTINGS_FIELDS
            assert not unknown, f"{name}: {unknown} are not Settings fields"
    assert manifests.configmap()["MDSTACK_ENV"] == "production"


def test_each_process_gets_what_it_needs(manifests: Manifests, case: Case) -> None:
    api = manifests.named("Service")[manifests.deployment("api")["metadata"]["name"]]
    api_url = f"http://{api['metadata']['name']}:{api['spec']['ports'][0]['port']}"
    referenced: set[str] = set()
    for name, pod in manifests.workloads().items():
        for container in pod["containers"]:
            referenced |= {i["valueFrom"]["secretKeyRef"]["name"] for i in container.get("env", []) if "valueFrom" in i}
            env = manifests.env(container, case.external_secrets)
            missing = (NEEDS[name] | set(DEMO_SECRETS) | READ_SECRETS) - env.keys()
            assert not missing, f"{name} lacks {missing}"
            demo = {k for k, v in DEMO_SECRETS.items() if env[k] == v}
            assert not demo, f"{name} runs on demo credentials {demo}"
            for url in ("API_URL", "TARGET_URL"):
                if url in NEEDS[name]:
                    assert env[url] == api_url, f"{name}: {url}"
    assert referenced - manifests.named("Secret").keys() == case.external_secrets


def test_autoscalers_and_budgets_target_existing_deployments(manifests: Manifests, case: Case) -> None:
    deployments = manifests.named("Deployment")
    hpas = manifests.of("HorizontalPodAutoscaler")
    assert {component(h) for h in hpas} == case.autoscaled
    for hpa in hpas:
        assert hpa["apiVersion"] == "autoscaling/v2"
        target = hpa["spec"]["scaleTargetRef"]
        assert (target["apiVersion"], target["kind"]) == ("apps/v1", "Deployment")
        deployment = deployments[target["name"]]
        assert "replicas" not in deployment["spec"], f"{target['name']}: the HPA owns the replica count"
        assert component(deployment) == component(hpa)
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            assert "cpu" in container["resources"]["requests"], "CPU utilisation needs a CPU request"
    pods = [d["spec"]["template"]["metadata"]["labels"] for d in deployments.values()]
    for obj in manifests.of("PodDisruptionBudget"):
        selector = obj["spec"]["selector"]["matchLabels"]
        assert sum(selector.items() <= labels.items() for labels in pods) == 1, obj["metadata"]["name"]


def test_services_select_one_deployment_and_a_named_port(manifests: Manifests) -> None:
    deployments = list(manifests.named("Deployment").values())
    assert sorted(map(component, manifests.of("Service"))) == ["api", "gateway"]
    for service in manifests.of("Service"):
        selector = service["spec"]["selector"]
        (deployment,) = [
            d for d in deployments if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        ports = {p["name"] for c in deployment["spec"]["template"]["spec"]["containers"] for p in c["ports"]}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports


def ingress_routes(ingress: dict[str, Any]) -> dict[str, str]:
    """Path -> Service name."""
    return {
        path["path"]: path["backend"]["service"]["name"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }


def nginx_bytes(size: str) -> int:
    """An nginx size ("4m", "512k", "1048576") in bytes."""
    unit = size[-1].lower() if size[-1].isalpha() else ""
    return int(size.removesuffix(size[-1] if unit else "")) * {"": 1, "k": 2**10, "m": 2**20, "g": 2**30}[unit]


def test_ingress_is_off_by_default(helm: str) -> None:
    assert not render(helm, CASES["default"]).of("Ingress")


def test_ingress_routes_the_api_and_the_gateway(full: Manifests, api_paths: set[str]) -> None:
    ingresses = full.named("Ingress")
    api = full.deployment("api")["metadata"]["name"]
    gateway = full.deployment("gateway")["metadata"]["name"]
    (main,) = [i for i in ingresses.values() if "/stream" not in ingress_routes(i)]
    routes = ingress_routes(main)
    assert routes.pop("/") == gateway  # the dashboard and /config.json
    assert set(routes.values()) == {api}
    prefixes = tuple(routes)
    for prefix in prefixes:
        assert any(p == prefix or p.startswith(prefix + "/") for p in api_paths), f"{prefix}: no API route"
    private = ("/internal", "/health", "/metrics", "/docs", "/redoc", "/openapi.json")
    for path in api_paths:
        public = not path.startswith(private)
        assert public == path.startswith(prefixes), f"{path}: {'not routed' if public else 'exposed'}"
    body = main["metadata"]["annotations"][ANNOTATION + "proxy-body-size"]
    max_body = int(full.configmap().get("MAX_BODY_BYTES", Settings.model_fields["MAX_BODY_BYTES"].default))
    assert nginx_bytes(body) > max_body, "the proxy would answer 413 before the API does"
    host = main["spec"]["rules"][0]["host"]
    assert full.configmap()["PUBLIC_API_URL"] == f"https://{host}"
    assert main["spec"]["tls"][0]["hosts"] == [host]


def test_stream_ingress_has_the_annotations_sse_needs(full: Manifests, gateway_paths: set[str]) -> None:
    (stream,) = [i for i in full.of("Ingress") if "/stream" in ingress_routes(i)]
    assert ingress_routes(stream) == {"/stream": full.deployment("gateway")["metadata"]["name"]}
    assert "/stream" in gateway_paths
    annotations = {k.removeprefix(ANNOTATION): v for k, v in stream["metadata"]["annotations"].items()}
    assert annotations["proxy-buffering"] == "off"
    assert annotations["proxy-request-buffering"] == "off"
    assert annotations["proxy-http-version"] == "1.1"
    ping = Settings.model_fields["SSE_PING_S"].default
    for timeout in ("proxy-read-timeout", "proxy-send-timeout"):
        assert int(annotations[timeout]) >= max(SSE_TIMEOUT_MIN_S, 2 * ping), timeout
    assert "gzip off;" in annotations["configuration-snippet"]  # ingress.stream.gzipOffSnippet in full-values
