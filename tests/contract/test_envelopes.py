"""The gateway's control frames, built by its own code, against their schemas in the API's document; and
the contract's candle intervals against calc-a's. (Published envelopes: test_live.py, as the gateway relays them.)
"""

from __future__ import annotations

from typing import get_args

import orjson
import pytest

from harness.sse import fields
from services.common.candles import INTERVALS_MS
from services.common.contract import Interval
from services.realtime_gateway.stream import _overflow, _reset
from tests.contract.document import Document
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


def test_the_candle_intervals_are_the_ones_calc_a_keeps() -> None:
    assert set(get_args(Interval)) == set(INTERVALS_MS)
