"""Suite configuration: one Secrets Manager secret per suite, read with caching.

One deployment serves several suites. Each suite's configuration lives in the
secret ``{prefix}{suite_id}/config`` as JSON (see the README for the shape); its
newest suite_ticket in ``{prefix}{suite_id}/ticket``. :class:`SuiteDirectory` caches
the suites it built, so a warm container asks Secrets Manager at most once per suite
and ``max_age``; unknown suites are remembered for a while too, so garbage requests
cannot turn into a Secrets Manager bill.

It reads through a small port, :class:`JsonSecrets`, which :class:`SecretsManagerJson`
implements over a plain botocore client, and not through Powertools' ``SecretsProvider``:
callback-ingest builds its directory at import, on WeCom's one-second clock when the
container is cold, and importing ``aws_lambda_powertools.utilities.parameters`` costs about
30 ms of CPU there (its package imports the AppConfig provider, which imports boto3 and
s3transfer) -- for a cache that would only duplicate the one this directory already keeps.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from authsync.aws.credentials import SecretNames, current_secret

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager.client import SecretsManagerClient

    from authsync.wecom.crypto import CallbackCrypto

__all__ = [
    "SUITE_ID_MAX",
    "JsonSecrets",
    "SecretNotJSONError",
    "SecretsManagerJson",
    "Suite",
    "SuiteConfig",
    "SuiteConfigError",
    "SuiteDirectory",
    "UnknownSuiteError",
    "valid_suite_id",
]

SUITE_ID_MAX = 64
MAX_REMEMBERED_MISSING = 1024


def valid_suite_id(suite_id: str) -> bool:
    """Suite ids are short ASCII words (``ww…``, ``wx…``, ``tj…``, ``dk…``); nothing else names a secret."""
    return (
        0 < len(suite_id) <= SUITE_ID_MAX
        and suite_id.isascii()
        and suite_id.replace("_", "").replace("-", "").isalnum()
    )


class UnknownSuiteError(LookupError):
    """No configuration secret exists for the suite id (a client error: 404)."""

    reason = "unknown_suite"


class SuiteConfigError(RuntimeError):
    """The suite's secret exists but is not a valid configuration (an operator error: 500)."""

    reason = "suite_config_invalid"


class SuiteConfig(BaseModel):
    """The JSON document stored in a suite's config secret."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    suite_id: str = Field(min_length=1, max_length=SUITE_ID_MAX)
    suite_secret: SecretStr
    token: SecretStr = Field(description="Callback Token from the suite's console page")
    encoding_aes_key: SecretStr = Field(description="43-character EncodingAESKey")
    kind: Literal["third_party", "customized"] = Field(
        default="third_party", description="第三方应用 or 代开发 template"
    )
    provider_corpid: str | None = Field(
        default=None, description="The provider's own corpid; URL verification may be encrypted for it"
    )
    personal_provider: bool = Field(default=False, description="个人主体 provider: callbacks carry an empty receiveid")
    provider_secret: SecretStr | None = Field(
        default=None,
        description="The provider's ProviderSecret: with provider_corpid, the provider_access_token that license sync "
        "and open_corpid lookups need (service/get_provider_token)",
    )

    def accepted_receive_ids(self) -> tuple[str, ...]:
        """Receive ids this suite's callback URL accepts besides its suite_id (spec §1.1).

        ⚠️ URL verification (GET) is reported to be encrypted for the provider corpid;
        we accept it when configured. The empty id is only accepted for 个人主体 providers.
        """
        extra = [self.provider_corpid] if self.provider_corpid else []
        if self.personal_provider:
            extra.append("")
        return tuple(extra)


@dataclass(frozen=True, slots=True)
class Suite:
    """A loaded suite: its configuration and, where callbacks are verified, the crypto built from it."""

    config: SuiteConfig
    callback_crypto: CallbackCrypto | None = field(default=None, repr=False)

    @property
    def suite_id(self) -> str:
        return self.config.suite_id

    @property
    def crypto(self) -> CallbackCrypto:
        """The callback crypto; only a ``SuiteDirectory(..., callbacks=True)`` builds it."""
        if self.callback_crypto is None:
            raise RuntimeError("this suite was loaded without callback crypto (SuiteDirectory(callbacks=False))")
        return self.callback_crypto


def build_suite(document: Any, *, callbacks: bool = True) -> Suite:
    """Validate a config document and, with ``callbacks``, build its crypto; errors never echo secret values.

    The fetch functions never verify a callback, so they load suites with ``callbacks=False``
    and never import :mod:`authsync.wecom.crypto` (cryptography's ciphers: ≈45 ms of init).
    """
    try:
        config = SuiteConfig.model_validate(document)
    except ValidationError as exc:
        fields = sorted({".".join(map(str, e["loc"])) or "<root>" for e in exc.errors()})
        raise SuiteConfigError(f"suite config invalid: {', '.join(fields)}") from None
    if not callbacks:
        return Suite(config)
    from authsync.wecom.crypto import CallbackCrypto, CallbackCryptoError

    try:
        crypto = CallbackCrypto(
            config.token.get_secret_value(),
            config.encoding_aes_key.get_secret_value(),
            config.suite_id,
            also_accept=config.accepted_receive_ids(),
        )
    except CallbackCryptoError:
        raise SuiteConfigError("suite config invalid: encoding_aes_key") from None
    return Suite(config, crypto)


class SecretNotJSONError(ValueError):
    """The secret exists but its value is not a JSON document (not JSON, or JSON ``null``).

    The message names the secret, never its value.
    """


class JsonSecrets(Protocol):
    """Read one secret's current value as JSON: what :class:`SuiteDirectory` needs, nothing more.

    One call, one read: caching is the directory's job.
    """

    def read_json(self, name: str) -> Any | None:
        """The parsed value of ``name``'s AWSCURRENT version, or ``None`` if the secret does not exist.

        Raises :class:`SecretNotJSONError` if the value is not a JSON document; any other failure
        (throttling, access denied) propagates unchanged.
        """
        ...


class SecretsManagerJson:
    """:class:`JsonSecrets` over a botocore Secrets Manager client: one ``GetSecretValue`` per read, no cache."""

    def __init__(self, client: SecretsManagerClient) -> None:
        self.client = client

    def read_json(self, name: str) -> Any | None:
        value = current_secret(self.client, name)
        if value is None:
            return None
        text = value.get("SecretString")
        try:
            document = json.loads(text if text is not None else value.get("SecretBinary", b""))
        except ValueError:  # JSONDecodeError, or UnicodeDecodeError from a binary secret
            raise SecretNotJSONError(f"secret {name} is not JSON") from None
        if document is None:  # JSON null: not a document, and None means "no such secret"
            raise SecretNotJSONError(f"secret {name} holds JSON null")
        return document


class SuiteDirectory:
    """Resolve a suite id to its :class:`Suite`, caching values and misses.

    ``secrets`` is read at most once per suite and ``max_age``; a suite id that has no
    secret is remembered as missing for ``negative_ttl`` (at most
    ``MAX_REMEMBERED_MISSING`` of them), so neither a hot path nor a flood of invented
    ids turns into Secrets Manager calls.
    """

    def __init__(
        self,
        secrets: JsonSecrets,
        names: SecretNames,
        *,
        max_age: int = 300,
        negative_ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        callbacks: bool = True,
    ) -> None:
        self._callbacks = callbacks
        self._secrets = secrets
        self._names = names
        self._max_age = max_age
        self._negative_ttl = negative_ttl
        self._clock = clock
        # suite_id -> (fresh until, the document it was built from, the built suite)
        self._built: dict[str, tuple[float, object, Suite]] = {}
        self._missing: dict[str, float] = {}

    def get(self, suite_id: str) -> Suite:
        now = self._clock()
        cached = self._built.get(suite_id)
        if cached is not None and now < cached[0]:
            return cached[2]  # the hot path: no Secrets Manager call, no crypto set-up
        if not valid_suite_id(suite_id):
            raise UnknownSuiteError("malformed suite id")
        missing_until = self._missing.get(suite_id)
        if missing_until is not None:
            if now < missing_until:
                raise UnknownSuiteError("suite not configured")
            del self._missing[suite_id]
        document = self._fetch(suite_id)
        # An unchanged secret (the usual case after max_age) keeps its built suite: the
        # validation and crypto set-up are redone only when the value really changed.
        if cached is not None and cached[1] == document:
            suite = cached[2]
        else:
            suite = build_suite(document, callbacks=self._callbacks)
            if suite.suite_id != suite_id:
                raise SuiteConfigError("suite config invalid: suite_id differs from the secret's name")
        self._built[suite_id] = (now + self._max_age, document, suite)
        return suite

    def _fetch(self, suite_id: str) -> Any:
        try:
            document = self._secrets.read_json(self._names.config(suite_id))
        except SecretNotJSONError:
            raise SuiteConfigError("suite config invalid: not JSON") from None
        if document is None:
            if len(self._missing) >= MAX_REMEMBERED_MISSING:
                self._missing.clear()  # bounded: a flood of invented ids cannot grow memory
            self._missing[suite_id] = self._clock() + self._negative_ttl
            raise UnknownSuiteError("suite not configured")
        return document
