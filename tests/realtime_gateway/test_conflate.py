"""GET /stream?conflate=: the newest event of each (type, symbol) per interval; the rest passes untouched."""

from __future__ import annotations

import anyio
import pytest

from harness.sse import SSEReader, event_frame, fields
from services.realtime_gateway.conflate import Conflator, parse_interval
from services.realtime_gateway.frames import Event
from tests.realtime_gateway.helpers import Gateway, Publisher, make_env, open_stream, sample

CONFLATED = "mdstack_gateway_conflated_total"
TIMEOUT_S = 15  # generous: a loaded machine may be slow, but each read ends as soon as its event arrives


def event(n: int, symbol: str | None = "BTCUSDT", type_: str = "tick.received") -> Event:
    return Event(id=f"{n}-0", key=(n, 0), type=type_, symbol=symbol, frame=f"frame {n}".encode())


def ids(events: list[Event]) -> list[str]:
    return [e.id for e in events]


# The conflator on its own, with a made-up clock (seconds).


def test_first_event_goes_out_at_once_then_the_newest_when_the_interval_ends() -> None:
    conflator = Conflator(0.1)
    before = sample(CONFLATED)
    assert ids(conflator.offer(event(1), now=10.0)) == ["1-0"]  # idle: leading edge
    assert conflator.offer(event(2), now=10.01) == []
    assert conflator.offer(event(3), now=10.02) == []
    assert conflator.due() == pytest.approx(10.1)
    assert conflator.flush(now=10.09) == []  # not yet
    assert ids(conflator.flush(now=10.1)) == ["3-0"]  # latest wins
    assert (conflator.conflated, sample(CONFLATED) - before) == (1, 1)
    assert conflator.offer(event(4), now=10.15) == []  # the flush opened a new window
    assert ids(conflator.flush(now=10.2)) == ["4-0"]
    assert conflator.due() is None
    assert conflator.flush(now=10.3) == []  # a window with nothing pending ends it: idle again
    assert ids(conflator.offer(event(5), now=10.31)) == ["5-0"]


def test_keys_are_type_and_symbol_and_a_batch_goes_out_in_id_order() -> None:
    conflator = Conflator(0.1)
    conflator.offer(event(1), now=0.0)
    for n, symbol, type_ in [
        (2, "BTCUSDT", "tick.received"),
        (3, "ETHUSDT", "tick.received"),
        (4, "BTCUSDT", "symbol.updated"),
        (5, "BTCUSDT", "tick.received"),  # replaces 2 and goes after 3 and 4
        (6, "ETHUSDT", "tick.received"),  # replaces 3
    ]:
        assert conflator.offer(event(n, symbol, type_), now=0.05) == []
    assert ids(conflator.flush(now=0.1)) == ["4-0", "5-0", "6-0"]
    assert conflator.conflated == 2


def test_event_without_symbol_is_never_held_and_goes_out_after_what_is_pending() -> None:
    conflator = Conflator(0.1)
    conflator.offer(event(1), now=0.0)
    conflator.offer(event(2), now=0.01)
    assert ids(conflator.offer(event(3, symbol=None, type_="rttm.metrics"), now=0.02)) == ["2-0", "3-0"]
    assert ids(conflator.offer(event(4, symbol=None, type_="alert.fired"), now=0.03)) == ["4-0"]
    assert conflator.offer(event(5), now=0.04) == []
    assert conflator.flush(now=0.11) == []  # the early batch at 0.02 restarted the window
    assert ids(conflator.flush(now=0.13)) == ["5-0"]
    assert conflator.conflated == 0


def test_a_late_offer_sends_what_was_pending_with_it() -> None:
    conflator = Conflator(0.1)
    conflator.offer(event(1), now=0.0)
    conflator.offer(event(2, "ETHUSDT"), now=0.05)
    assert ids(conflator.offer(event(3), now=0.5)) == ["2-0", "3-0"]  # the flush was late (busy client)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("100ms", 0.1), ("1s", 1.0), ("0.5s", 0.5), ("250", 0.25), ("10ms", 0.01), ("10s", 10.0), ("10000", 10.0)],
)
def test_interval_accepts_durations_from_10ms_to_10s(text: str, seconds: float) -> None:
    assert parse_interval(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["abc", "5ms", "20s", "0", "9", "10001", "-100ms", "100us", "1m", "1e3", "ms"])
def test_interval_rejects_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match="duration|between"):
        parse_interval(text)


# Through a real gateway.


async def read_until(reader: SSEReader, last_ids: set[str]) -> list[bytes]:
    """Event frames up to the one that completes `last_ids` (each read waits only as long as it must)."""
    got: list[bytes] = []
    left = set(last_ids)
    while left:
        got.append(await reader.event())
        left.discard(fields(got[-1]).get("id", ""))
    return got


def event_ids(frames: list[bytes], symbol: str | None = None) -> list[str]:
    """Ids of the frames, or of those for one symbol."""
    return [f["id"] for f in map(fields, frames) if symbol is None or f'"symbol":"{symbol}"' in f["data"]]


def in_id_order(frames: list[bytes]) -> bool:
    keys = [tuple(map(int, i.split("-"))) for i in event_ids(frames)]
    return keys == sorted(set(keys))


@pytest.mark.anyio
async def test_a_burst_for_one_symbol_becomes_a_few_events_ending_with_the_newest(
    gateway: Gateway, publisher: Publisher
) -> None:
    envs = [make_env(symbol="BTCUSDT", price=100.0 + n) for n in range(50)]
    before = sample(CONFLATED)
    with anyio.fail_after(TIMEOUT_S):
        async with gateway.http() as http, open_stream(http, "?conflate=200ms") as reader:
            published = await publisher.many(envs)  # one script: the whole burst within milliseconds
            got = await read_until(reader, {published[-1]})
    assert 1 <= len(got) <= 3, event_ids(got)
    assert in_id_order(got)
    assert got[-1] == event_frame(published[-1], envs[-1])  # latest wins, framed exactly as without conflation
    assert sample(CONFLATED) - before == len(envs) - len(got)


@pytest.mark.anyio
async def test_symbols_are_conflated_independently_each_ending_with_its_newest(
    gateway: Gateway, publisher: Publisher
) -> None:
    envs = [make_env(symbol=symbol, n=n) for n in range(25) for symbol in ("BTCUSDT", "ETHUSDT")]
    with anyio.fail_after(TIMEOUT_S):
        async with gateway.http() as http, open_stream(http, "?conflate=200ms") as reader:
            published = await publisher.many(envs)
            newest = {"BTCUSDT": published[-2], "ETHUSDT": published[-1]}
            got = await read_until(reader, set(newest.values()))
    assert in_id_order(got)
    for symbol, newest_id in newest.items():
        mine = event_ids(got, symbol)
        assert 1 <= len(mine) <= 3, (symbol, mine)
        assert mine[-1] == newest_id, symbol


@pytest.mark.anyio
async def test_envelopes_without_a_symbol_all_arrive_in_order(gateway: Gateway, publisher: Publisher) -> None:
    envs = [
        make_env("rttm.metrics", symbol=None, n=n) if n % 3 == 2 else make_env(symbol="BTCUSDT", n=n) for n in range(30)
    ]
    with anyio.fail_after(TIMEOUT_S):
        async with gateway.http() as http, open_stream(http, "?conflate=200ms") as reader:
            published = await publisher.many(envs)
            newest_tick, newest_metrics = published[-2], published[-1]  # n = 28 and 29
            got = await read_until(reader, {newest_tick, newest_metrics})
    unkeyed = [i for i, env in zip(published, envs, strict=True) if b'"rttm.metrics"' in env]
    assert [f["id"] for f in map(fields, got) if f["event"] == "rttm.metrics"] == unkeyed
    assert in_id_order(got)
    assert event_ids(got, "BTCUSDT")[-1] == newest_tick


@pytest.mark.anyio
async def test_without_conflate_every_event_arrives(gateway: Gateway, publisher: Publisher) -> None:
    before = sample(CONFLATED)
    with anyio.fail_after(TIMEOUT_S):
        async with gateway.http() as http, open_stream(http) as reader:
            published = await publisher.many([make_env(symbol="BTCUSDT", n=n) for n in range(50)])
            got = await read_until(reader, {published[-1]})
    assert event_ids(got) == published
    assert sample(CONFLATED) == before


@pytest.mark.anyio
async def test_resume_replay_is_conflated_and_live_events_follow(gateway: Gateway, publisher: Publisher) -> None:
    start = await publisher.one(n=0)
    missed_envs = [make_env(symbol=symbol, n=n) for n in range(20) for symbol in ("BTCUSDT", "ETHUSDT")]
    missed = await publisher.many(missed_envs)  # published before the client (re)connects
    with anyio.fail_after(TIMEOUT_S):
        async with gateway.http() as http:
            async with open_stream(http, "?conflate=200ms", headers={"Last-Event-ID": start}) as reader:
                replayed = await read_until(reader, {missed[-2], missed[-1]})
                live = await publisher.one(symbol="SOLUSDT", n=99)
                after = await read_until(reader, {live})
    assert 2 <= len(replayed) <= 6, event_ids(replayed)
    assert in_id_order(replayed + after)
    assert event_ids(after)[-1] == live


@pytest.mark.anyio
@pytest.mark.parametrize("value", ["abc", "5ms", "20s", "-1s"])
async def test_bad_conflate_is_400_naming_the_field(gateway: Gateway, value: str) -> None:
    with anyio.fail_after(5):
        async with gateway.http() as http:
            response = await http.get("/stream", params={"conflate": value})
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "bad_request"
    assert [d["field"] for d in body["detail"]] == ["conflate"]
    assert sample("mdstack_gateway_clients") == 0
