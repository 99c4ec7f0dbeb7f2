"""The corp credential vault against the same contract as Secrets Manager (moto: DynamoDB, KMS, Secrets Manager).

Both stores run the same tests through the code that uses them (:class:`PermanentCodes`), plus the
vault's own promises: only ciphertext in the table, a moved ciphertext refused as tampering, KMS
failing fails the call and writes nothing, compare-and-swap under concurrent writers.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parameters import SecretsProvider

from authsync.aws.credentials import (
    CredentialReader,
    CredentialWriter,
    ForwardOnlySecrets,
    SecretNames,
    SecretReader,
    WriteOutcome,
)
from authsync.aws.kms import KmsSealer, SealError
from authsync.aws.tokens import PermanentCodes
from authsync.aws.vault import CorpVault, RoutedSecrets, TamperedCredentialError, VaultIndex, VaultReader
from authsync_dev.template import load_template

NAMES = SecretNames("wecom-authsync/dev/suites/", "wecom-authsync/dev/corps/")
SUITE, CORP = "wwsuitevault000001", "wwcorpvault0000001"
CODE = "PCODE-vault-secret-0001"
TABLE = "corp-vault"


@pytest.fixture
def key(aws: None) -> str:
    key_id: str = boto3.client("kms").create_key(Description="credentials")["KeyMetadata"]["Arn"]
    table = load_template()["Resources"]["CorpVaultTable"]["Properties"]  # the deployed schema, indexes too
    boto3.client("dynamodb").create_table(
        TableName=TABLE,
        **{k: table[k] for k in ("KeySchema", "AttributeDefinitions", "GlobalSecondaryIndexes", "BillingMode")},
    )
    return key_id


def vault(key: str, kms: Any = None) -> CorpVault:
    return CorpVault(boto3.client("dynamodb"), TABLE, KmsSealer(kms or boto3.client("kms"), key))


@pytest.fixture(params=["SecretsManager", "DynamoDBKMS"])
def store(request: pytest.FixtureRequest, key: str) -> tuple[CredentialReader, CredentialWriter]:
    if request.param == "SecretsManager":
        client = boto3.client("secretsmanager")
        return SecretReader(SecretsProvider(boto3_client=client), max_age=300), ForwardOnlySecrets(
            client, description="test"
        )
    corp_vault = vault(key)
    return VaultReader(corp_vault, max_age=300), corp_vault


def codes(store: tuple[CredentialReader, CredentialWriter]) -> PermanentCodes:
    return PermanentCodes(store[0], store[1], NAMES)


# -- the contract, for both stores ---------------------------------------------------------------------


def test_a_code_reads_back_and_a_later_one_replaces_it(store: tuple[CredentialReader, CredentialWriter]) -> None:
    permanent = codes(store)
    assert permanent.get(SUITE, CORP) is None
    assert permanent.put(SUITE, CORP, CODE, 100.0) is False  # nothing replaced
    assert permanent.get(SUITE, CORP) == CODE
    assert permanent.put(SUITE, CORP, "PCODE-rotated-0002", 200.0) is True
    assert permanent.get(SUITE, CORP) == "PCODE-rotated-0002"


def test_an_older_code_never_replaces_a_newer_one(store: tuple[CredentialReader, CredentialWriter]) -> None:
    permanent = codes(store)
    permanent.put(SUITE, CORP, "PCODE-newer-0002", 200.0)
    permanent.put(SUITE, CORP, CODE, 100.0)
    assert permanent.get(SUITE, CORP, force=True) == "PCODE-newer-0002"
    written = store[1].write(
        NAMES.permanent_code(SUITE, CORP), {"permanent_code": "x", "obtained_at": 1}, lambda new, old: False
    )
    assert written.outcome is WriteOutcome.NOT_NEWER
    assert written.stored is not None
    assert written.stored["permanent_code"] == "PCODE-newer-0002"


def test_a_deleted_code_is_gone_and_deleting_twice_is_fine(store: tuple[CredentialReader, CredentialWriter]) -> None:
    permanent = codes(store)
    permanent.put(SUITE, CORP, CODE, 100.0)
    permanent.delete(SUITE, CORP)
    assert permanent.get(SUITE, CORP) is None
    store[1].delete(NAMES.permanent_code(SUITE, CORP))  # no error (moto's Secrets Manager says True here)
    assert permanent.get(SUITE, CORP, force=True) is None


def test_concurrent_writers_leave_the_newest(store: tuple[CredentialReader, CredentialWriter]) -> None:
    name = NAMES.corp_token(SUITE, CORP)
    barrier = threading.Barrier(6)

    def write(i: int) -> None:
        barrier.wait(timeout=10)
        store[1].write(
            name,
            {"token": f"TOKEN-{i}", "obtained_at": float(i)},
            lambda new, old: float(new["obtained_at"]) > float(old["obtained_at"]),
        )

    threads = [threading.Thread(target=write, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    stored = store[1].read(name)
    assert stored is not None
    assert stored[1]["token"] == "TOKEN-5"


# -- the vault's own promises ---------------------------------------------------------------------------


def test_the_table_holds_only_ciphertext_bound_to_its_item(key: str) -> None:
    codes((VaultReader(vault(key), max_age=300), vault(key))).put(SUITE, CORP, CODE, 100.0)
    items = boto3.client("dynamodb").scan(TableName=TABLE)["Items"]
    assert len(items) == 1
    assert CODE not in repr(items)
    assert CODE.encode() not in items[0]["sealed"]["B"]
    assert {k: items[0][k]["S"] for k in ("suite_id", "corp_id", "kind")} == {
        "suite_id": SUITE,
        "corp_id": CORP,
        "kind": "permanent-code",
    }


def test_a_ciphertext_moved_to_another_item_is_refused_as_tampering(key: str) -> None:
    store = vault(key)
    codes((VaultReader(store, max_age=300), store)).put(SUITE, CORP, CODE, 100.0)
    dynamodb = boto3.client("dynamodb")
    item = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": NAMES.permanent_code(SUITE, CORP)}})["Item"]
    other = NAMES.permanent_code(SUITE, "wwcorpattacker0001")
    dynamodb.put_item(TableName=TABLE, Item={**item, "pk": {"S": other}})
    with pytest.raises(TamperedCredentialError) as raised:
        store.read(other)
    assert CODE not in str(raised.value)


def test_kms_failing_fails_the_write_and_stores_nothing(key: str) -> None:
    gone = key.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"  # no such key: KMS refuses
    with pytest.raises(SealError) as raised:
        codes((VaultReader(vault(gone), max_age=300), vault(gone))).put(SUITE, CORP, CODE, 100.0)
    assert CODE not in str(raised.value)
    assert boto3.client("dynamodb").scan(TableName=TABLE)["Items"] == []


def test_reads_are_cached_until_forgotten(key: str) -> None:
    store = vault(key)
    reader = VaultReader(store, max_age=300)
    name = NAMES.permanent_code(SUITE, CORP)
    store.write(name, {"permanent_code": CODE, "obtained_at": 1.0}, lambda new, old: True)
    assert reader.read(name) == {"permanent_code": CODE, "obtained_at": 1.0}
    store.write(name, {"permanent_code": "PCODE-2", "obtained_at": 2.0}, lambda new, old: True)
    assert reader.read(name) is not None
    assert reader.read(name) == {"permanent_code": CODE, "obtained_at": 1.0}  # warm
    reader.forget(name)
    assert reader.read(name) == {"permanent_code": "PCODE-2", "obtained_at": 2.0}
    assert reader.read(name, force=True) == {"permanent_code": "PCODE-2", "obtained_at": 2.0}


def test_routing_keeps_suite_secrets_in_secrets_manager_and_corp_ones_in_the_vault(key: str) -> None:
    client = boto3.client("secretsmanager")
    secrets = (
        SecretReader(SecretsProvider(boto3_client=client), max_age=300),
        ForwardOnlySecrets(client, description="t"),
    )
    store = vault(key)
    routed = RoutedSecrets(NAMES.corp_prefix, corp=(VaultReader(store, max_age=300), store), other=secrets)
    writer = routed.writer()
    writer.write(NAMES.suite_token(SUITE), {"token": "SUITE-T", "obtained_at": 1.0}, lambda new, old: True)
    writer.write(NAMES.corp_token(SUITE, CORP), {"token": "CORP-T", "obtained_at": 1.0}, lambda new, old: True)
    assert [s["Name"] for s in client.list_secrets()["SecretList"]] == [NAMES.suite_token(SUITE)]
    assert [i["pk"]["S"] for i in boto3.client("dynamodb").scan(TableName=TABLE)["Items"]] == [
        NAMES.corp_token(SUITE, CORP)
    ]
    assert routed.reader().read(NAMES.corp_token(SUITE, CORP)) == {"token": "CORP-T", "obtained_at": 1.0}
    with pytest.raises(ValueError, match="end with"):
        RoutedSecrets("no-slash", corp=secrets, other=secrets)


def test_the_index_lists_code_holders_and_tokens_due_without_reading_a_credential(key: str) -> None:
    store = vault(key)
    permanent = codes((VaultReader(store, max_age=300), store))
    for i, expires_at in enumerate((1_000.0, 2_000.0, 3_000.0)):
        corp_id = f"wwcorpindexed{i:05d}"
        permanent.put(SUITE, corp_id, f"PCODE-{i}", 100.0)
        document = {"token": f"TOKEN-{i}", "obtained_at": 0.0, "expires_at": expires_at, "renew_after": 0.0}
        store.write(NAMES.corp_token(SUITE, corp_id), document, lambda new, old: True)
    permanent.put("wwsuiteother000001", "wwcorpelsewhere001", "PCODE-x", 100.0)
    index = VaultIndex(boto3.client("dynamodb"), TABLE)

    assert sorted(index.corps(SUITE)) == [f"wwcorpindexed{i:05d}" for i in range(3)]
    assert list(index.tokens_due(SUITE, before=2_500.0)) == ["wwcorpindexed00000", "wwcorpindexed00001"]
    assert list(index.tokens_due(SUITE, before=500.0)) == []
    assert list(index.corps("wwsuiteother000001")) == ["wwcorpelsewhere001"]

    permanent.delete(SUITE, "wwcorpindexed00000")  # an uninstall leaves both indexes
    store.delete(NAMES.corp_token(SUITE, "wwcorpindexed00000"))
    assert sorted(index.corps(SUITE)) == ["wwcorpindexed00001", "wwcorpindexed00002"]
    assert list(index.tokens_due(SUITE, before=2_500.0)) == ["wwcorpindexed00001"]


def test_a_cancel_keeps_a_code_a_later_install_stored(store: tuple[CredentialReader, CredentialWriter]) -> None:
    """PermanentCodes.delete(cancelled_at_event=...): a code whose install's WeCom TimeStamp is later stays."""
    permanent = codes(store)
    permanent.put(SUITE, CORP, "PCODE-reinstalled", 100.0, event_time=400)
    permanent.delete(SUITE, CORP, cancelled_at_event=300)
    assert permanent.get(SUITE, CORP, force=True) == "PCODE-reinstalled"
    permanent.delete(SUITE, CORP, cancelled_at_event=500)  # a later cancel does delete it
    assert permanent.get(SUITE, CORP, force=True) is None
    permanent.put(SUITE, CORP, CODE, 200.0)  # a code stored before install times were kept: deleted
    permanent.delete(SUITE, CORP, cancelled_at_event=300)
    assert permanent.get(SUITE, CORP, force=True) is None


def test_the_vaults_conditional_delete_never_deletes_a_document_it_did_not_judge(key: str) -> None:
    """A write landing between the delete's read and its DeleteItem is read again and judged (compare-and-swap)."""
    store = vault(key)
    name = NAMES.permanent_code(SUITE, CORP)
    store.write(name, {"permanent_code": "PCODE-old", "obtained_at": 1.0, "event_time": 100}, lambda n, o: True)
    read = store.read
    raced: list[bool] = []

    def read_then_reinstall(target: str) -> Any:
        found = read(target)
        if not raced:  # the re-install's put, right after the cancel's read
            raced.append(True)
            store.write(
                target, {"permanent_code": "PCODE-new", "obtained_at": 2.0, "event_time": 400}, lambda n, o: True
            )
        return found

    store.read = read_then_reinstall  # type: ignore[method-assign,assignment]
    assert store.delete(name, keep=lambda document: int(document["event_time"]) > 300) is False
    stored = read(name)
    assert stored is not None
    assert stored[1]["permanent_code"] == "PCODE-new"


def test_kms_opens_each_ciphertext_once_per_container_and_still_refuses_a_moved_one(key: str) -> None:
    """Forced re-reads, re-checks under a lease and compare-and-swap reads cost a GetItem, not a Decrypt."""
    decrypts: list[str] = []

    def container() -> CorpVault:
        kms = boto3.client("kms")
        kms.meta.events.register("before-call.kms.Decrypt", lambda **_: decrypts.append("Decrypt"))
        return vault(key, kms)

    writer = container()
    name = NAMES.corp_token(SUITE, CORP)
    document = {"token": "TOKEN-1", "obtained_at": 1.0, "expires_at": 7201.0, "renew_after": 6601.0}
    writer.write(name, document, lambda new, old: True)
    for _ in range(3):
        assert writer.read(name) == ("1", document)
    assert decrypts == []  # it sealed these bytes itself

    other = container()  # another container: opens the ciphertext once
    for _ in range(3):
        assert other.read(name) == ("1", document)
    assert decrypts == ["Decrypt"]

    moved = boto3.client("dynamodb").get_item(TableName=TABLE, Key={"pk": {"S": name}})["Item"]["sealed"]
    victim = NAMES.corp_token(SUITE, "wwcorpvictim000001")
    writer.write(victim, document | {"token": "TOKEN-2"}, lambda new, old: True)
    boto3.client("dynamodb").update_item(
        TableName=TABLE,
        Key={"pk": {"S": victim}},
        UpdateExpression="SET sealed = :moved",
        ExpressionAttributeValues={":moved": moved},
    )
    for reader in (writer, other):  # bytes each opened or sealed under another name: new for this one
        with pytest.raises(TamperedCredentialError):
            reader.read(victim)
