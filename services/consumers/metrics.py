"""Prometheus metrics of a worker process (served on METRICS_PORT)."""

from prometheus_client import Counter, Histogram

JOBS = Counter("mdstack_worker_jobs_total", "Batches processed", ["outcome"])
JOB_SECONDS = Histogram(
    "mdstack_worker_job_seconds",
    "Batch processing time",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5),
)
TICKS = Counter("mdstack_worker_ticks_total", "Ticks applied to views")
RTTM_EVENTS = Counter("mdstack_rttm_events_total", "RTTM events applied to the monitoring state", ["kind"])
RTTM_DLQ = Counter("mdstack_rttm_dlq_total", "DLQ events applied", ["service"])
RTTM_ERRORS = Counter("mdstack_rttm_errors_total", "Error events applied", ["service", "error_type"])
VIEW_LATENCY = Histogram(
    "mdstack_ingest_to_view_seconds",
    "From API acceptance to view computed (oldest tick of each batch)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
