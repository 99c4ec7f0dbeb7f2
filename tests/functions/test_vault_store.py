"""CorpCredentialStore=DynamoDBKMS end to end: installs, chatdata, rotation and uninstall keep per-corp
credentials in the KMS-sealed vault table and create no Secrets Manager secret per corp."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from authsync.aws.credentials import SecretNames
from authsync_dev.emulator import Emulator
from authsync_dev.world import World
from tests.functions.pipeline import install, new_containers, publish, settle, store
from tests.handlers import fresh


@pytest.fixture
def vault_world(world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setenv("CORP_CREDENTIAL_STORE", "DynamoDBKMS")
    fresh("auth_info.app")
    fresh("chatdata.app")
    return world


def vault_items(world: World) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = boto3.client("dynamodb").scan(TableName=world.deployment.physical["CorpVaultTable"])[
        "Items"
    ]
    return items


def corp_secrets() -> list[str]:
    return [s["Name"] for s in boto3.client("secretsmanager").list_secrets()["SecretList"] if "/corps/" in s["Name"]]


def test_installs_keep_corp_credentials_in_the_vault_and_no_secret_per_corp(vault_world: World) -> None:
    world = vault_world
    wecom: Emulator = world.wecom
    for i in range(3):
        install(world, f"wwcorpvaulted{i:05d}")
    settle(world)

    assert corp_secrets() == []
    kinds = sorted((i["corp_id"]["S"], i["kind"]["S"]) for i in vault_items(world))
    assert kinds == [(f"wwcorpvaulted{i:05d}", k) for i in range(3) for k in ("access-token", "permanent-code")]
    for i in range(3):
        corp_id = f"wwcorpvaulted{i:05d}"
        code = wecom.authorization(world.suite.suite_id, corp_id).permanent_code
        assert all(code.encode() not in item["sealed"]["B"] for item in vault_items(world))
        state = store(world).get(world.suite.suite_id, corp_id)
        assert state is not None
        assert state.status == "active"
        assert state.chatdata_version == 1  # chatdata fetched with the corp token from the vault

    new_containers()  # a cold container reads the vault, not WeCom
    wecom.reset_counters()
    wecom.verify_corp("wwcorpvaulted00001", push=False)
    publish(world, {"InfoType": "change_auth", "TimeStamp": int(wecom.now()), "AuthCorpId": "wwcorpvaulted00001"})
    settle(world)
    assert wecom.calls("service/get_corp_token") == 0
    assert wecom.calls("service/get_suite_token") == 0


def test_an_uninstall_deletes_the_corps_vault_items(vault_world: World) -> None:
    world = vault_world
    install(world, "wwcorpvaultgone001")
    install(world, "wwcorpvaultkeep001")
    settle(world)
    world.wecom.cancel_auth(world.suite.suite_id, "wwcorpvaultgone001", push=False)
    publish(world, {"InfoType": "cancel_auth", "TimeStamp": int(world.wecom.now()), "AuthCorpId": "wwcorpvaultgone001"})
    settle(world)
    assert {i["corp_id"]["S"] for i in vault_items(world)} == {"wwcorpvaultkeep001"}
    names = SecretNames("", world.environment("AuthInfoFunction")["CORP_SECRET_PREFIX"])
    assert names.permanent_code(world.suite.suite_id, "wwcorpvaultkeep001") in {
        i["pk"]["S"] for i in vault_items(world)
    }
