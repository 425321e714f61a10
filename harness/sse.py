"""The one SSE client of tests and benchmarks: whole frames out of any byte stream, and their fields.

`Frames` is the parser (bytes in, whole frames out), so every transport reads
the gateway the same way: `SSEReader` over an httpx async response,
`iter_frames` over any iterable of chunks (httpx sync, requests), and a raw
asyncio socket feeding `Frames` directly (bench/fanout.py). A frame is the
bytes up to and including its blank line; the gateway ends lines with `\\n`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator

import httpx
import orjson

from services.common.realtime import with_id
from services.realtime_gateway.frames import CONNECTED

__all__ = ["CONNECTED", "Frames", "SSEReader", "event_frame", "fields", "is_comment", "iter_frames"]

END = b"\n\n"


class Frames:
    """Incremental frame splitter: `feed` the bytes as they arrive, get back the frames they completed."""

    def __init__(self) -> None:
        self.buffer = b""  # the start of the next frame

    def feed(self, data: bytes) -> list[bytes]:
        self.buffer += data
        if END not in self.buffer:
            return []
        *frames, self.buffer = self.buffer.split(END)
        return [frame + END for frame in frames]


def is_comment(frame: bytes) -> bool:
    """`: connected` and the heartbeats: no event."""
    return frame.startswith(b":")


def iter_frames(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Every frame of a blocking stream of chunks, comments included."""
    frames = Frames()
    for chunk in chunks:
        yield from frames.feed(chunk)


class SSEReader:
    """Frames of an httpx async streaming response."""

    def __init__(self, response: httpx.Response) -> None:
        self._chunks: AsyncIterator[bytes] = response.aiter_bytes()
        self._frames = Frames()
        self._ready: list[bytes] = []

    async def frame(self) -> bytes:
        """The next frame, comments included; EOFError when the stream ended."""
        while not self._ready:
            try:
                self._ready = self._frames.feed(await anext(self._chunks))
            except StopAsyncIteration:
                raise EOFError(f"stream ended; {len(self._frames.buffer)} bytes left over") from None
        return self._ready.pop(0)

    async def connected(self) -> None:
        """The first frame, which the gateway sends once the client is registered for live events."""
        first = await self.frame()
        if first != CONNECTED:
            raise AssertionError(f"the stream opened with {first!r}, not {CONNECTED!r}")

    async def event(self) -> bytes:
        """The next frame that is not a comment."""
        while True:
            frame = await self.frame()
            if not is_comment(frame):
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
