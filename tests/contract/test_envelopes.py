"""The gateway's control frames, built by its own code, against their schemas in the API's document.

(The published envelopes are checked as the gateway relays them, in test_live.py.)
"""

from __future__ import annotations

import orjson
import pytest

from services.realtime_gateway.stream import _overflow, _reset
from tests.contract.document import Document
from tests.realtime_gateway.sse import fields
from tests.security.helpers import openapi


@pytest.mark.parametrize(
    "frame",
    [
        _overflow(1000, "5-0"),
        _overflow(1000, None),
        _reset("1-0", "5-0", "history_trimmed"),
        _reset("5-0", None, "too_far_behind"),
    ],
    ids=["overflow", "overflow-before-any-event", "reset-trimmed", "reset-behind"],
)
def test_control_frames_conform_to_their_schema(frame: bytes) -> None:
    event = fields(frame)
    assert "id" not in event  # a browser's Last-Event-ID stays on the last real event
    Document(openapi("api")).event(event["event"], orjson.loads(event["data"]))
