"""Bad input on every ingest route, through the fast path and the router: refused, the field named, nothing stored.

Adds to tests/orchestrator_api/test_ingest.py (one bad field of a tick at a
time, the basic 400/415/413, duplicates and a partial batch of ticks): every
route, JSON that is not JSON, NaN and Infinity as tokens and as strings,
values past their bounds and on them, control and non-ASCII characters,
bodies too large however they are framed, and batches checked item by item
against what Redis holds for the workers and what reaches Postgres.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx
import orjson
import pytest

from services.common.schemas import MIN_TS_MS
from services.common.settings import Settings
from tests.security.helpers import BOTH_PATHS, INGEST, NOTHING, as_body, make_item, postgres_keys, redis_keys

pytestmark = [pytest.mark.anyio, BOTH_PATHS]
RTTM = [path for path, (kind, _) in INGEST.items() if kind != "tick"]
BATCHES = ["/ingest/ticks", *RTTM]  # the routes that take an array
TIME_FIELD = {"tick": "ts", "queue": "snapshot_time"}  # the others: event_time
NOW_MS = int(time.time() * 1000)


def time_field(path: str) -> str:
    return TIME_FIELD.get(INGEST[path][0], "event_time")


def rejected(response: httpx.Response) -> list[tuple[int, str, str]]:
    """(index, field, message) of every refused item of a 200 or a 422 of ingest."""
    body = response.json()
    items = body["rejected"] if response.status_code == 200 else body["detail"]
    return [(r["index"], e["field"], e["message"]) for r in items for e in r["errors"]]


def keys_of(path: str, items: list[dict[str, Any]]) -> dict[str, dict[str, list[str]]]:
    """What Redis should hold after `items` were accepted, in order."""
    keys = [item["event_id"] for item in items]
    return {"queued": {INGEST[path][0]: keys}, "flush": {INGEST[path][0]: keys}}


def merged(parts: Iterable[dict[str, dict[str, list[str]]]]) -> dict[str, dict[str, list[str]]]:
    """`keys_of` of several routes (of different kinds) together."""
    out: dict[str, dict[str, list[str]]] = {"queued": {}, "flush": {}}
    for part in parts:
        for where, by_kind in part.items():
            out[where].update(by_kind)
    return out


# Each case is sent to every route, in one app per path (fast path, router): an app per case costs more than
# the requests.
NOT_JSON = {
    "empty": b"",
    "truncated": b"{",
    "trailing-brace": b'{"symbol": "BTCUSDT"}}',
    "trailing-text": b'{"symbol": "BTCUSDT"} x',
    "byte-order-mark": b"\xef\xbb\xbf{}",
    "not-utf8": b'{"symbol": "\xff\xfe"}',
    "lone-surrogate": b'{"symbol": "\\ud800"}',
    "too-deep": b"[" * 2000 + b"]" * 2000,  # past the parser's depth limit, not a RecursionError
    "single-quotes": b"{'symbol': 'BTCUSDT'}",
}
# JSON has no NaN or Infinity, and 1e400 is no double: the parser refuses them where they stand.
NOT_NUMBERS = [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e999"]


async def test_body_that_is_not_json_is_400_on_every_route(api: httpx.AsyncClient, settings: Settings) -> None:
    for path in INGEST:
        for case, content in NOT_JSON.items():
            response = await api.post(path, content=content, headers={"content-type": "application/json"})

            assert response.status_code == 400, (path, case, response.text)
            assert response.json()["error"] == "bad_request"
            assert response.json()["detail"].startswith("body is not valid JSON: "), (case, response.text)
    assert redis_keys(settings) == NOTHING


async def test_nan_and_infinity_tokens_are_400_with_their_position(api: httpx.AsyncClient, settings: Settings) -> None:
    for path in INGEST:
        for token in NOT_NUMBERS:
            item = make_item(path, **{time_field(path): 424242})
            content = orjson.dumps(as_body(path, item)).replace(b"424242", token)
            response = await api.post(path, content=content, headers={"content-type": "application/json"})

            assert response.status_code == 400, (path, token, response.text)
            assert "line 1 column" in response.json()["detail"], (token, response.text)
    assert redis_keys(settings) == NOTHING


# One batch of ticks, each item wrong in one way: the index, the field and the words that say why.
TICK_CASES: list[tuple[dict[str, Any], str, str]] = [
    # NaN and Infinity as strings
    ({"price": "-Infinity"}, "price", "finite number"),
    ({"price": "nan"}, "price", "finite number"),
    ({"volume": "Infinity"}, "volume", "finite number"),
    ({"volume": "NaN"}, "volume", "finite number"),
    ({"ts": "NaN"}, "ts", "finite number of epoch milliseconds"),
    ({"ts": "Infinity"}, "ts", "finite number of epoch milliseconds"),
    ({"ts": "-Infinity"}, "ts", "finite number of epoch milliseconds"),
    ({"ts": "9" * 400}, "ts", "finite number of epoch milliseconds"),
    # negative and huge numbers
    ({"price": -0.0}, "price", "greater than 0"),
    ({"price": -1e308}, "price", "greater than 0"),
    ({"price": 1.000001e12}, "price", "less than or equal to 1000000000000"),
    ({"price": 18446744073709551615}, "price", "less than or equal to 1000000000000"),
    ({"volume": -1e-300}, "volume", "greater than or equal to 0"),
    ({"volume": 1.000001e15}, "volume", "less than or equal to 1000000000000000"),
    ({"volume": "1e16"}, "volume", "less than or equal to"),
    # times far in the past or the future, or no time at all
    ({"ts": -1}, "ts", "before 2000-01-01"),
    ({"ts": 0}, "ts", "before 2000-01-01"),
    ({"ts": MIN_TS_MS - 1}, "ts", "before 2000-01-01"),
    ({"ts": "1970-01-01T00:00:00Z"}, "ts", "before 2000-01-01"),
    ({"ts": "0001-01-01T00:00:00+00:00"}, "ts", "before 2000-01-01"),
    ({"ts": NOW_MS + 3_600_000}, "ts", "more than 300s in the future"),
    ({"ts": 253_402_300_800_000}, "ts", "in the future"),
    ({"ts": "9999-12-31T23:59:59Z"}, "ts", "in the future"),
    ({"ts": 1e300}, "ts", "in the future"),
    ({"ts": "+275760-09-13T00:00:00Z"}, "ts", "is not an ISO-8601 timestamp"),
    ({"ts": "2026-13-01T00:00:00Z"}, "ts", "is not an ISO-8601 timestamp"),
    ({"ts": ""}, "ts", "is not an ISO-8601 timestamp"),
    ({"ts": None}, "ts", "epoch milliseconds or an ISO-8601"),
    ({"ts": [NOW_MS]}, "ts", "epoch milliseconds or an ISO-8601"),
    # over-long strings
    ({"symbol": "A" * 10_000}, "symbol", "String should match pattern"),
    ({"source": "s" * 65}, "source", "String should match pattern"),
    ({"event_id": "e" * 100_000}, "event_id", "String should match pattern"),
    # non-ASCII and control characters in symbols (and the other names)
    ({"symbol": "\uff22\uff34\uff23"}, "symbol", "String should match pattern"),  # fullwidth BTC
    ({"symbol": "\u0661\u0662\u0663"}, "symbol", "String should match pattern"),  # Arabic-Indic digits
    ({"symbol": "BTC\u200bUSDT"}, "symbol", "String should match pattern"),  # zero-width space
    ({"symbol": "BTC\U0001f680"}, "symbol", "String should match pattern"),
    ({"symbol": "BTC\u0000"}, "symbol", "String should match pattern"),
    ({"symbol": "BTCUSDT\n"}, "symbol", "String should match pattern"),  # where Python's `$` would match
    ({"symbol": "BTC\tUSDT"}, "symbol", "String should match pattern"),
    ({"symbol": "BTC\x7f"}, "symbol", "String should match pattern"),
    ({"symbol": "BTC\u2028"}, "symbol", "String should match pattern"),
    ({"symbol": 'A","type":"x'}, "symbol", "String should match pattern"),  # would break the envelope's JSON
    ({"symbol": ""}, "symbol", "String should match pattern"),
    ({"symbol": 123}, "symbol", "valid string"),
    ({"source": "sim\u0301"}, "source", "String should match pattern"),
    ({"event_id": "id\u00e9"}, "event_id", "String should match pattern"),
    ({"event_id": "id\r\n"}, "event_id", "String should match pattern"),
    ({"event_id": "~term"}, "event_id", "String should match pattern"),  # internal names start with ~ or @
    ({"event_id": "@trade|t|1|7|svc"}, "event_id", "String should match pattern"),
    ({"event_id": "id\u0000"}, "event_id", "String should match pattern"),
]


async def test_every_bad_tick_of_a_batch_is_named_by_index_and_field(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    good = make_item("/ingest/ticks")
    body = [good] + [make_item("/ingest/ticks", **change) for change, _, _ in TICK_CASES]

    response = await api.post("/ingest/ticks", json=body)

    assert response.status_code == 200
    assert response.json()["accepted"] == 1
    got = {(index, field): message for index, field, message in rejected(response)}
    for index, (change, field, words) in enumerate(TICK_CASES, start=1):
        assert words in got.get((index, field), ""), (change, {k: v for k, v in got.items() if k[0] == index})
    assert {index for index, _ in got} == set(range(1, len(body)))
    assert redis_keys(settings) == keys_of("/ingest/ticks", [good])


RTTM_CASES: dict[str, list[tuple[dict[str, Any], str, str]]] = {
    "/ingest/trade-events": [
        ({"trade_id": "T" * 129}, "trade_id", "String should match pattern"),
        ({"trade_id": "T 1"}, "trade_id", "String should match pattern"),
        ({"trade_id": "T\u00e9"}, "trade_id", "String should match pattern"),
        ({"service_name": "svc|x"}, "service_name", "String should match pattern"),
        ({"event_type": "Captured"}, "event_type", "String should match pattern"),
        ({"partition": -1}, "partition", "greater than or equal to 0"),
        ({"partition": 1_000_001}, "partition", "less than or equal to 1000000"),
        ({"partition": "1"}, "partition", "integer"),
        ({"partition": True}, "partition", "integer"),
        ({"offset": 2**62 + 1}, "offset", "less than or equal to 4611686018427387904"),
        ({"offset": 2**64}, "offset", "integer"),  # parsed as a float: not an exact offset
        ({"message": "m" * 2001}, "message", "at most 2000 characters"),
        ({"message": "bell\x07"}, "message", "String should match pattern"),
        ({"message": "nul\x00"}, "message", "String should match pattern"),
        ({"event_time": "NaN"}, "event_time", "finite number of epoch milliseconds"),
        ({"event_time": NOW_MS + 3_600_000}, "event_time", "in the future"),
        ({"event_time": "1999-12-31T23:59:59Z"}, "event_time", "before 2000-01-01"),
        ({"event_id": "has space"}, "event_id", "String should match pattern"),
    ],
    "/ingest/queue-metrics": [
        ({"produced_offset": -1}, "produced_offset", "greater than or equal to 0"),
        ({"consumed_offset": 1e300}, "consumed_offset", "integer"),
        ({"partition": 1.5}, "partition", "integer"),
        ({"snapshot_time": "Infinity"}, "snapshot_time", "finite number of epoch milliseconds"),
        ({"snapshot_time": 1}, "snapshot_time", "before 2000-01-01"),
        ({"topic_name": "t" * 129}, "topic_name", "String should match pattern"),
    ],
    "/ingest/dlq-events": [
        ({"reason": "r" * 2001}, "reason", "at most 2000 characters"),
        ({"reason": "esc\x1b[31m"}, "reason", "String should match pattern"),
        ({"topic_name": "t/dlq"}, "topic_name", "String should match pattern"),
        ({"event_time": "-Infinity"}, "event_time", "finite number of epoch milliseconds"),
    ],
    "/ingest/error-events": [
        ({"error_type": "db_timeout"}, "error_type", "String should match pattern"),
        ({"error_message": None}, "error_message", "valid string"),
        ({"service_name": "\u0441vc"}, "service_name", "String should match pattern"),  # Cyrillic s
        ({"event_time": 0}, "event_time", "before 2000-01-01"),
    ],
    "/ingest/log-events": [
        ({"log_level": "warn"}, "log_level", "String should match pattern"),
        ({"log_level": "WARN\n"}, "log_level", "String should match pattern"),
        ({"message": "x" * 2001}, "message", "at most 2000 characters"),
        ({"event_time": "9999-12-31T23:59:59"}, "event_time", "in the future"),
    ],
}


async def test_every_bad_rttm_event_of_a_batch_is_named_by_index_and_field(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    goods = {}
    for path, cases in RTTM_CASES.items():
        goods[path] = make_item(path)
        response = await api.post(path, json=[goods[path]] + [make_item(path, **change) for change, _, _ in cases])

        assert response.status_code == 200
        assert response.json()["accepted"] == 1
        got = {(index, field): message for index, field, message in rejected(response)}
        for index, (change, field, words) in enumerate(cases, start=1):
            assert words in got.get((index, field), ""), (change, {k: v for k, v in got.items() if k[0] == index})
        assert {index for index, _ in got} == set(range(1, len(cases) + 1))
    assert redis_keys(settings) == merged(keys_of(path, [good]) for path, good in goods.items())


async def test_values_on_their_bounds_are_accepted(api: httpx.AsyncClient, settings: Settings) -> None:
    """Strict, not stricter: the last valid value of each bound goes through."""
    printable = "".join(chr(c) for c in range(0x21, 0x7F))
    ticks = [
        make_item("/ingest/ticks", price=1e12),
        make_item("/ingest/ticks", price=5e-324),
        make_item("/ingest/ticks", volume=0),
        make_item("/ingest/ticks", volume=1e15),
        make_item("/ingest/ticks", ts=MIN_TS_MS),
        make_item("/ingest/ticks", ts="2000-01-01T00:00:00Z"),
        make_item("/ingest/ticks", ts=int(time.time() * 1000) + (settings.MAX_FUTURE_SKEW_S - 5) * 1000),
        make_item("/ingest/ticks", ts=str(NOW_MS)),
        make_item("/ingest/ticks", symbol="A"),
        make_item("/ingest/ticks", symbol="Z9._-" * 6 + "AB"),
        make_item("/ingest/ticks", source="s" * 64),
        make_item("/ingest/ticks", event_id="0" + printable[:127]),  # any printable after a letter or digit
        make_item("/ingest/ticks", event_id="z" + (printable * 2)[:127]),
        make_item("/ingest/ticks", event_id=printable[-10:] * 12),
    ]

    response = await api.post("/ingest/ticks", json=ticks)

    assert response.json() == {"accepted": len(ticks), "duplicates": 0, "rejected": []}
    assert redis_keys(settings) == keys_of("/ingest/ticks", ticks)


NOT_JSON_TYPES = [
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/xml",
    "application/jsonx",
    "text/json",
]
JSON_TYPES = ["application/json; charset=utf-8", "Application/JSON", " application/json ;charset=utf-8"]


async def test_body_that_is_not_declared_json_is_415_on_every_route(api: httpx.AsyncClient, settings: Settings) -> None:
    for path in [*INGEST, "/internal/agg-update"]:
        for content_type in NOT_JSON_TYPES:
            content = orjson.dumps(as_body(path, make_item(path)) if path in INGEST else [])
            headers = {"content-type": content_type, "x-internal-token": settings.INTERNAL_TOKEN}
            response = await api.post(path, content=content, headers=headers)

            assert response.status_code == 415, (path, content_type, response.text)
            assert content_type in response.json()["detail"]
    assert redis_keys(settings) == NOTHING


async def test_body_without_a_content_type_is_415_naming_the_expected_one(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    """A cross-site page can POST without a Content-Type (no CORS preflight), with Basic credentials the browser
    has cached: only a request that declares application/json, which a browser must ask first to send, counts."""
    for path in [*INGEST, "/internal/agg-update"]:
        content = orjson.dumps(as_body(path, make_item(path)) if path in INGEST else [])
        headers = {"x-internal-token": settings.INTERNAL_TOKEN}
        response = await api.post(path, content=content, headers=headers)

        assert "content-type" not in response.request.headers
        assert response.status_code == 415, (path, response.text)
        assert response.json() == {
            "error": "unsupported_media_type",
            "detail": "Content-Type application/json is required; the request has none",
        }
    assert redis_keys(settings) == NOTHING


async def test_json_declared_any_usual_way_is_read(api: httpx.AsyncClient) -> None:
    for path in INGEST:
        for content_type in JSON_TYPES:
            content = orjson.dumps(as_body(path, make_item(path)))
            response = await api.post(path, content=content, headers={"content-type": content_type})

            assert response.json()["accepted"] == 1, (path, content_type, response.text)


async def _chunks(content: bytes, size: int = 500) -> AsyncIterator[bytes]:
    for start in range(0, len(content), size):
        yield content[start : start + size]


BIG = b"[" + b" " * 3_000 + b"]"  # valid JSON: only its size is wrong
# framing -> (Content-Length sent, chunked, what the 413 says)
FRAMINGS: dict[str, tuple[str | None, bool, str]] = {
    "honest": ("3002", False, "body is 3002 bytes"),
    "lying-content-length": ("100", False, "body is over 2000 bytes"),
    "chunked-no-content-length": (None, True, "body is over 2000 bytes"),
    "garbage-content-length": ("-1", False, "body is over 2000 bytes"),
    "declared-too-large": ("1000000000", True, "body is 1000000000 bytes"),  # refused before it is read
}


async def test_oversized_body_is_413_however_it_is_framed(api: httpx.AsyncClient, settings: Settings) -> None:
    """The limit counts the bytes that arrive, whatever Content-Length says; a declared excess is refused unread."""
    settings.MAX_BODY_BYTES = 2_000
    for path in INGEST:
        for framing, (length, chunked, words) in FRAMINGS.items():
            headers = {"content-type": "application/json"} | ({"content-length": length} if length else {})
            response = await api.post(path, content=_chunks(BIG) if chunked else BIG, headers=headers)

            assert response.status_code == 413, (path, framing, response.text)
            assert response.json()["detail"].startswith(words), (framing, response.text)
            assert response.json()["detail"].endswith("the limit is 2000 bytes")
    assert redis_keys(settings) == NOTHING


async def test_oversized_rttm_batch_is_413_and_stores_nothing(api: httpx.AsyncClient, settings: Settings) -> None:
    settings.MAX_BATCH = 3
    for path in RTTM:
        response = await api.post(path, json=[make_item(path) for _ in range(4)])

        assert response.status_code == 413, path
        assert response.json()["detail"] == "batch has 4 items; the limit is 3"
    assert redis_keys(settings) == NOTHING


async def test_duplicate_event_ids_inside_one_rttm_batch_count_once(api: httpx.AsyncClient, settings: Settings) -> None:
    sent = {}
    for path in RTTM:
        a, b = make_item(path, event_id="dup-a"), make_item(path, event_id="dup-b")
        sent[path] = [a, b]
        response = await api.post(path, json=[a, b, a, {**b, time_field(path): NOW_MS - 1}])

        assert response.json() == {"accepted": 2, "duplicates": 2, "rejected": []}, path
    assert redis_keys(settings) == merged(keys_of(path, items) for path, items in sent.items())


async def test_trade_events_without_an_id_count_once_by_their_natural_key(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    """Same topic, partition, offset and service: a redelivery, however its message differs."""
    path = "/ingest/trade-events"
    event = make_item(path, topic_name="trades", partition=1, offset=7, event_id=None)
    response = await api.post(path, json=[event, {**event, "message": "redelivered"}, {**event, "offset": 8}])

    assert response.json() == {"accepted": 2, "duplicates": 1, "rejected": []}
    svc = event["service_name"]
    assert redis_keys(settings)["flush"] == {"trade": [f"@trade|trades|1|7|{svc}", f"@trade|trades|1|8|{svc}"]}


async def test_partial_batch_stores_exactly_its_valid_items_and_forgets_the_bad_ones(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    """Each route that takes an array (one table each): the valid items in Redis and then in Postgres, the bad
    ones reported by index and not even their ids kept."""
    fixed = {}
    for path in BATCHES:
        good = [make_item(path, event_id=f"ok-{i}") for i in range(2)]
        bad = make_item(path, event_id="fixed-later", **{time_field(path): "yesterday"})
        fixed[path] = {**bad, time_field(path): NOW_MS}

        response = await api.post(path, json=[good[0], bad, good[1], "not an object", None, [good[0]], 42])

        assert response.status_code == 200
        assert response.json()["accepted"] == 2
        assert [(i, f) for i, f, _ in rejected(response)] == [
            (1, time_field(path)),
            (3, "body"),
            (4, "body"),
            (5, "body"),
            (6, "body"),
        ], path
    kinds = [INGEST[path][0] for path in BATCHES]
    assert redis_keys(settings) == {where: {kind: ["ok-0", "ok-1"] for kind in kinds} for where in ("queued", "flush")}
    assert postgres_keys(settings) == {kind: ["ok-0", "ok-1"] for kind in kinds}
    for path, item in fixed.items():  # sent again fixed, each is new
        again = await api.post(path, json=[item])
        assert again.json() == {"accepted": 1, "duplicates": 0, "rejected": []}, path
    assert postgres_keys(settings) == {kind: ["fixed-later", "ok-0", "ok-1"] for kind in kinds}


async def test_request_with_no_valid_item_is_422_and_leaves_nothing_in_redis(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    for path in INGEST:
        item = make_item(path, event_id=f"never-stored{path}", **{time_field(path): NOW_MS + 86_400_000})

        response = await api.post(path, json=as_body(path, item))

        assert response.status_code == 422, path
        assert [(i, f) for i, f, _ in rejected(response)] == [(0, time_field(path))]
    assert redis_keys(settings) == NOTHING
    # Not even the ids were marked as seen: fixed, each is new.
    for path in INGEST:
        item = make_item(path, event_id=f"never-stored{path}")
        assert (await api.post(path, json=as_body(path, item))).json()["accepted"] == 1, path


async def test_integral_floats_are_integers(api: httpx.AsyncClient) -> None:
    metric = make_item("/ingest/queue-metrics", partition=2.0, produced_offset=105000.0, consumed_offset=7.0)
    response = await api.post("/ingest/queue-metrics", json=metric)
    assert response.json() == {"accepted": 1, "duplicates": 0, "rejected": []}
