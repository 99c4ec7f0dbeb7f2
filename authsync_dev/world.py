"""A local world for the fetch pipeline: AWS from template.yaml (moto) plus the WeCom emulator.

Used by tests, benchmarks and the local stack. It creates the template's data
resources, registers one suite both in the emulator and as a suite config secret, and
computes each function's environment as the template gives it, with WeCom's API
base pointed at the emulator. The caller owns the moto context (``mock_aws`` or a
moto server reached through ``AWS_ENDPOINT_URL``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3

from authsync.aws.credentials import SecretNames
from authsync.aws.tickets import TicketStore
from authsync_dev.template import Deployment, deploy_data_resources
from authsync_dev.wecom import TEST_SUITE, TestSuite

if TYPE_CHECKING:
    from authsync_dev.emulator import Emulator

__all__ = ["World", "build_world"]


@dataclass
class World:
    deployment: Deployment
    emulator: Emulator
    suite: TestSuite
    kind: str = "third_party"
    environments: dict[str, dict[str, str]] = field(default_factory=dict)

    def environment(self, function: str) -> dict[str, str]:
        if function not in self.environments:
            env = self.deployment.function_environment(function)
            env["WECOM_API_BASE"] = self.emulator.base_url
            self.environments[function] = env
        return self.environments[function]

    @property
    def suite_prefix(self) -> str:
        return self.environment("AuthInfoFunction")["SUITE_SECRET_PREFIX"]

    def deliver_ticket(self) -> str:
        """WeCom pushes a ticket; store it as callback-ingest would (no HTTP hop needed here)."""
        self.emulator.push_suite_ticket(self.suite.suite_id)
        ticket = self.emulator.ticket(self.suite.suite_id)
        assert ticket is not None
        names = SecretNames(self.suite_prefix)
        TicketStore(boto3.client("secretsmanager"), names.ticket).store(
            self.suite.suite_id, ticket, int(self.emulator.now())
        )
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


def build_world(
    emulator: Emulator,
    *,
    stack_name: str = "authsync-world",
    suite: TestSuite = TEST_SUITE,
    kind: str = "third_party",
) -> World:
    """Create AWS resources and register ``suite`` in the emulator and in Secrets Manager."""
    deployment = deploy_data_resources(stack_name, {"Stage": "dev"})
    emulator.add_suite(
        suite.suite_id,
        suite.suite_secret,
        suite.token,
        suite.encoding_aes_key,
        kind="customized" if kind == "customized" else "third_party",
        provider_corpid=suite.provider_corpid,
    )
    world = World(deployment, emulator, suite, kind)
    config = {**suite.config(), "kind": kind}
    boto3.client("secretsmanager").create_secret(
        Name=SecretNames(world.suite_prefix).config(suite.suite_id), SecretString=json.dumps(config)
    )
    return world
