"""Configuration of the local stack (:class:`authsync_dev.stack.LocalStack`, ``python -m authsync_dev.serve``).

``--config FILE`` takes a JSON object; every key is optional::

    {
      "suites": [                          # default: the documented fake test suite (authsync_dev.wecom)
        {"suite_id": "ww4asffe99e54c0f4c", "suite_secret": "...", "token": "...",
         "encoding_aes_key": "...43 characters...", "kind": "third_party",
         "provider_corpid": "wwyourprovidercorpid", "personal_provider": false}
      ],
      "ports": {"api": 0, "emulator": 0, "moto": 0},   # 127.0.0.1 ports; 0 = ephemeral
      "wecom": "emulator",                 # or "real": https://qyapi.weixin.qq.com, no emulator
      "stack_name": "authsync-local",      # names the queues and tables, as in AWS
      "stage": "dev",                      # the template's Stage parameter (secret prefixes)
      "region": "us-east-1",
      "ticket_interval": 600,              # emulator pushes a suite_ticket every N s of stack time; 0: never
      "push_ticket_on_start": true,        # one ticket per suite as soon as the stack is up
      "time_scale": 1,                     # schedules (and ticket pushes) run this many times faster
      "visibility_scale": 1,               # failed SQS messages reappear after VisibilityTimeout × this
      "concurrency": 1,                    # invocations of one function at once (containers, SQS pollers)
      "moto": "thread",                    # or "process": moto's server in a child process (a core of its own)
      "parameters": {"ReconcileSchedule": "rate(1 hour)"}   # other template parameters
    }

Each suite entry is exactly the JSON of the suite's config secret (README, "Configuring a
suite"); it is validated the way callback-ingest validates that secret, and error messages
name fields, never values. ``Stage``, ``SuiteIds`` and ``WeComApiBase`` are derived from
``stage``, ``suites`` and ``wecom`` and cannot be set under ``parameters``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from authsync.aws.suites import SuiteConfig, SuiteConfigError, build_suite
from authsync_dev.wecom import TEST_SUITE

__all__ = ["DEFAULT_SUITE", "REAL_WECOM_API_BASE", "StackConfig", "load_config", "suite_credentials"]

REAL_WECOM_API_BASE = "https://qyapi.weixin.qq.com"
RESERVED_PARAMETERS = frozenset({"Stage", "SuiteIds", "WeComApiBase"})
_KEYS = frozenset(
    {
        "suites",
        "ports",
        "wecom",
        "stack_name",
        "stage",
        "region",
        "ticket_interval",
        "push_ticket_on_start",
        "time_scale",
        "visibility_scale",
        "concurrency",
        "moto",
        "parameters",
    }
)
_PORTS = frozenset({"api", "emulator", "moto"})

WeComMode = Literal["emulator", "real"]
MotoMode = Literal["thread", "process"]


def _suite(document: Any, where: str) -> SuiteConfig:
    try:
        return build_suite(document).config
    except SuiteConfigError as exc:
        raise ValueError(f"{where}: {exc}") from None


DEFAULT_SUITE: SuiteConfig = _suite({**TEST_SUITE.config(), "kind": "third_party"}, "the test suite")


def suite_credentials(suite: SuiteConfig) -> dict[str, str]:
    """What a WeCom-side client needs to sign callbacks (printed on ``serve``'s first line)."""
    return {
        "suite_id": suite.suite_id,
        "token": suite.token.get_secret_value(),
        "encoding_aes_key": suite.encoding_aes_key.get_secret_value(),
        "kind": suite.kind,
    }


@dataclass(frozen=True)
class StackConfig:
    """What the local stack serves; see the module docstring for the JSON form."""

    suites: tuple[SuiteConfig, ...] = (DEFAULT_SUITE,)
    wecom: WeComMode = "emulator"
    api_port: int = 0
    emulator_port: int = 0
    moto_port: int = 0
    stack_name: str = "authsync-local"
    stage: str = "dev"
    region: str = "us-east-1"
    ticket_interval: float = 600.0
    push_ticket_on_start: bool = True
    time_scale: float = 1.0
    visibility_scale: float = 1.0
    concurrency: int = 1
    """Containers per function (and poller threads per SQS source): invocations that may run at once."""
    moto: MotoMode = "thread"
    """``thread``: moto's server in this process; ``process``: in a child process (its own core)."""
    parameters: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.suites:
            raise ValueError("at least one suite is required")
        ids = [s.suite_id for s in self.suites]
        if len(set(ids)) != len(ids):
            raise ValueError("suite ids must be unique")
        if self.wecom not in ("emulator", "real"):
            raise ValueError("wecom must be 'emulator' or 'real'")
        for name in ("api_port", "emulator_port", "moto_port"):
            port = getattr(self, name)
            if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
                raise ValueError(f"{name} must be a port number (0: ephemeral)")
        if not self.stack_name or not self.stack_name.replace("-", "").isalnum():
            raise ValueError("stack_name must be letters, digits and hyphens")
        if self.time_scale <= 0:
            raise ValueError("time_scale must be positive")
        if self.visibility_scale < 0:
            raise ValueError("visibility_scale must be zero or positive")
        if self.moto not in ("thread", "process"):
            raise ValueError("moto must be 'thread' or 'process'")
        if isinstance(self.concurrency, bool) or not isinstance(self.concurrency, int) or self.concurrency < 1:
            raise ValueError("concurrency must be an integer >= 1")
        if self.ticket_interval < 0:
            raise ValueError("ticket_interval must be zero (off) or positive")
        reserved = RESERVED_PARAMETERS & set(self.parameters)
        if reserved:
            raise ValueError(f"parameters {sorted(reserved)} are derived from stage, suites and wecom")

    @property
    def suite_ids(self) -> tuple[str, ...]:
        return tuple(s.suite_id for s in self.suites)

    @classmethod
    def from_json(cls, document: Any) -> StackConfig:
        """Build from the ``--config`` JSON document (see the module docstring)."""
        if not isinstance(document, Mapping):
            raise ValueError("the config must be a JSON object")
        unknown = set(document) - _KEYS
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}; allowed: {sorted(_KEYS)}")
        values: dict[str, Any] = {}
        if "suites" in document:
            suites = document["suites"]
            if not isinstance(suites, list):
                raise ValueError("suites must be a list of suite config objects")
            values["suites"] = tuple(_suite(s, f"suites[{i}]") for i, s in enumerate(suites))
        ports = document.get("ports", {})
        if not isinstance(ports, Mapping) or set(ports) - _PORTS:
            raise ValueError(f"ports must be an object with keys among {sorted(_PORTS)}")
        for name, port in ports.items():
            values[f"{name}_port"] = port
        for name in ("wecom", "stack_name", "stage", "region", "moto"):
            if name in document:
                if not isinstance(document[name], str):
                    raise ValueError(f"{name} must be a string")
                values[name] = document[name]
        for name in ("ticket_interval", "time_scale", "visibility_scale"):
            if name in document:
                number = document[name]
                if isinstance(number, bool) or not isinstance(number, int | float):
                    raise ValueError(f"{name} must be a number")
                values[name] = float(number)
        if "concurrency" in document:
            values["concurrency"] = document["concurrency"]  # checked in __post_init__
        if "push_ticket_on_start" in document:
            if not isinstance(document["push_ticket_on_start"], bool):
                raise ValueError("push_ticket_on_start must be true or false")
            values["push_ticket_on_start"] = document["push_ticket_on_start"]
        if "parameters" in document:
            parameters = document["parameters"]
            if not isinstance(parameters, Mapping) or not all(isinstance(v, str) for v in parameters.values()):
                raise ValueError("parameters must be an object of strings")
            values["parameters"] = dict(parameters)
        return cls(**values)


def load_config(path: Path) -> StackConfig:
    """Read a ``--config`` file; errors name the file and the field, never a secret value."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read a JSON config ({type(exc).__name__})") from None
    try:
        return StackConfig.from_json(document)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
