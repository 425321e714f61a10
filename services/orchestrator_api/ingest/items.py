"""What every way in does with items before and after the group commit (commit.py), so ingest over HTTP
(routes.py) and from Kafka (services/kafka_consumer) validate, count and log alike."""

from __future__ import annotations

import time
from typing import Any

from services.common.kinds import Kind
from services.common.logging import get_logger
from services.common.schemas import RejectedItem, validate_items
from services.common.settings import Settings
from services.orchestrator_api import metrics

log = get_logger(__name__)
REFUSED = -1  # the committer's flag for an item of a request over the symbol cap


def validate(
    settings: Settings, kind: Kind, items: list[Any]
) -> tuple[list[tuple[str, dict[str, Any]]], list[RejectedItem]]:
    """(key, record) of the valid items, and the rejected ones by index, counted and logged."""
    good, bad = validate_items(
        kind.model, items, now_ms=time.time() * 1000.0, max_future_skew_s=settings.MAX_FUTURE_SKEW_S
    )
    if bad:
        metrics.INGEST_ITEMS.labels(kind.name, "rejected").inc(len(bad))
        for item in bad:
            event_id = items[item.index].get("event_id") if isinstance(items[item.index], dict) else None
            log.warning(
                "ingest.rejected", kind=kind.name, event_id=str(event_id)[:128], errors=[e.field for e in item.errors]
            )
    return good, bad


def account(kind: Kind, keys: list[str], flags: list[int]) -> int:
    """Count what the commit made of stored items (1 accepted, 0 duplicate); returns the accepted."""
    accepted = flags.count(1)
    for key, new in zip(keys, flags, strict=True):
        if not new:
            log.info("ingest.duplicate", kind=kind.name, event_id=key)
    metrics.INGEST_ITEMS.labels(kind.name, "accepted").inc(accepted)
    metrics.INGEST_ITEMS.labels(kind.name, "duplicate").inc(len(flags) - accepted)
    return accepted
