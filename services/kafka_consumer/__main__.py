"""`mdstack kafka-consumer` / `python -m services.kafka_consumer`: the rttm.* topics (KAFKA_TOPIC_*) into the stack.

Needs KAFKA_BOOTSTRAP_SERVERS and the `kafka` extra (confluent-kafka). /health/* and /metrics (consumer lag per
partition) on --metrics-port; ready while the broker and Redis answer.

--idle-without-broker is for deployments that declare the service whether or not a broker exists (a Render
Blueprint cannot be conditional): without KAFKA_BOOTSTRAP_SERVERS it logs one line and waits for SIGTERM,
alive but never ready, instead of exiting and being restarted forever.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import threading

from services.common import kafka
from services.common.health import check_redis_sync, serve_health
from services.common.logging import configure_logging, get_logger
from services.common.redis import sync_redis
from services.common.settings import Settings, load_settings
from services.kafka_consumer.service import KafkaIngest

log = get_logger(__name__)
NOT_CONFIGURED = "kafka: not configured"  # the readiness problem of an idle consumer


def main(argv: list[str] | None = None) -> int:
    settings = load_settings(SERVICE_NAME="kafka-consumer")
    parser = argparse.ArgumentParser(prog="mdstack kafka-consumer", description=__doc__)
    parser.add_argument("--metrics-port", type=int, default=settings.METRICS_PORT, help="0 disables /metrics")
    parser.add_argument(
        "--idle-without-broker",
        action="store_true",
        help="without KAFKA_BOOTSTRAP_SERVERS, idle (alive, not ready) until SIGTERM instead of exiting",
    )
    args = parser.parse_args(argv)
    configure_logging("kafka-consumer", settings.LOG_LEVEL)
    if not settings.KAFKA_BOOTSTRAP_SERVERS:
        if args.idle_without_broker:
            return idle(settings, args.metrics_port)
        raise SystemExit("mdstack: KAFKA_BOOTSTRAP_SERVERS is not set: name the broker(s), host:port[,host:port]")
    if settings.KAFKA_CREATE_TOPICS:
        names = [*kafka.topics(settings).values(), settings.KAFKA_DEAD_LETTER_TOPIC]
        created = kafka.ensure_topics(settings, names, settings.KAFKA_PARTITIONS)
        log.info("kafka_consumer.topics_created", topics=created, partitions=settings.KAFKA_PARTITIONS)
    client = sync_redis(settings)
    return asyncio.run(_run(settings, client, args.metrics_port))


def idle(settings: Settings, metrics_port: int) -> int:
    """No broker: /health/liveness answers, readiness says why not, until SIGTERM or SIGINT."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server = serve_health(settings.API_HOST, metrics_port, lambda: [NOT_CONFIGURED]) if metrics_port else None
    log.warning("kafka_consumer.idle", reason="KAFKA_BOOTSTRAP_SERVERS is not set", metrics_port=metrics_port)
    stop.wait()
    if server is not None:
        server.shutdown()
        server.server_close()
    return 0


async def _run(settings, client, metrics_port: int) -> int:  # type: ignore[no-untyped-def]
    ingest = KafkaIngest(settings, client)
    ingest.install_signal_handlers()
    if metrics_port:
        producer = ingest.producer
        serve_health(
            settings.API_HOST,
            metrics_port,
            lambda: [p for p in (check_redis_sync(client), kafka.broker_problem(producer)) if p],
            settings.READINESS_CACHE_S,
        )
    await ingest.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
