"""Realtime envelopes on `realtime:updates` and their history stream.

Every published envelope is also kept in a capped Redis Stream (`Keys.history`);
the stream entry id is the SSE event id, so any gateway process, including
one restarted a moment ago, can replay what a client missed after its
`Last-Event-ID`.
"""

from __future__ import annotations

import re

from services.common.keys import Keys
from services.common.scripts import register
from services.common.settings import Settings

STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
ENTRY_OVERHEAD_BYTES = 24  # a stream entry's id, field name and listpack headers, beside the envelope itself


def with_id(event_id: str | bytes, env: bytes) -> bytes:
    """The published form of a stored envelope: `{"id": ..., <env fields>}`."""
    if isinstance(event_id, str):
        event_id = event_id.encode()
    return b'{"id":"' + event_id + b'",' + env[1:]


def parse_id(value: str | bytes) -> tuple[int, int]:
    """Stream ids order as (milliseconds, sequence)."""
    if isinstance(value, bytes):
        value = value.decode()
    ms, _, seq = value.partition("-")
    return int(ms), int(seq or 0)


def is_stream_id(value: str) -> bool:
    return bool(STREAM_ID.match(value))


def history_maxlen(settings: Settings, envelope_bytes: float) -> int:
    """The history's cap in entries when it should also hold at most SSE_HISTORY_BYTES of envelopes this big.

    Streams trim by count only; each publisher caps by the size of what it publishes, so views (large)
    trim the history harder than ticks (small), and the bytes stay near SSE_HISTORY_BYTES either way."""
    if envelope_bytes <= 0:
        return settings.SSE_HISTORY
    return max(1, min(settings.SSE_HISTORY, int(settings.SSE_HISTORY_BYTES // (envelope_bytes + ENTRY_OVERHEAD_BYTES))))


def publish_args(settings: Settings, envelopes: list[bytes]) -> dict[str, list]:  # type: ignore[type-arg]
    size = sum(len(e) for e in envelopes) / len(envelopes)
    return {
        "keys": [Keys(settings.KEY_PREFIX).history],
        "args": [history_maxlen(settings, size), settings.PUBSUB_CHANNEL, *envelopes],
    }


async def publish(client, settings: Settings, envelopes: list[bytes]) -> list[str]:  # type: ignore[no-untyped-def]
    """Publish envelopes (built by `schemas.envelope`) with history; returns their event ids."""
    if not envelopes:
        return []
    script = register(client, "publish_many")
    ids = await script(**publish_args(settings, envelopes))
    return [i.decode() if isinstance(i, bytes) else i for i in ids]


def publish_sync(client, settings: Settings, envelopes: list[bytes]) -> list[str]:  # type: ignore[no-untyped-def]
    if not envelopes:
        return []
    ids = register(client, "publish_many")(**publish_args(settings, envelopes))
    return [i.decode() if isinstance(i, bytes) else i for i in ids]


def publish_in(pipe, settings: Settings, envelopes: list[bytes]) -> None:  # type: ignore[no-untyped-def]
    """Queue the publishing of envelopes on a pipeline; its reply there is their event ids."""
    register(pipe, "publish_many")(**publish_args(settings, envelopes), client=pipe)
