"""``python -m authsync_dev.emulator`` as a separate process: starts, prints its URLs, answers, stops on signals."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from authsync_dev.wecom import TEST_SUITE

ROOT = Path(__file__).resolve().parents[2]


def _start(*args: str) -> tuple[subprocess.Popen[str], dict[str, object]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "authsync_dev.emulator", "--port", "0", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.kill()
        raise AssertionError(process.communicate(timeout=5)[1])
    return process, json.loads(line)


@pytest.mark.parametrize("stop_with", [signal.SIGTERM, signal.SIGINT])
def test_cli_serves_and_stops_cleanly(stop_with, receiver):
    process, info = _start("--callback-url", receiver.url, "--ticket-interval", "0", "--demo")
    try:
        base = str(info["base_url"])
        assert base.startswith("http://127.0.0.1:")
        assert info["api_url"] == base + "/cgi-bin"
        assert info["suites"] == [TEST_SUITE.suite_id]
        assert len(info["corps"]) == 2  # type: ignore[arg-type]
        line = json.dumps(info)
        assert TEST_SUITE.suite_secret not in line
        assert TEST_SUITE.token not in line

        answer = requests.post(f"{base}/cgi-bin/service/get_suite_token", json={}, timeout=5).json()
        assert answer["errcode"] == 40083
        suite = requests.get(f"{base}/admin/suite", params={"suite_id": TEST_SUITE.suite_id}, timeout=5).json()
        assert suite["suite_secret"] == TEST_SUITE.suite_secret
        ticket = requests.post(f"{base}/admin/push/suite_ticket", json={"suite_id": TEST_SUITE.suite_id}, timeout=10)
        assert ticket.json()["delivery"]["delivered"] is True
        body = {
            "suite_id": TEST_SUITE.suite_id,
            "suite_secret": TEST_SUITE.suite_secret,
            "suite_ticket": ticket.json()["suite_ticket"],
        }
        token = requests.post(f"{base}/cgi-bin/service/get_suite_token", json=body, timeout=5).json()[
            "suite_access_token"
        ]
        corpid = "wwemulatordemo0001"
        auth = requests.get(
            f"{base}/admin/authorization", params={"suite_id": TEST_SUITE.suite_id, "corpid": corpid}, timeout=5
        ).json()
        info_body = {"auth_corpid": corpid, "permanent_code": auth["permanent_code"]}
        auth_info = requests.post(
            f"{base}/cgi-bin/service/get_auth_info", params={"suite_access_token": token}, json=info_body, timeout=5
        ).json()
        assert auth_info["auth_corp_info"]["corp_type"] == "verified"
    finally:
        process.send_signal(stop_with)
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert TEST_SUITE.suite_secret not in stderr


def test_cli_with_a_suite_config_file(tmp_path):
    config = tmp_path / "suite.json"
    config.write_text(
        json.dumps(
            {
                "suite_id": "dkclitest00000001",
                "suite_secret": "s",
                "token": "t",
                "encoding_aes_key": "a" * 43,
                "kind": "customized",
                "provider_corpid": "wwcliprovider00001",
                "provider_secret": "cli-provider-secret",
            }
        )
    )
    process, info = _start("--suite-config", str(config))
    try:
        assert info["suites"] == ["dkclitest00000001"]
        assert info["callback_url"] is None
        assert info["ticket_interval"] is None
        health = requests.get(f"{info['admin_url']}/health", timeout=5)
        assert health.json() == {"ok": True}
        suite = requests.get(f"{info['admin_url']}/suite", params={"suite_id": "dkclitest00000001"}, timeout=5).json()
        assert (suite["provider_corpid"], suite["provider_secret"]) == ("wwcliprovider00001", "cli-provider-secret")
        body = {"corpid": "wwcliprovider00001", "provider_secret": "cli-provider-secret"}
        token = requests.post(f"{info['api_url']}/service/get_provider_token", json=body, timeout=5).json()
        assert token["expires_in"] == 7200
    finally:
        process.terminate()
        process.communicate(timeout=10)
    assert process.returncode == 0
