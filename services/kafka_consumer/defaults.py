"""Tuning constants of the Kafka consumer, each with the reason for its value (what a deployment changes is in
the settings: KAFKA_*)."""

POLL_S = 0.2  # one consume call waits this long at most: a stop request is seen within it
BACKOFF_MAX_S = 5.0  # a refused batch is offered again at least this often, whatever Retry-After says
BACKOFF_MIN_S = 0.05
DEAD_LETTER_FLUSH_S = 10.0  # dead letters must reach the broker before their offsets are committed
LAG_EVERY_S = 1.0  # lag gauges are refreshed at most this often (from the fetches' high watermarks)
LAG_SERVICE = "kafka-consumer"  # the service_name of those queue metrics
STOP_GRACE_S = 30.0  # after the first SIGTERM, the batch in hand may take this long to finish
