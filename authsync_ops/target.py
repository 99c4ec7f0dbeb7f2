"""Which stack the CLI works on: its outputs and how to reach its AWS (a deployed stack, or the local one)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import boto3

__all__ = ["Target", "TargetError", "from_local", "from_stack"]


MOTO_KEY = "testing"


class TargetError(RuntimeError):
    """The stack or the local description could not be read, or lacks an output the command needs."""


@dataclass
class Target:
    """A stack's outputs (``AuthEventsQueueUrl``, ``CorpsTableName``, ...) and a boto3 session to reach it."""

    outputs: dict[str, str]
    session: boto3.session.Session
    endpoint_url: str | None = None
    """moto's endpoint for the local stack; None for AWS."""
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    def output(self, name: str) -> str:
        value = self.outputs.get(name)
        if not value:
            raise TargetError(f"the stack has no output {name} (is it deployed from this version's template.yaml?)")
        return value

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service, endpoint_url=self.endpoint_url)  # type: ignore[call-overload]
        return self._clients[service]


def from_stack(name: str, *, region: str | None = None, profile: str | None = None) -> Target:
    """A deployed stack: its outputs from CloudFormation, with the caller's credentials."""
    session = boto3.session.Session(region_name=region, profile_name=profile)
    try:
        stacks = session.client("cloudformation").describe_stacks(StackName=name)["Stacks"]
    except Exception as exc:  # no credentials, no such stack, no network
        raise TargetError(f"cannot describe stack {name}: {type(exc).__name__}: {exc}") from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    return Target(outputs, session)


def from_local(source: TextIO | Path) -> Target:
    """The local stack: ``make serve``'s first JSON line (its moto endpoint, region and outputs)."""
    text = source.read_text(encoding="utf-8") if isinstance(source, Path) else source.readline()
    try:
        described = json.loads(text.splitlines()[0] if text.strip() else "")
    except (ValueError, IndexError):
        raise TargetError("--local expects make serve's first JSON line") from None
    if not isinstance(described, dict) or "moto_endpoint" not in described or "outputs" not in described:
        raise TargetError("--local: the JSON line has no moto_endpoint/outputs (a serve from an older version?)")
    session = boto3.session.Session(
        aws_access_key_id=MOTO_KEY, aws_secret_access_key=MOTO_KEY, region_name=described.get("region", "us-east-1")
    )
    endpoint = described["moto_endpoint"]  # null: moto in this process (tests)
    return Target(dict(described["outputs"]), session, str(endpoint) if endpoint else None)
