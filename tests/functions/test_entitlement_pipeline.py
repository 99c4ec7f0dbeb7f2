"""License and paid-app order sync end to end (issue #12 items 2 and 4): the emulator's pushes → callback-ingest →
auth-events → auth-info → WeCom's license, order and ID-model APIs → the corp's license and orders sections, on moto."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from authsync_dev.world import World
from tests.functions.pipeline import held_pushes_ingested, install, settle, store

CORP = "wwcorpentitled0001"

Deliver = Callable[[Callable[[], object]], list[dict[str, Any]]]


@pytest.fixture
def deliver(world: World, monkeypatch: pytest.MonkeyPatch) -> Deliver:
    return held_pushes_ingested(world, monkeypatch)


def settled(world: World) -> None:
    auth_batches, chat_batches = settle(world)
    assert all(not b.failed for b in auth_batches + chat_batches)


def test_a_license_purchase_and_activation_end_in_the_license_section_with_one_provider_token(
    world: World, deliver: Deliver
) -> None:
    wecom, suite_id = world.wecom, world.suite.suite_id
    install(world, CORP)
    settled(world)
    assert wecom.calls("service/get_provider_token") == 1  # the open_corpid lookup of the install
    wecom.reset_counters()

    bought = deliver(lambda: wecom.buy_licenses(suite_id, CORP, base_count=10, external_contact_count=2))
    activated = deliver(lambda: wecom.activate_accounts(suite_id, CORP, ["zhangsan", "lisi", "wangwu"], auto=True))
    assert [r["body"] for r in bought + activated] == ["success", "success"]
    settled(world)

    state = store(world).get(suite_id, CORP)
    assert state is not None
    summary = state.license_summary
    assert summary is not None
    assert summary["active"] == {"base": 3, "external_contact": 0, "total": 3}
    assert summary["purchased"] == {"base": 10, "external_contact": 2, "total": 12}
    assert summary["license_status"] == 1
    # The stored token served every call: no new one; each callback cost at most one read of each document.
    assert wecom.calls("service/get_provider_token") == 0
    assert wecom.calls("license/get_order") == 1
    assert 1 <= wecom.calls("license/get_app_license_info") <= 2


def test_an_edition_upgrade_ends_in_the_orders_section_and_the_derived_edition(world: World, deliver: Deliver) -> None:
    wecom, suite_id = world.wecom, world.suite.suite_id
    install(world, CORP)
    settled(world)

    responses = deliver(lambda: wecom.buy_edition(suite_id, CORP, edition_id="ed-pro", edition_name="专业版"))
    assert [r["body"] for r in responses] == ["success"] * 3  # open_order, pay_for_app_success, change_editon
    settled(world)

    state = store(world).get(suite_id, CORP)
    assert state is not None
    assert state.edition is not None
    assert (state.edition["edition_id"], state.edition["edition_name"], state.edition["app_status"]) == (
        "ed-pro",
        "专业版",
        3,
    )
    orders = state.orders_summary
    assert orders is not None
    assert (orders["orders"], orders["paid"], orders["latest"]["edition_id"]) == (1, 1, "ed-pro")
    assert state.open_corpid == wecom.open_corpid(CORP)


def test_a_changed_order_keeps_the_old_one_as_history_and_the_new_one_in_force(world: World, deliver: Deliver) -> None:
    wecom, suite_id = world.wecom, world.suite.suite_id
    install(world, CORP)
    settled(world)
    old = wecom.buy_edition(suite_id, CORP, pay=False, push=False).order_id
    assert old is not None
    deliver(lambda: wecom.open_order(suite_id, CORP, old))
    settled(world)
    wecom.clock.advance(5)
    new = deliver(lambda: wecom.change_app_order(suite_id, CORP, old, price=100))
    assert new[0]["body"] == "success"
    settled(world)

    state = store(world).get(suite_id, CORP)
    assert state is not None
    document = state.kind("orders").document
    assert document is not None
    (new_id,) = set(document["orders"]) - {old}
    assert document["replaced"] == {old: new_id}
    assert state.orders_summary is not None
    assert state.orders_summary["latest"]["orderid"] == new_id
