"""Tuning constants of realtime_gateway, each with the reason for its value (the settings a deployment
changes are in the settings model; these are the ones it should not need to)."""

# proxy
MAX_BODY_BYTES = 8 * 1024 * 1024  # the largest read (1,000 history rows, a long trade trace) is well under 1 MB
TIMEOUT_S = 8.0  # whole request; under the dashboard's own 10 s, so it sees this answer and not its timeout
CONNECT_TIMEOUT_S = 2.0  # to the API; a dead API is reported fast
MAX_CONNECTIONS = 100  # to the API from one gateway process

# limits
IPV6_CLIENT_PREFIX = 64  # addresses in one IPv6 /64 are one client
MAX_TRACKED = 100_000  # replay budgets kept at most; the fullest ones are forgotten first (they owe nothing)

# history
PAGE = 500  # entries per XRANGE: keeps each reply small while a long replay runs

# stream
MAX_CHUNK = 256  # events joined into one write at most

# conflate
MIN_INTERVAL_S = 0.01  # the finest ?conflate= a client may ask for
MAX_INTERVAL_S = 10.0  # the coarsest ?conflate=

# response
CHECK_EVERY_S = 0.5  # the send watchdog's shortest period (it checks each quarter of SSE_SEND_TIMEOUT_S)

# hub
POLL_S = 1.0  # pub/sub read timeout: lets redis-py send its health-check PING on a quiet channel
BACKOFF_MIN_S = 0.1  # first retry after Redis is lost
BACKOFF_MAX_S = 5.0  # retries double up to this

# demand
TICKS_WANTED_TTL_S = 30  # per-tick events stop this long after the last client asking for them has gone
TICKS_WANTED_REFRESH_S = 10.0  # the flag is renewed this often while such a client is connected

# viewer
LOGIN_FAILURES_PER_MIN = 20  # wrong logins per client a minute: a person mistyping never gets near it

# app
STARTUP_WAIT_S = 5.0  # how long start-up waits for the first subscription before serving anyway
SHUTDOWN_GRACE_S = 1.0  # streams get this long to end cleanly when the server stops
