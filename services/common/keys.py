"""Every Redis key mdstack owns, in one place.

All keys start with `Settings.KEY_PREFIX` so several stacks (or test runs) can
share one Redis. RQ's own keys are namespaced by the queue name instead.
"""

from __future__ import annotations

from dataclasses import dataclass

INTERVALS_MS = {"1m": 60_000, "5m": 300_000, "15m": 900_000}
FLUSH_GROUP = "flusher"  # consumer group of the flush stream


@dataclass(frozen=True)
class Keys:
    prefix: str

    def dedup(self, kind: str, key: str) -> str:
        """Marks an accepted idempotency key of a kind for DEDUP_TTL_S (written by `ingest.lua`)."""
        return f"{self.dedup_prefix}{kind}:{key}"

    @property
    def dedup_prefix(self) -> str:
        return f"{self.prefix}dedup:"

    @property
    def accepted(self) -> str:
        """Hash of items accepted by ingest since the start, by kind (for rates across API processes)."""
        return f"{self.prefix}accepted"

    def batch(self, batch_id: str) -> str:
        """The accepted ticks of one group commit, read by the RQ job of the same id."""
        return f"{self.prefix}batch:{batch_id}"

    @property
    def batch_prefix(self) -> str:
        return f"{self.prefix}batch:"

    def applied(self, batch_id: str) -> str:
        """Set once calc-a has applied a batch, so a retried job changes nothing."""
        return f"{self.prefix}applied:{batch_id}"

    def worker_alive(self, worker_name: str) -> str:
        """A worker process's heartbeat (expires WORKER_DEAD_AFTER_S after its last beat; see reaper.py)."""
        return f"{self.prefix}worker:{worker_name}:alive"

    @property
    def reaper_lock(self) -> str:
        """Held by the one worker looking for abandoned jobs at a time."""
        return f"{self.prefix}reaper"

    @property
    def backlog(self) -> str:
        """Count of accepted items not yet in Postgres (ingest adds, the flusher's ack takes off)."""
        return f"{self.prefix}backlog"

    @property
    def flush_stream(self) -> str:
        """Redis Stream of accepted batches waiting for the flusher."""
        return f"{self.prefix}flush"

    @property
    def history(self) -> str:
        """Redis Stream of published envelopes; its ids are the SSE event ids."""
        return f"{self.prefix}events"

    @property
    def symbols(self) -> str:
        return f"{self.prefix}symbols"

    def view(self, symbol: str) -> str:
        """Latest view W of a symbol (JSON), with its version in `view_version`."""
        return f"{self.prefix}view:{symbol}"

    def sym(self, symbol: str) -> str:
        """Prefix of calc-a state of one symbol."""
        return f"{self.prefix}sym:{symbol}:"

    def candle(self, symbol: str, interval: str, bucket_ms: int) -> str:
        return f"{self.prefix}sym:{symbol}:c:{interval}:{bucket_ms}"

    def candle_index(self, symbol: str, interval: str) -> str:
        return f"{self.prefix}sym:{symbol}:ci:{interval}"

    # --- trade-pipeline monitoring (written by rttm_apply.lua / rttm_finalize.lua) ---

    @property
    def rttm(self) -> str:
        """Prefix of all RTTM state."""
        return f"{self.prefix}rttm:"

    def rttm_counters(self, second_ms: int) -> str:
        """Hash of event counts with event time in one second (fields like `trade|s|<service>`)."""
        return f"{self.rttm}c:{second_ms}"

    def rttm_latency(self, stage: str, bucket_ms: int) -> str:
        """Latency sketch (DDSketch bucket index -> count) of a stage over a 10 s bucket."""
        return f"{self.rttm}lat:{stage}:{bucket_ms}"

    def rttm_trade(self, trade_id: str) -> str:
        """Hash of a trade's events: event_key -> "time|service|type|status", plus ~term / ~final marks."""
        return f"{self.rttm}tr:{trade_id}"

    @property
    def rttm_active(self) -> str:
        """Sorted set of non-terminal trades by their latest event time (stuck detection)."""
        return f"{self.rttm}active"

    @property
    def rttm_due(self) -> str:
        """Sorted set of terminal trades by when they may be measured (after the grace period)."""
        return f"{self.rttm}due"

    @property
    def rttm_queues(self) -> str:
        """Hash of the latest queue metric per `service|topic|partition`."""
        return f"{self.rttm}q:latest"

    def rttm_queue_trend(self, bucket_ms: int) -> str:
        return f"{self.rttm}q:{bucket_ms}"

    @property
    def rttm_snapshot(self) -> str:
        return f"{self.rttm}snapshot"

    @property
    def rttm_alerts(self) -> str:
        """Hash of firing alerts by rule name."""
        return f"{self.rttm}alerts"

    @property
    def rttm_leader(self) -> str:
        """Lock held by the worker process that computes and publishes the snapshot."""
        return f"{self.rttm}leader"
