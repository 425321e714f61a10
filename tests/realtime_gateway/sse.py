"""A small SSE reader for tests: raw frames (bytes up to and including the blank line)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import orjson

from services.common.realtime import with_id


class SSEReader:
    def __init__(self, response: httpx.Response) -> None:
        self._chunks: AsyncIterator[bytes] = response.aiter_bytes()
        self._buffer = b""

    async def frame(self) -> bytes:
        """The next frame, comments included; EOFError when the stream ended."""
        while b"\n\n" not in self._buffer:
            try:
                self._buffer += await anext(self._chunks)
            except StopAsyncIteration:
                raise EOFError(f"stream ended; {len(self._buffer)} bytes left over") from None
        frame, _, self._buffer = self._buffer.partition(b"\n\n")
        return frame + b"\n\n"

    async def event(self) -> bytes:
        """The next frame that is not a comment (pings)."""
        while True:
            frame = await self.frame()
            if not frame.startswith(b":"):
                return frame

    async def events(self, count: int) -> list[bytes]:
        return [await self.event() for _ in range(count)]


def fields(frame: bytes) -> dict[str, str]:
    """`{"id": ..., "event": ..., "data": ...}` of one frame (data lines joined by newlines)."""
    out: dict[str, str] = {}
    for line in frame.decode().splitlines():
        if not line or line.startswith(":"):
            continue
        name, _, value = line.partition(": ")
        out[name] = out[name] + "\n" + value if name in out else value
    return out


def event_frame(event_id: str, env: bytes) -> bytes:
    """The exact frame the gateway must send for an envelope stored as `env` under `event_id`."""
    type_ = orjson.loads(env)["type"].encode()
    return b"id: " + event_id.encode() + b"\nevent: " + type_ + b"\ndata: " + with_id(event_id, env) + b"\n\n"
