"""Wire contracts: the tick (FR-1), ingest answers, views and realtime envelopes.

A validated tick travels as a plain dict (`TickRecord`) encoded with orjson:
`ts` is integer epoch milliseconds (UTC) and `received_at` the API's clock in
epoch milliseconds, stamped when the tick was accepted.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Annotated, Any, Protocol

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    with_config,
)
from typing_extensions import TypedDict  # pydantic describes and validates typing's TypedDict from 3.12 only

SYMBOL_PATTERN = r"^[A-Z0-9._-]{1,32}$"
# Who named a string is told by its first character, so no client string can equal one of mdstack's own:
# a client's event_id starts with a letter or digit; an idempotency key mdstack derives starts with DERIVED
# (events.py), an internal mark beside client-keyed fields (a trade's `~term`) with MARK (keys.py).
EVENT_ID_PATTERN = r"^[A-Za-z0-9][\x21-\x7e]{0,127}$"  # then printable ASCII, no spaces: it is part of Redis fields
SOURCE_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"
MIN_TS_MS = 946_684_800_000  # 2000-01-01T00:00:00Z; anything older is a unit mistake, not data
MAX_PRICE = 1e12
MAX_VOLUME = 1e15
INT64_MAX = 2**63 - 1  # what Redis, Postgres bigint and orjson hold


def _not_bool(value: Any) -> Any:
    # JSON true/false must not pass as 1/0.
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean")
    return value


def json_integer(value: Any) -> Any:
    """JSON Schema's `integer`: 5 and 5.0 pass (pydantic then refuses 5.5); true, false and "5" do not."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be an integer")
    return value


def _epoch_ms(value: Any) -> float:
    """Epoch milliseconds from a number or an ISO-8601 string (naive means UTC)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("must be epoch milliseconds or an ISO-8601 timestamp")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                raise ValueError(f"is not an ISO-8601 timestamp or epoch milliseconds: {value[:40]!r}") from None
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            return parsed.timestamp() * 1000.0
    if not math.isfinite(value):
        raise ValueError("must be a finite number of epoch milliseconds")
    return float(value)


def _in_range(ms: float, info: ValidationInfo) -> float:
    """After 2000-01-01 and at most `max_future_skew_s` (validation context) ahead of `now_ms`."""
    ctx = info.context or {}
    now_ms = ctx.get("now_ms") or time.time() * 1000.0
    skew_ms = ctx.get("max_future_skew_s", 300.0) * 1000.0
    if ms < MIN_TS_MS:
        hint = " (looks like epoch seconds; send milliseconds)" if ms > 946_684_800 else ""
        raise ValueError(f"is before 2000-01-01{hint}")
    if ms > now_ms + skew_ms:
        raise ValueError(f"is more than {skew_ms / 1000:.0f}s in the future")
    return ms


Symbol = Annotated[str, StringConstraints(pattern=SYMBOL_PATTERN)]
Number = Annotated[float, BeforeValidator(_not_bool)]
# Bound it as a model field's `Field(ge=..., le=...)`, or as `Annotated[int, Field(ge=..., le=...),
# BeforeValidator(json_integer)]`; not as `Annotated[JsonInt, Field(...)]`, where pydantic (2.14) documents the
# bounds as `ge`/`le`, keywords JSON Schema does not have, so the OpenAPI document loses them.
JsonInt = Annotated[int, BeforeValidator(json_integer)]
EventId = Annotated[str, StringConstraints(pattern=EVENT_ID_PATTERN)]
EpochMs = Annotated[
    float,
    BeforeValidator(_epoch_ms),
    AfterValidator(_in_range),
    Field(
        description="ISO-8601 (naive means UTC) or epoch milliseconds; from 2000-01-01 to MAX_FUTURE_SKEW_S "
        "(300 s by default) ahead of the server's clock",
        # `minimum` applies to the number form only; the future bound moves with the clock, so no schema holds it.
        json_schema_extra={"type": ["string", "number"], "minimum": MIN_TS_MS},
    ),
]


class TickIn(BaseModel):
    """A market tick as posted by a feeder."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "symbol": "BTCUSDT",
                    "price": 64012.5,
                    "volume": 0.25,
                    "source": "sim",
                    "ts": "2026-01-01T12:00:00.123Z",
                    "event_id": "0f5c2a4e-5f38-4b43-9a8a-2b7f3c1d9e10",
                }
            ]
        },
    )

    symbol: Symbol = Field(description="1-32 characters of A-Z 0-9 . _ -")
    price: Number = Field(gt=0, le=MAX_PRICE, allow_inf_nan=False)
    volume: Number = Field(ge=0, le=MAX_VOLUME, allow_inf_nan=False)
    source: Annotated[str, StringConstraints(pattern=SOURCE_PATTERN)]
    ts: EpochMs
    event_id: EventId = Field(description="Unique per tick; the idempotency key. Starts with a letter or digit")

    def key(self) -> str:
        return self.event_id

    def record(self, received_at_ms: float) -> TickRecord:
        return {
            "event_id": self.event_id,
            "symbol": self.symbol,
            "price": self.price,
            "volume": self.volume,
            "source": self.source,
            "ts": int(self.ts),  # type: ignore[arg-type]
            "received_at": received_at_ms,
        }


@with_config(ConfigDict(extra="forbid"))
class TickRecord(TypedDict):
    """A validated tick as it is stored, queued and published (`tick.received`); times in epoch ms."""

    event_id: str
    symbol: str
    price: float
    volume: float
    source: str
    ts: int
    received_at: float


class FieldError(BaseModel):
    field: str
    message: str


class RejectedItem(BaseModel):
    index: int
    errors: list[FieldError]


class IngestResult(BaseModel):
    accepted: int = Field(description="New ticks stored in Redis and queued")
    duplicates: int = Field(description="Ticks whose event_id was already accepted; not processed again")
    rejected: list[RejectedItem] = Field(default_factory=list, description="Invalid items, by index")


class ErrorBody(BaseModel):
    error: str
    detail: Any = None


def field_errors(exc: ValidationError, *, drop_index: bool = False) -> list[FieldError]:
    """Pydantic errors as `{field, message}` with a dotted field path."""
    out = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = list(err["loc"])
        if drop_index and loc and isinstance(loc[0], int):
            loc = loc[1:]
        out.append(FieldError(field=".".join(str(p) for p in loc) or "body", message=err["msg"]))
    return out


class Incoming(Protocol):
    """What every ingest model offers: its idempotency key and its stored form."""

    def key(self) -> str: ...

    def record(self, received_at_ms: float) -> Any: ...


def validate_items(
    model: type[BaseModel], items: list[Any], *, now_ms: float, max_future_skew_s: float
) -> tuple[list[tuple[str, Any]], list[RejectedItem]]:
    """Validate each item on its own so one bad item does not sink the batch; returns (key, record) pairs."""
    ctx = {"now_ms": now_ms, "max_future_skew_s": max_future_skew_s}
    good: list[tuple[str, Any]] = []
    bad: list[RejectedItem] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            bad.append(RejectedItem(index=index, errors=[FieldError(field="body", message="must be an object")]))
            continue
        try:
            valid: Incoming = model.model_validate(item, context=ctx)  # type: ignore[assignment]
        except ValidationError as exc:
            bad.append(RejectedItem(index=index, errors=field_errors(exc)))
            continue
        good.append((valid.key(), valid.record(now_ms)))
    return good, bad


def envelope(type_: str, data: Any, *, symbol: str | None = None) -> bytes:
    """A realtime envelope without its id; the publish script prepends the id it assigns."""
    body: dict[str, Any] = {"type": type_}
    if symbol is not None:
        body["symbol"] = symbol
    body["data"] = data
    return orjson.dumps(body)


def ms_to_datetime(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000.0, tz=UTC)
