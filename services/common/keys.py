"""Every Redis key mdstack owns, in one place, each family with its bound.

All keys start with `Settings.KEY_PREFIX` so several stacks (or test runs) can
share one Redis. RQ's own keys are namespaced by the queue name instead.

`FAMILIES` declares each key family once: the pattern of its names, what
bounds it (a TTL, a cap on its entries, or a cap on how many keys there are),
the setting that sets the bound, and the bytes one item costs (measured by
`tests/common/test_key_budget.py`, which fails when a family drifts past its
margin). `project` turns those into the steady state at a given rate, so the
memory a deployment needs is known before it runs: bytes per item x rate x
window, or x cap. Scripts never rebuild a key name: Python hands them the names
(or, for keys named by data, such as a candle's bucket, the name's prefix).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from services.common.candles import INTERVALS_MS

if TYPE_CHECKING:
    from services.common.settings import Settings

FLUSH_GROUP = "flusher"  # consumer group of the flush stream
WINDOW_MS = 60_000  # calc-a's sliding window (volume_1m, vwap_1m, high/low)
LAST_TICKS = 10  # calc-a's last_ticks
BATCH_TTL_S = 3600  # a batch (or a job's claims) no job finishes is gone after this; its items are in Postgres
# Internal names that sit beside client-chosen ones (a trade hash's fields are event keys, the stage set holds
# service names) start with MARK, which neither an event key (schemas.EVENT_ID_PATTERN, events.DERIVED) nor a
# service name (events.Name) can start with. The Lua scripts spell the trade marks out: '~term', '~final'.
MARK = "~"
TERM_MARK = MARK + "term"  # a trade's terminal event was seen: 1 success, 2 failure (rttm/apply.lua)
FINAL_MARK = MARK + "final"  # a trade was measured; later events are late (rttm/finalize.lua)
END_TO_END_STAGE = MARK + "end_to_end"  # the latency sketch of whole trades, beside the per-service ones


@dataclass(frozen=True)
class Keys:
    prefix: str

    # --- ingest -----------------------------------------------------------------

    def dedup(self, kind: str, bucket: int) -> str:
        """Set of the idempotency digests of one kind accepted in one DEDUP_WINDOW_S bucket (see dedup.py)."""
        return f"{self.prefix}dedup:{kind}:{bucket}"

    @property
    def accepted(self) -> str:
        """Hash of items accepted by ingest since the start, by kind (for rates across API processes)."""
        return f"{self.prefix}accepted"

    def batch(self, batch_id: str) -> str:
        """Hash of one group commit: `items` (read by the RQ job of the same id) and the marks of the
        steps already applied (`a` calc-a, `r` RTTM), so a retried job changes nothing and no mark
        outlives its batch."""
        return f"{self.prefix}batch:{batch_id}"

    @property
    def batch_prefix(self) -> str:
        return f"{self.prefix}batch:"

    @property
    def backlog(self) -> str:
        """Count of accepted items not yet in Postgres (ingest adds, the flusher's ack takes off)."""
        return f"{self.prefix}backlog"

    @property
    def queued(self) -> str:
        """Count of accepted items whose batch is still there for its job (ingest adds, the batch's deletion
        takes off, see batch_done.lua): queued work bounded in items, whatever the size of a job."""
        return f"{self.prefix}queued"

    @property
    def pending(self) -> str:
        """Zset of the batches no job has claimed yet, by commit time (ingest.lua adds, claim.lua takes)."""
        return f"{self.prefix}pending"

    @property
    def drainer(self) -> str:
        """The id of the job draining pending batches round after round (consumers/drain.py; expires DRAIN_LOCK_S
        after its last round): while it is set, the API enqueues no job (ingest.lua reads it)."""
        return f"{self.prefix}drainer"

    def claims(self, job_id: str) -> str:
        """Set of the batches a job has claimed: a retry of the job (same id) takes the same ones again."""
        return f"{self.prefix}claims:{job_id}"

    @property
    def flush_stream(self) -> str:
        """Redis Stream of accepted batches waiting for the flusher (entries and producers: `flush_stream.py`)."""
        return f"{self.prefix}flush"

    @property
    def history(self) -> str:
        """Redis Stream of published envelopes; its ids are the SSE event ids."""
        return f"{self.prefix}events"

    @property
    def ticks_wanted(self) -> str:
        """Set while a gateway has a client asking for `tick.received` one by one (realtime_gateway/demand.py);
        the API publishes them only then (orchestrator_api/ingest/merged.py)."""
        return f"{self.prefix}ticks:wanted"

    # --- workers ----------------------------------------------------------------

    def worker_alive(self, worker_name: str) -> str:
        """A worker process's heartbeat (expires WORKER_DEAD_AFTER_S after its last beat; see reaper.py)."""
        return f"{self.prefix}worker:{worker_name}:alive"

    @property
    def reaper_lock(self) -> str:
        """Held by the one worker looking for abandoned jobs at a time."""
        return f"{self.prefix}reaper"

    # --- per symbol -------------------------------------------------------------

    @property
    def symbols(self) -> str:
        """Sorted set of known symbols by when a tick of theirs was last accepted (MAX_SYMBOLS, SYMBOL_IDLE_S)."""
        return f"{self.prefix}symbols"

    def view(self, symbol: str) -> str:
        """Latest view W of a symbol (JSON), with its version in `view_version`."""
        return f"{self.view_prefix}{symbol}"

    @property
    def view_prefix(self) -> str:
        return f"{self.prefix}view:"

    def sym(self, symbol: str) -> str:
        """Prefix of calc-a state of one symbol."""
        return f"{self.prefix}sym:{symbol}:"

    def sym_state(self, symbol: str) -> dict[str, str]:
        """The names of calc-a's keys of one symbol, as `consumers/windows.lua` receives them."""
        base = self.sym(symbol)
        return {"win": base + "win", "px": base + "px", "last": base + "last", "agg": base + "agg"}

    def candle(self, symbol: str, interval: str, bucket_ms: int) -> str:
        return f"{self.candle_prefix(symbol, interval)}{bucket_ms}"

    def candle_prefix(self, symbol: str, interval: str) -> str:
        return f"{self.prefix}sym:{symbol}:c:{interval}:"

    def candle_index(self, symbol: str, interval: str) -> str:
        return f"{self.prefix}sym:{symbol}:ci:{interval}"

    # --- trade-pipeline monitoring (written by rttm/apply.lua / rttm/finalize.lua) ---

    @property
    def rttm(self) -> str:
        """Prefix of all RTTM state."""
        return f"{self.prefix}rttm:"

    def rttm_counters(self, second_ms: int) -> str:
        """Hash of event counts with event time in one second (fields like `trade|s|<service>`)."""
        return f"{self.rttm}c:{second_ms}"

    def rttm_latency(self, stage: str, bucket_ms: int) -> str:
        """Latency sketch (DDSketch bucket index -> count) of a stage (a service, or END_TO_END_STAGE) over 10 s."""
        return f"{self.rttm}lat:{stage}:{bucket_ms}"

    def rttm_trade(self, trade_id: str) -> str:
        """Hash of a trade's events: event_key -> "time|service|type|status", plus the TERM_MARK / FINAL_MARK fields."""
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
        """Hash of the latest queue metric per `service|topic|partition` (RTTM_MAX_QUEUES entries)."""
        return f"{self.rttm}q:latest"

    def rttm_queue_trend(self, bucket_ms: int) -> str:
        return f"{self.rttm}q:{bucket_ms}"

    @property
    def rttm_stages(self) -> str:
        """Set of stage (service) names with latency sketches (RTTM_MAX_STAGES members)."""
        return f"{self.rttm}stages"

    @property
    def rttm_late(self) -> str:
        """Hash of counters of events the monitoring state did not take (late, over a cap)."""
        return f"{self.rttm}late"

    @property
    def rttm_snapshot(self) -> str:
        return f"{self.rttm}snapshot"

    @property
    def rttm_alerts(self) -> str:
        """Hash of firing alerts by rule name."""
        return f"{self.rttm}alerts"

    @property
    def rttm_rev(self) -> str:
        """A token set anew by every applied RTTM batch: the ticker's sign that the state changed (ticker.py)."""
        return f"{self.rttm}rev"

    @property
    def rttm_leader(self) -> str:
        """Lock held by the worker process that computes and publishes the snapshot."""
        return f"{self.rttm}leader"


# --- the budget ---------------------------------------------------------------------


@dataclass(frozen=True)
class Rates:
    """The traffic a projection is made for (per second, except `symbols`)."""

    ticks: float
    events: float = 0.0  # RTTM events of all kinds
    trades: float = 0.0  # trades started
    symbols: int = 5

    @property
    def items(self) -> float:
        return self.ticks + self.events


EVENTS_PER_TRADE = 7.5  # the feeder's pipeline: six trade events per trade, plus queue metrics, DLQ, errors, logs
TRADE_EVENTS_PER_TRADE = 6  # one per stage of the seed's pipeline
DEMO_RATES = Rates(ticks=50.0, events=5.0 * EVENTS_PER_TRADE, trades=5.0)  # the feeder's defaults

Bound = Literal["ttl", "entries", "count", "fixed"]


@dataclass(frozen=True)
class Family:
    """One kind of key: how its names look, what bounds it, and what one item of it costs."""

    name: str
    pattern: str  # regex of the name after KEY_PREFIX
    bound: Bound  # ttl: every key expires; entries: one key, capped; count: a capped number of keys; fixed: one key
    setting: str  # the settings that set the bound
    item: str  # what one item is
    # Redis memory per item (MEMORY USAGE, measured; see tests/common/test_key_budget.py): the larger of what
    # Redis 7.0 (listpack) and 6.2 (ziplist, the embedded server) take, so a projection errs on the safe side.
    item_bytes: int
    items: Callable[[Settings, Rates], float]  # items in the steady state

    def project(self, settings: Settings, rates: Rates) -> int:
        return int(self.item_bytes * self.items(settings, rates))


def _symbol_ticks(s: Settings, r: Rates) -> float:
    """Ticks inside calc-a's 60 s window, over all symbols."""
    return r.ticks * WINDOW_MS / 1000


def _candles(s: Settings, r: Rates) -> float:
    """Candles kept per symbol: CANDLES_KEEP per interval, fewer when SYMBOL_IDLE_S is shorter."""
    per_symbol = sum(min(s.CANDLES_KEEP, s.SYMBOL_IDLE_S * 1000 // ms + 1) for ms in INTERVALS_MS.values())
    return per_symbol * min(r.symbols, s.MAX_SYMBOLS)


FAMILIES: tuple[Family, ...] = (
    Family(
        "dedup", r"dedup:[a-z]+:\d+", "ttl", "DEDUP_WINDOW_S",
        "one accepted idempotency key (a 16-byte digest in a set per window bucket)", 60,
        lambda s, r: r.items * 2 * s.DEDUP_WINDOW_S,
    ),
    Family("accepted", r"accepted", "fixed", "-", "one counter per kind", 100, lambda s, r: 1),
    Family("backlog", r"backlog", "fixed", "-", "one counter", 60, lambda s, r: 1),
    Family("queued", r"queued", "fixed", "-", "one counter", 60, lambda s, r: 1),
    Family(
        "batch", r"batch:[0-9a-f]{32}", "ttl", "INGEST_MAX_QUEUED_ITEMS, BATCH_TTL_S",
        "one accepted item waiting for its job (deleted when the job ends)", 230,
        lambda s, r: r.items * 1.0,  # a job runs within about a second of its commit
    ),
    Family(
        "pending", r"pending", "entries", "INGEST_MAX_QUEUED_ITEMS, JOB_CADENCE_MS",
        "one batch no job has claimed yet (a batch holds at least one queued item)", 100,
        lambda s, r: r.items * s.JOB_CADENCE_MS / 1000,  # at most one batch per item, for one cadence
    ),
    Family("drainer", r"drainer", "ttl", "DRAIN_LOCK_S", "one job id", 120, lambda s, r: 1),
    Family(
        "claims", r"claims:[0-9a-f]{32}", "ttl", "JOB_MAX_ITEMS, BATCH_TTL_S",
        "one batch a running job claimed (deleted when the job ends)", 80, lambda s, r: r.items * 0.5,
    ),
    Family(
        "flush", r"flush", "entries", "INGEST_MAX_BACKLOG",
        "one item waiting for Postgres (entries deleted once committed)", 230,
        lambda s, r: r.items * (s.FLUSH_INTERVAL_MS / 1000 + 0.5),
    ),
    Family(
        "events", r"events", "entries", "SSE_HISTORY, SSE_HISTORY_BYTES",
        "the whole resume history (capped in entries and in bytes)", 1,
        lambda s, r: s.SSE_HISTORY_BYTES,
    ),
    Family("ticks.wanted", r"ticks:wanted", "ttl", "TICKS_WANTED_TTL_S", "one flag", 60, lambda s, r: 1),
    Family(
        "symbols", r"symbols", "entries", "MAX_SYMBOLS, SYMBOL_IDLE_S", "one symbol", 60,
        lambda s, r: min(r.symbols, s.MAX_SYMBOLS),
    ),
    Family(
        "view", r"view:[^:]+", "ttl", "MAX_SYMBOLS, SYMBOL_IDLE_S", "one symbol's view W", 2300,
        lambda s, r: min(r.symbols, s.MAX_SYMBOLS),
    ),
    Family(
        "sym.window", r"sym:[^:]+:(win|px)", "ttl", "MAX_SYMBOLS, SYMBOL_IDLE_S",
        "one tick in the 60 s window (kept twice: by time and by price)", 450, _symbol_ticks,
    ),
    Family(
        "sym.last", r"sym:[^:]+:(last|agg)", "ttl", "MAX_SYMBOLS, SYMBOL_IDLE_S",
        "one symbol's 10 latest ticks and window sums", 900, lambda s, r: min(r.symbols, s.MAX_SYMBOLS),
    ),
    Family(
        "sym.candle", r"sym:[^:]+:c:(1m|5m|15m):\d+", "ttl", "CANDLES_KEEP, SYMBOL_IDLE_S", "one candle", 260,
        _candles,
    ),
    Family(
        "sym.candle_index", r"sym:[^:]+:ci:(1m|5m|15m)", "ttl", "CANDLES_KEEP, MAX_SYMBOLS, SYMBOL_IDLE_S",
        "one candle's entry in its symbol's index (a skiplist past 128 entries)", 90, _candles,
    ),
    Family(
        "worker", r"worker:[^:]+:alive", "ttl", "WORKER_DEAD_AFTER_S", "one worker process", 100,
        lambda s, r: 4,
    ),
    Family("reaper", r"reaper", "ttl", "WORKER_DEAD_AFTER_S", "one lock", 100, lambda s, r: 1),
    Family(
        "rttm.counters", r"rttm:c:\d+", "ttl", "RTTM_RETENTION_S",
        "one second of event counts (a dozen fields at the demo's 6 services)", 420,
        lambda s, r: s.RTTM_RETENTION_S if r.events else 0,
    ),
    Family(
        "rttm.latency", r"rttm:lat:.+:\d+", "ttl", "RTTM_RETENTION_S, RTTM_MAX_STAGES",
        "one stage's latency sketch over 10 s", 300,
        lambda s, r: (s.RTTM_RETENTION_S / 10) * 7 if r.trades else 0,
    ),
    Family(
        "rttm.trade", r"rttm:tr:.+", "ttl", "RTTM_RETENTION_S", "one trade's events and marks", 700,
        lambda s, r: r.trades * s.RTTM_RETENTION_S,
    ),
    Family(
        "rttm.active", r"rttm:(active|due)", "entries", "RTTM_RETENTION_S",
        "one trade in flight or waiting to be measured", 90,
        lambda s, r: r.trades * (s.RTTM_FINALIZE_GRACE_S + 2),
    ),
    Family(
        "rttm.queues", r"rttm:q:latest", "entries", "RTTM_MAX_QUEUES", "one partition's latest metric", 80,
        lambda s, r: 18 if r.events else 0,
    ),
    Family(
        "rttm.queue_trend", r"rttm:q:\d+", "ttl", "RTTM_RETENTION_S", "one 10 s bucket of partition metrics", 1200,
        lambda s, r: s.RTTM_RETENTION_S / 10 if r.events else 0,
    ),
    Family(
        "rttm.fixed", r"rttm:(stages|late|snapshot|alerts|leader|rev)", "entries",
        "RTTM_MAX_STAGES, alert rules", "the snapshot and small bounded sets", 8000, lambda s, r: 1,
    ),
)  # fmt: skip

_MATCHERS = [(re.compile(f.pattern + "$"), f) for f in FAMILIES]


def family_of(name: str, prefix: str) -> Family | None:
    """The family of a key name (with its prefix), or None for a key mdstack does not own."""
    if not name.startswith(prefix):
        return None
    rest = name[len(prefix) :]
    return next((f for pattern, f in _MATCHERS if pattern.match(rest)), None)


def project(settings: Settings, rates: Rates) -> dict[str, int]:
    """Steady-state bytes per family at `rates` with `settings`."""
    return {f.name: f.project(settings, rates) for f in FAMILIES}
