"""`mdstack kafka-consumer` / `python -m services.kafka_consumer`: the rttm.* topics (KAFKA_TOPIC_*) into the stack.

Needs KAFKA_BOOTSTRAP_SERVERS and the `kafka` extra (confluent-kafka). /health/* and /metrics (consumer lag per
partition) on --metrics-port; ready while the broker and Redis answer.
"""

from __future__ import annotations

import argparse
import asyncio

from services.common import kafka
from services.common.health import check_redis_sync, serve_health
from services.common.logging import configure_logging, get_logger
from services.common.redis import sync_redis
from services.common.settings import load_settings
from services.kafka_consumer.service import KafkaIngest

log = get_logger(__name__)


def main(argv: list[str] | None = None) -> int:
    settings = load_settings(SERVICE_NAME="kafka-consumer")
    parser = argparse.ArgumentParser(prog="mdstack kafka-consumer", description=__doc__)
    parser.add_argument("--metrics-port", type=int, default=settings.METRICS_PORT, help="0 disables /metrics")
    args = parser.parse_args(argv)
    configure_logging("kafka-consumer", settings.LOG_LEVEL)
    if not settings.KAFKA_BOOTSTRAP_SERVERS:
        raise SystemExit("mdstack: KAFKA_BOOTSTRAP_SERVERS is not set: name the broker(s), host:port[,host:port]")
    if settings.KAFKA_CREATE_TOPICS:
        names = [*kafka.topics(settings).values(), settings.KAFKA_DEAD_LETTER_TOPIC]
        created = kafka.ensure_topics(settings, names, settings.KAFKA_PARTITIONS)
        log.info("kafka_consumer.topics_created", topics=created, partitions=settings.KAFKA_PARTITIONS)
    client = sync_redis(settings)
    return asyncio.run(_run(settings, client, args.metrics_port))


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
