"""Fan-out: N SSE clients on the gateway at a given update rate, and what they received.

    python -m bench.fanout --clients 1000 --rate 30 --duration 20 [--client-procs 2] [--json out.json]

Starts the gateway alone (on REDIS_URL / PG_URL, or on embedded servers when
unset; a scratch database and key prefix either way), connects --clients SSE
clients to `GET /stream?types=symbol.updated` from --client-procs processes
(raw asyncio sockets, a minimal HTTP/1.1 reader and harness.sse's frame
splitter, so the client side keeps up), then publishes `symbol.updated` envelopes through the project's
publish script at --rate per second for --duration seconds, open loop (each
on its scheduled time; a late publisher catches up rather than drifting).
Every envelope carries `sent_ms`, its publish time on the wall clock, so the
clients measure publish-to-delivery latency. Reports:

- deliveries, deliveries/s, expected (published x clients), missing, extra;
- delivery latency p50/p95/p99/max (ms);
- clients connected, connect failures, overflow notices (clients dropped as slow);
- gateway RSS (MB) before clients, with clients connected, after publishing,
  after the clients left; gateway CPU seconds while publishing;
- `targets`: >= 30,000 deliveries/s, p99 <= 150 ms, memory flat (<= 10 % growth).

Exits non-zero on errors (gateway or client process failure, clients that could
not connect, nothing published), never on missed targets. Loopback only; the
run is bounded by a hard timeout of --duration plus the connect and drain limits.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import multiprocessing as mp
import os
import resource
import signal
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness.percentiles import percentiles
from harness.sse import CONNECTED, Frames
from harness.stack import Stack, bench_settings, report, wait_ready
from services.common.realtime import publish
from services.common.redis import async_redis
from services.common.schemas import envelope
from services.common.settings import Settings

EVENT_TYPE = "symbol.updated"
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT")
CONNECT_CONCURRENCY = 100  # connection attempts in flight per client process
CONNECT_TIMEOUT_S = 10.0  # per connection, up to the gateway's `: connected`
CONNECT_PHASE_S = 60.0  # all clients of all processes
DRAIN_S = 10.0  # after the last publish, for the last deliveries to arrive
TARGET_DELIVERIES_PER_S = 30_000
TARGET_P99_MS = 150.0
TARGET_RSS_GROWTH = 0.10  # "flat": at most this much above the RSS with clients connected
SENT_MS = b'"sent_ms":'


def raise_nofile_limit() -> None:
    """Open-file soft limit up to the hard one: 1,000 sockets do not fit under a 1,024 limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --- the clients (run in child processes) ---------------------------------------------------------------


class SseClient(asyncio.Protocol):
    """One SSE connection: HTTP/1.1 response head, chunked body, frames; counts events and their latency."""

    def __init__(self, request: bytes, latencies: array.array[float]) -> None:
        self.request = request
        self.latencies = latencies  # shared by the process's clients
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.head_done = False
        self.chunked = False
        self.raw = b""  # received, not yet de-chunked
        self.frames = Frames()  # de-chunked, not yet a whole frame
        self.received = 0
        self.overflows = 0
        self.bad_frames = 0
        self.last_rx_ms = 0.0
        self.open = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.open = True
        self.transport.write(self.request)  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed before `: connected`: {exc}"))

    def data_received(self, data: bytes) -> None:
        now_ms = time.time() * 1000.0  # everything in this read arrived now
        self.raw += data
        if not self.head_done and not self._head():
            return
        if self.chunked:
            body = self._dechunk()
        else:
            body, self.raw = self.raw, b""
        for frame in self.frames.feed(body):
            if frame.startswith(b"id:"):
                self.received += 1
                self.last_rx_ms = now_ms
                start = frame.find(SENT_MS)
                end = frame.find(b",", start)
                if start < 0 or end < 0:
                    self.bad_frames += 1
                    continue
                self.latencies.append(now_ms - float(frame[start + len(SENT_MS) : end]))
            elif frame.startswith(b"event: overflow"):
                self.overflows += 1
            elif frame == CONNECTED and not self.ready.done():
                self.ready.set_result(None)

    def _head(self) -> bool:
        end = self.raw.find(b"\r\n\r\n")
        if end < 0:
            return False
        head, self.raw = self.raw[:end].lower(), self.raw[end + 4 :]
        status = head.split(b"\r\n", 1)[0]
        if b" 200 " not in status + b" ":
            self.ready.set_exception(ConnectionError(status.decode(errors="replace")))
            self.transport.close()  # type: ignore[union-attr]
            return False
        self.head_done, self.chunked = True, b"transfer-encoding: chunked" in head
        return True

    def _dechunk(self) -> bytes:
        """The body bytes of the whole chunks received; the rest stays in `raw`."""
        raw, pos, parts = self.raw, 0, []
        while True:
            eol = raw.find(b"\r\n", pos)
            if eol < 0:
                break
            size = int(raw[pos:eol].split(b";", 1)[0], 16)
            if size == 0:  # end of the body
                pos = len(raw)
                break
            end = eol + 2 + size
            if len(raw) < end + 2:
                break
            parts.append(raw[eol + 2 : end])
            pos = end + 2
        self.raw = raw[pos:]
        return b"".join(parts)


async def _connect(host: str, port: int, request: bytes, latencies: array.array[float]) -> SseClient | None:
    loop = asyncio.get_running_loop()
    client: SseClient | None = None
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            _, client = await loop.create_connection(lambda: SseClient(request, latencies), host, port)
            await client.ready
        return client
    except (OSError, TimeoutError):
        if client is not None and client.transport is not None:
            client.transport.close()
        return None


async def _clients(url: str, count: int, conn: Connection) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = (
        f"GET /stream?types={EVENT_TYPE} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n"
    ).encode()
    latencies: array.array[float] = array.array("d")
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one() -> SseClient | None:
        async with gate:
            return await _connect(host, port, request, latencies)

    attempts = await asyncio.gather(*(one() for _ in range(count)))
    clients = [c for c in attempts if c is not None]
    conn.send({"connected": len(clients), "connect_failures": count - len(clients)})
    # The parent answers with how many events it published once it is done (EOF if it died).
    published: int = await loop.run_in_executor(None, conn.recv)
    deadline = loop.time() + DRAIN_S
    while loop.time() < deadline and any(c.open and c.received < published for c in clients):
        await asyncio.sleep(0.05)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result = {
        "received": [c.received for c in clients],
        "overflows": sum(c.overflows for c in clients),
        "bad_frames": sum(c.bad_frames for c in clients),
        "closed_early": sum(1 for c in clients if not c.open and c.received < published and not c.overflows),
        "last_rx_ms": max((c.last_rx_ms for c in clients), default=0.0),
        "latencies": latencies.tobytes(),
        "cpu_s": usage.ru_utime + usage.ru_stime,
    }
    for c in clients:
        if c.transport is not None:
            c.transport.close()
    return result


def client_process(url: str, count: int, conn: Connection) -> None:
    """A child process's `count` clients; reports connections, then (when told what was published) results."""
    raise_nofile_limit()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    try:
        conn.send(asyncio.run(_clients(url, count, conn)))
    except EOFError:
        pass  # the parent is gone
    except Exception as exc:
        conn.send({"error": f"{type(exc).__name__}: {exc}"})
    finally:
        conn.close()


# --- the parent: gateway, publisher, results ---------------------------------------------------------------


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


async def publish_for(settings: Settings, rate: float, duration: float) -> dict[str, Any]:
    """`rate` envelopes a second for `duration` s, each on its scheduled time; how many, and how late."""
    client = async_redis(settings)
    total = max(1, round(rate * duration))
    lags: list[float] = []
    try:
        started_ms = time.time() * 1000.0
        start = time.perf_counter()
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            lags.append(max(0.0, -delay) * 1000.0)
            symbol = SYMBOLS[i % len(SYMBOLS)]
            data = {
                "sent_ms": time.time() * 1000.0,  # first: clients find it without parsing JSON
                "symbol": symbol,
                "view": {"version": i, "last": 100.0 + i % 50, "vwap": 100.25, "volume": 1.5 * i, "count": i},
                "ts": int(time.time() * 1000),
            }
            await publish(client, settings, [envelope(EVENT_TYPE, data, symbol=symbol)])
        elapsed = time.perf_counter() - start
    finally:
        await client.aclose()
    lag = percentiles(lags)
    return {
        "published": total,
        "started_ms": started_ms,
        "elapsed_s": elapsed,
        "lag_p99_ms": lag["p99"],
        "lag_max_ms": lag["max"],
    }


def recv(conn: Connection, timeout: float, what: str) -> dict[str, Any]:
    if not conn.poll(timeout):
        raise TimeoutError(f"no {what} from a client process after {timeout:.0f} s")
    message: dict[str, Any] = conn.recv()
    if "error" in message:
        raise RuntimeError(f"client process failed: {message['error']}")
    return message


def run(args: argparse.Namespace, settings: Settings, workdir: Path) -> dict[str, Any]:
    stack = Stack(settings, workdir)
    ctx = mp.get_context("spawn")
    children: list[tuple[Any, Connection]] = []
    try:
        pid = stack.start("gateway", SSE_MAX_PER_IP="0").pid  # every client comes from 127.0.0.1
        wait_ready(stack.gateway_url)
        rss = {"before_clients": rss_mb(pid)}
        procs = max(1, min(args.client_procs, args.clients))
        for i in range(procs):
            share = args.clients // procs + (1 if i < args.clients % procs else 0)
            ours, theirs = ctx.Pipe()
            proc = ctx.Process(target=client_process, args=(stack.gateway_url, share, theirs), daemon=True)
            proc.start()
            theirs.close()
            children.append((proc, ours))
        connect_deadline = time.monotonic() + CONNECT_PHASE_S
        joined = [recv(c, max(0.0, connect_deadline - time.monotonic()), "connections") for _, c in children]
        connected = sum(j["connected"] for j in joined)
        rss["clients_connected"] = rss_mb(pid)
        cpu_before = cpu_s(pid)
        pub = asyncio.run(publish_for(settings, args.rate, args.duration))
        gateway_cpu = cpu_s(pid) - cpu_before
        rss["after_publish"] = rss_mb(pid)
        for _, c in children:
            c.send(pub["published"])
        results = [recv(c, DRAIN_S + 30.0, "results") for _, c in children]
        time.sleep(0.5)  # the gateway notices the clients left
        rss["after_clients_left"] = rss_mb(pid)
        if stack.processes["gateway"].poll() is not None:
            raise RuntimeError(f"the gateway exited with {stack.processes['gateway'].returncode}")
    finally:
        for proc, c in children:
            c.close()
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join()
        stack.stop_all()

    published = pub["published"]
    received = [n for r in results for n in r["received"]]
    latencies: array.array[float] = array.array("d")
    for r in results:
        latencies.frombytes(r["latencies"])
    deliveries = sum(received)
    last_rx_ms = max(r["last_rx_ms"] for r in results)
    window_s = max(pub["elapsed_s"], (last_rx_ms - pub["started_ms"]) / 1000.0)
    lat = percentiles(latencies)
    per_s = round(deliveries / window_s) if window_s > 0 else 0
    growth = (rss["after_publish"] - rss["clients_connected"]) / rss["clients_connected"]
    return {
        "clients": args.clients,
        "client_procs": len(children),
        "rate_per_s": args.rate,
        "duration_s": args.duration,
        "clients_connected": connected,
        "connect_failures": sum(j["connect_failures"] for j in joined),
        "published": published,
        "publisher_lag_ms": {"p99": pub["lag_p99_ms"], "max": pub["lag_max_ms"]},
        "expected_deliveries": published * connected,
        "deliveries": deliveries,
        "missing": sum(max(0, published - n) for n in received),
        "extra": sum(max(0, n - published) for n in received),
        "clients_complete": sum(1 for n in received if n == published),
        "deliveries_per_s": per_s,
        "offered_per_s": round(args.rate * connected),
        "latency_ms": lat,
        "overflow_notices": sum(r["overflows"] for r in results),
        "closed_early": sum(r["closed_early"] for r in results),
        "bad_frames": sum(r["bad_frames"] for r in results),
        "gateway_rss_mb": rss,
        "gateway_rss_growth_pct": round(100 * growth, 1),
        "gateway_cpu_s_while_publishing": round(gateway_cpu, 2),
        "gateway_cpu_pct_of_core": round(100 * gateway_cpu / pub["elapsed_s"], 1),
        "client_cpu_s": [round(r["cpu_s"], 2) for r in results],
        "targets": {
            "deliveries_per_s_ge_30000": per_s >= TARGET_DELIVERIES_PER_S,
            "p99_le_150ms": lat["p99"] is not None and lat["p99"] <= TARGET_P99_MS,
            "memory_flat": growth <= TARGET_RSS_GROWTH,
        },
    }


def _timeout(signum: int, _frame: object) -> None:
    raise TimeoutError(f"fan-out bench stopped by signal {signum} (hard timeout or termination)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fanout", description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=30.0, help="envelopes published per second")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of publishing")
    parser.add_argument("--client-procs", type=int, default=2, help="processes the clients are spread over")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.rate <= 0 or args.duration <= 0:
        parser.error("--clients, --rate and --duration must be positive")
    raise_nofile_limit()  # before the gateway starts: it inherits the limit
    signal.signal(signal.SIGTERM, _timeout)  # clean-up runs on termination too
    signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(int(60 + CONNECT_PHASE_S + args.duration + DRAIN_S + 30))
    try:
        with tempfile.TemporaryDirectory(prefix="mdstack-bench-") as tmp:
            workdir = Path(tmp)
            with bench_settings(workdir, "fanout") as settings:
                try:
                    result = run(args, settings, workdir)
                except Exception:
                    sys.stderr.write(Stack(settings, workdir).logs())
                    raise
    finally:
        signal.alarm(0)
    report(result, args.json)
    ok = (
        result["published"] > 0
        and result["clients_connected"] == args.clients
        and result["closed_early"] == 0
        and result["bad_frames"] == 0
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
