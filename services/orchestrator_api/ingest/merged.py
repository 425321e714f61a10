"""`ticks.merged`: the ticks accepted for each symbol, merged every TICK_MERGE_MS, instead of an event per tick.

A display needs a few updates a second per symbol, and an envelope per tick costs at every tick: building it
here, an XADD into the resume history and a PUBLISH in Redis, a parse and a fan-out in every gateway. So
the committer hands every accepted tick to the merger, which keeps per symbol its open, high, low and close
(by tick time), volume, count, first and last tick time and last event id; every TICK_MERGE_MS one envelope
per symbol that had ticks goes out. Its cost follows the number of symbols, not the tick rate, and nothing
a chart needs is lost.

`tick.received`, one per tick, goes out as well while some client asks for it: a gateway keeps
`Keys.ticks_wanted` alive while one of its clients names `tick.received` in `?types=`
(realtime_gateway/demand.py). The merger reads that flag every round while ticks come in (every
IDLE_FLAG_ROUNDS rounds, 1 s, while none do), so per-tick events start within TICK_MERGE_MS of the ask
(within a second on an idle API) and stop TICKS_WANTED_TTL_S after the last such client has gone.

A merge waits in this process until its round: should the process die first, that round's ticks are in
Redis, Postgres and the views, only not in a `ticks.merged` event.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

import anyio.to_thread
import orjson
import redis

from services.common import realtime
from services.common.contract import MergedTicks
from services.common.keys import Keys
from services.common.logging import get_logger
from services.common.settings import Settings
from services.orchestrator_api.defaults import IDLE_FLAG_ROUNDS

log = get_logger(__name__)
TYPE = "ticks.merged"


class TickMerger:
    def __init__(self, settings: Settings, client: redis.Redis) -> None:
        self.settings = settings
        self.client = client
        self.keys = Keys(settings.KEY_PREFIX)
        self.per_tick = False  # some client wants `tick.received` one by one, as of the last round
        self._merges: dict[str, MergedTicks] = {}
        self._lock = threading.Lock()  # commits add from worker threads; a round takes from another
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._arrived = asyncio.Event()  # set by the first add() after a round, from any thread

    def add(self, ticks: list[dict[str, Any]]) -> None:
        """Merge accepted ticks (records as stored: epoch-ms `ts`)."""
        if not ticks:
            return
        with self._lock:
            merges = self._merges
            first = not merges
            for tick in ticks:
                merge = merges.get(tick["symbol"])
                if merge is None:
                    merges[tick["symbol"]] = _first(tick)
                else:
                    _add(merge, tick)
        if first and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # its loop closed: the merger has stopped
                self._loop.call_soon_threadsafe(self._arrived.set)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name="tick-merger")

    async def stop(self) -> None:
        """Publish what is merged (after the last commit), then stop."""
        if self._task is not None:
            self._task.cancel()
        try:
            await anyio.to_thread.run_sync(self.publish)
        except redis.RedisError as exc:
            log.warning("ingest.merged_publish_failed", error=str(exc))

    async def _run(self) -> None:
        interval = self.settings.TICK_MERGE_MS / 1000.0
        while True:  # the first round at once: it reads the flag
            try:
                await anyio.to_thread.run_sync(self.publish)
            except redis.RedisError as exc:  # the ticks are stored; only this round's event is lost
                log.warning("ingest.merged_publish_failed", error=str(exc))
            self._arrived.clear()
            if not self._merges:
                # Idle: asleep until a tick arrives (add() wakes it) or the flag is due, every
                # IDLE_FLAG_ROUNDS intervals: an idle API wakes once a second for this, not four times.
                try:
                    await asyncio.wait_for(self._arrived.wait(), interval * IDLE_FLAG_ROUNDS)
                except TimeoutError:
                    continue
            await asyncio.sleep(interval)  # ticks come in: they merge for one interval

    def publish(self) -> int:
        """One round: one `ticks.merged` envelope per symbol merged since the last, and the per-tick flag.
        Returns the number of envelopes."""
        with self._lock:
            merges, self._merges = self._merges, {}
        envelopes = [orjson.dumps({"type": TYPE, "symbol": s, "data": merge}) for s, merge in merges.items()]
        with self.client.pipeline(transaction=False) as pipe:
            pipe.exists(self.keys.ticks_wanted)
            if envelopes:
                realtime.publish_in(pipe, self.settings, envelopes)
            self.per_tick = bool(pipe.execute()[0])
        return len(envelopes)


def _first(tick: dict[str, Any]) -> MergedTicks:
    price, ts = tick["price"], tick["ts"]
    return {
        "open": price,
        "high": price,
        "low": price,
        "close": price,
        "volume": tick["volume"],
        "count": 1,
        "symbol": tick["symbol"],
        "first_ts": ts,
        "last_ts": ts,
        "last_event_id": tick["event_id"],
    }


def _add(merge: MergedTicks, tick: dict[str, Any]) -> None:
    price, ts = tick["price"], tick["ts"]
    merge["high"] = max(merge["high"], price)
    merge["low"] = min(merge["low"], price)
    merge["volume"] += tick["volume"]
    merge["count"] += 1
    if ts < merge["first_ts"]:
        merge["first_ts"], merge["open"] = ts, price
    if ts >= merge["last_ts"]:  # a tie goes to the later arrival, as in the candles
        merge["last_ts"], merge["close"], merge["last_event_id"] = ts, price, tick["event_id"]
