"""The local stack runs the built artifact (``.aws-sam/build``): what is deployed is what ran.

``make build`` (``sam build``) must have run first; ``make test`` does. The build is checked
against the sources (:func:`authsync_dev.built_layer.check_fresh`), then ``serve`` runs
``.aws-sam/build/template.yaml`` in a subprocess with the built layer's host view on
``PYTHONPATH`` (:func:`authsync_dev.built_layer.build_host_view`: the layer as built, but for
the arm64 native wheels, swapped for this environment's copies of the same versions). One
install travels the whole pipeline over HTTP, as a user's would. ``PYTHONVERBOSE`` makes the
interpreter itself report where every module's code came from: the test holds it to "our
package and the layer's pure-Python dependencies from the build's shipped ``.pyc``, the handlers
from the build's ``app.py``, the swapped native modules from this environment".
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import sysconfig
import time
from dataclasses import asdict
from pathlib import Path

import pytest
import requests

from authsync_dev.build_freshness import BUILD_DIR, BUILT_TEMPLATE, check_fresh, pyc_source_hash
from authsync_dev.built_layer import HostView, build_host_view, layer_python_dir
from authsync_dev.emulator import sample_chat_editions
from authsync_dev.local_api import signed
from tests.authsync_dev.processes import first_line

ROOT = Path(__file__).resolve().parents[2]

# python -v writes a message and its newline separately, and print() writes a line and its newline
# separately: a handler's JSON log line from another thread may be glued before or after a message.
# So the messages are searched for, not matched whole; no path here contains "{" (JSON's start).
_MATCHES = re.compile(r"# (/\S+\.pyc) matches (/[^\s{]+\.py)(?=$|\{)")
_FROM_SOURCE = re.compile(r"# code object from (/[^\s{]+\.py)(?=$|\{)")
_IMPORTED = re.compile(r"import '([\w.]+)' # <_frozen_importlib_external\.SourceFileLoader ")
_EXTENSION = re.compile(r"# extension module '([\w.]+)' loaded from '(/[^\s{']+)'(?=$|\{)")


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _module_source(site: Path, name: str) -> Path:
    base = site.joinpath(*name.split("."))
    return base / "__init__.py" if (base / "__init__.py").is_file() else base.with_suffix(".py")


def _host_view(tmp_path: Path) -> HostView:
    if not BUILT_TEMPLATE.is_file():
        pytest.fail(f"run make build first (make test does): {BUILT_TEMPLATE} does not exist")
    check_fresh()
    layer = layer_python_dir()
    view = build_host_view(layer, tmp_path / "site")
    assert "authsync" in view.from_layer
    assert {"pydantic", "aws_lambda_powertools", "requests"} <= set(view.from_layer)
    assert not {s.name for s in view.substituted} & {"pydantic", "aws_lambda_powertools", "requests"}
    for substitution in view.substituted:  # the same version, from the environment, never from the build
        assert not substitution.location.is_relative_to(BUILD_DIR.resolve())
        assert not set(substitution.entries) & set(view.from_layer)
    return view


def test_the_local_stack_runs_the_built_template_layer_and_bytecode(tmp_path):
    view = _host_view(tmp_path)
    layer = view.layer
    built_files = _files(BUILD_DIR)
    config = tmp_path / "local.json"
    config.write_text(json.dumps({"ticket_interval": 0}), encoding="utf-8")
    env = {
        **os.environ,
        "PYTHONPATH": str(view.site),
        "PYTHONDONTWRITEBYTECODE": "1",  # the build stays as shipped (/opt is read-only on Lambda)
        "PYTHONVERBOSE": "1",  # the interpreter reports where each module's code object came from
    }
    stderr_path = tmp_path / "serve.stderr"
    command = [sys.executable, "-m", "authsync_dev.serve", "--config", str(config), "--template", str(BUILT_TEMPLATE)]
    with stderr_path.open("w", encoding="utf-8") as stderr:
        process = subprocess.Popen(
            [*command, "--visibility-scale", "0.01"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        try:
            info = json.loads(first_line(process, 90))
            code = info["code"]
            assert Path(code["template"]) == BUILT_TEMPLATE.resolve()
            authsync_dir = Path(code["authsync"])
            assert authsync_dir == view.site / "authsync"  # imported through the view ...
            assert authsync_dir.resolve() == layer / "authsync"  # ... which is the built layer
            assert code["functions"]
            for logical_id, handler in code["functions"].items():
                assert Path(handler) == BUILD_DIR.resolve() / logical_id / "app.py"

            suite_id = info["suites"][0]["suite_id"]
            admin = info["emulator_admin_url"]
            corpid = "wwbuiltcorp0000001"
            created = requests.post(f"{admin}/corps", json={"corpid": corpid, "verified": True}, timeout=10)
            assert created.status_code == 200, created.text
            editions = [asdict(edition) for edition in sample_chat_editions()]
            pushed = requests.post(
                f"{admin}/push/create_auth",
                json={"suite_id": suite_id, "corpid": corpid, "chat_editions": editions},
                timeout=30,
            )
            assert pushed.status_code == 200, pushed.text
            delivery = pushed.json()["delivery"]
            assert delivery["delivered"], delivery
            assert delivery["attempts"][-1]["url"] == info["callback_url"].format(suite_id=suite_id)

            query = info["query_url"].format(suite_id=suite_id, corp_id=corpid)
            deadline = time.monotonic() + 60
            while True:
                answer = requests.get(query, headers=signed("GET", query), timeout=10)
                state = answer.json() if answer.status_code == 200 else {}
                if (
                    state.get("versions") == {"auth_info": 1, "chatdata": 1, "license": 0, "orders": 0}
                    or time.monotonic() > deadline
                ):
                    break
                time.sleep(0.2)
            assert answer.status_code == 200, answer.text
            assert state["status"] == "active"
            assert state["corp"]["corp_type"] == "verified"
            assert state["versions"] == {"auth_info": 1, "chatdata": 1, "license": 0, "orders": 0}

            # The built token broker serves the corp a token (to a signed request, as API Gateway needs).
            token_url = info["token_url"].format(suite_id=suite_id, corp_id=corpid)
            assert requests.get(token_url, timeout=10).status_code == 403
            token = requests.get(token_url, headers=signed("GET", token_url), timeout=30)
            assert token.status_code == 200, token.text
            assert token.headers["Cache-Control"] == "no-store"
            assert set(token.json()) == {"access_token", "expires_at"}
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                rest, _ = process.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                raise
    log = stderr_path.read_text(encoding="utf-8", errors="replace").splitlines()
    assert process.returncode == 0, "\n".join(line for line in log if not line.startswith(("#", "import "))[-60:])
    assert rest == ""  # stdout carries the one JSON line only

    from_bytecode = {Path(m.group(2)): Path(m.group(1)) for line in log if (m := _MATCHES.search(line))}
    from_source = {Path(m.group(1)) for line in log if (m := _FROM_SOURCE.search(line))}
    imported = {m.group(1) for line in log if (m := _IMPORTED.search(line))}
    extensions = {m.group(1): Path(m.group(2)) for line in log if (m := _EXTENSION.search(line))}

    # Every authsync module the process imported ran from the built layer's shipped bytecode.
    ours = sorted(name for name in imported if name == "authsync" or name.startswith("authsync."))
    assert len(ours) >= 5, ours
    for name in ours:
        source = _module_source(view.site, name)
        pyc = from_bytecode.get(source)
        assert pyc is not None, f"{name} was not executed from {source}'s bytecode"
        assert pyc.resolve().is_relative_to(layer / "authsync")
        flags, recorded = pyc_source_hash(pyc)
        assert flags == 0b01  # unchecked-hash, as shipped to Lambda: executed without looking at the .py
        assert recorded == importlib.util.source_hash(source.resolve().read_bytes())  # compiled from the built .py
    # Nothing from the view was compiled here; its pure-Python dependencies ran from their .pyc too.
    assert not [path for path in from_source if path.is_relative_to(view.site)]
    used = {source.relative_to(view.site).parts[0] for source in from_bytecode if source.is_relative_to(view.site)}
    assert {"authsync", "pydantic", "aws_lambda_powertools", "requests", "typing_extensions.py"} <= used
    # Neither the sources nor the environment's copies of the layer's pure packages were executed.
    purelib = Path(sysconfig.get_paths()["purelib"]).resolve()
    layer_names = {Path(entry).name.removesuffix(".py") for entry in view.from_layer}
    for source in {*from_bytecode, *from_source}:
        resolved = source.resolve()
        assert not resolved.is_relative_to(ROOT / "layers"), source
        if resolved.is_relative_to(purelib):
            assert resolved.relative_to(purelib).parts[0].removesuffix(".py") not in layer_names, source
    # The handlers ran from the build's app.py files (SAM ships them as source; Lambda compiles them).
    ran = {path.parent.name for path in from_source if path.resolve().is_relative_to(BUILD_DIR.resolve())}
    assert {
        "CallbackIngestFunction",
        "AuthInfoFunction",
        "ChatdataFunction",
        "CorpQueryFunction",
        "TokenBrokerFunction",
    } <= ran
    # The swapped native modules came from this environment, at the layer's versions (checked by the view).
    assert {"pydantic_core._pydantic_core", "cryptography.hazmat.bindings._rust"} <= set(extensions)
    for substitution in view.substituted:
        for name, path in extensions.items():
            if name.split(".")[0] in {Path(e).name.split(".")[0] for e in substitution.entries}:
                assert path.resolve().is_relative_to(substitution.location), (name, path)
    assert not [path for path in extensions.values() if path.resolve().is_relative_to(BUILD_DIR.resolve())]
    # Nothing was written into the build (no __pycache__ for the handlers, no recompiled .pyc).
    assert _files(BUILD_DIR) == built_files
