"""authsync-ops tests: the CLI reads the test deployment the way it reads ``make serve``'s first JSON line."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from authsync_dev.template import Deployment
from authsync_ops.cli import main


@pytest.fixture
def serve_line(deployment: Deployment, tmp_path: Path) -> Path:
    path = tmp_path / "serve.json"
    described = {"moto_endpoint": None, "region": "us-east-1", "outputs": deployment.outputs()}
    path.write_text(json.dumps(described) + "\n", encoding="utf-8")
    return path


def run(serve_line: Path, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["--local", str(serve_line), *args], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()
