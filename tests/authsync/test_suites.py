"""suites: configuration secrets read through SecretsManagerJson (a plain botocore client) over moto."""

from __future__ import annotations

import json
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import botocore.session
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.exceptions import ClientError

from authsync.aws.credentials import SecretNames
from authsync.aws.suites import (
    MAX_REMEMBERED_MISSING,
    SUITE_ID_MAX,
    SecretNotJSONError,
    SecretsManagerJson,
    SuiteConfig,
    SuiteConfigError,
    SuiteDirectory,
    UnknownSuiteError,
    build_suite,
    valid_suite_id,
)
from authsync.wecom.crypto import ReceiveIdError
from authsync_dev.template import Deployment
from authsync_dev.wecom import TEST_SUITE, TestSuite

PREFIX = "wecom-authsync/test/suites/"
NAMES = SecretNames(PREFIX)
SECRETS = (TEST_SUITE.suite_secret, TEST_SUITE.token, TEST_SUITE.encoding_aes_key)


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Calls:
    """GetSecretValue calls made through a client, by SecretId."""

    ids: list[str] = field(default_factory=list)

    def hook(self, params: dict[str, Any], **_: Any) -> None:
        self.ids.append(params["SecretId"])

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class World:
    client: Any
    calls: Calls
    clock: Clock
    hooks: list[tuple[str, Any]] = field(default_factory=list)

    def directory(self, *, max_age: int = 300, negative_ttl: float = 60.0, prefix: str = PREFIX) -> SuiteDirectory:
        return SuiteDirectory(
            SecretsManagerJson(self.client),
            SecretNames(prefix),
            max_age=max_age,
            negative_ttl=negative_ttl,
            clock=self.clock,
        )

    def hook(self, event: str, handler: Any) -> None:
        self.client.meta.events.register(event, handler)
        self.hooks.append((event, handler))

    def put(self, suite_id: str, value: Any) -> None:
        text = value if isinstance(value, str) else json.dumps(value)
        name = NAMES.config(suite_id)
        try:
            self.client.create_secret(Name=name, SecretString=text)
        except self.client.exceptions.ResourceExistsException:
            self.client.put_secret_value(SecretId=name, SecretString=text)


_CLIENT: list[Any] = []


def secretsmanager() -> Any:
    """One client for the module, a botocore one as wiring creates: building one costs ~0.1 s, and moto serves
    every client it sees."""
    if not _CLIENT:
        _CLIENT.append(botocore.session.get_session().create_client("secretsmanager", region_name="us-east-1"))
    return _CLIENT[0]


@pytest.fixture
def world(aws: None) -> Iterator[World]:
    calls = Calls()
    world = World(secretsmanager(), calls, Clock())
    world.hook("provide-client-params.secrets-manager.GetSecretValue", calls.hook)
    yield world
    for event, handler in world.hooks:
        world.client.meta.events.unregister(event, handler)


def other_suite(suite_id: str) -> TestSuite:
    return TestSuite(suite_id, "other-secret-xyz", "OtherToken123", "Z" * 43, "wwprovider00000002")


# -- loading ---------------------------------------------------------------------------------------


def test_valid_config_loads(world: World) -> None:
    world.put(TEST_SUITE.suite_id, TEST_SUITE.config())
    suite = world.directory().get(TEST_SUITE.suite_id)
    assert suite.suite_id == TEST_SUITE.suite_id
    config = suite.config
    assert config.suite_secret.get_secret_value() == TEST_SUITE.suite_secret
    assert config.token.get_secret_value() == TEST_SUITE.token
    assert config.kind == "third_party"
    assert config.provider_corpid == TEST_SUITE.provider_corpid
    assert not config.personal_provider
    # The crypto is the suite's: it reads what WeCom encrypts for the suite.
    assert suite.crypto.receive_id == TEST_SUITE.suite_id
    assert suite.crypto.token == TEST_SUITE.token
    assert suite.crypto.decrypt(TEST_SUITE.crypto().encrypt(b"<xml/>")).message == b"<xml/>"
    assert world.calls.ids == [NAMES.config(TEST_SUITE.suite_id)]


def test_customized_kind(world: World) -> None:
    world.put(TEST_SUITE.suite_id, {**TEST_SUITE.config(), "kind": "customized"})
    assert world.directory().get(TEST_SUITE.suite_id).config.kind == "customized"


def test_config_from_the_template_prefix(suite: TestSuite, deployment: Deployment) -> None:
    prefix = deployment.function_environment("CallbackIngestFunction")["SUITE_SECRET_PREFIX"]
    directory = SuiteDirectory(SecretsManagerJson(secretsmanager()), SecretNames(prefix))
    assert directory.get(suite.suite_id).config.token.get_secret_value() == suite.token


def test_many_gets_one_secrets_manager_call(world: World) -> None:
    world.put(TEST_SUITE.suite_id, TEST_SUITE.config())
    other = other_suite("wwother0000000002")
    world.put(other.suite_id, other.config())
    directory = world.directory()
    first = directory.get(TEST_SUITE.suite_id)
    for _ in range(50):
        assert directory.get(TEST_SUITE.suite_id) is first
        world.clock.now += 1  # well within max_age
    assert directory.get(other.suite_id).config.token.get_secret_value() == "OtherToken123"
    assert directory.get(other.suite_id) is directory.get(other.suite_id)
    assert world.calls.ids == [NAMES.config(TEST_SUITE.suite_id), NAMES.config(other.suite_id)]


def test_max_age_zero_rereads_and_picks_up_a_new_value(world: World) -> None:
    world.put(TEST_SUITE.suite_id, TEST_SUITE.config())
    directory = world.directory(max_age=0)
    assert directory.get(TEST_SUITE.suite_id).config.token.get_secret_value() == TEST_SUITE.token
    world.put(TEST_SUITE.suite_id, {**TEST_SUITE.config(), "token": "RotatedToken"})
    world.clock.now += 1
    assert directory.get(TEST_SUITE.suite_id).config.token.get_secret_value() == "RotatedToken"
    assert len(world.calls) == 2


def test_an_unchanged_secret_is_reread_after_max_age_and_keeps_its_suite(world: World) -> None:
    world.put(TEST_SUITE.suite_id, TEST_SUITE.config())
    directory = world.directory(max_age=300)
    first = directory.get(TEST_SUITE.suite_id)
    world.clock.now += 299
    assert directory.get(TEST_SUITE.suite_id) is first
    assert len(world.calls) == 1
    world.clock.now += 2  # past max_age: asked again, but the same value needs no new crypto set-up
    assert directory.get(TEST_SUITE.suite_id) is first
    assert len(world.calls) == 2
    assert directory.get(TEST_SUITE.suite_id) is first
    assert len(world.calls) == 2  # and fresh for another max_age


# -- the Secrets Manager adapter -------------------------------------------------------------------


def test_adapter_reads_awscurrent_once_per_call_without_a_cache(world: World) -> None:
    stages: list[str] = []
    world.hook(
        "provide-client-params.secrets-manager.GetSecretValue",
        lambda params, **_: stages.append(params.get("VersionStage")),
    )
    world.put(TEST_SUITE.suite_id, TEST_SUITE.config())
    secrets = SecretsManagerJson(world.client)
    for _ in range(2):
        assert secrets.read_json(NAMES.config(TEST_SUITE.suite_id)) == TEST_SUITE.config()
    assert stages == ["AWSCURRENT", "AWSCURRENT"]
    assert len(world.calls) == 2  # the directory caches, the adapter does not


def test_adapter_missing_secret_is_none(world: World) -> None:
    assert SecretsManagerJson(world.client).read_json(NAMES.config("wwnothere")) is None


def test_adapter_binary_secret_is_parsed(world: World) -> None:
    name = NAMES.config("wwbinary")
    world.client.create_secret(Name=name, SecretBinary=json.dumps({"a": 1}).encode())
    assert SecretsManagerJson(world.client).read_json(name) == {"a": 1}


@pytest.mark.parametrize("value", ["{not json " + TEST_SUITE.token, "null", ""])
def test_adapter_not_json_is_a_typed_error_naming_the_secret_only(world: World, value: str) -> None:
    name = NAMES.config(TEST_SUITE.suite_id)
    if value:
        world.put(TEST_SUITE.suite_id, value)
    else:
        world.client.create_secret(Name=name, SecretBinary=b"\xff\xfe")  # not UTF-8
    with pytest.raises(SecretNotJSONError) as caught:
        SecretsManagerJson(world.client).read_json(name)
    assert name in str(caught.value)
    assert_no_secret_in(caught.value, "{not json")


# -- unknown suites --------------------------------------------------------------------------------


def test_unknown_suite_is_negatively_cached(world: World) -> None:
    directory = world.directory(negative_ttl=60)
    with pytest.raises(UnknownSuiteError) as caught:
        directory.get("wwunknown")
    assert caught.value.reason == "unknown_suite"
    assert len(world.calls) == 1

    world.clock.now += 59.9
    for _ in range(20):
        with pytest.raises(UnknownSuiteError):
            directory.get("wwunknown")
    assert len(world.calls) == 1  # remembered: no Secrets Manager bill for garbage

    world.clock.now += 0.2
    with pytest.raises(UnknownSuiteError):
        directory.get("wwunknown")
    assert len(world.calls) == 2  # forgotten after negative_ttl, asked again
    with pytest.raises(UnknownSuiteError):
        directory.get("wwunknown")
    assert len(world.calls) == 2  # and remembered again


def test_negative_cache_is_per_suite_and_expires_into_a_real_suite(world: World) -> None:
    directory = world.directory(negative_ttl=30)
    with pytest.raises(UnknownSuiteError):
        directory.get(TEST_SUITE.suite_id)
    world.put(TEST_SUITE.suite_id, TEST_SUITE.config())
    with pytest.raises(UnknownSuiteError):
        directory.get(TEST_SUITE.suite_id)  # still remembered as missing
    with pytest.raises(UnknownSuiteError):
        directory.get("wwsomethingelse")  # another id is asked for
    assert len(world.calls) == 2
    world.clock.now += 31
    assert directory.get(TEST_SUITE.suite_id).suite_id == TEST_SUITE.suite_id
    assert len(world.calls) == 3


MALFORMED_IDS = [
    "",
    "../x",
    "ww/../../prod/suites/ww1",
    "ww1/config",
    "ww 1",
    "ww1\n",
    "ww.1",
    "ww1*",
    "wx套件",
    "x" * (SUITE_ID_MAX + 1),
    "_",
    "-",
    "%2e%2e",
]


def test_malformed_suite_ids_are_unknown_without_any_aws_call(world: World) -> None:
    directory = world.directory()
    for suite_id in MALFORMED_IDS:
        assert not valid_suite_id(suite_id), suite_id
        with pytest.raises(UnknownSuiteError, match="malformed"):
            directory.get(suite_id)
    assert len(world.calls) == 0


@pytest.mark.parametrize(
    "suite_id", ["ww4asffe99e54c0f4c", "wx5823bf96d3bd56c7", "tj123", "dk_a-b", "x" * SUITE_ID_MAX]
)
def test_valid_suite_ids(suite_id: str) -> None:
    assert valid_suite_id(suite_id)


@dataclass
class Missing:
    """A :class:`~authsync.aws.suites.JsonSecrets` in which no secret exists, counting reads."""

    reads: list[str] = field(default_factory=list)

    def read_json(self, name: str) -> Any | None:
        self.reads.append(name)
        return None


def test_negative_cache_is_bounded() -> None:
    secrets, clock = Missing(), Clock()
    directory = SuiteDirectory(secrets, NAMES, negative_ttl=3600, clock=clock)
    ids = [f"wwmissing{i:05d}" for i in range(MAX_REMEMBERED_MISSING)]
    for suite_id in ids:
        with pytest.raises(UnknownSuiteError):
            directory.get(suite_id)
    for suite_id in ids:
        with pytest.raises(UnknownSuiteError):
            directory.get(suite_id)
    assert len(secrets.reads) == MAX_REMEMBERED_MISSING  # all remembered
    with pytest.raises(UnknownSuiteError):
        directory.get("wwonemore")  # one more id than the bound: the remembered ones are dropped
    with pytest.raises(UnknownSuiteError):
        directory.get(ids[0])
    assert len(secrets.reads) == MAX_REMEMBERED_MISSING + 2
    assert len(directory._missing) <= MAX_REMEMBERED_MISSING


def test_other_errors_propagate_and_are_not_cached_as_missing(world: World) -> None:
    world.put(TEST_SUITE.suite_id, TEST_SUITE.config())
    denied = {"n": 1}

    def deny(**_: Any) -> Any:
        if denied["n"]:
            denied["n"] -= 1
            error = {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}
            http = AWSResponse("https://secretsmanager.us-east-1.amazonaws.com/", 400, HTTPHeaders(), None)
            return http, {**error, "ResponseMetadata": {"HTTPStatusCode": 400}}
        return None

    world.hook("before-call.secrets-manager.GetSecretValue", deny)
    directory = world.directory()
    with pytest.raises(ClientError) as caught:
        directory.get(TEST_SUITE.suite_id)
    assert caught.value.response["Error"]["Code"] == "ThrottlingException"
    # A throttled read must not make a configured suite "unknown" for negative_ttl.
    assert directory.get(TEST_SUITE.suite_id).suite_id == TEST_SUITE.suite_id


# -- invalid configuration -------------------------------------------------------------------------


def assert_no_secret_in(exc: BaseException, *values: str) -> None:
    text = "".join(traceback.format_exception(exc))
    for value in (*SECRETS, *values):
        assert value not in str(exc)
        assert value not in text


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("{not json " + TEST_SUITE.token, "not JSON"),
        ("null", "not JSON"),
        ('"' + TEST_SUITE.suite_secret + '"', "<root>"),
        (json.dumps([TEST_SUITE.config()]), "<root>"),
        ({k: v for k, v in TEST_SUITE.config().items() if k != "token"}, "token"),
        ({k: v for k, v in TEST_SUITE.config().items() if k != "encoding_aes_key"}, "encoding_aes_key"),
        ({k: v for k, v in TEST_SUITE.config().items() if k != "suite_secret"}, "suite_secret"),
        ({**TEST_SUITE.config(), "encoding_aes_key": TEST_SUITE.encoding_aes_key[:-1]}, "encoding_aes_key"),
        ({**TEST_SUITE.config(), "encoding_aes_key": TEST_SUITE.encoding_aes_key[:-1] + "!"}, "encoding_aes_key"),
        ({**TEST_SUITE.config(), "token": 12345}, "token"),
        ({**TEST_SUITE.config(), "kind": TEST_SUITE.suite_secret}, "kind"),
        ({**TEST_SUITE.config(), "personal_provider": TEST_SUITE.token}, "personal_provider"),
        ({**TEST_SUITE.config(), "unexpected": TEST_SUITE.suite_secret}, "unexpected"),
        ({**TEST_SUITE.config(), "suite_id": "wwsomeoneelse"}, "suite_id"),
    ],
)
def test_invalid_config_is_a_config_error_without_secret_values(world: World, value: Any, named: str) -> None:
    world.put(TEST_SUITE.suite_id, value)
    with pytest.raises(SuiteConfigError) as caught:
        world.directory().get(TEST_SUITE.suite_id)
    assert named in str(caught.value)
    assert caught.value.reason == "suite_config_invalid"
    assert_no_secret_in(caught.value, "{not json")


def test_config_error_is_not_a_missing_suite(world: World) -> None:
    world.put(TEST_SUITE.suite_id, "{bad")
    directory = world.directory()
    for _ in range(2):
        with pytest.raises(SuiteConfigError):
            directory.get(TEST_SUITE.suite_id)
    world.put(TEST_SUITE.suite_id, TEST_SUITE.config())
    assert directory.get(TEST_SUITE.suite_id).suite_id == TEST_SUITE.suite_id  # fixed by the operator, no 404 spell


def test_build_suite_errors_name_fields_only() -> None:
    with pytest.raises(SuiteConfigError) as caught:
        build_suite(
            {"suite_id": "", "suite_secret": "s3cr3t-value", "token": "t0ken-value", "encoding_aes_key": "short"}
        )
    message = str(caught.value)
    assert "suite_id" in message
    assert "s3cr3t-value" not in message
    assert "t0ken-value" not in message
    assert "short" not in message


# -- receive ids -----------------------------------------------------------------------------------


def config(**overrides: Any) -> SuiteConfig:
    return SuiteConfig.model_validate({**TEST_SUITE.config(), "provider_corpid": None, **overrides})


def test_accepted_receive_ids_policy() -> None:
    assert config().accepted_receive_ids() == ()
    assert config(provider_corpid="wwprov").accepted_receive_ids() == ("wwprov",)
    assert config(personal_provider=True).accepted_receive_ids() == ("",)
    assert set(config(provider_corpid="wwprov", personal_provider=True).accepted_receive_ids()) == {"wwprov", ""}
    assert config(provider_corpid="").accepted_receive_ids() == ()


@pytest.mark.parametrize(
    ("overrides", "accepted", "rejected"),
    [
        ({}, [TEST_SUITE.suite_id], [TEST_SUITE.provider_corpid, "", "wwcorp"]),
        ({"provider_corpid": "wwprov"}, [TEST_SUITE.suite_id, "wwprov"], ["", "wwcorp"]),
        ({"personal_provider": True}, [TEST_SUITE.suite_id, ""], ["wwprov", "wwcorp"]),
    ],
)
def test_suite_crypto_applies_the_receive_id_policy(
    world: World, overrides: dict[str, Any], accepted: list[str], rejected: list[str]
) -> None:
    world.put(TEST_SUITE.suite_id, {**TEST_SUITE.config(), "provider_corpid": None, **overrides})
    crypto = world.directory().get(TEST_SUITE.suite_id).crypto
    sender = TEST_SUITE.crypto()
    for receive_id in accepted:
        assert crypto.decrypt(sender.encrypt(b"1", receive_id)).receive_id == receive_id
    for receive_id in rejected:
        with pytest.raises(ReceiveIdError):
            crypto.decrypt(sender.encrypt(b"1", receive_id))


def test_config_repr_hides_secrets() -> None:
    shown = repr(config(provider_corpid="wwprov"))
    assert "wwprov" in shown
    for secret in SECRETS:
        assert secret not in shown


def test_a_directory_that_verifies_no_callbacks_builds_no_crypto(world: World) -> None:
    """The fetch functions need a suite's secret and kind, never its callback crypto (nor its import)."""
    world.put(TEST_SUITE.suite_id, TEST_SUITE.config())
    directory = SuiteDirectory(SecretsManagerJson(world.client), NAMES, clock=world.clock, callbacks=False)
    suite = directory.get(TEST_SUITE.suite_id)
    assert suite.config.suite_secret.get_secret_value() == TEST_SUITE.suite_secret
    assert suite.callback_crypto is None
    with pytest.raises(RuntimeError, match="without callback crypto"):
        _ = suite.crypto
    assert world.directory().get(TEST_SUITE.suite_id).crypto.receive_id == TEST_SUITE.suite_id
