"""Real service processes for end-to-end tests and benchmarks, each started as `python -m <module>`."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis
from rq import Queue
from sqlalchemy.engine import make_url

from harness.http import http
from services.common.db import migrate
from services.common.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from services.common.jobs import SERIALIZER, all_job_ids
from services.common.settings import Settings

MODULES = {
    "api": "services.orchestrator_api",
    "worker": "services.consumers",
    "flusher": "services.flusher",
    "gateway": "services.realtime_gateway",
    "feeder": "services.feeder",
    "kafka-consumer": "services.kafka_consumer",
}


class Stack:
    """Processes sharing one environment built from a test's settings; logs go to `log_dir`."""

    def __init__(self, settings: Settings, log_dir: Path) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.api_port = free_port()
        self.gateway_port = free_port()
        self.env = dict(
            os.environ,
            REDIS_URL=settings.redis_url,
            PG_URL=settings.pg_url,
            KEY_PREFIX=settings.KEY_PREFIX,
            QUEUE_NAME=settings.QUEUE_NAME,
            PUBSUB_CHANNEL=settings.PUBSUB_CHANNEL,
            INGEST_USERNAME=settings.INGEST_USERNAME,
            INGEST_PASSWORD=settings.INGEST_PASSWORD,
            INTERNAL_TOKEN=settings.INTERNAL_TOKEN,
            API_PORT=str(self.api_port),
            GATEWAY_PORT=str(self.gateway_port),
            TARGET_URL=f"http://127.0.0.1:{self.api_port}",
            FLUSH_INTERVAL_MS="100",
            PYTHONUNBUFFERED="1",
        )
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.commands: dict[str, tuple[str, tuple[str, ...], bool, dict[str, str]]] = {}  # module, args, health, env
        self.health: dict[str, str] = {}  # name -> base URL of /health/* of processes without an HTTP API

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def start(
        self, name: str, *args: str, service: str | None = None, health: bool = False, **env: str
    ) -> subprocess.Popen[bytes]:
        """`python -m <module> args`; `health`: on a fresh port, --metrics-port serves /health/* (see .health)."""
        module = MODULES[service or name]
        self.commands[name] = (module, args, health, env)
        if health:  # a new port on every start: an old one may have gone to a client socket meanwhile
            port = free_port()
            self.health[name] = f"http://127.0.0.1:{port}"
            args = (*args, "--metrics-port", str(port))
        with (self.log_dir / f"{name}.log").open("ab") as log:  # the child keeps its own descriptor
            proc = subprocess.Popen(
                [sys.executable, "-m", module, *args],
                env=dict(self.env, **env),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a group of its own: RQ's scheduler is a child process of the worker
            )
        self.processes[name] = proc
        return proc

    def up(self, workers: int = 2, timeout: float = 30.0, *, health: bool = False) -> None:
        """API, workers, flusher and gateway, ready to serve; `health`: workers and flusher serve /health/*."""
        self.start("api")
        for i in range(1, workers + 1):
            self.start(f"worker-{i}", service="worker", health=health)
        self.start("flusher", health=health)
        self.start("gateway")
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until every process with a health endpoint reports ready."""
        for url in (self.api_url, self.gateway_url, *self.health.values()):
            wait_ready(url, timeout)

    def kill(self, name: str) -> None:
        """SIGKILL to the process and its children: no shutdown code runs."""
        proc = self.processes[name]
        _kill_group(proc.pid)
        proc.wait(10)

    def restart(self, name: str) -> subprocess.Popen[bytes]:
        """The same command again (as a supervisor would after a crash)."""
        module, args, health, env = self.commands[name]
        service = next(s for s, m in MODULES.items() if m == module)
        return self.start(name, *args, service=service, health=health, **env)

    def stop(self, name: str, timeout: float = 15) -> int:
        proc = self.processes.pop(name)
        self.health.pop(name, None)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        _kill_group(proc.pid)  # whatever it left behind
        return proc.returncode

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.log_dir.glob("*.log")))


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def own_names(name: str) -> dict[str, str]:
    """A Redis key prefix, queue and channel of their own, to share servers safely."""
    tag = f"{name}{uuid.uuid4().hex[:8]}"
    return {"KEY_PREFIX": f"{tag}:", "QUEUE_NAME": f"{tag}.ticks", "PUBSUB_CHANNEL": f"{tag}:updates"}


def isolated_settings(redis_url: str, pg_url: str, name: str, **overrides: object) -> Settings:
    """Settings with a Redis key prefix, queue and channel of their own, to share servers safely."""
    values: dict[str, object] = {"REDIS_URL": redis_url, "PG_URL": pg_url, **own_names(name)}
    return Settings(**{**values, **overrides})  # type: ignore[arg-type]


def isolated_copy(settings: Settings, name: str) -> Settings:
    """A copy of `settings` with names of its own; not built again from its sources (20-80 ms each)."""
    return settings.model_copy(update=own_names(name), deep=True)


def purge(settings: Settings) -> None:
    """Delete what a run left in Redis: keys under its prefix, its RQ queue, registries and jobs."""
    client = redis.Redis.from_url(settings.redis_url)
    keys: list[str | bytes] = [
        f"rq:{kind}:{job}" for job in rq_job_ids(client, settings.QUEUE_NAME) for kind in ("job", "results")
    ]
    for pattern in (f"{settings.KEY_PREFIX}*", f"rq:*{settings.QUEUE_NAME}*"):
        keys += client.scan_iter(match=pattern, count=5000)
    for i in range(0, len(keys), 1000):
        client.unlink(*keys[i : i + 1000])
    client.close()


def rq_job_ids(client: redis.Redis, queue_name: str) -> set[str]:
    """Every job RQ still knows of on a queue; job hashes are not named after their queue."""
    return all_job_ids(Queue(queue_name, connection=client, serializer=SERIALIZER))


def wait_ready(url: str, timeout: float = 30.0) -> None:
    """Until `url`/health/readiness answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if http().get(f"{url}/health/readiness", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} not ready after {timeout:.0f} s")


@contextmanager
def scratch_database(admin_url: str, prefix: str = "mdstack_scratch", revision: str = "head") -> Iterator[str]:
    """A new database migrated to `revision` on the server of `admin_url`, dropped afterwards; yields its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = make_url(admin_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(admin_url).set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)
    try:
        migrate(Settings(PG_URL=url), revision)
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def servers(workdir: Path) -> Iterator[tuple[str, str]]:
    """REDIS_URL / PG_URL when set, else embedded servers for the run."""
    with ExitStack() as stack:
        redis_url = os.environ.get("REDIS_URL")
        if not redis_url:
            server = EmbeddedRedis(workdir, appendonly=False)
            redis_url = server.start()
            stack.callback(server.stop)
        pg_url = os.environ.get("PG_URL")
        if not pg_url:
            pg = EmbeddedPostgres(workdir)
            pg_url = pg.start()
            stack.callback(pg.stop)
        yield redis_url, pg_url


@contextmanager
def bench_settings(workdir: Path, name: str = "bench") -> Iterator[Settings]:
    """What a benchmark runs on: servers, a scratch database, its own Redis names, cleaned up after."""
    with servers(workdir) as (redis_url, admin_pg_url), scratch_database(admin_pg_url, f"mdstack_{name}") as pg_url:
        settings = isolated_settings(redis_url, pg_url, name)
        try:
            yield settings
        finally:
            purge(settings)


def report(result: dict[str, Any], path: Path | None) -> None:
    """A benchmark's result as JSON on stdout, and in `path` when given."""
    text = json.dumps(result, indent=2)
    sys.stdout.write(text + "\n")
    if path:
        path.write_text(text)
