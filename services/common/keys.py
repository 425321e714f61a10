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

    def batch(self, batch_id: str) -> str:
        """The accepted ticks of one group commit, read by the RQ job of the same id."""
        return f"{self.prefix}batch:{batch_id}"

    @property
    def batch_prefix(self) -> str:
        return f"{self.prefix}batch:"

    def applied(self, batch_id: str) -> str:
        """Set once calc-a has applied a batch, so a retried job changes nothing."""
        return f"{self.prefix}applied:{batch_id}"

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
