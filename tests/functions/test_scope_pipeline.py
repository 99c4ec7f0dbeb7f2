"""The authorization-scope InfoTypes end to end (issue #12): the emulator's push → callback-ingest → auth-events
→ auth-info → get_auth_info (and chatdata), on moto. Each costs one extra fetch, a new snapshot version only if
something changed, and a burst of them costs one fetch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from authsync_dev.emulator import PushResult
from authsync_dev.world import World
from tests.functions.pipeline import held_pushes_ingested, install, settle, store
from tests.unit.test_sync import SCOPE_INFO_TYPES

CORP = "wwcorpscope0000001"


@pytest.fixture
def ingest(world: World, monkeypatch: pytest.MonkeyPatch) -> Callable[[Callable[[], PushResult]], dict[str, Any]]:
    """Make a push and hand its document to callback-ingest, as WeCom would POST it (signed, encrypted)."""
    deliver = held_pushes_ingested(world, monkeypatch)

    def push(make: Callable[[], PushResult]) -> dict[str, Any]:
        (response,) = deliver(make)
        return response  # type: ignore[no-any-return]

    return push


def pushes(world: World) -> dict[str, Callable[[], PushResult]]:
    wecom, suite_id = world.wecom, world.suite.suite_id
    return {
        "change_app_admin": lambda: wecom.change_app_admin(suite_id, CORP),
        "share_agent_change": lambda: wecom.share_agent_change(suite_id, CORP),
        "share_chain_change": lambda: wecom.share_agent_change(suite_id, CORP, chain=True),
        "corp_arch_auth": lambda: wecom.corp_arch_auth(suite_id, CORP),
        "approve_special_auth": lambda: wecom.approve_special_auth(suite_id, CORP),
        "cancel_special_auth": lambda: wecom.cancel_special_auth(suite_id, CORP),
    }


@pytest.mark.parametrize("info_type", SCOPE_INFO_TYPES)
def test_a_scope_event_costs_one_fetch_and_a_version_only_when_something_changed(
    info_type: str, world: World, ingest: Callable[[Callable[[], PushResult]], dict[str, Any]]
) -> None:
    install(world, CORP, verified=False)
    settle(world)
    world.wecom.reset_counters()

    assert ingest(pushes(world)[info_type])["body"] == "success"
    auth_batches, chat_batches = settle(world)
    assert all(not b.failed for b in auth_batches + chat_batches)
    assert world.wecom.calls("service/v2/get_auth_info") == 1
    state = store(world).get(world.suite.suite_id, CORP)
    assert state is not None
    assert state.auth_info_version == 1  # nothing changed: no new version

    world.wecom.verify_corp(CORP, push=False)
    world.wecom.clock.advance(1)
    assert ingest(pushes(world)[info_type])["body"] == "success"
    settle(world)
    assert world.wecom.calls("service/v2/get_auth_info") == 2
    state = store(world).get(world.suite.suite_id, CORP)
    assert state is not None
    assert state.auth_info_version == 2
    assert state.verification is not None
    assert state.verification["verified"] is True


def test_a_burst_of_scope_events_costs_one_fetch(
    world: World, ingest: Callable[[Callable[[], PushResult]], dict[str, Any]]
) -> None:
    install(world, CORP)
    settle(world)
    world.wecom.reset_counters()
    for _ in range(2):
        for make in pushes(world).values():
            assert ingest(make)["body"] == "success"
            world.wecom.clock.advance(1)  # distinct TimeStamps: distinct messages, not SQS duplicates
    settle(world)
    assert world.wecom.calls("service/v2/get_auth_info") == 1
    assert world.wecom.calls("chatdata/get_corp_auth_info") == 1
