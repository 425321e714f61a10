"""Kafka as the seeds describe it: which topic carries which kind, in which consumer group, and how to reach
the broker. Shared by the consumer (services/kafka_consumer) and the feeder's Kafka transport.

The client is confluent-kafka (librdkafka), the optional extra `kafka`; it is imported where a client is
made, so the rest of the stack runs without it.
"""

from __future__ import annotations

from typing import Any

from services.common.kinds import DLQ, ERROR, LOG, QUEUE, TICK, TRADE, Kind
from services.common.settings import Settings

# Seed 001 section 4.1: one group per topic, so each kind scales on its own. Ticks are ours.
GROUPS = {
    TRADE.name: "rttm-trade-consumer",
    QUEUE.name: "rttm-queue-consumer",
    DLQ.name: "rttm-dlq-consumer",
    ERROR.name: "rttm-error-consumer",
    LOG.name: "rttm-log-consumer",
    TICK.name: "md-ticks-consumer",
}
TIMEOUT_S = 5.0  # metadata and admin calls: a broker that takes longer is not ready


def topics(settings: Settings) -> dict[Kind, str]:
    """Kind -> topic; ticks only when KAFKA_TOPIC_TICKS is set."""
    out = {
        TRADE: settings.KAFKA_TOPIC_TRADE,
        QUEUE: settings.KAFKA_TOPIC_QUEUE,
        DLQ: settings.KAFKA_TOPIC_DLQ,
        ERROR: settings.KAFKA_TOPIC_ERROR,
        LOG: settings.KAFKA_TOPIC_LOG,
    }
    if settings.KAFKA_TOPIC_TICKS:
        out[TICK] = settings.KAFKA_TOPIC_TICKS
    return out


def message_key(kind: Kind, value: dict[str, Any]) -> bytes | None:
    """The partition key of seed 001 section 2: a trade's events (and its DLQ entry) in one partition, in order;
    a queue's metrics by topic + partition; errors and logs by service; ticks by symbol."""
    if kind in (TRADE, DLQ):
        key = value.get("trade_id")
    elif kind is QUEUE:
        key = f"{value.get('topic_name')}{value.get('partition')}"
    elif kind is TICK:
        key = value.get("symbol")
    else:
        key = value.get("service_name")
    return None if key is None else str(key).encode()


def group(settings: Settings, kind: Kind) -> str:
    return settings.KAFKA_GROUP_PREFIX + GROUPS[kind.name]


def bootstrap(settings: Settings) -> str:
    if not settings.KAFKA_BOOTSTRAP_SERVERS:
        raise RuntimeError("KAFKA_BOOTSTRAP_SERVERS is not set: name the broker(s), host:port[,host:port]")
    return settings.KAFKA_BOOTSTRAP_SERVERS


def client_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    """librdkafka's configuration: the broker, TLS and SASL from the settings, then `extra`."""
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap(settings),
        "security.protocol": settings.KAFKA_SECURITY_PROTOCOL,
        "client.id": f"mdstack-{settings.SERVICE_NAME}",
    }
    if settings.KAFKA_SASL_MECHANISM:
        config["sasl.mechanism"] = settings.KAFKA_SASL_MECHANISM
        config["sasl.username"] = settings.KAFKA_SASL_USERNAME
        config["sasl.password"] = settings.KAFKA_SASL_PASSWORD
    if settings.KAFKA_SSL_CA_LOCATION:
        config["ssl.ca.location"] = settings.KAFKA_SSL_CA_LOCATION
    return config | extra


def producer(settings: Settings, **extra: Any) -> Any:
    """An idempotent producer that waits for every in-sync replica: a delivered message is not lost or doubled
    by the producer's own retries."""
    from confluent_kafka import Producer

    return Producer(client_config(settings, **{"enable.idempotence": True, "acks": "all", **extra}))


def ensure_topics(settings: Settings, names: list[str], partitions: int) -> list[str]:
    """Create those of `names` the broker does not have; returns the ones created."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(client_config(settings))
    have = admin.list_topics(timeout=TIMEOUT_S).topics
    missing = [name for name in dict.fromkeys(names) if name not in have]
    if missing:
        futures = admin.create_topics([NewTopic(name, partitions, 1) for name in missing])
        for future in futures.values():
            try:
                future.result(TIMEOUT_S)
            except KafkaException as exc:  # another replica starting at the same time made it first
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
    return missing


def broker_problem(client: Any) -> str | None:
    """Readiness: the broker answers a metadata request on `client`'s connections (a producer or consumer)."""
    from services.common.health import unavailable

    try:
        client.list_topics(timeout=TIMEOUT_S / 2)
    except Exception as exc:  # any failure means "not ready"; what it was goes to the log
        return unavailable("kafka", exc)
    return None
