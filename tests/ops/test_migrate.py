"""authsync-ops credentials migrate: 50 corps' secrets into the vault, verified, idempotent, deleted on request."""

from __future__ import annotations

import json
from pathlib import Path

import boto3

from authsync.aws.credentials import SecretNames
from authsync.aws.kms import KmsSealer
from authsync.aws.vault import CorpVault, VaultIndex
from authsync_dev.template import Deployment
from tests.ops.conftest import run

SUITE = "wwsuitemigrate0001"
CORPS = [f"wwcorpmigrate{i:05d}" for i in range(50)]


def seed(deployment: Deployment) -> SecretNames:
    names = SecretNames(deployment.outputs()["SuiteSecretPrefix"], deployment.outputs()["CorpSecretPrefix"])
    secrets = boto3.client("secretsmanager")
    secrets.create_secret(Name=names.suite_token(SUITE), SecretString=json.dumps({"token": "SUITE", "obtained_at": 1}))
    for i, corp in enumerate(CORPS):
        code = {"permanent_code": f"PCODE-{i}", "suite_id": SUITE, "corp_id": corp, "obtained_at": 10.0}
        token = {"token": f"TOKEN-{i}", "obtained_at": 20.0, "expires_at": 7220.0, "renew_after": 6920.0}
        secrets.create_secret(Name=names.permanent_code(SUITE, corp), SecretString=json.dumps(code))
        secrets.create_secret(Name=names.corp_token(SUITE, corp), SecretString=json.dumps(token))
    return names


def vault(deployment: Deployment) -> CorpVault:
    outputs = deployment.outputs()
    sealer = KmsSealer(boto3.client("kms"), outputs["CredentialsKeyArn"])
    return CorpVault(boto3.client("dynamodb"), outputs["CorpVaultTableName"], sealer)


def secret_names() -> set[str]:
    pages = boto3.client("secretsmanager").get_paginator("list_secrets").paginate()
    return {secret["Name"] for page in pages for secret in page["SecretList"]}


def test_migration_copies_verifies_keeps_newer_and_deletes_only_when_asked(
    deployment: Deployment, serve_line: Path
) -> None:
    names = seed(deployment)
    store = vault(deployment)
    table = deployment.outputs()["CorpVaultTableName"]

    code, out, _ = run(serve_line, "credentials", "migrate", "--dry-run")
    assert (code, out) == (0, "credentials migrate: 100 per-corp secret(s) would be copied (dry run)\n")
    assert boto3.client("dynamodb").scan(TableName=table)["Count"] == 0

    # A function renewed one corp's token in the vault before the migration reached it: the newer one stays.
    newer = {"token": "TOKEN-renewed", "obtained_at": 30.0, "expires_at": 7230.0, "renew_after": 6930.0}
    store.write(names.corp_token(SUITE, CORPS[7]), newer, lambda new, old: True)

    code, out, err = run(serve_line, "credentials", "migrate")
    assert code == 0, out
    assert out == (
        "credentials migrate: 100 per-corp secret(s): copied 99, already in the vault 1, verified 100, "
        "deleted 0, failed 0\n"
    )
    assert "100/100 secret(s)" in err
    assert store.read(names.permanent_code(SUITE, CORPS[3])) == (
        "1",
        {"permanent_code": "PCODE-3", "suite_id": SUITE, "corp_id": CORPS[3], "obtained_at": 10.0},
    )
    kept = store.read(names.corp_token(SUITE, CORPS[7]))
    assert kept is not None
    assert kept[1]["token"] == "TOKEN-renewed"
    items = boto3.client("dynamodb").scan(TableName=table)["Items"]
    assert len(items) == 100
    assert "PCODE-" not in json.dumps([i["pk"] for i in items])
    assert all(b"PCODE-" not in i["sealed"]["B"] and b"TOKEN-" not in i["sealed"]["B"] for i in items)
    assert len(secret_names()) == 101  # nothing deleted yet
    index = VaultIndex(boto3.client("dynamodb"), table)  # what reconcile and token refresh will list
    assert sorted(index.corps(SUITE)) == CORPS
    assert len(list(index.tokens_due(SUITE, before=7225.0))) == 49  # the renewed one expires at 7230

    code, out, _ = run(serve_line, "credentials", "migrate", "--delete-old")
    assert code == 0, out
    assert out.startswith(
        "credentials migrate: 100 per-corp secret(s): copied 0, already in the vault 100, verified 100"
    )
    assert "deleted 100" in out
    assert secret_names() == {names.suite_token(SUITE)}  # suite credentials stay secrets
    assert boto3.client("dynamodb").scan(TableName=table)["Count"] == 100
