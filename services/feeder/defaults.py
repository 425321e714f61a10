"""Tuning constants of feeder, each with the reason for its value (the settings a deployment
changes are in the settings model; these are the ones it should not need to)."""

# settings
HTTP_CONCURRENCY = 16  # requests in flight at once from one feeder

# run
PROGRESS_INTERVAL_S = 1.0  # how often the live progress line is written
MAX_SLEEP_S = 0.05  # the scheduler wakes at least this often, so a stop request is seen promptly
SIGNAL_DRAIN_S = 5.0  # grace period for in-flight requests after SIGINT/SIGTERM

# sender
REQUEST_TIMEOUT_S = 10.0  # per attempt; a slow answer past this is retried like a dropped connection
CONNECT_TIMEOUT_S = 2.0  # a dead API is reported fast
DETAIL_CHARS = 300  # how much of an error body goes into the log

# trade_feed
EVENT_LINGER_S = 0.05  # events due within this of the first one share its request (~6 requests/s at 5 trades/s)
MAX_EVENTS_PER_REQUEST = 1000  # ~400 KB of JSON, well under the API's body and batch limits

# stats
LATENCY_MIN_US = 1  # the latency histogram's range starts at 1 µs
LATENCY_MAX_US = 60_000_000  # a minute; anything slower is clamped, not dropped
LATENCY_DIGITS = 3  # significant figures: 0.1% resolution

# walk
# A day: the pull back to the start price is invisible in a session's candles but keeps a run of days within
# a few sigma (BTC at 60% a year: a stationary spread of ~2.7% around the start price).
REVERSION_HALF_LIFE_S = 86_400.0
SECONDS_PER_YEAR = 365.25 * 86_400  # volatilities are annualised over calendar time: these markets never close
VOLUME_SIGMA = 1.0  # lognormal shape: most trades near the typical size, a long tail of big ones
