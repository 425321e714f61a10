"""The Kafka consumer: the five rttm.* topics (and optionally ticks) into the same exactly-once path as HTTP
ingest (doc/services/kafka-consumer.md)."""
