"""One Settings object for every service, read from the environment (12-factor).

Field names are the env var names. `REDIS_URL` / `PG_URL` unset means "use the
embedded servers" (see `services.common.embedded`); each service resolves that
at start-up, so by the time a service runs both URLs are set.
"""

from __future__ import annotations

import ipaddress
from typing import Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.tick_sizes import DEFAULT_TICK_SIZE, DEMO_TICK_SIZES, parse_tick_sizes

# Demo defaults: printed loudly at start, refused when MDSTACK_ENV=production.
DEMO_INGEST_USERNAME = "demo"
DEMO_INGEST_PASSWORD = "demo-password"
DEMO_INTERNAL_TOKEN = "demo-internal-token"
DEMO_SECRETS = {
    "INGEST_USERNAME": DEMO_INGEST_USERNAME,
    "INGEST_PASSWORD": DEMO_INGEST_PASSWORD,
    "INTERNAL_TOKEN": DEMO_INTERNAL_TOKEN,
}
MIN_SECRET_LENGTH = 12  # passwords, tokens and keys shorter than this are refused in every environment
# MDSTACK_ENV after strip + lower; an unknown value is refused rather than run as development by mistake.
# Production rules on reads apply to the processes that serve them, by SERVICE_NAME (load_settings sets it; any
# other name, the default included, gets them all): a worker holds no read key and no dashboard login.
SERVE_NO_READS = frozenset({"worker", "flusher", "kafka-consumer", "feeder", "migrate", "status"})
ASK_NO_LOGIN = SERVE_NO_READS | {"api"}  # the gateway alone asks for the viewer login
ENVIRONMENTS = {
    "development": "development",
    "dev": "development",
    "test": "test",
    "production": "production",
    "prod": "production",
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=False, hide_input_in_errors=True)

    MDSTACK_ENV: str = "development"  # development | test | production (also dev, prod; any case, spaces ignored)
    SERVICE_NAME: str = "mdstack"
    STATE_DIR: str = ".mdstack"
    LOG_LEVEL: str = "INFO"
    # json | console | auto (console on a terminal): people read the terminal, collectors parse JSON.
    LOG_FORMAT: Literal["auto", "json", "console"] = "auto"
    UP_STATUS_S: float = 5.0  # `mdstack up` prints a status line this often (0 = never): rate, backlog, memory

    REDIS_URL: str | None = None
    PG_URL: str | None = None

    INGEST_USERNAME: str = DEMO_INGEST_USERNAME
    INGEST_PASSWORD: str = DEMO_INGEST_PASSWORD
    API_KEY: str | None = None
    INTERNAL_TOKEN: str = DEMO_INTERNAL_TOKEN

    QUEUE_NAME: str = "ticks.received"
    PUBSUB_CHANNEL: str = "realtime:updates"
    # Prefix of every key mdstack owns in Redis (RQ keys are namespaced by QUEUE_NAME);
    # tests give each run its own prefix so they can share one server.
    KEY_PREFIX: str = "md:"

    API_HOST: str = "127.0.0.1"
    API_PORT: int = 8000
    GATEWAY_HOST: str = "127.0.0.1"
    GATEWAY_PORT: int = 8001
    # Where workers post views; defaults to this machine's API.
    API_URL: str | None = None
    # Browser origins allowed to read the API and the gateway's /stream (a comma list; empty: none, the
    # dashboard served by the gateway is same-origin; "*" refused in production), and the API's URL as
    # browsers see it.
    CORS_ORIGINS: str = ""
    PUBLIC_API_URL: str | None = None
    FRONTEND_DIST: str | None = None  # built dashboard the gateway serves at / (default: frontend/dist)
    # Health/metrics port of processes without an HTTP API (worker, flusher); 0 = off.
    METRICS_PORT: int = 0

    # Ingest: group commit and limits.
    # How long a commit waits for concurrent requests to join it. 0: none; a commit starts as soon as the one
    # before it has returned, and the requests that came meanwhile are the next group. Waiting made the API
    # latency-bound under load (7,300 single-tick POSTs/s under wrk with 2 ms, 10,900 with 0: doc/performance.md).
    INGEST_LINGER_MS: float = 0.0
    # With a linger: a lone request arriving this long after the one before commits at once: at such a pace
    # nothing would join it, and the linger would only add to its ack latency (commit.py). 0: every commit lingers.
    INGEST_LINGER_GAP_MS: float = 10.0
    INGEST_MAX_GROUP: int = 5000  # ticks per group commit (= per RQ job)
    INGEST_FASTPATH: bool = True  # serve POST /ingest/* without FastAPI's routing (orchestrator_api/ingest/fastpath.py)
    MAX_BATCH: int = 5000  # ticks per POST /ingest/ticks
    # Back-pressure (commit.py): refuse with Retry-After rather than hold more than this.
    INGEST_MAX_PENDING: int = 50_000  # items waiting for a commit in one API process (429)
    INGEST_MAX_BACKLOG: int = 500_000  # accepted items in Redis not yet in Postgres (503)
    INGEST_MAX_QUEUED_ITEMS: int = 100_000  # accepted items whose job has not ended (503): ~330 B each in Redis
    INGEST_MAX_QUEUED_JOBS: int = 20_000  # RQ jobs not yet started (503): ~1 KB each
    INGEST_RETRY_AFTER_S: int = 2  # Retry-After of those refusals
    MAX_BODY_BYTES: int = 2 * 1024 * 1024
    # A duplicate idempotency key is recognised for at least this long (and at most twice as long):
    # clients retry within seconds (the feeder gives up after 10 s), so 10 minutes is 60x that,
    # at ~60 bytes per key. Postgres' unique key keeps a later duplicate out of the tables anyway.
    DEDUP_WINDOW_S: int = 600
    MAX_SYMBOLS: int = 200  # known symbols; a tick of a new symbol past this is refused (422)
    SYMBOL_IDLE_S: int = 3600  # a symbol without a tick this long is forgotten in Redis (views, windows, candles)
    MAX_FUTURE_SKEW_S: float = 300.0  # ts may be this far ahead of the server clock
    HISTORY_LIMIT_MAX: int = 1000
    CANDLES_LIMIT_MAX: int = 1000
    # Price steps beyond or over the demo symbols' (common/tick_sizes.py), `SYMBOL=SIZE,...`, e.g. ACME=0.05;
    # they set the decimals and minimum move of a symbol's prices in the dashboard (GET /symbols, candles).
    TICK_SIZES: str = ""

    # Workers.
    # A job drains every batch waiting (up to JOB_MAX_ITEMS items), so jobs follow this cadence, not the
    # request rate: a view is up to JOB_CADENCE_MS later than with a job per commit. 0: a job per commit.
    JOB_CADENCE_MS: float = 50.0
    JOB_MAX_ITEMS: int = 5000  # items one job takes at most; the rest wait for the next job
    # A job that found batches stays on as the drainer: a round per JOB_CADENCE_MS for up to this long,
    # while batches keep coming, and the API enqueues no job meanwhile (consumers/drain.py): one RQ job a
    # second instead of one per cadence. 0: a job drains once.
    JOB_DRAIN_S: float = Field(default=1.0, ge=0)
    # Ticks go out merged per symbol (`ticks.merged`, ingest/merged.py) at most this often; `tick.received`
    # one by one only while a client asks for it. A display needs no more than a few updates a second.
    TICK_MERGE_MS: float = Field(default=250.0, gt=0)
    JOB_RETRIES: int = 3
    JOB_RETRY_INTERVALS: str = "1,3,10"  # seconds between attempts
    JOB_TIMEOUT_S: int = 60
    CANDLES_KEEP: int = 240  # candles kept in Redis per symbol and interval (older ones: Postgres)
    JOB_RESULT_TTL_S: int = 0  # a finished job is deleted at once (nothing reads results; benchmarks keep them)
    JOB_FAILURE_TTL_S: int = 3600  # a failed job is kept this long for a look (its batch is deleted at once)
    WORKER_DEAD_AFTER_S: float = 10.0  # a worker silent this long is dead; its job runs again (reaper.py)

    # Flusher.
    FLUSH_MAX_ROWS: int = 5000
    FLUSH_INTERVAL_MS: int = 500
    FLUSH_CLAIM_IDLE_MS: int = 30_000  # entries a dead flusher held are taken over after this
    FLUSHER_NAME: str | None = None
    # Retention (flusher/partitions.py): event tables are partitioned by UTC day.
    RETENTION_DAYS: int = 7  # ticks and RTTM events older than this are deleted (their daily partitions dropped)
    PARTITIONS_AHEAD_DAYS: int = 2  # days made ahead of today, so a flusher down for a day still finds its partition
    # How often each flusher keeps the tables to their retention (retention.py; also at start); 0 = off.
    RETENTION_EVERY_S: float = 600.0
    # Writes of a batch refused for its data (22xxx, 23xxx) before its bad rows are found and dead-lettered.
    FLUSH_POISON_ATTEMPTS: int = 3
    # Candles in Postgres outlive ticks (RETENTION_DAYS) and the deepest read (CANDLES_LIMIT_MAX 15m bars = 10.4
    # days) at ~0.43 MB per symbol and day (doc/storage-and-db.md); 90 days would be 190 MB for the demo's 5.
    CANDLE_RETENTION_DAYS: int = 30
    DEAD_LETTER_RETENTION_DAYS: int = 30  # time for an operator to look at a poison row and replay it

    # Gateway.
    SSE_HISTORY: int = 10_000  # events kept for Last-Event-ID resume
    # and at most about this many bytes of them: ~7,000 views of 2.3 kB, a minute or more of resume at the demo rate
    SSE_HISTORY_BYTES: int = 16 * 1024 * 1024
    SSE_CLIENT_BUFFER: int = 1000  # events queued per client before it is dropped
    # unsent bytes in a live client's socket before it is dropped (the hub writes to it: realtime_gateway/direct.py)
    SSE_CLIENT_BUFFER_BYTES: int = 256 * 1024
    SSE_PING_S: float = 15.0
    SSE_SEND_TIMEOUT_S: float = 10.0
    SSE_MAX_PER_IP: int = 50  # open /stream connections from one client address (429 past it); 0 = no limit
    SSE_MAX_CLIENTS: int = 10_000  # open /stream connections in one gateway process; 0 = no limit

    # Gateway: where clients really are (doc/security/gateway.md); who may read is below, with the secrets.
    # Peers whose X-Forwarded-For names the client (comma list of IPs/CIDRs, e.g. the ingress pods' network);
    # anyone else is the client. Per-client limits count an IPv6 client per /64 (one host's whole block).
    TRUSTED_PROXIES: str = "127.0.0.1,::1"
    # A Last-Event-ID replay reads and re-parses up to SSE_HISTORY events: this many per client per minute
    # (429 + Retry-After past it; 0 = no limit). A reconnecting dashboard replays once per reconnect.
    SSE_REPLAYS_PER_MIN: int = 30

    # Feeder: its knobs (SYMBOLS, TPS, TARGET_URL, FEEDER_*, TRADE_*) are services/feeder/settings.py.

    # Trade-pipeline monitoring (RTTM).
    RTTM_SUCCESS_EVENT_TYPES: str = "LEADERBOARD_UPDATED"  # a trade event of these types completes the trade
    RTTM_FAILURE_STATUSES: str = "FAILED,REJECTED"  # a trade event with these statuses ends the trade as failed
    RTTM_STUCK_AFTER_S: float = 30.0  # a non-terminal trade with no event for this long is stuck
    RTTM_FINALIZE_GRACE_S: float = 2.0  # wait for late events after a terminal one before measuring a trade
    RTTM_WINDOW_S: int = 300  # sliding window of the latency, DLQ and error figures
    RTTM_TICK_S: float = 1.0  # how often the snapshot is computed and published
    RTTM_RETENTION_S: int = 900  # how long per-trade and per-second state is kept in Redis (3 windows)
    RTTM_MAX_QUEUES: int = 1000  # partitions (service|topic|partition) whose latest metric is kept
    RTTM_MAX_STAGES: int = 100  # services with latency sketches
    RTTM_ALERTS_FILE: str | None = None  # YAML file of alert rules (added to / overriding the ones below)
    RTTM_ALERT_PIPELINE_DEPTH: float = 1000.0  # largest partition lag
    RTTM_ALERT_DLQ_PER_MIN: float = 30.0
    RTTM_ALERT_ERRORS_PER_MIN: float = 30.0
    RTTM_ALERT_P99_MS: float = 2000.0  # end-to-end p99 over the window
    RTTM_ALERT_STUCK_TRADES: float = 5.0

    # Kafka in (services/kafka_consumer) and out (the feeder's --transport kafka); doc/services/kafka-consumer.md.
    KAFKA_BOOTSTRAP_SERVERS: str | None = None  # host:port,...; unset: no Kafka (the consumer refuses to start)
    KAFKA_SECURITY_PROTOCOL: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    KAFKA_SASL_MECHANISM: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    KAFKA_SASL_USERNAME: str | None = None
    KAFKA_SASL_PASSWORD: str | None = None
    KAFKA_SSL_CA_LOCATION: str | None = None  # CA bundle (PEM) of SSL/SASL_SSL; unset: the system's
    # Topics of seed 001 section 1, one consumer group each (section 4.1, kafka.GROUPS), KAFKA_GROUP_PREFIX before it.
    KAFKA_TOPIC_TRADE: str = "rttm.trade.events"
    KAFKA_TOPIC_QUEUE: str = "rttm.queue.metrics"
    KAFKA_TOPIC_DLQ: str = "rttm.dlq.events"
    KAFKA_TOPIC_ERROR: str = "rttm.error.events"
    KAFKA_TOPIC_LOG: str = "rttm.log.events"
    KAFKA_TOPIC_TICKS: str | None = None  # e.g. md.ticks, keyed by symbol; unset: ticks come over HTTP alone
    KAFKA_GROUP_PREFIX: str = ""
    KAFKA_DEAD_LETTER_TOPIC: str = "rttm.dead-letter"  # undecodable or invalid messages, the error in a header
    KAFKA_BATCH: int = 500  # messages per consume call of one topic (= at most one group commit's worth)
    KAFKA_LAG_REPORT_S: float = 5.0  # the consumer's lag into RTTM as queue metrics this often (0: off)
    KAFKA_SESSION_TIMEOUT_MS: int = 10_000  # a consumer silent this long leaves its group (its partitions move)
    KAFKA_HEARTBEAT_MS: int = 1_000
    KAFKA_MAX_POLL_INTERVAL_MS: int = 300_000  # one batch, back-pressure waits included, may take this long
    # Topics the consumer makes at start when missing (a development broker; managed ones have theirs made).
    KAFKA_CREATE_TOPICS: bool = False
    KAFKA_PARTITIONS: int = 3  # of the topics it makes: consumers of one group beyond this many idle

    # Secrets and who may read (doc/security/credentials.md), checked at every start: empty or short secrets never;
    # in production no demo secret, no Redis without a password, and (where reads are served) no open reads by
    # accident, no private dashboard without its login. Names agreed in issue 13 (the gateway does the login).
    PUBLIC_READS: bool = False  # reads (REST, /stream, the dashboard) open to anyone on purpose: the public demo
    VIEWER_USERNAME: str | None = None  # the dashboard login (HTTP Basic at the gateway) when reads are private
    VIEWER_PASSWORD: str | None = None
    # Production refuses a REDIS_URL without a password unless this says, on purpose, that the Redis is reachable on a
    # private network alone (Render Key Value's internal URL carries no password unless internal auth is turned on).
    REDIS_ALLOW_NO_PASSWORD: bool = False
    # /health/readiness answers are reused this long (seconds): a flood of probes costs one check (common/health.py).
    READINESS_CACHE_S: float = 1.0

    @field_validator("PG_URL")
    @classmethod
    def _psycopg3_url(cls, value: str | None) -> str | None:
        # Render and Heroku hand out postgres:// URLs; SQLAlchemy needs the driver named.
        if value is None:
            return None
        for prefix in ("postgres://", "postgresql://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        return value

    @model_validator(mode="after")
    def _retention_in_range(self) -> Settings:
        # One line naming the variable (load_settings prints only the message).
        if self.RETENTION_DAYS < 1:
            raise ValueError(f"RETENTION_DAYS must be at least 1, got {self.RETENTION_DAYS}")
        if self.PARTITIONS_AHEAD_DAYS < 0:
            raise ValueError(f"PARTITIONS_AHEAD_DAYS must be 0 or more, got {self.PARTITIONS_AHEAD_DAYS}")
        if self.RETENTION_EVERY_S < 0:
            raise ValueError(f"RETENTION_EVERY_S must be 0 (off) or more, got {self.RETENTION_EVERY_S}")
        return self

    @model_validator(mode="after")
    def _drain_within_timeout(self) -> Settings:
        if self.JOB_DRAIN_S and self.JOB_DRAIN_S * 2 >= self.JOB_TIMEOUT_S:
            raise ValueError(
                f"JOB_DRAIN_S ({self.JOB_DRAIN_S}) must be under half of JOB_TIMEOUT_S ({self.JOB_TIMEOUT_S}): "
                "a draining job would be killed as hung"
            )
        return self

    @field_validator(
        "KAFKA_BOOTSTRAP_SERVERS",
        "KAFKA_SECURITY_PROTOCOL",
        "KAFKA_SASL_MECHANISM",
        "KAFKA_SASL_USERNAME",
        "KAFKA_SASL_PASSWORD",
        "KAFKA_SSL_CA_LOCATION",
        "KAFKA_TOPIC_TICKS",
        mode="before",
    )
    @classmethod
    def _kafka_empty_is_unset(cls, value: object, info: ValidationInfo) -> object:
        # A prompted variable left blank (Render's sync: false, compose's ${NAME:-}) means "not set".
        if isinstance(value, str) and not value.strip():
            return "PLAINTEXT" if info.field_name == "KAFKA_SECURITY_PROTOCOL" else None
        return value

    @model_validator(mode="after")
    def _kafka_sasl_complete(self) -> Settings:
        sasl = self.KAFKA_SECURITY_PROTOCOL.startswith("SASL_")
        if sasl != (self.KAFKA_SASL_MECHANISM is not None):
            raise ValueError("KAFKA_SASL_MECHANISM goes with KAFKA_SECURITY_PROTOCOL=SASL_SSL or SASL_PLAINTEXT")
        if sasl and not (self.KAFKA_SASL_USERNAME and self.KAFKA_SASL_PASSWORD):
            raise ValueError("KAFKA_SECURITY_PROTOCOL=SASL_* needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD")
        return self

    @field_validator("MDSTACK_ENV")
    @classmethod
    def _known_environment(cls, value: str) -> str:
        # "Production " or "PROD" must not run as development with the checks below off.
        normal = ENVIRONMENTS.get(value.strip().lower())
        if normal is None:
            raise ValueError(f"MDSTACK_ENV must be development, test or production (or dev, prod), got {value[:32]!r}")
        return normal

    @field_validator("API_KEY", "VIEWER_USERNAME", "VIEWER_PASSWORD")
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        # `API_KEY=` (compose's `${API_KEY:-}`) means "not set"; production then refuses it unless reads are public.
        return value if value and value.strip() else None

    @model_validator(mode="after")
    def _refuse_weak_secrets(self) -> Settings:
        # Always, in every environment: an empty secret would switch its check off. Names only, never values.
        if not self.INGEST_USERNAME.strip():
            raise ValueError("INGEST_USERNAME is empty: set the ingest Basic Auth user name")
        if (self.VIEWER_USERNAME is None) != (self.VIEWER_PASSWORD is None):
            raise ValueError("VIEWER_USERNAME and VIEWER_PASSWORD go together: set both or neither")
        for name in ("INGEST_PASSWORD", "INTERNAL_TOKEN", "API_KEY", "VIEWER_PASSWORD"):
            value = getattr(self, name)
            if value is None:  # optional ones; the production rules below say when they are required
                continue
            if not value.strip():
                raise ValueError(f"{name} is empty: set a secret of at least {MIN_SECRET_LENGTH} characters")
            if len(value) < MIN_SECRET_LENGTH:
                raise ValueError(f"{name} is shorter than {MIN_SECRET_LENGTH} characters: set a longer secret")
        return self

    @field_validator("TICK_SIZES")
    @classmethod
    def _tick_sizes_parse(cls, value: str) -> str:
        try:
            parse_tick_sizes(value)
        except ValueError as exc:
            raise ValueError(f"TICK_SIZES: {exc}") from None
        return value

    @field_validator("TRUSTED_PROXIES")
    @classmethod
    def _proxies_are_networks(cls, value: str) -> str:
        for entry in (e.strip() for e in value.split(",")):
            if not entry:
                continue
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"TRUSTED_PROXIES: {entry[:64]!r} is not an IP address or CIDR") from None
        return value

    @model_validator(mode="after")
    def _refuse_demo_secrets_in_production(self) -> Settings:
        if self.is_production:
            demo = [name for name, value in DEMO_SECRETS.items() if getattr(self, name) == value]
            if demo:
                raise ValueError(f"MDSTACK_ENV=production but demo defaults are in use for: {', '.join(demo)}")
        return self

    @model_validator(mode="after")
    def _refuse_open_deployment_in_production(self) -> Settings:
        if not self.is_production:
            return self
        if self.API_KEY is None and not self.PUBLIC_READS and self.SERVICE_NAME not in SERVE_NO_READS:
            raise ValueError(
                "MDSTACK_ENV=production and API_KEY is unset: set API_KEY (private reads) "
                "or PUBLIC_READS=true (reads open to anyone, on purpose)"
            )
        if not self.PUBLIC_READS and self.VIEWER_PASSWORD is None and self.SERVICE_NAME not in ASK_NO_LOGIN:
            raise ValueError(
                "MDSTACK_ENV=production with private reads needs the dashboard login: "
                "set VIEWER_USERNAME and VIEWER_PASSWORD (or PUBLIC_READS=true)"
            )
        if (
            self.REDIS_URL is not None
            and not redis_url_has_password(self.REDIS_URL)
            and not self.REDIS_ALLOW_NO_PASSWORD
        ):
            raise ValueError(
                "MDSTACK_ENV=production and REDIS_URL carries no password: "
                "use redis://:PASSWORD@host:6379/0 (or rediss://) with requirepass set on the server"
            )
        if "*" in self.cors_origins:
            raise ValueError(
                "MDSTACK_ENV=production and CORS_ORIGINS is '*': list the allowed origins (or leave empty)"
            )
        return self

    @property
    def is_production(self) -> bool:
        # Normalised by _known_environment; again here for a value assigned after validation.
        return ENVIRONMENTS.get(self.MDSTACK_ENV.strip().lower()) == "production"

    @property
    def demo_secrets_in_use(self) -> list[str]:
        return [name for name, value in DEMO_SECRETS.items() if getattr(self, name) == value]

    @property
    def api_url(self) -> str:
        return self.API_URL or f"http://{self.API_HOST}:{self.API_PORT}"

    @property
    def cors_origins(self) -> list[str]:
        return [o.strip() for o in self.CORS_ORIGINS.split(",") if o.strip()]

    def tick_size(self, symbol: str) -> float:
        """The symbol's price step: TICK_SIZES, else the demo symbols' own, else DEFAULT_TICK_SIZE."""
        sizes = parse_tick_sizes(self.TICK_SIZES) if self.TICK_SIZES else {}
        return sizes.get(symbol) or DEMO_TICK_SIZES.get(symbol, DEFAULT_TICK_SIZE)

    @property
    def trusted_proxies(self) -> list[str]:
        return [p.strip() for p in self.TRUSTED_PROXIES.split(",") if p.strip()]

    @property
    def reads_are_public(self) -> bool:
        """Reads need no credentials: declared public, or no read key to require (refused in production)."""
        return self.PUBLIC_READS or not self.API_KEY

    @property
    def success_event_types(self) -> frozenset[str]:
        return frozenset(s.strip() for s in self.RTTM_SUCCESS_EVENT_TYPES.split(",") if s.strip())

    @property
    def failure_statuses(self) -> frozenset[str]:
        return frozenset(s.strip() for s in self.RTTM_FAILURE_STATUSES.split(",") if s.strip())

    @property
    def retry_intervals(self) -> list[int]:
        return [int(x) for x in self.JOB_RETRY_INTERVALS.split(",") if x.strip()]

    @property
    def redis_url(self) -> str:
        if not self.REDIS_URL:
            raise RuntimeError("REDIS_URL is not set; start the embedded servers first (mdstack up)")
        return self.REDIS_URL

    @property
    def pg_url(self) -> str:
        if not self.PG_URL:
            raise RuntimeError("PG_URL is not set; start the embedded servers first (mdstack up)")
        return self.PG_URL

    @property
    def pg_dsn(self) -> str:
        """PG_URL as plain libpq DSN, for psycopg without SQLAlchemy."""
        return self.pg_url.replace("postgresql+psycopg://", "postgresql://", 1)


def redis_url_has_password(url: str) -> bool:
    """A password in the userinfo (`redis://:pw@host`, `redis://user:pw@host`) or redis-py's `?password=`."""
    parts = urlsplit(url)
    return bool(parts.password) or any(parse_qs(parts.query).get("password", []))


def get_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]


SERVERS_FILE = "servers.json"  # written by `mdstack up`: the URLs of the servers it started


def load_settings(**overrides: object) -> Settings:
    """Settings for a service process.

    With REDIS_URL / PG_URL unset, a service started on its own joins the
    embedded servers of a running `mdstack up` (their URLs are in the state dir).
    """
    import json
    from pathlib import Path

    try:
        settings = get_settings(**overrides)
    except ValidationError as exc:  # one line saying what to set, not a traceback
        reasons = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise SystemExit(f"mdstack: {reasons}") from None
    servers = Path(settings.STATE_DIR) / SERVERS_FILE
    if (not settings.REDIS_URL or not settings.PG_URL) and servers.exists():
        urls = json.loads(servers.read_text())
        return get_settings(
            **{
                "REDIS_URL": settings.REDIS_URL or urls["REDIS_URL"],
                "PG_URL": settings.PG_URL or urls["PG_URL"],
            },
            **overrides,
        )
    return settings
