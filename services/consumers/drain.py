"""The drainer: a job that found batches stays on, a round every JOB_CADENCE_MS, for up to JOB_DRAIN_S.

RQ costs a worker and Redis more per job (dequeue, registries, execution, finalize) than a round of a few
ticks costs; with a job per cadence the demo's 100 single-tick POSTs/s made 20 jobs a second. While a
drainer's key is set the API enqueues none (ingest.lua reads it with the commit), so it is about one job
per JOB_DRAIN_S, and a view comes on the same cadence as before: no latency is traded.

What holds, and why:
- Every batch is taken by a job that runs after it is pending: a commit skips its job only when it saw the
  key (atomically with its batch going pending), and the drainer leaves only when nothing is pending
  (drain.lua, atomically) or hands over by enqueueing a successor for what is.
- A round is exactly what a job was (tasks.drain_round): claim (under the job's claims key, so a retry
  takes the same batches again), calc-a, calc-b, the views posted, release.
- A job failing mid-drain drops the key, so commits enqueue jobs again at once, and RQ retries it; its
  first round takes the batches the failed round held. A drainer killed with its worker holds the key for
  DRAIN_LOCK_S at most; batches committed meanwhile go to the next commit's job, or the reaper's
  (STRANDED_S) when no commit comes.
- Past JOB_DRAIN_S it hands over, so RQ's timeout and a worker's warm shutdown (which waits for the job)
  stay short, and the workers take turns.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from services.common.jobs import enqueue_batch_job, job_queue
from services.common.keys import Keys
from services.common.logging import get_logger
from services.common.scripts import register
from services.consumers import context
from services.consumers.defaults import DRAIN_IDLE_ROUNDS, DRAIN_LOCK_S

log = get_logger(__name__)


@dataclass
class Done:
    """What a job's rounds did."""

    rounds: int = 0
    batches: int = 0
    ticks: int = 0
    views: int = 0
    full: bool = False  # the last round took JOB_MAX_ITEMS: more waits

    def __iadd__(self, other: Done) -> Done:
        self.rounds += other.rounds
        self.batches += other.batches
        self.ticks += other.ticks
        self.views += other.views
        self.full = other.full
        return self


def drain(ctx: context.WorkerContext, job_id: str, first: Done, next_round: Callable[[], Done]) -> Done:
    """After the `first` round, rounds on the cadence while batches come, if no other job drains; what they did."""
    settings = ctx.settings
    done = Done(full=first.full)
    if settings.JOB_DRAIN_S <= 0 or settings.JOB_CADENCE_MS <= 0:
        return done
    keys = Keys(settings.KEY_PREFIX)
    script = register(ctx.redis, "drain", __package__)

    def key(mode: str) -> tuple[int, int]:
        held, waiting = script(keys=[keys.drainer, keys.pending], args=[job_id, int(DRAIN_LOCK_S * 1000), mode])
        return int(held), int(waiting)

    if key("stay")[0] != 1:  # another job drains: this one was a single round
        return done
    cadence = settings.JOB_CADENCE_MS / 1000.0
    started = due = time.monotonic()
    idle = 0
    try:
        while True:
            due = time.monotonic() if done.full else due + cadence  # work waits: no pause
            time.sleep(max(0.0, due - time.monotonic()))
            if time.monotonic() - started >= settings.JOB_DRAIN_S:
                break
            this = next_round()
            done += this
            idle = 0 if this.batches else idle + 1
            held, _ = key("leave" if idle >= DRAIN_IDLE_ROUNDS else "stay")
            if held != 1:  # left (nothing pending), or another job holds the key since ours expired
                return done
    except BaseException:
        key("hand")  # commits enqueue jobs again; RQ retries this one
        raise
    if key("hand")[1]:
        successor = uuid.uuid4().hex
        enqueue_batch_job(job_queue(settings, ctx.redis), settings, successor)
        log.debug("worker.drain_handed_over", trace_id=job_id, successor=successor, rounds=done.rounds)
    return done
