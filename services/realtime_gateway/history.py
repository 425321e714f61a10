"""Reading the history stream (`Keys.history`): replay after an id, and trim detection.

Entry ids are the SSE event ids, so "what did a client miss after
Last-Event-ID" is one exclusive XRANGE, read in pages.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import cast

import redis.asyncio as aioredis

from services.common.keys import Keys
from services.common.logging import get_logger
from services.common.realtime import parse_id, with_id
from services.common.settings import Settings
from services.realtime_gateway.defaults import PAGE
from services.realtime_gateway.frames import BadEnvelope, Event, parse

log = get_logger(__name__)
Entries = list[tuple[bytes, dict[bytes, bytes]]]  # XRANGE reply of a client without decode_responses


class History:
    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        self.redis = redis
        self.key = Keys(settings.KEY_PREFIX).history
        self.limit = settings.SSE_HISTORY

    async def tail(self) -> str:
        """Id of the newest entry ("0-0" for an empty stream)."""
        entries = cast(Entries, await self.redis.xrevrange(self.key, count=1))
        return entries[0][0].decode() if entries else "0-0"

    async def missed(self, last_id: str) -> str | None:
        """If the history no longer reaches back to `last_id`, the oldest retained id.

        Trimming leaves no trace of what it removed (XINFO's max-deleted-entry-id
        only follows XDEL), so a client whose id is older than the oldest entry
        is told it may have missed events.
        """
        entries = cast(Entries, await self.redis.xrange(self.key, count=1))
        if entries and parse_id(entries[0][0]) > parse_id(last_id):
            return entries[0][0].decode()
        return None

    def after(self, last_id: str) -> Replay:
        return Replay(self, last_id)


class Replay:
    """Events after one id, oldest first, at most `SSE_HISTORY` of them.

    `complete` is False once iteration stopped at that bound with more left.
    """

    def __init__(self, history: History, last_id: str) -> None:
        self.history = history
        self.last_id = last_id
        self.complete = True

    async def __aiter__(self) -> AsyncIterator[Event]:
        redis, key, left = self.history.redis, self.history.key, self.history.limit
        start = self.last_id
        while True:
            size = min(PAGE, left)
            entries = cast(Entries, await redis.xrange(key, min=f"({start}", max="+", count=size + 1))
            page, more = entries[:size], len(entries) > size  # one extra entry tells whether more are left
            for entry_id, fields in page:
                event = _event(entry_id, fields)
                if event is not None:
                    yield event
            left -= len(page)
            if not more:
                return
            if left <= 0:
                self.complete = False
                return
            start = page[-1][0].decode()


def _event(entry_id: bytes, fields: dict[bytes, bytes]) -> Event | None:
    try:
        return parse(with_id(entry_id, fields[b"e"]))
    except (BadEnvelope, KeyError) as exc:
        log.warning("gateway.bad_history_entry", id=entry_id.decode(), error=str(exc))
        return None
