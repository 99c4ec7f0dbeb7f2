"""template.yaml as the single source of truth for local and test infrastructure.

The SAM template is read with CloudFormation's short-form tags, its data resources
(queues, tables, topics) are created through moto's CloudFormation implementation,
and function environments are resolved against what was created. No second,
hand-written copy of a queue or table exists anywhere in the tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import yaml

__all__ = ["ROOT", "TEMPLATE", "Deployment", "deploy_data_resources", "load_template"]

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"

DATA_TYPES = frozenset(
    {"AWS::SQS::Queue", "AWS::DynamoDB::Table", "AWS::SNS::Topic", "AWS::KMS::Key", "AWS::Events::EventBus"}
)


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that turns ``!Ref x`` / ``!GetAtt a.b`` / ``!Sub s`` … into their long forms."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    if suffix == "Condition":
        return {"Condition": value}
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        data: dict[str, Any] = yaml.load(handle, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    return data


@dataclass
class Deployment:
    """The data resources of one template, created in (moto's) AWS."""

    template: dict[str, Any]
    stack_name: str
    region: str
    parameters: dict[str, str]
    physical: dict[str, str] = field(default_factory=dict)
    _attributes: dict[tuple[str, str], str] = field(default_factory=dict)

    def resource(self, logical_id: str) -> dict[str, Any]:
        resource: dict[str, Any] = self.template["Resources"][logical_id]
        return resource

    def attribute(self, logical_id: str, name: str) -> str:
        key = (logical_id, name)
        if key not in self._attributes:
            self._attributes[key] = self._lookup_attribute(logical_id, name)
        return self._attributes[key]

    def _lookup_attribute(self, logical_id: str, name: str) -> str:
        kind = self.resource(logical_id)["Type"]
        physical = self.physical[logical_id]
        if kind == "AWS::SQS::Queue":
            if name == "QueueName":
                return physical.rsplit("/", 1)[-1]
            if name == "QueueUrl":
                return physical
            if name == "Arn":
                sqs = boto3.client("sqs", region_name=self.region)
                return sqs.get_queue_attributes(QueueUrl=physical, AttributeNames=["QueueArn"])["Attributes"][
                    "QueueArn"
                ]
        if kind == "AWS::KMS::Key" and name in {"Arn", "KeyId"}:
            key = boto3.client("kms", region_name=self.region).describe_key(KeyId=physical)["KeyMetadata"]
            return str(key["Arn"] if name == "Arn" else key["KeyId"])
        if kind == "AWS::DynamoDB::Table":
            table = boto3.client("dynamodb", region_name=self.region).describe_table(TableName=physical)["Table"]
            if name == "Arn":
                return table["TableArn"]
            if name == "StreamArn":
                return table["LatestStreamArn"]
        if kind == "AWS::SNS::Topic" and name == "TopicArn":
            return physical
        if kind == "AWS::Events::EventBus" and name in {"Arn", "Name"}:
            bus = boto3.client("events", region_name=self.region).describe_event_bus(Name=physical)
            return str(bus["Arn"] if name == "Arn" else bus["Name"])
        raise KeyError(f"attribute {logical_id}.{name} is not supported locally")

    def outputs(self) -> dict[str, str]:
        """The template's Outputs that name data resources or parameters (what the operator CLI reads).

        Outputs of resources this local deployment does not create (the HTTP API, functions) are left out.
        """
        resolved: dict[str, str] = {}
        for name, output in (self.template.get("Outputs") or {}).items():
            try:
                resolved[name] = str(self.resolve(output.get("Value")))
            except (KeyError, ValueError):
                continue
        return resolved

    def resolve(self, value: Any) -> Any:
        """Resolve Ref / Fn::Sub / Fn::GetAtt / Fn::Join against parameters and created resources."""
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if "Ref" in value:
            return self._ref(value["Ref"])
        if "Fn::GetAtt" in value:
            logical, name = value["Fn::GetAtt"]
            return self.attribute(logical, name)
        if "Fn::Sub" in value:
            spec = value["Fn::Sub"]
            text, variables = (spec, {}) if isinstance(spec, str) else (spec[0], spec[1])
            return self._substitute(text, {k: str(self.resolve(v)) for k, v in variables.items()})
        if "Fn::Join" in value:
            separator, items = value["Fn::Join"]
            resolved = self.resolve(items)
            if isinstance(resolved, str):  # a CommaDelimitedList parameter, passed as "a,b"
                resolved = [part for part in resolved.split(",") if part]
            return separator.join(str(item) for item in resolved)
        return {k: self.resolve(v) for k, v in value.items()}

    def _ref(self, name: str) -> str:
        pseudo = {
            "AWS::StackName": self.stack_name,
            "AWS::Region": self.region,
            "AWS::AccountId": "123456789012",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.physical:
            return self.physical[name]
        raise KeyError(f"cannot resolve Ref {name} locally")

    def _substitute(self, text: str, variables: dict[str, str]) -> str:
        out: list[str] = []
        i = 0
        while (start := text.find("${", i)) >= 0:
            end = text.index("}", start)
            out.append(text[i:start])
            name = text[start + 2 : end]
            if name in variables:
                out.append(variables[name])
            elif "." in name:
                logical, attribute = name.split(".", 1)
                out.append(self.attribute(logical, attribute))
            else:
                out.append(str(self._ref(name)))
            i = end + 1
        out.append(text[i:])
        return "".join(out)

    def function_environment(self, logical_id: str) -> dict[str, str]:
        """A function's environment as Lambda would see it: Globals first, then its own."""
        globals_env = self.template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
        own = self.resource(logical_id)["Properties"].get("Environment", {}).get("Variables", {})
        return {k: str(self.resolve(v)) for k, v in {**globals_env, **own}.items()}


MOTO_ACCOUNT_ID = "123456789012"


def _for_moto(resource: dict[str, Any], region: str) -> dict[str, Any]:
    """A resource as moto's CloudFormation can create it; the template's own text is unchanged.

    moto stores an ``AWS::KMS::Key``'s ``KeyPolicy`` object as it is and then fails every
    key operation parsing it as JSON text (AWS accepts either form). The policy goes as
    text, its ``Fn::Sub`` ARNs resolved for moto's account, partition and region.
    """
    properties = resource.get("Properties") or {}
    policy = properties.get("KeyPolicy")
    if resource["Type"] != "AWS::KMS::Key" or not isinstance(policy, dict):
        return resource
    names = {"AWS::Partition": "aws", "AWS::AccountId": MOTO_ACCOUNT_ID, "AWS::Region": region}

    def resolved(value: Any) -> Any:
        if isinstance(value, dict) and set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
            text: str = value["Fn::Sub"]
            for name, replacement in names.items():
                text = text.replace("${" + name + "}", replacement)
            return text
        if isinstance(value, dict):
            return {k: resolved(v) for k, v in value.items()}
        if isinstance(value, list):
            return [resolved(v) for v in value]
        return value

    return {**resource, "Properties": {**properties, "KeyPolicy": json.dumps(resolved(policy))}}


def deploy_data_resources(
    stack_name: str,
    parameters: dict[str, str] | None = None,
    *,
    region: str = "us-east-1",
    path: Path = TEMPLATE,
) -> Deployment:
    """Create the template's data resources through CloudFormation (moto) and describe them."""
    template = load_template(path)
    declared = template.get("Parameters", {})
    values = {name: str(spec.get("Default", "")) for name, spec in declared.items()}
    values.update(parameters or {})
    resources = {k: _for_moto(v, region) for k, v in template["Resources"].items() if v["Type"] in DATA_TYPES}
    body = {"AWSTemplateFormatVersion": "2010-09-09", "Parameters": declared, "Resources": resources}
    cfn = boto3.client("cloudformation", region_name=region)
    cfn.create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps(body),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()],
    )
    described = cfn.describe_stack_resources(StackName=stack_name)["StackResources"]
    physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in described if r.get("PhysicalResourceId")}
    # moto's CloudFormation creates an event bus but names no physical id for it: the bus's Name is its id.
    events = boto3.client("events", region_name=region)
    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::Events::EventBus" and logical_id not in physical:
            name = Deployment(template, stack_name, region, values).resolve(resource["Properties"]["Name"])
            events.describe_event_bus(Name=name)  # created by the stack (raises if it was not)
            physical[logical_id] = str(name)
    missing = set(resources) - set(physical)
    if missing:
        raise RuntimeError(f"moto did not create {sorted(missing)}")
    # moto's CloudFormation ignores TimeToLiveSpecification; apply it as AWS would.
    dynamodb = boto3.client("dynamodb", region_name=region)
    for logical_id, resource in resources.items():
        ttl = resource["Properties"].get("TimeToLiveSpecification")
        if resource["Type"] == "AWS::DynamoDB::Table" and ttl and ttl.get("Enabled"):
            dynamodb.update_time_to_live(
                TableName=physical[logical_id],
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
    return Deployment(template, stack_name, region, values, physical)
