"""What the Helm chart tests (tests/deploy/test_helm_*.py) share: deploy/helm/mdstack rendered offline, and
the lookups the checks make in its manifests. The fixtures that pick a rendering are in conftest.py.

Helm comes from `HELM` or `.tools/helm/helm` (`deploy/tools/install-helm.sh` puts it there). Where it is
missing the tests skip, unless MDSTACK_REQUIRE_HELM=1 (CI sets it), where they fail instead. Rendered
manifests are validated with kubernetes-validate's bundled schemas (strict, Kubernetes 1.30); the rest
holds the chart to the code: commands go through each service's own argument parser, probe paths are
requested from the real health server or looked up in the real apps, env names are Settings fields.
"""

from __future__ import annotations

import base64
import functools
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from starlette.routing import Route

from services.common.settings import Settings
from services.feeder.settings import FeederSettings

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "mdstack"
KUBERNETES_VERSION = "1.30.0"
RELEASE = "md"
LABELS = ("name", "instance", "version", "component", "part-of", "managed-by")
# Settings agreed for issue 13 (/work/shared names.md) that other branches add to services/common/settings.py;
# the union keeps this test honest before and after they merge (then this set is redundant, not wrong).
AGREED_SETTINGS = frozenset({"PUBLIC_READS", "VIEWER_USERNAME", "VIEWER_PASSWORD", "TRUSTED_PROXIES"})
# The feeder reads its own env vars (services/feeder/settings.py) besides the shared ones.
SETTINGS_FIELDS = frozenset(Settings.model_fields) | frozenset(FeederSettings.env_names()) | AGREED_SETTINGS
SERVICES = ("api", "gateway", "worker", "flusher", "feeder", "kafka-consumer")
WEB = ("api", "gateway")  # serve HTTP (and their health paths) on their own port; the rest on --metrics-port
# What every process must be given: production refuses the demo credentials, so all of them need those.
NEEDS = {
    "api": {"REDIS_URL", "PG_URL"},
    "gateway": {"REDIS_URL", "PG_URL"},
    "worker": {"REDIS_URL", "PG_URL", "API_URL"},
    "flusher": {"REDIS_URL", "PG_URL"},
    "feeder": {"TARGET_URL"},
    "kafka-consumer": {"REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"},
    "migrate": {"PG_URL"},
}
# The read credentials every process gets while reads are private (publicReads=false, the default).
READ_SECRETS = {"API_KEY", "VIEWER_USERNAME", "VIEWER_PASSWORD"}
SSE_TIMEOUT_MIN_S = 3600
ANNOTATION = "nginx.ingress.kubernetes.io/"


@dataclass(frozen=True)
class Case:
    values: tuple[str, ...]  # extra `helm template` arguments
    services: tuple[str, ...]  # Deployments it must render
    external_secrets: frozenset[str]  # Secrets referenced but managed outside the chart
    autoscaled: frozenset[str]  # Deployments with an HPA


DEFAULT_VALUES = ("-f", str(CHART / "ci" / "default-values.yaml"))  # the least an install must give
CASES = {
    "default": Case(
        DEFAULT_VALUES, ("api", "gateway", "worker", "flusher"), frozenset(), frozenset({"api", "gateway", "worker"})
    ),
    "full": Case(
        ("-f", str(CHART / "ci" / "full-values.yaml")),
        SERVICES,
        frozenset({"mdstack-credentials", "mdstack-redis", "mdstack-postgres", "mdstack-kafka"}),
        frozenset({"gateway", "worker"}),  # api.autoscaling off: a fixed replica count
    ),
}


def run_helm(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm, *args], capture_output=True, text=True, timeout=60, check=False)


def helm_template(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_helm(
        helm, "template", RELEASE, str(CHART), "--namespace", "mdstack", "--kube-version", KUBERNETES_VERSION, *args
    )


def placeholder(name: str, secret: str, key: str) -> str:
    """A value of a Secret kept outside the chart, shaped as the production checks want it."""
    if name == "REDIS_URL":
        return f"redis://:{secret}-{key}@redis.example.internal:6379/0"
    if name == "PG_URL":
        return f"postgresql://mdstack:{secret}-{key}@pg.example.internal:5432/mdstack"
    return f"from-{secret}-{key}"


def component(obj: dict[str, Any]) -> str:
    return obj["metadata"]["labels"]["app.kubernetes.io/component"]


class Manifests:
    """The objects of one `helm template`, with the lookups the checks need."""

    def __init__(self, objects: list[dict[str, Any]]) -> None:
        self.objects = objects

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def named(self, kind: str) -> dict[str, dict[str, Any]]:
        return {o["metadata"]["name"]: o for o in self.of(kind)}

    def workloads(self) -> dict[str, dict[str, Any]]:
        """Component -> pod spec of every Deployment and Job."""
        return {component(o): o["spec"]["template"]["spec"] for o in self.of("Deployment") + self.of("Job")}

    def deployment(self, name: str) -> dict[str, Any]:
        (found,) = [o for o in self.of("Deployment") if component(o) == name]
        return found

    def configmap(self) -> dict[str, str]:
        """The settings every container reads."""
        return self.named("ConfigMap")[f"{RELEASE}-mdstack-config"]["data"]

    def env(self, container: dict[str, Any], external: frozenset[str]) -> dict[str, str]:
        """The environment a container starts with (values of Secrets kept outside the chart: placeholders)."""
        configmaps, secrets = self.named("ConfigMap"), self.named("Secret")
        env: dict[str, str] = {}
        for source in container.get("envFrom", []):
            env.update(configmaps[source["configMapRef"]["name"]]["data"])
        for item in container.get("env", []):
            if "value" in item:
                env[item["name"]] = item["value"]
                continue
            ref = item["valueFrom"]["secretKeyRef"]
            if ref["name"] in external:
                env[item["name"]] = placeholder(item["name"], ref["name"], ref["key"])
            elif ref["key"] in secrets[ref["name"]]["data"]:
                env[item["name"]] = base64.b64decode(secrets[ref["name"]]["data"][ref["key"]]).decode()
            else:
                assert ref.get("optional"), f"{item['name']}: key {ref['key']} is not in Secret {ref['name']}"
        return env


@functools.cache
def render(helm: str, case: Case) -> Manifests:
    return render_with(helm, *case.values)


@functools.cache
def render_with(helm: str, *args: str) -> Manifests:
    done = helm_template(helm, *args)
    assert done.returncode == 0, done.stderr
    return Manifests([o for o in yaml.safe_load_all(done.stdout) if o])


def route_paths(app: Any) -> set[str]:
    """Paths an app answers: its OpenAPI paths (routers included) and its own top-level routes."""
    return set(app.openapi()["paths"]) | {route.path for route in app.routes if isinstance(route, Route)}


def policies_selecting(manifests: Manifests, labels: dict[str, str]) -> list[dict[str, Any]]:
    return [
        p
        for p in manifests.of("NetworkPolicy")
        if p["spec"]["podSelector"].get("matchLabels", {}).items() <= labels.items()
        and all(
            (labels.get(e["key"]) in e["values"]) == (e["operator"] == "In")
            for e in p["spec"]["podSelector"].get("matchExpressions", [])
        )
    ]


def peer_matches(peer: dict[str, Any], labels: dict[str, str]) -> bool:
    """A same-namespace pod with these labels matches this `from` entry (podSelector only, no namespaceSelector)."""
    if "namespaceSelector" in peer or "ipBlock" in peer:
        return False
    selector = peer["podSelector"]
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    return all(
        (labels.get(e["key"]) in e["values"]) == (e["operator"] == "In") for e in selector.get("matchExpressions", [])
    )
