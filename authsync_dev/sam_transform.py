"""template.yaml through SAM's own transform (aws-sam-translator), offline, as CloudFormation sees it.

cfn-lint does not run the SAM translator any more, and the local stack reads the SAM
template itself, so neither notices a template that SAM refuses to transform (an IAM
authorizer on a route of an API that defines none, say). This module runs the
transform that ``sam deploy`` runs, without an AWS account: local ``CodeUri`` /
``ContentUri`` paths become placeholder S3 URIs (what ``sam validate`` does), and
managed policies named in the template resolve from :data:`MANAGED_POLICIES` instead
of an IAM ``ListPolicies`` call.

aws-sam-translator lives in ``.venv-sam`` with aws-sam-cli, not in ``.venv``: it pins
pydantic (``~=2.13`` today), and ``.venv`` must run exactly the layer's locked versions.
So :func:`translate` runs this module under ``.venv-sam``'s interpreter
(``AUTHSYNC_SAM_PYTHON`` overrides) and reads the result back.

``python -m authsync_dev.sam_transform [-o FILE] [--parameter Name=Value ...]`` (under
``.venv-sam``) writes the translated template as JSON (``make lint`` runs cfn-lint on it).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from authsync_dev.template import ROOT, TEMPLATE

__all__ = ["MANAGED_POLICIES", "TranslationError", "sam_python", "translate", "translate_here"]

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


def sam_python() -> Path:
    """The interpreter that has aws-sam-translator (``.venv-sam``, which ``make`` creates)."""
    path = Path(os.environ.get("AUTHSYNC_SAM_PYTHON", ROOT / ".venv-sam" / "bin" / "python"))
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found: run `make .venv-sam/.installed` (make test does) or set AUTHSYNC_SAM_PYTHON"
        )
    return path


def translate(template: dict[str, Any], parameters: dict[str, str] | None = None) -> dict[str, Any]:
    """The CloudFormation template SAM produces from ``template`` (a parsed SAM template), via ``.venv-sam``."""
    with tempfile.TemporaryDirectory() as tmp:
        source, output = Path(tmp, "sam.json"), Path(tmp, "cfn.json")
        source.write_text(json.dumps(template), encoding="utf-8")
        arguments = [
            str(sam_python()),
            "-m",
            "authsync_dev.sam_transform",
            "--template",
            str(source),
            "-o",
            str(output),
        ]
        arguments += [f"--parameter={k}={v}" for k, v in (parameters or {}).items()]
        done = subprocess.run(arguments, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)  # noqa: S603 - our own interpreter and module
        if done.returncode == 3:
            raise TranslationError(json.loads(done.stdout)["causes"])
        if done.returncode != 0:
            raise RuntimeError(f"aws-sam-translator did not run ({done.returncode}): {done.stderr[-2000:]}")
        result: dict[str, Any] = json.loads(output.read_text(encoding="utf-8"))
        return result


def translate_here(
    template: dict[str, Any], parameters: dict[str, str] | None = None, *, region: str = "us-east-1"
) -> dict[str, Any]:
    """The transform in this interpreter (it must have aws-sam-translator: ``.venv-sam``)."""
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


def _read(path: Path) -> dict[str, Any]:
    """A SAM template file: YAML with CloudFormation's short-form tags (JSON is YAML too)."""
    from samtranslator.yaml_helper import yaml_parse

    template: dict[str, Any] = yaml_parse(path.read_text(encoding="utf-8"))
    return template


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", type=Path, default=TEMPLATE)
    parser.add_argument("-o", "--output", type=Path, help="write the translated template here (default: stdout)")
    parser.add_argument("--parameter", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    parameters = dict(p.split("=", 1) for p in args.parameter)
    try:
        translated = translate_here(_read(args.template), parameters)
    except TranslationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        print(json.dumps({"causes": exc.causes}))
        return 3
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
