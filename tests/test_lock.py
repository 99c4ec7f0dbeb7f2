"""The layer's lock is what the tests run on, and it ships nothing the runtime already has.

``make venv`` installs ``layers/authsync/requirements.txt`` (hash-checked) before the dev
tools; if a dev tool's own requirements moved one of those versions, the tests would no
longer exercise what deploys. ``make lock-check`` covers the other direction (the lock
against pyproject.toml).
"""

from __future__ import annotations

import importlib.metadata
import re

from authsync_dev.build_freshness import locked_versions
from authsync_dev.template import ROOT

LOCK = ROOT / "layers" / "authsync" / "requirements.txt"


def pins() -> dict[str, str]:
    found = locked_versions(LOCK)
    assert found, "the lock pins nothing"
    return found


def test_every_pin_carries_hashes() -> None:
    blocks = re.split(r"\n(?=[A-Za-z0-9])", LOCK.read_text().split("\n", 2)[2])
    assert len(blocks) == len(pins())
    assert all("--hash=sha256:" in block for block in blocks)


def test_the_test_environment_runs_the_locked_versions() -> None:
    moved = {
        name: (pinned, importlib.metadata.version(name))
        for name, pinned in pins().items()
        if importlib.metadata.version(name) != pinned
    }
    assert moved == {}, f"installed versions differ from the layer's lock (pinned, installed): {moved}"


def test_the_layer_ships_no_aws_sdk_or_xray_sdk() -> None:
    """The Lambda runtime provides boto3; a second botocore in /opt would shadow it unpredictably."""
    assert not {"boto3", "botocore", "s3transfer", "aws-xray-sdk"} & set(pins())
    assert {"aws-lambda-powertools", "pydantic", "cryptography", "requests"} <= set(pins())
