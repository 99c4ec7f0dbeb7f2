"""Fixtures for tests that talk to the WeCom emulator on a frozen clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from authsync_dev.emulator import Clock, Emulator

START = 1_750_000_000


@pytest.fixture
def clock() -> Clock:
    return Clock(start=START, frozen=True)


@pytest.fixture
def wecom(clock: Clock) -> Iterator[Emulator]:
    """A started emulator on ``clock``; failed callback deliveries are re-sent without delay."""
    with Emulator(clock=clock, retry_delays=(0.0, 0.0, 0.0), seed=7) as emulator:
        yield emulator
