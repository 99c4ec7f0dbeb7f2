"""authsync-ops credentials migrate on a running local stack: 50 corps installed through the real pipeline
with a secret per credential (CorpCredentialStore=SecretsManager), then moved into the vault."""

from __future__ import annotations

import io
import json
from pathlib import Path

from authsync.aws.credentials import SecretNames, secret_names
from authsync.aws.kms import KmsSealer
from authsync.aws.vault import CorpVault, VaultIndex
from authsync_dev.stack import LocalStack
from authsync_dev.stack_config import StackConfig
from authsync_ops.cli import main

CORPS = [f"wwcorpstackmig{i:04d}" for i in range(50)]


def migrate(line: Path, *args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    assert main(["--local", str(line), "credentials", "migrate", *args], stdout=out, stderr=err) == 0, err.getvalue()
    return out.getvalue()


def test_a_running_stack_with_50_installed_corps_moves_its_secrets_into_the_vault(tmp_path: Path) -> None:
    config = StackConfig(parameters={"CorpCredentialStore": "SecretsManager"}, concurrency=2)
    with LocalStack(config, visibility_scale=1 / 180, schedules=False) as stack:
        wecom, suite = stack.emulator, stack.suites[0].suite_id
        for corp in CORPS:
            wecom.add_corp(corp)
            wecom.create_auth(suite, corp)  # pushed to the stack's callback URL, as WeCom does
        stack.wait_idle(180)
        environment = stack.deployment.function_environment("AuthInfoFunction")
        names = SecretNames(environment["SUITE_SECRET_PREFIX"], environment["CORP_SECRET_PREFIX"])
        secrets = stack.client("secretsmanager")
        assert len(list(secret_names(secrets, names.corp_prefix))) == 100  # a code and a token per corp
        line = tmp_path / "serve.json"
        line.write_text(json.dumps(stack.describe()) + "\n", encoding="utf-8")

        assert migrate(line, "--dry-run") == "credentials migrate: 100 per-corp secret(s) would be copied (dry run)\n"
        assert migrate(line) == (
            "credentials migrate: 100 per-corp secret(s): copied 100, already in the vault 0, verified 100, "
            "deleted 0, failed 0\n"
        )
        table = stack.deployment.physical["CorpVaultTable"]
        vault = CorpVault(
            stack.client("dynamodb"), table, KmsSealer(stack.client("kms"), environment["CREDENTIALS_KEY"])
        )
        for corp in CORPS:  # what WeCom issued, opened through KMS
            stored = vault.read(names.permanent_code(suite, corp))
            assert stored is not None
            assert stored[1]["permanent_code"] == wecom.authorization(suite, corp).permanent_code
        assert sorted(VaultIndex(stack.client("dynamodb"), table).corps(suite)) == CORPS

        assert "deleted 100" in migrate(line, "--delete-old")
        assert list(secret_names(secrets, names.corp_prefix)) == []
        # config, ticket, suite token and the provider's token (the open_corpid lookups) stay
        assert len(list(secret_names(secrets, names.suite_prefix))) == 4
