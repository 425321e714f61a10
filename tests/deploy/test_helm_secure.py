"""The Helm chart secure by default (issue 13): credentials, network policies, the metrics port, proxies.
Rendered offline (tests/deploy/chart.py)."""

from __future__ import annotations

import base64
from urllib.parse import urlsplit

import pytest
import yaml

from tests.deploy.chart import (
    CASES,
    CHART,
    DEFAULT_VALUES,
    READ_SECRETS,
    RELEASE,
    WEB,
    Case,
    Manifests,
    component,
    helm_template,
    peer_matches,
    policies_selecting,
    render,
    render_with,
)

pytestmark = pytest.mark.e2e  # runs the helm binary


# -- secure by default (issue 13) --------------------------------------------------------------------------------


def test_rendering_twice_gives_the_same_output(helm: str, case: Case) -> None:
    """Nothing generated at render time (randAlphaNum, `lookup`): the same values, the same manifests."""
    first, second = helm_template(helm, *case.values), helm_template(helm, *case.values)
    assert first.returncode == second.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    # Values left empty are refused (below), never filled in: no template function that differs per render.
    for template in (CHART / "templates").iterdir():
        used = {
            f
            for f in ("lookup", "randAlphaNum", "randAlpha", "randAscii", "uuidv4", "now")
            if f" {f} " in template.read_text().replace("(", " ").replace("|", " ")
        }
        assert not used, f"{template.name} uses {used}"


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("secrets.ingestPassword", "", "secrets.ingestPassword is required"),
        ("secrets.internalToken", "", "secrets.internalToken is required"),
        ("secrets.apiKey", "", "secrets.apiKey is required"),
        ("secrets.viewerPassword", "", "secrets.viewerPassword is required"),
        ("secrets.internalToken", "short-token", "secrets.internalToken is shorter than 12 characters"),
        ("secrets.viewerPassword", "short", "secrets.viewerPassword is shorter than 12 characters"),
        ("externalRedis.url", "redis://redis-master:6379/0", "externalRedis.url must carry a password"),
        ("externalRedis.url", "redis://user@redis-master:6379/0", "externalRedis.url must carry a password"),
    ],
)
def test_render_refuses_missing_short_or_passwordless_credentials(
    helm: str, setting: str, value: str, message: str
) -> None:
    done = helm_template(helm, *DEFAULT_VALUES, "--set-string", f"{setting}={value}")
    assert done.returncode != 0
    assert message in done.stderr


def test_the_chart_secret_holds_what_was_given(helm: str) -> None:
    manifests = render(helm, CASES["default"])
    secrets = manifests.named("Secret")
    given = yaml.safe_load((CHART / "ci" / "default-values.yaml").read_text())
    data = {k: base64.b64decode(v).decode() for k, v in secrets[f"{RELEASE}-mdstack-secrets"]["data"].items()}
    assert data["API_KEY"] == given["secrets"]["apiKey"]
    assert data["VIEWER_PASSWORD"] == given["secrets"]["viewerPassword"]
    redis_url = base64.b64decode(secrets[f"{RELEASE}-mdstack-urls"]["data"]["REDIS_URL"]).decode()
    assert urlsplit(redis_url).password, "Redis AUTH"
    config = manifests.configmap()
    assert config["PUBLIC_READS"] == "false"
    assert config["CORS_ORIGINS"] != "*"


def test_public_reads_need_no_read_credentials(helm: str) -> None:
    manifests = render_with(
        helm,
        *DEFAULT_VALUES,
        "--set",
        "publicReads=true",
        "--set",
        "secrets.apiKey=",
        "--set",
        "secrets.viewerPassword=",
    )
    assert manifests.configmap()["PUBLIC_READS"] == "true"
    for name, pod in manifests.workloads().items():
        (container,) = pod["containers"]
        assert not READ_SECRETS & {item["name"] for item in container["env"]}, name


def test_network_policies_are_on_by_default_and_cover_every_pod(manifests: Manifests) -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["networkPolicy"]["enabled"] is True
    for obj in manifests.of("Deployment") + manifests.of("Job"):
        labels = obj["spec"]["template"]["metadata"]["labels"]
        if component(obj) == "migrate":
            continue  # takes no connections
        (policy,) = policies_selecting(manifests, labels)
        # The Kafka consumer's egress is limited too (test_kafka_consumer_egress_reaches_dns_redis_and_the_brokers).
        kafka = component(obj) == "kafka-consumer"
        assert policy["spec"]["policyTypes"] == (["Ingress", "Egress"] if kafka else ["Ingress"])
        ports = {p["name"]: p["containerPort"] for p in obj["spec"]["template"]["spec"]["containers"][0]["ports"]}
        rules = {rule["ports"][0]["port"]: rule["from"] for rule in policy["spec"]["ingress"]}
        assert set(rules) == set(ports), f"{component(obj)}: a rule per container port, none for any other"
        monitoring = values["networkPolicy"]["monitoring"]["namespaceSelector"]
        assert rules["metrics"] == [{"namespaceSelector": monitoring}], "metrics: the monitoring namespace only"
        if component(obj) in WEB:
            controller, *pods = rules["http"]
            assert controller["namespaceSelector"] == values["networkPolicy"]["ingressController"]["namespaceSelector"]
            assert controller["podSelector"] == values["networkPolicy"]["ingressController"]["podSelector"]
            # The API also takes its callers inside the release; the gateway the controller alone.
            expected = [RELEASE] if component(obj) == "api" else []
            assert [p["podSelector"]["matchLabels"]["app.kubernetes.io/instance"] for p in pods] == expected


def test_only_the_mdstack_pods_that_use_them_reach_redis_and_postgres(manifests: Manifests) -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())["networkPolicy"]
    mdstack = {
        component(o): o["spec"]["template"]["metadata"]["labels"]
        for o in manifests.of("Deployment") + manifests.of("Job")
    }
    for store, url in (("redis", "REDIS_URL"), ("postgresql", "PG_URL")):
        store_labels = values[store]["podSelector"]["matchLabels"]
        (policy,) = policies_selecting(manifests, store_labels)
        (rule,) = policy["spec"]["ingress"]
        assert rule["ports"] == [{"port": values[store]["port"], "protocol": "TCP"}]
        allowed = {name for name, labels in mdstack.items() if any(peer_matches(p, labels) for p in rule["from"])}
        users = {
            name
            for name, pod in manifests.workloads().items()
            if url in {item["name"] for item in pod["containers"][0]["env"]} and name != "feeder"
        }
        assert allowed == users, store
        stranger = {"app.kubernetes.io/name": "something-else", "app.kubernetes.io/instance": RELEASE}
        assert not any(peer_matches(p, stranger) for p in rule["from"])


def test_network_policies_can_be_switched_off(helm: str) -> None:
    assert not render_with(helm, *DEFAULT_VALUES, "--set", "networkPolicy.enabled=false").of("NetworkPolicy")


def test_ingress_routes_no_path_to_the_metrics_port(full: Manifests) -> None:
    """/metrics and /docs live on METRICS_PORT; no Service carries that port, so no Ingress path reaches it."""
    services = full.named("Service")
    for ingress in full.of("Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                service = services[backend["name"]]
                (port,) = [p for p in service["spec"]["ports"] if p["name"] == backend["port"]["name"]]
                assert port["targetPort"] == "http", f"{path['path']} reaches {port['targetPort']}"
    for service in services.values():
        assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"], service["metadata"]["name"]
    for name in WEB:
        deployment = full.deployment(name)
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        env = {item["name"]: item.get("value") for item in container["env"]}
        assert env["METRICS_PORT"] == str(ports["metrics"]), name
        assert ports["metrics"] != ports["http"], name
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(ports["metrics"]), f"{name}: scrape the metrics port"


def test_pod_monitor_scrapes_the_metrics_port(full: Manifests) -> None:
    (monitor,) = full.of("PodMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["podMetricsEndpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "30s"}]
    selector = monitor["spec"]["selector"]["matchLabels"]
    for obj in full.of("Deployment"):
        assert selector.items() <= obj["spec"]["template"]["metadata"]["labels"].items()
        ports = {p["name"] for p in obj["spec"]["template"]["spec"]["containers"][0]["ports"]}
        assert "metrics" in ports, component(obj)


def test_trusted_proxies_follow_the_ingress(helm: str, full: Manifests) -> None:
    assert "TRUSTED_PROXIES" not in render(helm, CASES["default"]).configmap()
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert full.configmap()["TRUSTED_PROXIES"] == values["ingress"]["trustedProxies"]
