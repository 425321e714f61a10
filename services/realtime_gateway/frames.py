"""SSE frames: each envelope is parsed and framed once, then shared by every client.

An envelope arrives as the bytes the publisher sent (`{"id": ..., "type": ...,
"symbol": ..., "data": ...}`); its frame is `id:`, `event:` and `data:` lines
with those bytes as the data, so clients get the envelope exactly as published.
Control frames (`reset`, `overflow`) carry no `id:`, so a browser's
Last-Event-ID stays on the last real event and a reconnect resumes from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from services.common.realtime import is_stream_id, parse_id

CONNECTED = b": connected\n\n"  # first bytes of every stream: the client is registered for live events


class BadEnvelope(ValueError):
    """A message on the channel that is not a realtime envelope."""


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    key: tuple[int, int]  # `parse_id(id)`: orders events
    type: str
    symbol: str | None
    frame: bytes


def parse(raw: bytes) -> Event:
    """The event of one published envelope, with its SSE frame."""
    try:
        env = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadEnvelope(f"not JSON: {exc}") from None
    if not isinstance(env, dict):
        raise BadEnvelope("not a JSON object")
    event_id, type_, symbol = env.get("id"), env.get("type"), env.get("symbol")
    if not isinstance(event_id, str) or not is_stream_id(event_id):
        raise BadEnvelope("id must be a stream id like 1795565084139-0")
    if not isinstance(type_, str) or not type_ or "\n" in type_ or "\r" in type_:
        raise BadEnvelope("type must be a one-line string")
    if symbol is not None and not isinstance(symbol, str):
        raise BadEnvelope("symbol must be a string")
    frame = b"id: " + event_id.encode() + b"\nevent: " + type_.encode() + b"\n" + _data_lines(raw) + b"\n"
    return Event(id=event_id, key=parse_id(event_id), type=type_, symbol=symbol, frame=frame)


def control(event: str, body: Mapping[str, object]) -> bytes:
    """A frame without an id: `reset` or `overflow`."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(body) + b"\n\n"


def _data_lines(raw: bytes) -> bytes:
    # orjson output is one line; anything else is split so each line stays a `data:` field.
    if b"\n" not in raw and b"\r" not in raw:
        return b"data: " + raw + b"\n"
    return b"".join(b"data: " + line + b"\n" for line in raw.splitlines())


@dataclass(frozen=True, slots=True)
class Filters:
    """`?symbols=` and `?types=`; None lets everything through. Envelopes without a symbol pass `symbols`."""

    symbols: frozenset[str] | None = None
    types: frozenset[str] | None = None

    def match(self, event: Event) -> bool:
        if self.types is not None and event.type not in self.types:
            return False
        return self.symbols is None or event.symbol is None or event.symbol in self.symbols
