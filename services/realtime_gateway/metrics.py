"""Prometheus metrics of the gateway process (default registry, defined once per process)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

CLIENTS = Gauge("mdstack_gateway_clients", "SSE clients connected now")
EVENTS_RECEIVED = Counter("mdstack_gateway_events_received_total", "Envelopes received from Redis pub/sub")
FRAMES_DELIVERED = Counter("mdstack_gateway_frames_delivered_total", "Event frames sent to clients")
CLIENTS_DROPPED = Counter(
    "mdstack_gateway_clients_dropped_total", "Clients whose stream was ended by the gateway", ["reason"]
)
REPLAYED = Counter(
    "mdstack_gateway_replayed_events_total",
    "Events read back from the history stream",
    ["cause"],  # resume: a client's Last-Event-ID; reconnect: the hub's own resubscription
)
REDIS_RECONNECTS = Counter(
    "mdstack_gateway_redis_reconnects_total", "Times the pub/sub subscription was re-established"
)
BAD_ENVELOPES = Counter("mdstack_gateway_bad_envelopes_total", "Messages on the channel that were not envelopes")
CONFLATED = Counter(
    "mdstack_gateway_conflated_total",
    "Events not sent to a ?conflate= client because a newer one of the same type and symbol replaced them",
)

# Label values exist from the start, so dashboards see 0 rather than no series.
CLIENTS_DROPPED.labels("slow")
CLIENTS_DROPPED.labels("send_timeout")
REPLAYED.labels("resume")
REPLAYED.labels("reconnect")
REFUSED = Counter("mdstack_gateway_streams_refused_total", "GET /stream answered 429 (limits.py)", ["limit"])
LOGINS_FAILED = Counter(
    "mdstack_gateway_viewer_logins_failed_total",
    "Requests with a wrong viewer login, and those refused for too many of them (viewer.py)",
)
PROXIED = Counter(
    "mdstack_gateway_api_proxied_total",
    "Reads forwarded by /api/... to the API (proxy.py), by outcome",
    ["outcome"],  # answered (any status from the API), unreachable, timeout, too_large
)
for _outcome in ("answered", "unreachable", "timeout", "too_large"):
    PROXIED.labels(_outcome)
