"""The one local world: AWS from template.yaml (moto) plus the WeCom emulator, with suites registered in both.

Everything that runs the pipeline locally starts here: the tests and benchmarks that drive
handlers directly (:func:`build_world`, one test suite, inside ``mock_aws``) and the local
stack (:class:`authsync_dev.stack.LocalStack`, several suites, moto in server mode), which
builds on :func:`provision` and adds the HTTP API, pollers and schedules. :func:`provision`
creates the template's data resources, registers each suite in the emulator and as a suite
config secret, and computes every function's environment as the template gives it, with
WeCom's API base pointed at the emulator. The caller owns the moto context (``mock_aws``
or a moto server reached through ``AWS_ENDPOINT_URL``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from pydantic import SecretStr

from authsync.aws.credentials import SecretNames
from authsync.aws.suites import SuiteConfig
from authsync.aws.tickets import TicketStore
from authsync_dev.template import TEMPLATE, Deployment, deploy_data_resources
from authsync_dev.wecom import TEST_SUITE, TestSuite

if TYPE_CHECKING:
    from authsync_dev.emulator import Emulator

__all__ = ["World", "build_world", "provision", "suite_config_document", "suites_provider"]


def suite_config_document(suite: SuiteConfig) -> str:
    """The JSON stored in ``<SUITE_SECRET_PREFIX><suite_id>/config`` (README shape, secrets revealed)."""
    document: dict[str, Any] = {
        "suite_id": suite.suite_id,
        "suite_secret": suite.suite_secret.get_secret_value(),
        "token": suite.token.get_secret_value(),
        "encoding_aes_key": suite.encoding_aes_key.get_secret_value(),
        "kind": suite.kind,
        "personal_provider": suite.personal_provider,
    }
    if suite.provider_corpid:
        document["provider_corpid"] = suite.provider_corpid
    if suite.provider_secret is not None:
        document["provider_secret"] = suite.provider_secret.get_secret_value()
    return json.dumps(document)


def suites_provider(suites: Sequence[SuiteConfig]) -> tuple[str | None, str | None]:
    """The provider corpid and secret the suites name (the first of each), for the emulator to play."""
    corpid = next((s.provider_corpid for s in suites if s.provider_corpid), None)
    secret = next((s.provider_secret.get_secret_value() for s in suites if s.provider_secret is not None), None)
    return corpid, secret


@dataclass
class World:
    """The data resources, the emulator (None against real WeCom) and the suites registered in both."""

    deployment: Deployment
    emulator: Emulator | None
    suites: tuple[SuiteConfig, ...]
    environments: dict[str, dict[str, str]]
    """Every function's environment by logical id, as the template gives it (WeCom base: the emulator)."""

    @property
    def suite(self) -> SuiteConfig:
        """The first (for :func:`build_world`: the only) suite."""
        return self.suites[0]

    @property
    def wecom(self) -> Emulator:
        if self.emulator is None:
            raise RuntimeError("this world runs against real WeCom: there is no emulator")
        return self.emulator

    def environment(self, function: str) -> dict[str, str]:
        return self.environments[function]

    @property
    def suite_prefix(self) -> str:
        return self.environment("AuthInfoFunction")["SUITE_SECRET_PREFIX"]

    def deliver_ticket(self) -> str:
        """WeCom pushes a ticket; store it as callback-ingest would (no HTTP hop needed here)."""
        emulator, suite_id = self.wecom, self.suite.suite_id
        emulator.push_suite_ticket(suite_id)
        ticket = emulator.ticket(suite_id)
        assert ticket is not None
        names = SecretNames(self.suite_prefix)
        TicketStore(boto3.client("secretsmanager"), names.ticket).store(suite_id, ticket, int(emulator.now()))
        return ticket

    def queue_url(self, logical_id: str) -> str:
        return self.deployment.physical[logical_id]

    def receive_all(self, logical_id: str, *, wait: int = 0) -> list[Any]:
        """Drain a queue (messages are deleted): for tests that inspect what was sent."""
        sqs = boto3.client("sqs")
        messages: list[Any] = []
        while True:
            got = sqs.receive_message(
                QueueUrl=self.queue_url(logical_id),
                MaxNumberOfMessages=10,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
                WaitTimeSeconds=wait,
            ).get("Messages", [])
            if not got:
                return messages
            for message in got:
                sqs.delete_message(QueueUrl=self.queue_url(logical_id), ReceiptHandle=message["ReceiptHandle"])
            messages.extend(got)


def provision(
    emulator: Emulator | None,
    suites: Sequence[SuiteConfig],
    *,
    stack_name: str,
    parameters: Mapping[str, str] | None = None,
    region: str = "us-east-1",
    path: Path = TEMPLATE,
) -> World:
    """Register ``suites`` in the emulator, create the data resources and the suites' config secrets."""
    if not suites:
        raise ValueError("a world needs at least one suite")
    if emulator is not None:
        for suite in suites:
            emulator.add_suite(
                suite.suite_id,
                suite.suite_secret.get_secret_value(),
                suite.token.get_secret_value(),
                suite.encoding_aes_key.get_secret_value(),
                kind=suite.kind,
                provider_corpid=suite.provider_corpid,
                provider_secret=suite.provider_secret.get_secret_value() if suite.provider_secret is not None else None,
            )
        # The emulator is the suites' provider: their stored configs carry its credentials.
        provider = emulator.provider
        update = {"provider_corpid": provider.corpid, "provider_secret": SecretStr(provider.secret)}
        suites = [suite.model_copy(update=update) for suite in suites]
    deployment = deploy_data_resources(stack_name, dict(parameters or {}), region=region, path=path)
    functions = [k for k, v in deployment.template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"]
    environments = {logical_id: deployment.function_environment(logical_id) for logical_id in functions}
    if emulator is not None:
        for env in environments.values():
            if "WECOM_API_BASE" in env:
                env["WECOM_API_BASE"] = emulator.base_url
    prefixes = {env["SUITE_SECRET_PREFIX"] for env in environments.values() if "SUITE_SECRET_PREFIX" in env}
    if len(prefixes) != 1:
        raise ValueError(f"the functions should share one SUITE_SECRET_PREFIX, found {sorted(prefixes)}")
    names = SecretNames(prefixes.pop())
    secrets = boto3.client("secretsmanager", region_name=region)
    for suite in suites:
        secrets.create_secret(Name=names.config(suite.suite_id), SecretString=suite_config_document(suite))
    return World(deployment, emulator, tuple(suites), environments)


def build_world(
    emulator: Emulator,
    *,
    stack_name: str = "authsync-world",
    suite: TestSuite = TEST_SUITE,
    kind: str = "third_party",
    parameters: Mapping[str, str] | None = None,
) -> World:
    """One test suite of ``kind`` (``third_party`` or ``customized``) on the template's data resources.

    ``parameters`` are template parameters beside ``Stage=dev`` (e.g. ``CorpCredentialStore``).
    """
    config = SuiteConfig.model_validate({**suite.config(), "kind": kind})
    return provision(emulator, [config], stack_name=stack_name, parameters={"Stage": "dev", **(parameters or {})})
