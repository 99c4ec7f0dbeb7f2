"""Fixtures for the function tests: the WeCom emulator and a pipeline world (see tests/functions/pipeline.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from authsync_dev.emulator import Emulator
from authsync_dev.world import World
from tests.functions.pipeline import make_world, new_containers
from tests.handlers import fresh


@pytest.fixture
def wecom() -> Iterator[Emulator]:
    with Emulator(retry_delays=(0.0, 0.0, 0.0), seed=3) as emulator:  # real-time clock, as Lambda has
        yield emulator


@pytest.fixture
def world(aws: None, wecom: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    yield make_world(wecom, monkeypatch)
    new_containers()


@pytest.fixture
def suite_env(world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    """The world, plus the scheduled functions' environment (all suites of the world), freshly imported."""
    monkeypatch.setenv("SUITE_IDS", world.suite.suite_id)
    for function in ("ReconcileFunction", "TokenRefreshFunction", "TicketMonitorFunction"):
        for name, value in world.environment(function).items():
            if name != "SUITE_IDS":
                monkeypatch.setenv(name, value)
    for module in ("reconcile.app", "ticket_monitor.app", "token_refresh.app"):
        fresh(module)
    return world
