"""The Helm chart's Kafka consumer and Kafka feeder (issue 17): settings, secrets, egress, refusals.
Rendered offline (tests/deploy/chart.py)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import yaml

from services.common.settings import Settings
from tests.deploy.chart import (
    CASES,
    CHART,
    DEFAULT_VALUES,
    RELEASE,
    Manifests,
    component,
    helm_template,
    peer_matches,
    policies_selecting,
    render,
    render_with,
)

pytestmark = pytest.mark.e2e  # runs the helm binary


# -- the Kafka consumer (issue 17) --------------------------------------------------------------------------------

KAFKA_CHART_SECRET = f"{RELEASE}-mdstack-kafka"  # the kafka ConfigMap and, without existingSecret, its Secret
SASL = (
    "--set-string",
    "kafka.bootstrapServers=broker-0.kafka:9093\\,broker-1.kafka",
    "--set-string",
    "kafka.securityProtocol=SASL_PLAINTEXT",
    "--set-string",
    "kafka.sasl.mechanism=PLAIN",
    "--set-string",
    "kafka.sasl.username=mdstack",
    "--set-string",
    "kafka.sasl.password=kafka-test-password",
)


def container_of(manifests: Manifests, name: str) -> dict[str, Any]:
    (container,) = manifests.deployment(name)["spec"]["template"]["spec"]["containers"]
    return container


def test_kafka_consumer_runs_only_with_a_broker(helm: str) -> None:
    default = render(helm, CASES["default"])
    assert "kafka-consumer" not in map(component, default.of("Deployment"))
    assert not [o for o in default.objects if "kafka" in o["metadata"]["name"]]
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["kafka"]["bootstrapServers"] == ""
    assert "enabled" not in values["kafkaConsumer"], "kafka.bootstrapServers is the one switch"
    assert values["kafkaConsumer"]["replicaCount"] == 1


def test_kafka_consumer_deployment_args_env_and_probes(full: Manifests) -> None:
    values = yaml.safe_load((CHART / "ci" / "full-values.yaml").read_text())
    deployment = full.deployment("kafka-consumer")
    assert deployment["spec"]["replicas"] == values["kafkaConsumer"]["replicaCount"]
    assert "kafka-consumer" not in map(component, full.of("HorizontalPodAutoscaler")), "scaled by partitions"
    container = container_of(full, "kafka-consumer")
    assert container["args"] == ["kafka-consumer", "--metrics-port", "9100"]
    assert container["ports"] == [{"name": "metrics", "containerPort": 9100, "protocol": "TCP"}]
    assert {p: container[p]["httpGet"] for p in ("startupProbe", "livenessProbe", "readinessProbe")} == {
        "startupProbe": {"path": "/health/liveness", "port": "metrics"},
        "livenessProbe": {"path": "/health/liveness", "port": "metrics"},
        "readinessProbe": {"path": "/health/readiness", "port": "metrics"},
    }
    env = full.env(container, CASES["full"].external_secrets)
    kafka = values["kafka"]
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == kafka["bootstrapServers"]
    assert env["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env["KAFKA_SASL_MECHANISM"] == kafka["sasl"]["mechanism"]
    assert env["KAFKA_SASL_USERNAME"] == kafka["sasl"]["username"]
    assert env["KAFKA_GROUP_PREFIX"] == "prod-"
    assert env["KAFKA_BATCH"] == "200"
    assert "PG_URL" not in env, "it hands batches to Redis and never opens Postgres"
    (password,) = [i for i in container["env"] if i["name"] == "KAFKA_SASL_PASSWORD"]
    assert password["valueFrom"]["secretKeyRef"] == {"name": "mdstack-kafka", "key": "sasl-password"}
    assert full.named("PodDisruptionBudget")[deployment["metadata"]["name"]]["spec"]["maxUnavailable"] == 1
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > 30, "SIGTERM lets the batch in hand finish (STOP_GRACE_S)"


def test_kafka_settings_reach_the_consumer_alone_and_the_password_no_config_map(helm: str) -> None:
    manifests = render_with(helm, *DEFAULT_VALUES, *SASL)
    secret = manifests.named("Secret")[KAFKA_CHART_SECRET]
    assert base64.b64decode(secret["data"]["KAFKA_SASL_PASSWORD"]).decode() == "kafka-test-password"
    kafka_config = manifests.named("ConfigMap")[KAFKA_CHART_SECRET]["data"]
    assert kafka_config == {
        "KAFKA_BOOTSTRAP_SERVERS": "broker-0.kafka:9093,broker-1.kafka",
        "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "KAFKA_SASL_MECHANISM": "PLAIN",
        "KAFKA_SASL_USERNAME": "mdstack",
    }
    for config in manifests.of("ConfigMap"):
        assert "KAFKA_SASL_PASSWORD" not in config["data"]
        assert "kafka-test-password" not in config["data"].values()
    assert not {k for k in manifests.configmap() if k.startswith("KAFKA_")}, "the others would validate SASL too"
    for name, pod in manifests.workloads().items():
        (container,) = pod["containers"]
        env = manifests.env(container, frozenset())
        if name == "kafka-consumer":
            assert env["KAFKA_SASL_PASSWORD"] == "kafka-test-password"
            assert Settings(**{k: v for k, v in env.items() if k in Settings.model_fields}).KAFKA_SASL_MECHANISM
        else:
            assert not {k for k in env if k.startswith("KAFKA_")}, name


def test_kafka_consumer_egress_reaches_dns_redis_and_the_brokers(helm: str, full: Manifests) -> None:
    for manifests, brokers, ports in (
        (full, [{"ipBlock": {"cidr": "10.20.0.0/16"}}], [9096]),  # networkPolicy.kafka.to; bootstrap ports
        (render_with(helm, *DEFAULT_VALUES, *SASL), None, [9093, 9092]),  # any address; a port-less host: 9092
    ):
        labels = manifests.deployment("kafka-consumer")["spec"]["template"]["metadata"]["labels"]
        (policy,) = policies_selecting(manifests, labels)
        dns, redis_rule, kafka = policy["spec"]["egress"]
        assert dns == {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}
        assert redis_rule == {"ports": [{"port": 6379, "protocol": "TCP"}]}
        assert kafka["ports"] == [{"port": p, "protocol": "TCP"} for p in ports]
        assert kafka.get("to") == brokers
        (redis_policy,) = policies_selecting(manifests, {"app.kubernetes.io/name": "redis"})
        assert any(peer_matches(p, labels) for p in redis_policy["spec"]["ingress"][0]["from"])
        (pg_policy,) = policies_selecting(manifests, {"app.kubernetes.io/name": "postgresql"})
        assert not any(peer_matches(p, labels) for p in pg_policy["spec"]["ingress"][0]["from"])


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("kafka.sasl.mechanism", "", "kafka.sasl.mechanism must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"),
        ("kafka.sasl.username", "", "kafka.sasl.username is required"),
        ("kafka.sasl.password", "", "kafka.sasl.password or kafka.sasl.existingSecret is required"),
        ("kafka.securityProtocol", "TLS", "kafka.securityProtocol must be"),
        ("kafka.securityProtocol", "SSL", "kafka.sasl.mechanism goes with"),
        ("config.KAFKA_SASL_PASSWORD", "oops", "config.KAFKA_SASL_PASSWORD: the password goes into a Secret"),
        ("kafka.config.KAFKA_SASL_PASSWORD", "oops", "kafka.config.KAFKA_SASL_PASSWORD: the password goes"),
    ],
)
def test_render_refuses_incomplete_kafka_settings(helm: str, setting: str, value: str, message: str) -> None:
    done = helm_template(helm, *DEFAULT_VALUES, *SASL, "--set-string", f"{setting}={value}")
    assert done.returncode != 0
    assert message in done.stderr


FEEDER_TO_KAFKA = ("--set", "feeder.enabled=true", "--set-string", "feeder.transport=kafka")


def test_a_feeder_producing_to_kafka_gets_the_kafka_settings_and_egress_to_the_brokers_only(
    helm: str, parse_as_service: Any
) -> None:
    manifests = render_with(helm, *DEFAULT_VALUES, *SASL, *FEEDER_TO_KAFKA)
    container = container_of(manifests, "feeder")
    env = manifests.env(container, frozenset())
    options, settings = parse_as_service(container["args"], env)
    assert options.transport == "kafka"
    assert settings.KAFKA_BOOTSTRAP_SERVERS == "broker-0.kafka:9093,broker-1.kafka"
    assert settings.KAFKA_TOPIC_TICKS == "md.ticks", "the feeder refuses to start without a ticks topic"
    assert env["KAFKA_SASL_PASSWORD"] == "kafka-test-password"
    consumer = manifests.env(container_of(manifests, "kafka-consumer"), frozenset())
    assert consumer["KAFKA_TOPIC_TICKS"] == "md.ticks", "the consumer takes in the ticks the feeder produces"
    labels = manifests.deployment("feeder")["spec"]["template"]["metadata"]["labels"]
    (policy,) = policies_selecting(manifests, labels)
    dns, brokers = policy["spec"]["egress"]
    assert dns["ports"][0]["port"] == 53
    assert brokers["ports"] == [{"port": 9093, "protocol": "TCP"}, {"port": 9092, "protocol": "TCP"}]
    over_http = render_with(helm, *DEFAULT_VALUES, *SASL, "--set", "feeder.enabled=true")
    assert "--transport" not in container_of(over_http, "feeder")["args"]
    assert not {k for k in over_http.env(container_of(over_http, "feeder"), frozenset()) if k.startswith("KAFKA_")}


def test_a_private_ca_is_mounted_into_the_pods_that_talk_to_the_brokers_alone(helm: str) -> None:
    ca = ("--set-string", "kafka.securityProtocol=SASL_SSL", "--set-string", "kafka.caSecret=broker-ca")
    manifests = render_with(helm, *DEFAULT_VALUES, *SASL, *FEEDER_TO_KAFKA, *ca)
    for name, pod in manifests.workloads().items():
        (container,) = pod["containers"]
        env = manifests.env(container, frozenset())
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        if name in ("kafka-consumer", "feeder"):
            assert env["KAFKA_SSL_CA_LOCATION"] == "/etc/mdstack/kafka-ca/ca.crt", name
            assert mounts["kafka-ca"] == {"name": "kafka-ca", "mountPath": "/etc/mdstack/kafka-ca", "readOnly": True}
            secret = volumes["kafka-ca"]["secret"]
            assert secret == {"secretName": "broker-ca", "items": [{"key": "ca.crt", "path": "ca.crt"}]}
        else:
            assert "kafka-ca" not in mounts, name
            assert "kafka-ca" not in volumes, name
            assert "KAFKA_SSL_CA_LOCATION" not in env, name


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--set", "feeder.enabled=true", "--set-string", "feeder.transport=pigeon"), "feeder.transport must be"),
        (("--set-string", "kafka.caSecret=broker-ca"), "kafka.caSecret is for TLS"),
    ],
)
def test_render_refuses_a_feeder_transport_or_ca_that_cannot_work(
    helm: str, args: tuple[str, ...], message: str
) -> None:
    done = helm_template(helm, *DEFAULT_VALUES, *SASL, *args)
    assert done.returncode != 0
    assert message in done.stderr


def test_render_refuses_a_feeder_producing_to_kafka_without_brokers(helm: str) -> None:
    done = helm_template(helm, *DEFAULT_VALUES, *FEEDER_TO_KAFKA)
    assert done.returncode != 0
    assert "feeder.transport=kafka needs kafka.bootstrapServers" in done.stderr
