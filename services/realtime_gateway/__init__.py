"""SSE fan-out gateway: one Redis subscription per process, one bounded queue per client."""
