"""Schemathesis fuzzing of every ingest and read endpoint against the app's own OpenAPI schema.

Positive and negative cases, in process over ASGI, with valid credentials so
the fuzzer gets past auth to validation. Every answer must conform to the
schema (status, content type, headers, body), never be a 5xx, and a 4xx for
bad input must name the offending field. Deterministic: Hypothesis runs
derandomized with no example database, so CI sees the same cases every run.
A stateful run chains ingest and reads through OpenAPI links (LINKS below), a
few short scenarios per ingest path.

Schemathesis runs each app's lifespan on its own event-loop thread and keeps
it until `shutdown_lifespans()`; the fixtures create one app per test and
stop them all after it.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import hypothesis
import pytest
import redis
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck
from schemathesis import BaseSchema
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from harness.servers import serve
from services.common.settings import Settings
from services.consumers import windows
from services.consumers.rttm.ticker import Ticker
from services.consumers.view import build_view
from services.flusher.writer import Flusher
from services.orchestrator_api.app import create_app
from services.realtime_gateway.app import create_app as create_gateway
from tests.consumers.test_calc import tick
from tests.factories import stored_batch
from tests.security.helpers import make_item, openapi

pytestmark = pytest.mark.slow  # each fuzzing test runs for seconds
API_KEY = "test-api-key"
SEEDED_TRADE = "T-SEEDED"  # read_app's trade, with a DLQ event: GET /rttm/dlq links to its trace
TIME_FIELDS = {"ts", "event_time", "snapshot_time"}
FLOAT_EXACT = 2**53  # integers past this lose precision as floats


def schema_of(service: str, *, coverage: bool = True) -> BaseSchema:
    loaded = schemathesis.openapi.from_dict(copy.deepcopy(openapi(service)))
    loaded.config.phases.coverage.enabled = coverage  # its boundary cases are not bounded by max_examples
    return loaded.exclude(path="/stream")  # it never ends: test_stream_* below


API = schema_of("api")
# The router serves the fast path's very endpoint functions: fuzzed too, without the coverage phase's ~900 cases.
ROUTER = schema_of("api", coverage=False).include(path_regex="^/ingest/")
GATEWAY = schema_of("gateway")
FUZZ = hypothesis.settings(
    max_examples=10,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),  # one app per test on purpose: state carries across examples
)


def field_errors(body: dict[str, Any]) -> list[dict[str, str]]:
    """The `{field, message}` entries of an error body, flattened across the items of a batch."""
    return [e for entry in body["detail"] for e in entry.get("errors", [entry])]


def names_the_bad_field(_ctx: Any, response: Any, case: schemathesis.Case) -> bool | None:
    """A 400/422 says which field is wrong: `detail` lists `{field, message}` (per item for batches)."""
    if response.status_code not in (400, 422):
        return None
    body = response.json()
    assert set(body) == {"error", "detail"}, body
    if isinstance(body["detail"], str):  # unparsable JSON: the field is the body itself
        assert body["detail"].startswith("body "), body
        return None
    errors = field_errors(body)
    assert errors, body
    assert all(e["field"] and e["message"] for e in errors), body
    return None


def _schema_cannot_say(error: dict[str, str]) -> bool:
    """A refusal of schema-valid data that the schema cannot express, or that the generator got wrong."""
    if error["field"] in TIME_FIELDS:  # too far ahead: the bound moves with the clock
        return True
    if "ahead of calc-a's version" in error["message"]:  # a view's version is bounded by the symbol's state
        return True
    # Integers past 2**53 are compared with `maximum` as floats by the generator: 2**62 + 95 "passes" 2**62.
    bound = error["message"].removeprefix("Input should be less than or equal to ")
    return bound.isdigit() and int(bound) > FLOAT_EXACT


def accepts_valid_data(_ctx: Any, response: Any, case: schemathesis.Case) -> bool | None:
    """Schema-valid data is accepted (replaces schemathesis' check, which cannot know `_schema_cannot_say`)."""
    if case.meta is None or not case.meta.generation.mode.is_positive or response.status_code < 400:
        return None
    if response.status_code in (401, 403, 404):  # credentials are the fixture's; unknown symbol or trade
        return None
    assert response.status_code == 422, f"schema-valid request refused with {response.status_code}: {response.text}"
    assert all(_schema_cannot_say(e) for e in field_errors(response.json())), response.text
    return None


def reports_invalid_items(_ctx: Any, response: Any, case: schemathesis.Case) -> bool | None:
    """Schema-invalid input is refused, or (a batch with valid items) stored in part with the rest in `rejected`."""
    if case.meta is None or case.meta.generation.mode.is_positive or response.status_code >= 400:
        return None
    assert response.json()["rejected"], f"schema-invalid request accepted whole: {response.text}"
    return None


CHECKS: dict[str, Any] = {
    "additional_checks": [names_the_bad_field, accepts_valid_data],
    "excluded_checks": [positive_data_acceptance],
}
# Partial batches are the contract (valid items stored, bad ones reported), not a schema violation let through.
INGEST_CHECKS: dict[str, Any] = {
    "additional_checks": [*CHECKS["additional_checks"], reports_invalid_items],
    "excluded_checks": [positive_data_acceptance, negative_data_rejection],
}


@pytest.fixture
def served(settings: Settings) -> Iterator[Settings]:
    """Settings with a read key; every app lifespan schemathesis started is stopped after the test."""
    settings.API_KEY = API_KEY
    yield settings
    asgi.shutdown_lifespans()


def credentials(settings: Settings) -> dict[str, Any]:
    return {
        "auth": (settings.INGEST_USERNAME, settings.INGEST_PASSWORD),
        "headers": {"x-api-key": API_KEY, "x-internal-token": settings.INTERNAL_TOKEN},
    }


@pytest.fixture
def fast_path_app(served: Settings) -> FastAPI:
    return create_app(served.model_copy(update={"INGEST_FASTPATH": True}))


@pytest.fixture
def router_app(served: Settings) -> FastAPI:
    return create_app(served.model_copy(update={"INGEST_FASTPATH": False}))


@pytest.fixture
def read_app(served: Settings) -> FastAPI:
    """The API with what its reads serve: symbol BTCUSDT (the path example) with a view and candles, an RTTM
    snapshot, and a trade with a DLQ event in Postgres, made by the services' own code, so the examples (and
    the stateful links) get 200s and not only 404s and 503s."""
    client = redis.Redis.from_url(served.redis_url)
    ticks = [tick(i, int(time.time() * 1000) - 1000 * i, 100.0 + i, 1.0) for i in range(3)]
    [state] = windows.apply(client, served, stored_batch(client, served, "seed", ticks), ticks)
    Ticker(served, client).tick()
    view = build_view(state, ticks, time.time() * 1000)
    app = create_app(served)
    with asgi.get_client(app) as http:  # starts the lifespan the fuzzer's requests then share
        update = {"symbol": state.symbol, "view": view, "ts": view["ts"]}
        seeded = http.post("/internal/agg-update", json=update, **credentials(served))
        trade = http.post("/ingest/trade-events", json=make_item("/ingest/trade-events", trade_id=SEEDED_TRADE),
                          **credentials(served))  # fmt: skip
        dlq = http.post("/ingest/dlq-events", json=make_item("/ingest/dlq-events", trade_id=SEEDED_TRADE),
                        **credentials(served))  # fmt: skip
    assert seeded.json() == {"published": 1, "stale": 0}
    assert trade.json()["accepted"] == dlq.json()["accepted"] == 1
    flusher = Flusher(served.model_copy(update={"FLUSH_INTERVAL_MS": 50}), client, "fuzz-seed")
    flusher.ensure_group()
    flusher.flush_once()
    flusher.close()
    client.close()
    return app


VIEWER = ("viewer", "viewer-password-long")
OPEN_ON_THE_GATEWAY = {"/health/liveness", "/health/readiness", "/metrics"}  # the rest needs the viewer login


@pytest.fixture
def gateway_app(served: Settings, read_app: FastAPI) -> Iterator[FastAPI]:
    """A private gateway (reads need VIEWER) whose read proxy reaches the real API on a real port, with what
    `read_app` seeded, so proxied reads get the API's 200s."""
    with serve(create_app(served)) as api_url:
        login = {"VIEWER_USERNAME": VIEWER[0], "VIEWER_PASSWORD": VIEWER[1]}
        yield create_gateway(served.model_copy(update={"API_URL": api_url, **login}))


def refused_without_login(_ctx: Any, response: Any, case: schemathesis.Case) -> bool | None:
    """Private reads: nothing but health and metrics answers a caller without the viewer login."""
    if case.path in OPEN_ON_THE_GATEWAY or response.status_code == 405:
        return None
    assert response.status_code == 401, f"{case.method} {case.formatted_path}: {response.status_code}"
    assert response.headers["www-authenticate"] == ['Basic realm="mdstack dashboard", charset="UTF-8"']
    return None


@API.include(path_regex="^/ingest/").parametrize()
@FUZZ
def test_ingest_fast_path_conforms_to_its_schema(
    case: schemathesis.Case, fast_path_app: FastAPI, served: Settings
) -> None:
    case.call_and_validate(app=fast_path_app, **credentials(served), **INGEST_CHECKS)


@ROUTER.parametrize()
@FUZZ
def test_ingest_router_conforms_to_its_schema(case: schemathesis.Case, router_app: FastAPI, served: Settings) -> None:
    case.call_and_validate(app=router_app, **credentials(served), **INGEST_CHECKS)


@API.exclude(path_regex="^/ingest/").parametrize()
@FUZZ
def test_read_and_internal_conform_to_their_schema(
    case: schemathesis.Case, read_app: FastAPI, served: Settings
) -> None:
    case.call_and_validate(app=read_app, **credentials(served), **CHECKS)


@GATEWAY.parametrize()
@FUZZ
def test_gateway_http_endpoints_conform_to_their_schema(case: schemathesis.Case, gateway_app: FastAPI) -> None:
    case.call_and_validate(app=gateway_app, auth=VIEWER, **CHECKS)


@GATEWAY.parametrize()
@FUZZ
def test_private_gateway_answers_nothing_but_401_without_the_login(
    case: schemathesis.Case, gateway_app: FastAPI
) -> None:
    case.call_and_validate(app=gateway_app, additional_checks=[refused_without_login])


# Stateful mode: OpenAPI links chain an answer (or what was posted) into the next call, so the fuzzer reads
# back what it wrote, the symbol it ticked and the trade it traced, instead of guessing ids that 404.
# Scenarios start at the reads without parameters: schemathesis takes no POST as a start whose body has an
# `event_id`, which it reads as a reference to a resource nothing produces. So those reads link into ingest.
# source (path, method) -> [(link name, target path, method, the link's parameters or requestBody)].
SYMBOL, LISTED = "$request.body#/symbol", "$response.body#/symbols/0/symbol"
LINKS: dict[tuple[str, str], list[tuple[str, str, str, dict[str, Any]]]] = {
    ("/symbols", "get"): [
        ("TickListedSymbol", "/ingest/tick", "post", {"requestBody": {"symbol": LISTED}}),
        ("TickListedSymbols", "/ingest/ticks", "post", {"requestBody": [{"symbol": LISTED}]}),
        ("ListedSymbol", "/symbols/{symbol}", "get", {"parameters": {"symbol": LISTED}}),
    ],
    ("/rttm/stuck", "get"): [
        ("EventOfStuckTrade", "/ingest/trade-events", "post",
         {"requestBody": {"trade_id": "$response.body#/trades/0/trade_id"}}),
        ("StuckTrade", "/rttm/trades/{trade_id}", "get",
         {"parameters": {"trade_id": "$response.body#/trades/0/trade_id"}}),
    ],
    ("/rttm/dlq", "get"): [
        ("DeadLetteredTrade", "/rttm/trades/{trade_id}", "get",
         {"parameters": {"trade_id": "$response.body#/events/0/trade_id"}}),
    ],
    ("/ingest/tick", "post"): [
        ("TickedSymbol", "/symbols/{symbol}", "get", {"parameters": {"symbol": SYMBOL}}),
        ("TickedHistory", "/symbols/{symbol}/history", "get", {"parameters": {"symbol": SYMBOL}}),
        ("TickedCandles", "/symbols/{symbol}/candles", "get", {"parameters": {"symbol": SYMBOL}}),
    ],
    ("/ingest/ticks", "post"): [
        ("TickedSymbol", "/symbols/{symbol}", "get", {"parameters": {"symbol": "$request.body#/0/symbol"}})
    ],
    ("/ingest/trade-events", "post"): [
        ("TracedTrade", "/rttm/trades/{trade_id}", "get", {"parameters": {"trade_id": "$request.body#/trade_id"}})
    ],
}  # fmt: skip
STATEFUL = hypothesis.settings(
    FUZZ,
    max_examples=8,  # scenarios
    stateful_step_count=6,  # calls per scenario at most: short in CI, long enough to write then read
    phases=[hypothesis.Phase.generate],
)


def linked_schema() -> BaseSchema:
    """The API's document over ingest and reads, with LINKS (and only those) on each source's 200 answer."""
    document = copy.deepcopy(openapi("api"))
    paths = document["paths"]
    for (path, method), links in LINKS.items():
        paths[path][method]["responses"]["200"]["links"] = {
            name: {"operationId": paths[target][target_method]["operationId"], **fields}
            for name, target, target_method, fields in links
        }
    loaded = schemathesis.openapi.from_dict(document)
    loaded.config.phases.stateful.inference.algorithms = []  # no guessed links: the scenarios stay these
    return loaded.include(path_regex="^/(ingest|symbols|rttm)/?")


@pytest.mark.parametrize("fast_path", [True, False], ids=["fastpath", "router"])
def test_ingest_and_reads_hold_up_when_chained(read_app: FastAPI, served: Settings, fast_path: bool) -> None:
    """Scenarios of linked calls (list symbols, tick one, read it; list stuck trades, post an event of one,
    trace it) on the app the reads were seeded for: every answer conforms, and the chains reach data."""
    served.INGEST_FASTPATH = fast_path  # the router serves /ingest/* when the fast path is off
    app = read_app if fast_path else create_app(served)
    answered: list[tuple[str, str, int]] = []

    class Scenario(linked_schema().as_state_machine()):  # type: ignore[misc]
        def call(self, case: schemathesis.Case, **kwargs: Any) -> Any:
            return case.call(app=app, **credentials(served))

        def after_call(self, response: Any, case: schemathesis.Case) -> None:
            answered.append((case.operation.method.upper(), case.operation.path, response.status_code))

        def validate_response(self, response: Any, case: schemathesis.Case, **kwargs: Any) -> None:
            checks = INGEST_CHECKS if case.operation.path.startswith("/ingest/") else CHECKS
            case.validate_response(response, **checks)

    Scenario.run(settings=STATEFUL)

    reached = {(method, path) for method, path, status in answered if status == 200}
    chained = {("POST", "/ingest/tick"), ("GET", "/symbols/{symbol}"), ("GET", "/rttm/trades/{trade_id}")}
    assert chained <= reached, sorted(set(answered))


@pytest.mark.parametrize("service", ["api", "gateway"])
def test_metrics_are_documented_as_prometheus_text(service: str) -> None:
    content = openapi(service)["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(content) == ["text/plain"]


def _keys(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from _keys(value)
    elif isinstance(node, list):
        for value in node:
            yield from _keys(value)


@pytest.mark.parametrize("service", ["api", "gateway"])
def test_every_bound_is_documented_in_json_schema_words(service: str) -> None:
    """pydantic writes `ge`/`le` (which JSON Schema ignores) for bounds put on a type with a validator, e.g.
    `Annotated[JsonInt, Field(ge=0)]`: the document then promises any integer (see JsonInt in schemas.py)."""
    document = openapi(service)
    assert {"ge", "le", "gt", "lt"} & set(_keys(document["components"]["schemas"] | document["paths"])) == set()


# GET /stream never ends, so no fuzzer can wait for its answer: its bad parameters, each answered 400 naming
# the field before any stream starts (tests/realtime_gateway covers abc, 5ms, 20s, -1s, too-large and abc-1).
BAD_STREAM_PARAMETERS: list[tuple[str, dict[str, str], str]] = [
    ("?conflate=NaN", {}, "conflate"),
    ("?conflate=inf", {}, "conflate"),
    ("?conflate=1e3", {}, "conflate"),
    ("?conflate=0", {}, "conflate"),
    ("?conflate=9ms", {}, "conflate"),
    ("?conflate=10001ms", {}, "conflate"),
    ("?conflate=100%20ms", {}, "conflate"),
    ("?conflate=1h", {}, "conflate"),
    ("?conflate=0x10", {}, "conflate"),
    ("?conflate=" + "9" * 5000, {}, "conflate"),
    ("", {"Last-Event-ID": "-1-0"}, "Last-Event-ID"),
    ("", {"Last-Event-ID": "1-2-3"}, "Last-Event-ID"),
    ("", {"Last-Event-ID": "1-"}, "Last-Event-ID"),
    ("", {"Last-Event-ID": "1e3-0"}, "Last-Event-ID"),
    ("", {"Last-Event-ID": "0x10-0"}, "Last-Event-ID"),
    ("", {"Last-Event-ID": "18446744073709551616-0"}, "Last-Event-ID"),  # 2**64
    ("", {"Last-Event-ID": "1-18446744073709551616"}, "Last-Event-ID"),
    ("", {"Last-Event-ID": "1" * 10_000 + "-0"}, "Last-Event-ID"),
    ("", {"Last-Event-ID": "1795565084139-0; DROP"}, "Last-Event-ID"),
    ("?last_event_id=%D9%A1-%D9%A0", {}, "last_event_id"),  # Arabic-Indic digits: `\d` takes them, Redis not
    ("?last_event_id=%EF%BC%91-0", {}, "last_event_id"),  # fullwidth 1
    ("?symbols=btcusdt", {}, "symbols"),
    ("?symbols=BTC%00", {}, "symbols"),
    ("?types=tick.received,%00", {}, "types"),
]


@pytest.mark.anyio
async def test_stream_refuses_each_bad_parameter_with_400_naming_it(gateway_api: httpx.AsyncClient) -> None:
    for query, headers, field in BAD_STREAM_PARAMETERS:
        with anyio.fail_after(5):  # a parameter let through starts a stream that never ends
            response = await gateway_api.get("/stream" + query, headers=headers)

        assert response.status_code == 400, (query, headers, response.text[:200])
        assert response.json()["error"] == "bad_request"
        assert [d["field"] for d in response.json()["detail"]] == [field], (query, headers)
