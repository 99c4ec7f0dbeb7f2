"""Fixtures for the function tests: the WeCom emulator and a pipeline world (see tests/functions/pipeline.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from authsync_dev.emulator import Emulator
from authsync_dev.world import World
from tests.functions.pipeline import make_world, new_containers


@pytest.fixture
def wecom() -> Iterator[Emulator]:
    with Emulator(retry_delays=(0.0, 0.0, 0.0), seed=3) as emulator:  # real-time clock, as Lambda has
        yield emulator


@pytest.fixture
def world(aws: None, wecom: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    yield make_world(wecom, monkeypatch)
    new_containers()
