"""Tuning constants of consumers, each with the reason for its value (the settings a deployment
changes are in the settings model; these are the ones it should not need to)."""

# reaper
SCHEDULER_LATE_S = 5  # a live RQ scheduler queues due jobs within a second
STRANDED_S = 5  # a live worker marks a popped job started within milliseconds

# __main__
REDIS_WAIT_MAX_S = 5.0  # back-off cap while waiting for Redis to come back

# context
HTTP_TIMEOUT_S = 10.0  # per call to the API's /internal/agg-update

# metrics
MAX_SERIES = 200  # label values kept per metric; the rest count as OTHER, so a client cannot grow /metrics

# tasks
WINDOWS_CALL_TICKS = 500  # ticks per windows.lua call: a job's batches share calls, none holding Redis long

# rttm.apply
TREND_BUCKET_MS = 10_000  # queue-depth trend resolution
REASON_CHARS = 100  # DLQ reasons are counted by their first characters

# rttm.ticker
SNAPSHOT_TTL_S = 60  # a stale snapshot disappears when no worker is computing it
UNCHANGED_PUBLISH_S = 10  # a snapshot equal to the last one published is published again only this often

# rttm.finalize
BUCKET_MS = 10_000  # trade latencies are kept per bucket of this width (by when the trade finished)
PER_TICK = 2000  # trades measured per call, so a backlog is worked off in slices

# rttm.sketch
RELATIVE_ACCURACY = 0.01  # DDSketch: every percentile within 1% of the true value

# rttm.snapshot
TPS_NOW_S = 10  # 'TPS now' averages the last 10 s
TPS_SERIES_S = 120  # the TPS chart's span
RATE_S = 60  # per-minute counts (trades by service and event type) cover this many seconds
TREND_STEPS = 30  # points of each queue-depth trend
STUCK_LISTED = 20  # stuck trades listed in the snapshot (all are counted)

# drain
DRAIN_LOCK_S = 2.0  # the drainer key outlives a round this long: a killed drainer blocks no job for longer
DRAIN_IDLE_ROUNDS = 2  # empty rounds in a row after which a drainer leaves (if nothing is pending)
