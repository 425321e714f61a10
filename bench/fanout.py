"""Fan-out: N SSE clients on the gateway, then on nginx + nchan, at one update rate; what each delivered.

    python -m bench.fanout --clients 1000 --rate 30 --duration 20 [--client-procs 2] [--no-peer] [--json out.json]

Two targets, one after the other, driven by the same clients at the same rate with messages of the same
bytes:

- `gateway`: the mdstack gateway alone (on REDIS_URL / PG_URL, or on embedded servers when unset; a
  scratch database and key prefix either way), clients on `GET /stream?types=symbol.updated`, messages
  published through the project's publish script;
- `nchan` (the peer, `--peer nchan`, on by default): nginx with the nchan module as a child process on a
  generated config (bench/nchan_peer.py), clients on its EventSource location, each message POSTed to
  its publisher location over one keep-alive connection. Without nginx or the module it is reported as
  `{"not_run": "<why>"}`.

The --clients clients run in --client-procs processes (raw asyncio sockets, a minimal HTTP/1.1 reader
and harness.sse's frame splitter, so the client side keeps up); a client is ready at the server's first
frame (the gateway's `: connected`, nchan's `: hi`). Messages go out at --rate per second for --duration
seconds, open loop (each on its scheduled time; a late publisher catches up rather than drifting). Every
message carries `sent_ms`, its publish time on the wall clock, so the clients measure publish-to-delivery
latency. Reported per target:

- deliveries, deliveries/s, expected (published x clients), missing, extra;
- delivery latency p50/p95/p99/max (ms);
- clients connected, connect failures, overflow notices (clients dropped as slow);
- server RSS (MB) before clients, with clients connected, after publishing, after the clients left;
  server CPU seconds while publishing and CPU µs per delivery (the gateway process; nginx's worker);

and `gateway_vs_nchan`: the gateway's p99 and CPU per delivery over nchan's. `targets` (gateway): >=
30,000 deliveries/s, p99 <= 150 ms, memory flat (<= 10 % growth), CPU per delivery <= 1.5 x nchan's.

Exits non-zero on errors (a server or client process failure, clients that could not connect, nothing
published), never on missed targets nor on a peer that could not run. Loopback only; the run is bounded
by a hard timeout of both targets' --duration plus their connect and drain limits.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import itertools
import multiprocessing as mp
import os
import resource
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench import nchan_peer
from harness.percentiles import percentiles
from harness.sse import Frames, is_comment
from harness.stack import Stack, bench_settings, report, wait_ready
from services.common.realtime import publish, with_id
from services.common.redis import async_redis
from services.common.schemas import envelope
from services.common.settings import Settings

EVENT_TYPE = "symbol.updated"
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT")
CONNECT_CONCURRENCY = 100  # connection attempts in flight per client process
CONNECT_TIMEOUT_S = 10.0  # per connection, up to the server's first frame
CONNECT_PHASE_S = 60.0  # all clients of all processes
DRAIN_S = 10.0  # after the last publish, for the last deliveries to arrive
TARGET_DELIVERIES_PER_S = 30_000
TARGET_P99_MS = 150.0
TARGET_RSS_GROWTH = 0.10  # "flat": at most this much above the RSS with clients connected
TARGET_CPU_VS_NCHAN = 1.5  # gateway CPU per delivery over nchan's, same clients, same run
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
            self.ready.set_exception(ConnectionError(f"closed before the first frame: {exc}"))

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
            elif is_comment(frame) and not self.ready.done():  # `: connected` (gateway), `: hi` (nchan)
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
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    request = (
        f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n"
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
    """A child process's `count` clients of the SSE stream at `url`; reports connections, then (when told
    what was published) results."""
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


# --- the parent: servers, publisher, results ---------------------------------------------------------------

Send = Callable[[bytes], Awaitable[object]]  # publishes one envelope (without its id) to a target


@dataclass(frozen=True)
class Target:
    """What `measure` needs of a server: where clients subscribe, how to publish, which processes serve."""

    name: str
    stream_url: str
    sender: Callable[[], AbstractAsyncContextManager[Send]]
    server_pids: Callable[[], list[int]]  # their CPU and RSS are the server's
    failure: Callable[[], str | None]  # why the server is gone, or None while it runs


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_s(pid: int) -> float:
    """CPU seconds of a process: its threads' schedstat (ns; a thread that exited meanwhile is not counted),
    else utime + stime from stat, in clock ticks (10 ms: coarse for the tens of ms a short run costs nginx)."""
    tasks = list(Path(f"/proc/{pid}/task").glob("*/schedstat"))
    if tasks:
        return sum(_run_ns(task) for task in tasks) / 1e9
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def _run_ns(schedstat: Path) -> int:
    try:
        return int(schedstat.read_text().split()[0])
    except FileNotFoundError:  # the thread ended after the listing
        return 0


def message(i: int) -> bytes:
    """The i-th envelope; `sent_ms` first in `data`, so clients find it without parsing JSON."""
    symbol = SYMBOLS[i % len(SYMBOLS)]
    data = {
        "sent_ms": time.time() * 1000.0,
        "symbol": symbol,
        "view": {"version": i, "last": 100.0 + i % 50, "vwap": 100.25, "volume": 1.5 * i, "count": i},
        "ts": int(time.time() * 1000),
    }
    return envelope(EVENT_TYPE, data, symbol=symbol)


def stream_id(i: int) -> str:
    """An id shaped like the publish script's (a Redis stream id), so both targets carry the same bytes."""
    return f"{int(time.time() * 1000)}-{i}"


async def publish_for(sender: AbstractAsyncContextManager[Send], rate: float, duration: float) -> dict[str, Any]:
    """`rate` envelopes a second for `duration` s, each on its scheduled time; how many, and how late."""
    total = max(1, round(rate * duration))
    lags: list[float] = []
    async with sender as send:
        started_ms = time.time() * 1000.0
        start = time.perf_counter()
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            lags.append(max(0.0, -delay) * 1000.0)
            await send(message(i))
        elapsed = time.perf_counter() - start
    lag = percentiles(lags)
    return {
        "published": total,
        "started_ms": started_ms,
        "elapsed_s": elapsed,
        "lag_p99_ms": lag["p99"],
        "lag_max_ms": lag["max"],
    }


@asynccontextmanager
async def gateway_sender(settings: Settings) -> AsyncIterator[Send]:
    """Through the project's publish script, as the API publishes views."""
    client = async_redis(settings)
    try:
        await client.ping()  # connected before the first message, as nchan's publisher is
        yield lambda env: publish(client, settings, [env])
    finally:
        await client.aclose()


@asynccontextmanager
async def nchan_sender(url: str) -> AsyncIterator[Send]:
    """A POST per message on one keep-alive connection, the envelope as the gateway would frame it."""
    async with httpx.AsyncClient(timeout=5.0) as client:
        await client.get(url)  # the channel's status (404 before its first message): connected before it
        counter = itertools.count()

        async def send(env: bytes) -> None:
            response = await client.post(url, content=with_id(stream_id(next(counter)), env))
            response.raise_for_status()

        yield send


def recv(conn: Connection, timeout: float, what: str) -> dict[str, Any]:
    if not conn.poll(timeout):
        raise TimeoutError(f"no {what} from a client process after {timeout:.0f} s")
    reply: dict[str, Any] = conn.recv()
    if "error" in reply:
        raise RuntimeError(f"client process failed: {reply['error']}")
    return reply


def server_rss_mb(target: Target) -> float:
    return round(sum(rss_mb(pid) for pid in target.server_pids()), 1)


def server_cpu_s(target: Target) -> float:
    return sum(cpu_s(pid) for pid in target.server_pids())


def client_procs(args: argparse.Namespace) -> int:
    return max(1, min(args.client_procs, args.clients))


def measure(target: Target, args: argparse.Namespace) -> dict[str, Any]:
    """The clients on one target through connect, publish and drain; its figures."""
    ctx = mp.get_context("spawn")
    children: list[tuple[Any, Connection]] = []
    try:
        rss = {"before_clients": server_rss_mb(target)}
        procs = client_procs(args)
        for i in range(procs):
            share = args.clients // procs + (1 if i < args.clients % procs else 0)
            ours, theirs = ctx.Pipe()
            proc = ctx.Process(target=client_process, args=(target.stream_url, share, theirs), daemon=True)
            proc.start()
            theirs.close()
            children.append((proc, ours))
        connect_deadline = time.monotonic() + CONNECT_PHASE_S
        joined = [recv(c, max(0.0, connect_deadline - time.monotonic()), "connections") for _, c in children]
        rss["clients_connected"] = server_rss_mb(target)
        cpu_before = server_cpu_s(target)
        pub = asyncio.run(publish_for(target.sender(), args.rate, args.duration))
        server_cpu = server_cpu_s(target) - cpu_before
        rss["after_publish"] = server_rss_mb(target)
        for _, c in children:
            c.send(pub["published"])
        results = [recv(c, DRAIN_S + 30.0, "results") for _, c in children]
        time.sleep(0.5)  # the server notices the clients left
        rss["after_clients_left"] = server_rss_mb(target)
        if why := target.failure():
            raise RuntimeError(f"{target.name}: {why}")
    finally:
        for proc, c in children:
            c.close()
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join()
    return figures(joined, pub, results, rss, server_cpu, args.rate)


def figures(
    joined: list[dict[str, Any]],
    pub: dict[str, Any],
    results: list[dict[str, Any]],
    rss: dict[str, float],
    server_cpu: float,
    rate: float,
) -> dict[str, Any]:
    published = pub["published"]
    connected = sum(j["connected"] for j in joined)
    received = [n for r in results for n in r["received"]]
    latencies: array.array[float] = array.array("d")
    for r in results:
        latencies.frombytes(r["latencies"])
    deliveries = sum(received)
    last_rx_ms = max(r["last_rx_ms"] for r in results)
    window_s = max(pub["elapsed_s"], (last_rx_ms - pub["started_ms"]) / 1000.0)
    growth = (rss["after_publish"] - rss["clients_connected"]) / rss["clients_connected"]
    return {
        "clients_connected": connected,
        "connect_failures": sum(j["connect_failures"] for j in joined),
        "published": published,
        "publisher_lag_ms": {"p99": pub["lag_p99_ms"], "max": pub["lag_max_ms"]},
        "expected_deliveries": published * connected,
        "deliveries": deliveries,
        "missing": sum(max(0, published - n) for n in received),
        "extra": sum(max(0, n - published) for n in received),
        "clients_complete": sum(1 for n in received if n == published),
        "deliveries_per_s": round(deliveries / window_s) if window_s > 0 else 0,
        "offered_per_s": round(rate * connected),
        "latency_ms": percentiles(latencies),
        "overflow_notices": sum(r["overflows"] for r in results),
        "closed_early": sum(r["closed_early"] for r in results),
        "bad_frames": sum(r["bad_frames"] for r in results),
        "rss_mb": rss,
        "rss_growth_pct": round(100 * growth, 1),
        "cpu_s_while_publishing": round(server_cpu, 6),
        "cpu_pct_of_core": round(100 * server_cpu / pub["elapsed_s"], 1),
        "cpu_us_per_delivery": round(1e6 * server_cpu / deliveries, 2) if deliveries else None,
        "client_cpu_s": [round(r["cpu_s"], 2) for r in results],
    }


def run_gateway(args: argparse.Namespace, settings: Settings, workdir: Path) -> dict[str, Any]:
    stack = Stack(settings, workdir)
    try:
        proc = stack.start("gateway", SSE_MAX_PER_IP="0")  # every client comes from 127.0.0.1
        wait_ready(stack.gateway_url)
        target = Target(
            name="gateway",
            stream_url=f"{stack.gateway_url}/stream?types={EVENT_TYPE}",
            sender=lambda: gateway_sender(settings),
            server_pids=lambda: [proc.pid],
            failure=lambda: None if proc.poll() is None else f"exited with {proc.returncode}",
        )
        return measure(target, args)
    except Exception:
        sys.stderr.write(stack.logs())
        raise
    finally:
        stack.stop_all()


def run_nchan(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """The peer's figures, or `{"not_run": why}` when nginx with nchan is not there or would not start."""
    try:
        with nchan_peer.nchan_server(workdir / "nchan", args.clients) as server:
            target = Target(
                name="nchan",
                stream_url=server.subscribe_url,
                sender=lambda: nchan_sender(server.publish_url),
                server_pids=server.worker_pids,
                failure=server.failure,
            )
            return measure(target, args)
    except nchan_peer.PeerNotRun as why:
        return {"not_run": str(why)}


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def run(args: argparse.Namespace, settings: Settings, workdir: Path) -> dict[str, Any]:
    gateway = run_gateway(args, settings, workdir)
    nchan: dict[str, Any] = run_nchan(args, workdir) if args.peer == "nchan" else {"not_run": "skipped (--no-peer)"}
    vs: dict[str, float | None] | None = None
    if "not_run" not in nchan:
        vs = {
            "p99": ratio(gateway["latency_ms"]["p99"], nchan["latency_ms"]["p99"]),
            "cpu_per_delivery": ratio(gateway["cpu_us_per_delivery"], nchan["cpu_us_per_delivery"]),
        }
    return {
        "clients": args.clients,
        "client_procs": client_procs(args),
        "rate_per_s": args.rate,
        "duration_s": args.duration,
        "message_bytes": len(with_id(stream_id(0), message(0))),
        "gateway": gateway,
        "nchan": nchan,
        "gateway_vs_nchan": vs,
        "targets": targets(gateway, vs),
    }


def targets(gateway: dict[str, Any], vs: dict[str, float | None] | None) -> dict[str, bool | None]:
    """The gateway against issue 15's goals; None where the figure is missing (no peer to compare with)."""
    p99 = gateway["latency_ms"]["p99"]
    cpu_vs = vs["cpu_per_delivery"] if vs else None
    return {
        "deliveries_per_s_ge_30000": gateway["deliveries_per_s"] >= TARGET_DELIVERIES_PER_S,
        "p99_le_150ms": p99 is not None and p99 <= TARGET_P99_MS,
        "memory_flat": gateway["rss_growth_pct"] <= 100 * TARGET_RSS_GROWTH,
        "cpu_per_delivery_le_1_5x_nchan": None if cpu_vs is None else cpu_vs <= TARGET_CPU_VS_NCHAN,
    }


def clean(target: dict[str, Any], clients: int) -> bool:
    """Every client connected and nothing broke (missed targets are not errors)."""
    return (
        target["published"] > 0
        and target["clients_connected"] == clients
        and target["closed_early"] == 0
        and target["bad_frames"] == 0
    )


def _timeout(signum: int, _frame: object) -> None:
    raise TimeoutError(f"fan-out bench stopped by signal {signum} (hard timeout or termination)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fanout", description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=30.0, help="envelopes published per second")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of publishing, per target")
    parser.add_argument("--client-procs", type=int, default=2, help="processes the clients are spread over")
    parser.add_argument("--peer", choices=["nchan"], default="nchan", help="the peer measured after the gateway")
    parser.add_argument("--no-peer", dest="peer", action="store_const", const=None, help="the gateway only")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.rate <= 0 or args.duration <= 0:
        parser.error("--clients, --rate and --duration must be positive")
    raise_nofile_limit()  # before the servers start: they inherit the limit
    signal.signal(signal.SIGTERM, _timeout)  # clean-up runs on termination too
    signal.signal(signal.SIGALRM, _timeout)
    targets = 2 if args.peer else 1
    signal.alarm(int(60 + targets * (CONNECT_PHASE_S + args.duration + DRAIN_S + 30)))
    try:
        with tempfile.TemporaryDirectory(prefix="mdstack-bench-") as tmp:
            workdir = Path(tmp)
            with bench_settings(workdir, "fanout") as settings:
                result = run(args, settings, workdir)
    finally:
        signal.alarm(0)
    report(result, args.json)
    ok = clean(result["gateway"], args.clients)
    if "not_run" not in result["nchan"]:
        ok = ok and clean(result["nchan"], args.clients)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
