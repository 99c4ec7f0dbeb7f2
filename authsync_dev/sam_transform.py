"""template.yaml through SAM's own transform (aws-sam-translator), offline, as CloudFormation sees it.

cfn-lint does not run the SAM translator any more, and the local stack reads the SAM
template itself, so neither notices a template that SAM refuses to transform (an IAM
authorizer on a route of an API that defines none, say). This module runs the
transform that ``sam deploy`` runs, without an AWS account: local ``CodeUri`` /
``ContentUri`` paths become placeholder S3 URIs (what ``sam validate`` does), and
managed policies named in the template resolve from :data:`MANAGED_POLICIES` instead
of an IAM ``ListPolicies`` call.

``python -m authsync_dev.sam_transform [-o FILE] [--parameter Name=Value ...]`` writes
the translated template as JSON (``make lint`` runs cfn-lint on it).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

from authsync_dev.template import TEMPLATE

__all__ = ["MANAGED_POLICIES", "TranslationError", "translate", "translate_file"]

MANAGED_POLICIES = {
    # SAM attaches these two by ARN itself; listed so a template that names them still translates offline.
    "AWSLambdaBasicExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "AWSXrayWriteOnlyAccess": "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
}
_PLACEHOLDER = "s3://authsync-placeholder-bucket/artifact.zip"
_LOCAL_URIS = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
    "AWS::Serverless::HttpApi": "DefinitionUri",
    "AWS::Serverless::Api": "DefinitionUri",
}


class TranslationError(ValueError):
    """SAM's transform refused the template; ``causes`` are its messages, one per problem."""

    def __init__(self, causes: list[str]) -> None:
        super().__init__("SAM's transform refused the template: " + "; ".join(causes))
        self.causes = causes


def _with_placeholder_uris(template: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(template)
    for resource in out.get("Resources", {}).values():
        key = _LOCAL_URIS.get(resource.get("Type", ""))
        properties = resource.get("Properties", {})
        if key and isinstance(properties.get(key), str) and not properties[key].startswith("s3://"):
            properties[key] = _PLACEHOLDER
    return out


def translate(
    template: dict[str, Any], parameters: dict[str, str] | None = None, *, region: str = "us-east-1"
) -> dict[str, Any]:
    """The CloudFormation template SAM produces from ``template`` (a parsed SAM template)."""
    import boto3
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    translator = Translator(
        managed_policy_map=dict(MANAGED_POLICIES),
        sam_parser=Parser(),
        boto_session=boto3.session.Session(region_name=region),
    )
    try:
        result: dict[str, Any] = translator.translate(
            sam_template=_with_placeholder_uris(template),
            parameter_values={"AWS::Region": region, **(parameters or {})},
        )
    except InvalidDocumentException as exc:
        raise TranslationError([str(cause) for cause in exc.causes]) from exc
    return result


def translate_file(path: Path = TEMPLATE, parameters: dict[str, str] | None = None) -> dict[str, Any]:
    from samtranslator.yaml_helper import yaml_parse

    template: dict[str, Any] = yaml_parse(path.read_text(encoding="utf-8"))
    return translate(template, parameters)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", type=Path, default=TEMPLATE)
    parser.add_argument("-o", "--output", type=Path, help="write the translated template here (default: stdout)")
    parser.add_argument("--parameter", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    parameters = dict(p.split("=", 1) for p in args.parameter)
    try:
        translated = translate_file(args.template, parameters)
    except TranslationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    text = json.dumps(translated, indent=1, sort_keys=True)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n", encoding="utf-8")
        print(
            f"{args.template.name}: SAM's transform produced {len(translated['Resources'])} resources → {args.output}"
        )
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
