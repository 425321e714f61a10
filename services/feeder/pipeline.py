"""The simulated trade pipeline (seed 001 section 3): its stages, topics, event types and defaults.

A trade moves through six services, each reading the topic the previous one
wrote (the simulation service only produces). Every stage emits one trade
event (`rttm.trade.events`) with its `service_name`:

    stage  service_name            consumes        produces        event_type / event_status
    -----  ----------------------  --------------  --------------  ---------------------------------
    0      simulation-service      -               trade-input     TRADE_CREATED / SUCCESS
    1      trade-capture-service   trade-input     trade-captured  TRADE_CAPTURED / SUCCESS
    2      validation-service      trade-captured  trade-valid     VALIDATION_SUCCESS / SUCCESS
                                                   trade-dlq       VALIDATION_FAILED / FAILED (terminal)
    3      pms-core-service        trade-valid     positions       POSITION_UPDATED / SUCCESS
    4      analytics-service       positions       analytics       ANALYTICS_COMPUTED / SUCCESS
    5      leaderboard-service     analytics       -               LEADERBOARD_UPDATED / SUCCESS (terminal)

A consumer's trade event carries `source_queue` = `topic_name` = the topic it
consumed, `target_queue` = the topic it writes next, and the `partition` /
`offset` of the message it consumed (partition = crc32(trade_id) mod
TRADE_PARTITIONS, as a Kafka producer keyed by trade_id would place it).

Besides trade events:

    kind    when                                          fields of note
    ------  --------------------------------------------  -----------------------------------------------
    dlq     a trade fails validation                      topic_name trade-dlq, reason
    error   pms-core fails on a trade (DB_TIMEOUT, ...)   error_type, error_message
    queue   every consumer, per consumed partition,       produced_offset (written so far),
            every TRADE_METRICS_INTERVAL_S                consumed_offset (processed so far)
    log     ERROR / PROCESSING_ERROR with each error,     log_level, log_category
            WARN / PROCESSING_DELAY when a stage is slow,
            INFO / TRADE_PROCESSED for a sample of trades
"""

from __future__ import annotations

from dataclasses import dataclass

from services.common.kinds import RTTM_POSTED
from services.feeder.settings import FeederSettings

SUCCESS = "SUCCESS"
FAILED = "FAILED"

TRADE_CREATED = "TRADE_CREATED"
TRADE_CAPTURED = "TRADE_CAPTURED"
VALIDATION_SUCCESS = "VALIDATION_SUCCESS"
VALIDATION_FAILED = "VALIDATION_FAILED"
POSITION_UPDATED = "POSITION_UPDATED"
ANALYTICS_COMPUTED = "ANALYTICS_COMPUTED"
LEADERBOARD_UPDATED = "LEADERBOARD_UPDATED"

DLQ_TOPIC = "trade-dlq"
EVENT_KINDS = RTTM_POSTED  # one ingest path each

# Log levels and categories (`rttm.log.events`).
INFO = "INFO"
WARN = "WARN"
ERROR = "ERROR"
TRADE_PROCESSED = "TRADE_PROCESSED"
PROCESSING_DELAY = "PROCESSING_DELAY"
PROCESSING_ERROR = "PROCESSING_ERROR"


@dataclass(frozen=True)
class Stage:
    service: str
    event_type: str
    consumes: str | None  # the topic this service reads; None for the producer-only simulation
    produces: str | None  # the topic it writes for the next stage; None at the end
    median_ms: float  # default median of its latency (time since the previous stage's event)
    message: str

    @property
    def short_name(self) -> str:
        """How TRADE_LATENCY_MS names it: the service name without `-service`."""
        return self.service.removesuffix("-service")


STAGES: tuple[Stage, ...] = (
    Stage("simulation-service", TRADE_CREATED, None, "trade-input", 0.0, "Trade created"),
    Stage("trade-capture-service", TRADE_CAPTURED, "trade-input", "trade-captured", 5.0, "Trade captured"),
    Stage("validation-service", VALIDATION_SUCCESS, "trade-captured", "trade-valid", 8.0, "Trade validated"),
    Stage("pms-core-service", POSITION_UPDATED, "trade-valid", "positions", 15.0, "Position updated"),
    Stage("analytics-service", ANALYTICS_COMPUTED, "positions", "analytics", 40.0, "Analytics computed"),
    Stage("leaderboard-service", LEADERBOARD_UPDATED, "analytics", None, 10.0, "Leaderboard updated"),
)
CONSUMERS = STAGES[1:]  # the Kafka-consumer services: each reports queue metrics for what it reads
CAPTURE, VALIDATION, PMS_CORE, ANALYTICS, LEADERBOARD = range(1, 6)  # indices into STAGES
TERMINAL_EVENT_TYPES = frozenset({LEADERBOARD_UPDATED, VALIDATION_FAILED})

# Defaults of the knobs (env / flags): they live in FeederSettings (one place); named here for the
# simulation's own code and tests.
_FIELDS = FeederSettings.model_fields
DEFAULT_TRADE_TPS: float = _FIELDS["trade_tps"].default
DEFAULT_FAIL_RATE: float = _FIELDS["fail_rate"].default
DEFAULT_ERROR_RATE: float = _FIELDS["error_rate"].default
DEFAULT_STUCK_RATE: float = _FIELDS["stuck_rate"].default
DEFAULT_PARTITIONS: int = _FIELDS["trade_partitions"].default
DEFAULT_LATENCY_SPREAD: float = _FIELDS["trade_latency_spread"].default
DEFAULT_METRICS_INTERVAL_S: float = _FIELDS["queue_metrics_interval"].default

# Fixed shape of the simulation.
ERROR_STOP_SHARE = 0.2  # of the trades hitting an error, the share that stops there (the rest retry and go on)
RETRY_BACKOFF_MS = 100  # pms-core waits this long before retrying after an error
SLOW_FACTOR = 3.0  # a stage taking more than this times its median logs WARN / PROCESSING_DELAY
INFO_LOG_SHARE = 0.1  # completed trades that log INFO / TRADE_PROCESSED
MAX_STAGE_LATENCY_MS = 60_000  # a draw beyond this is clamped (only a silly spread gets there)

FAIL_REASONS: tuple[str, ...] = (
    "Schema validation failed",
    "Unknown instrument",
    "Quantity must be positive",
    "Counterparty not found",
)
PMS_ERRORS: tuple[tuple[str, str], ...] = (  # (error_type, error_message)
    ("DB_TIMEOUT", "Timeout while updating position"),
    ("DB_DEADLOCK", "Deadlock detected while updating position"),
    ("POSITION_LOCK_TIMEOUT", "Timed out waiting for the position lock"),
)
PMS_ERROR_WEIGHTS = (3, 1, 1)  # DB_TIMEOUT is the common one
