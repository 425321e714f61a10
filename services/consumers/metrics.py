"""Prometheus metrics of a worker process (served on METRICS_PORT)."""

from prometheus_client import Counter, Histogram

from services.consumers.defaults import MAX_SERIES

# Service names and error types are the clients' strings: each new one would be a series for the life of the
# process. Past MAX_SERIES label sets a metric counts under OTHER, which no name or code can spell (events.py).
OTHER = "(other)"


class BoundedLabels:
    """The label values to count under: as given for the first MAX_SERIES sets, OTHER for any set after."""

    def __init__(self, cap: int = MAX_SERIES) -> None:
        self.cap = cap
        self.seen: set[tuple[str, ...]] = set()

    def __call__(self, *values: str) -> tuple[str, ...]:
        if values in self.seen:
            return values
        if len(self.seen) < self.cap:
            self.seen.add(values)
            return values
        return (OTHER,) * len(values)


JOBS = Counter("mdstack_worker_jobs_total", "RQ jobs run", ["outcome"])
JOB_SECONDS = Histogram(
    "mdstack_worker_job_seconds",
    "Time per RQ job: one round, or a drainer's rounds with the pauses between them",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5, 5),
)
ROUND_SECONDS = Histogram(
    "mdstack_worker_round_seconds",
    "Time per round (batches claimed, calc-a, calc-b, views posted)",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5),
)
TICKS = Counter("mdstack_worker_ticks_total", "Ticks applied to views")
RTTM_EVENTS = Counter("mdstack_rttm_events_total", "RTTM events applied to the monitoring state", ["kind"])
RTTM_DLQ = Counter("mdstack_rttm_dlq_total", "DLQ events applied", ["service"])
RTTM_ERRORS = Counter("mdstack_rttm_errors_total", "Error events applied", ["service", "error_type"])
RTTM_DLQ_LABELS, RTTM_ERRORS_LABELS = BoundedLabels(), BoundedLabels()
VIEW_LATENCY = Histogram(
    "mdstack_ingest_to_view_seconds",
    "From API acceptance to view computed (oldest tick of each batch)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
