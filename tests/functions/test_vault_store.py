"""Both CorpCredentialStore values end to end. DynamoDBKMS (the default): installs, chatdata and uninstall
keep per-corp credentials in the KMS-sealed vault table and create no Secrets Manager secret per corp.
SecretsManager: a secret per credential, nothing in the vault."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from authsync.aws.credentials import SecretNames
from authsync_dev.emulator import Emulator
from authsync_dev.world import World
from tests.functions.pipeline import install, new_containers, publish, settle, store
from tests.handlers import fresh


@pytest.fixture
def vault_world(world: World) -> World:
    assert world.environment("AuthInfoFunction")["CORP_CREDENTIAL_STORE"] == "DynamoDBKMS"  # the default
    return world


@pytest.fixture
def secrets_world(world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setenv("CORP_CREDENTIAL_STORE", "SecretsManager")
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


def test_with_a_secret_per_corp_installs_and_uninstalls_use_secrets_and_leave_the_vault_empty(
    secrets_world: World,
) -> None:
    world = secrets_world
    install(world, "wwcorpsecreted0001")
    install(world, "wwcorpsecreted0002")
    settle(world)
    assert sorted(corp_secrets()) == sorted(
        f"{world.environment('AuthInfoFunction')['CORP_SECRET_PREFIX']}{world.suite.suite_id}/{corp}/{kind}"
        for corp in ("wwcorpsecreted0001", "wwcorpsecreted0002")
        for kind in ("access-token", "permanent-code")
    )
    assert vault_items(world) == []
    world.wecom.cancel_auth(world.suite.suite_id, "wwcorpsecreted0001", push=False)
    publish(world, {"InfoType": "cancel_auth", "TimeStamp": int(world.wecom.now()), "AuthCorpId": "wwcorpsecreted0001"})
    settle(world)
    assert all("wwcorpsecreted0002" in name for name in corp_secrets())
    assert len(corp_secrets()) == 2


def _metrics(out: str, name: str) -> list[float]:
    emitted = [json.loads(line) for line in out.splitlines() if '"_aws"' in line]
    return [value for m in emitted if name in m for value in m[name]]


def test_a_vault_item_moved_to_another_corp_is_refused_and_alarmed_as_tampering(
    vault_world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """Someone with write access to the table copies corp A's sealed code over corp B's: the ciphertext does
    not open under B's encryption context, B's fetch fails (retried, never served A's code), and is counted."""
    world = vault_world
    install(world, "wwcorptampered0001")
    install(world, "wwcorptampered0002")
    settle(world)
    names = SecretNames("", world.environment("AuthInfoFunction")["CORP_SECRET_PREFIX"])
    table = world.deployment.physical["CorpVaultTable"]
    dynamodb = boto3.client("dynamodb")
    suite = world.suite.suite_id
    source = dynamodb.get_item(TableName=table, Key={"pk": {"S": names.permanent_code(suite, "wwcorptampered0001")}})
    dynamodb.update_item(
        TableName=table,
        Key={"pk": {"S": names.permanent_code(suite, "wwcorptampered0002")}},
        UpdateExpression="SET sealed = :moved",
        ExpressionAttributeValues={":moved": source["Item"]["sealed"]},
    )
    new_containers()
    world.wecom.reset_counters()
    capsys.readouterr()
    publish(world, {"InfoType": "change_auth", "TimeStamp": int(world.wecom.now()), "AuthCorpId": "wwcorptampered0002"})

    auth_batches, _ = settle(world)

    assert auth_batches[-1].failed  # left on the queue: retried, then the DLQ (alarmed)
    out = capsys.readouterr().out
    assert _metrics(out, "CredentialsTampered") == [1.0]
    assert world.wecom.calls("service/v2/get_auth_info") == 0  # nothing was fetched with a moved code
    code = world.wecom.authorization(suite, "wwcorptampered0001").permanent_code
    assert code not in out


def test_kms_unavailable_fails_the_install_before_its_auth_code_is_spent_and_writes_nothing(
    vault_world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No silent fallback: with the key unusable nothing is stored (no plaintext, no secret), the AuthCode
    is not spent, the failure is counted (alarmed); once KMS is back the retry installs with one exchange."""
    world = vault_world
    key = world.environment("AuthInfoFunction")["CREDENTIALS_KEY"]
    monkeypatch.setenv("CREDENTIALS_KEY", key.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000")
    new_containers()
    capsys.readouterr()
    install(world, "wwcorpnokms0000001")

    auth_batches, _ = settle(world)

    assert auth_batches[-1].failed
    assert _metrics(capsys.readouterr().out, "CredentialSealFailures") == [1.0]
    assert world.wecom.calls("service/v2/get_permanent_code") == 0
    assert vault_items(world) == []
    assert corp_secrets() == []

    monkeypatch.setenv("CREDENTIALS_KEY", key)
    new_containers()
    settle(world)
    state = store(world).get(world.suite.suite_id, "wwcorpnokms0000001")
    assert state is not None
    assert state.status == "active"
    assert world.wecom.calls("service/v2/get_permanent_code") == 1
