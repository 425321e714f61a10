"""Waiting for a condition instead of sleeping a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def until(check: Callable[[], T], timeout: float = 30.0, interval: float = 0.05, what: str = "") -> T:
    """`check()` every `interval` s until it returns something true, and that value; TimeoutError after `timeout`."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what or getattr(check, '__doc__', None) or 'condition'} not met in {timeout:.0f} s")
        time.sleep(interval)
    return result
