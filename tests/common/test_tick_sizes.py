"""Decimals shown for a tick size."""

from __future__ import annotations

import pytest

from services.common.tick_sizes import decimals


@pytest.mark.parametrize(
    ("tick_size", "places"), [(0.01, 2), (0.00001, 5), (0.001, 3), (0.5, 1), (0.25, 2), (1.0, 0), (5.0, 0)]
)
def test_decimals_show_every_multiple_of_the_tick_size(tick_size: float, places: int) -> None:
    assert decimals(tick_size) == places
