"""Each function's configuration: one pydantic model per function family, read from the environment at init.

template.yaml sets these variables; a handler validates them at import (Lambda's init
phase), so a missing or malformed variable fails the function's init with one log line
naming the variable, instead of a ``KeyError`` on the first request. Field aliases are
the environment variable names; unrelated variables are ignored.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

__all__ = [
    "AuthInfoSettings",
    "FetchSettings",
    "IngestSettings",
    "PublisherSettings",
    "QuerySettings",
    "ReconcileSettings",
    "SettingsError",
    "SuiteSettings",
    "TokenRefreshSettings",
    "load",
]

_PREFIX = r"^[A-Za-z0-9/_+=.@-]+/$"  # a Secrets Manager name prefix ending with "/"


def _comma_separated(value: Any) -> Any:
    """``SUITE_IDS`` is comma-separated (the template joins a CommaDelimitedList); blanks ignored."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


CorpCredentialStore = Literal["SecretsManager", "DynamoDBKMS"]
"""The template parameter of the same name: per-corp credentials as a secret each, or in the KMS-sealed vault."""

SuiteIds = Annotated[tuple[str, ...], BeforeValidator(_comma_separated)]


class SettingsError(RuntimeError):
    """The function's environment is incomplete or malformed; ``problems`` names each variable."""

    def __init__(self, model: str, problems: list[str]) -> None:
        super().__init__(f"{model}: invalid environment: " + "; ".join(problems))
        self.problems = problems


class _Settings(BaseModel):
    # defer_build: each function validates one of these models at init; the others are never
    # built (building a pydantic model's validator costs ~5 ms of init each).
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=False, defer_build=True)


class SuiteSettings(_Settings):
    """What every function that reads suite secrets needs."""

    suite_secret_prefix: str = Field(alias="SUITE_SECRET_PREFIX", pattern=_PREFIX)
    parameters_max_age: int = Field(default=300, alias="POWERTOOLS_PARAMETERS_MAX_AGE", ge=0)
    suite_ids: SuiteIds = Field(default=(), alias="SUITE_IDS")


class IngestSettings(SuiteSettings):
    """callback-ingest (and inbox-drain, which replays through the same ingest)."""

    events_queue_url: str = Field(alias="EVENTS_QUEUE_URL", min_length=1)
    inbox_table: str = Field(alias="INBOX_TABLE", min_length=1)
    unmodelled_table: str | None = Field(default=None, alias="UNMODELLED_TABLE", min_length=1)
    """Where unmodelled callbacks are kept; without it they are only logged and counted."""
    suite_config_max_age: int = Field(default=300, alias="SUITE_CONFIG_MAX_AGE", ge=0)


class FetchSettings(SuiteSettings):
    """The functions that call WeCom and keep tokens: chatdata, token-refresh (and auth-info)."""

    corp_secret_prefix: str = Field(alias="CORP_SECRET_PREFIX", pattern=_PREFIX)
    corps_table: str = Field(alias="CORPS_TABLE", min_length=1)
    leases_table: str = Field(alias="LEASES_TABLE", min_length=1)
    wecom_api_base: str = Field(default="https://qyapi.weixin.qq.com", alias="WECOM_API_BASE", pattern=r"^https?://")
    corp_credential_store: CorpCredentialStore = Field(default="DynamoDBKMS", alias="CORP_CREDENTIAL_STORE")
    """Where per-corp credentials live: a secret each, or the KMS-sealed vault table (template parameter)."""
    vault_table: str = Field(default="", alias="VAULT_TABLE")
    credentials_key: str = Field(default="", alias="CREDENTIALS_KEY")

    @model_validator(mode="after")
    def _vault_configured(self) -> Self:
        if self.corp_credential_store == "DynamoDBKMS" and not (self.vault_table and self.credentials_key):
            raise ValueError("CORP_CREDENTIAL_STORE=DynamoDBKMS needs VAULT_TABLE and CREDENTIALS_KEY")
        return self


TokenRefreshSettings = FetchSettings


class AuthInfoSettings(FetchSettings):
    """auth-info: the fetch settings, its idempotency table and the chatdata queue it feeds."""

    idempotency_table: str = Field(alias="IDEMPOTENCY_TABLE", min_length=1)
    chatdata_queue_url: str = Field(alias="CHATDATA_QUEUE_URL", min_length=1)
    events_queue_url: str = Field(alias="EVENTS_QUEUE_URL", min_length=1)
    journal_table: str = Field(alias="JOURNAL_TABLE", min_length=1)
    credentials_key: str = Field(alias="CREDENTIALS_KEY", min_length=1)


class PublisherSettings(_Settings):
    """change-publisher."""

    event_bus_name: str = Field(alias="EVENT_BUS_NAME", min_length=1)


class QuerySettings(_Settings):
    """corp-query."""

    corps_table: str = Field(alias="CORPS_TABLE", min_length=1)


class ReconcileSettings(_Settings):
    """reconcile."""

    corps_table: str = Field(alias="CORPS_TABLE", min_length=1)
    journal_table: str = Field(alias="JOURNAL_TABLE", min_length=1)
    events_queue_url: str = Field(alias="EVENTS_QUEUE_URL", min_length=1)
    suite_ids: SuiteIds = Field(default=(), alias="SUITE_IDS")
    corp_secret_prefix: str = Field(alias="CORP_SECRET_PREFIX", min_length=1)
    corp_credential_store: CorpCredentialStore = Field(default="DynamoDBKMS", alias="CORP_CREDENTIAL_STORE")
    vault_table: str = Field(default="", alias="VAULT_TABLE")

    @model_validator(mode="after")
    def _vault_configured(self) -> Self:
        if self.corp_credential_store == "DynamoDBKMS" and not self.vault_table:
            raise ValueError("CORP_CREDENTIAL_STORE=DynamoDBKMS needs VAULT_TABLE")
        return self


def load[S: _Settings](
    model: type[S], environ: Mapping[str, str] = os.environ, *, on_error: Callable[..., Any] | None = None
) -> S:
    """``model`` from ``environ``; on failure calls ``on_error`` once (a structured log line) and raises.

    The message names variables and what is wrong with them, never their values (a
    misplaced secret in an environment variable must not reach the logs).
    """
    try:
        return model.model_validate(dict(environ))
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_input=False, include_url=False):
            name = ".".join(str(part) for part in error["loc"]) or "<environment>"
            problems.append(f"{name}: {'missing' if error['type'] == 'missing' else error['msg']}")
        failure = SettingsError(model.__name__, problems)
        if on_error is not None:
            on_error("function configuration invalid", settings=model.__name__, problems=problems)
        raise failure from None
