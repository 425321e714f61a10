"""Idempotency window: which dedup sets an item is checked against, and what it is stored as.

Accepted keys go into one Redis set per kind and window bucket
(DEDUP_WINDOW_S long); a key is a duplicate when it is in the current
bucket's set or the previous one's. So a repeat within DEDUP_WINDOW_S is
always caught, one within twice that may be, and each set expires as a whole
once both buckets it can answer for are over: memory is bounded by
rate x 2 x DEDUP_WINDOW_S, never by uptime. A key is stored as a 16-byte
BLAKE2b digest, so a client's long ids cost what short ones do (the odds of
two of a window's keys colliding are below 1e-20).
"""

from __future__ import annotations

import hashlib

from services.common.keys import Keys
from services.orchestrator_api.defaults import DIGEST_BYTES


def digest(key: str) -> bytes:
    return hashlib.blake2b(key.encode(), digest_size=DIGEST_BYTES).digest()


def window_keys(keys: Keys, kind: str, now_s: float, window_s: int) -> tuple[str, str, int]:
    """The current and previous bucket's set of `kind`, and when the current one may expire (unix s)."""
    bucket = int(now_s // window_s)
    return keys.dedup(kind, bucket), keys.dedup(kind, bucket - 1), (bucket + 2) * window_s + 1
