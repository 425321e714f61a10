"""Tuning constants of orchestrator_api, each with the reason for its value (the settings a deployment
changes are in the settings model; these are the ones it should not need to)."""

# upgrade
UPGRADE_CHUNK = 1000  # jobs read per round trip when looking for pickled ones

# ingest.commit
BACKLOG_REFRESH_S = 0.5  # how stale the backlog count behind a 503 may be

# ingest.dedup
DIGEST_BYTES = 16  # dedup keys hold a 128-bit digest of the event key: fixed size whatever the client sent

# ingest.budget
RATE_WINDOW_S = 60.0  # /system's ingest rate averages this window
SAMPLES_KEPT = 120  # rate samples kept at most, whatever the sampling pace

# read.routes
STORED_CANDLES_TIMEOUT_S = 3.0  # a Postgres that hangs must not hold up the candles Redis has

# rttm.routes
LIMIT_MAX = 1000  # rows per RTTM list read (dead letters, errors, logs)

# errors
RETRY_AFTER_S = "1"  # what a 429/503 asks the client to wait, in seconds

# ingest.merged
IDLE_FLAG_ROUNDS = 4  # with nothing merged, the merger sleeps this many intervals (or until a tick) between flag reads
