"""Prometheus metrics of the flusher process (served on METRICS_PORT)."""

from prometheus_client import Counter, Histogram

BATCHES = Counter("mdstack_flush_batches_total", "Batches committed to Postgres")
ROWS = Counter("mdstack_flush_rows_total", "Rows written, by kind", ["kind", "outcome"])
ERRORS = Counter("mdstack_flush_errors_total", "Failed attempts", ["backend"])
DEAD_LETTERS = Counter(
    "mdstack_flusher_dead_letters",
    "Rows Postgres refused for their data, moved to md_dead_letters (kind 'entry': an unreadable stream entry)",
    ["kind"],
)
FLUSH_SECONDS = Histogram(
    "mdstack_flush_seconds",
    "Write + commit + ack of one batch",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
TICK_TO_DB = Histogram(
    "mdstack_tick_to_db_seconds",
    "From API acceptance to committed in Postgres (oldest tick of each batch)",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
PARTITIONS_CREATED = Counter("mdstack_partitions_created_total", "Daily partitions created ahead", ["table"])
PARTITIONS_DROPPED = Counter(
    "mdstack_partitions_dropped_total", "Daily partitions dropped past RETENTION_DAYS", ["table"]
)
DEFAULT_ROWS_DELETED = Counter(
    "mdstack_partition_default_rows_deleted_total",
    "Rows past RETENTION_DAYS deleted from default partitions",
    ["table"],
)
