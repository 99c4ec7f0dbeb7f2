"""Suite and corp access tokens, and permanent codes: cached, refreshed ahead of expiry, fetched once.

Every peer SDK leaks here: tokens fetched per call, refresh races between instances,
late writers overwriting newer tokens. The rules:

* Tokens live in Secrets Manager (names in :mod:`authsync.aws.credentials`) and are read
  through Powertools parameters, so a warm container asks Secrets Manager at most once
  per ``cache_age``; after an invalidation the read bypasses that cache.
* A token is renewed ``margin`` seconds (default 10 minutes) before it expires. Renewal is single-flight
  across Lambda instances: a DynamoDB lease (conditional put) per secret; whoever loses
  the race waits for the winner's token instead of calling WeCom.
* Writes are forward-only (compare-and-swap on the version label): a token obtained
  earlier never replaces one obtained later.
* WeCom hands back the *same* suite token while it lives (spec §3.1). A renewal that
  returns the current token therefore re-checks at most every five minutes, not per call.
* On 40014/42001 (corp) or 40082/42009 (suite) the caller invalidates that token value,
  refreshes once and retries once (:meth:`Tokens.with_suite_token`, :meth:`Tokens.with_corp_token`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from authsync.aws.credentials import CredentialReader, CredentialWriter, SecretNames, WriteOutcome
from authsync.aws.leases import Leases
from authsync.domain.codes import with_fresh_code
from authsync.wecom.client import WeComClient
from authsync.wecom.errors import WeComError, WeComTokenError
from authsync.wecom.responses import IssuedToken

if TYPE_CHECKING:
    from authsync.aws.suites import SuiteDirectory
    from authsync.aws.tickets import TicketStore

__all__ = [
    "CorpNotAuthorizedError",
    "PermanentCodes",
    "ProviderNotConfiguredError",
    "StoredToken",
    "TicketMissingError",
    "TokenBusyError",
    "TokenStore",
    "Tokens",
    "lasts",
]

T = TypeVar("T")

RECHECK_SAME_TOKEN = 300.0
"""When WeCom renews a token by handing back the same one, look again after this long."""

RENEW_MARGIN = 600.0
"""Renew this long before expiry: the token-refresh schedule runs every 10 minutes, so it
always passes through this window and renews before any request path has to."""


STALE_CODE_ERRCODES = frozenset({40001, 40014, 40084})
"""Answers to a token call made with a permanent code that may mean the code we hold is stale:
40001 (gettoken: the 代开发 secret is invalid), 40014 and 40084 (get_corp_token)."""


class TokenBusyError(RuntimeError):
    """Another instance holds the refresh lease and produced no token in time (retry later)."""


class TicketMissingError(RuntimeError):
    """No suite_ticket stored yet: WeCom pushes one every 10 minutes (retry later)."""


class ProviderNotConfiguredError(LookupError):
    """The suite's config has no provider_corpid and provider_secret: provider-level APIs cannot be called."""


class CorpNotAuthorizedError(LookupError):
    """No permanent code for the corp: not installed, cancelled, or its create_auth not processed yet."""


@dataclass(frozen=True, slots=True)
class StoredToken:
    """A token as stored: value, when it expires, and when to start renewing it. ``repr`` hides the value."""

    value: str
    obtained_at: float
    expires_at: float
    renew_after: float

    def __repr__(self) -> str:
        return (
            f"StoredToken(obtained_at={self.obtained_at}, expires_at={self.expires_at}, renew_after={self.renew_after})"
        )

    def to_document(self) -> dict[str, Any]:
        return {
            "token": self.value,
            "obtained_at": self.obtained_at,
            "expires_at": self.expires_at,
            "renew_after": self.renew_after,
        }

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> StoredToken:
        return cls(
            str(document["token"]),
            float(document["obtained_at"]),
            float(document["expires_at"]),
            float(document["renew_after"]),
        )


class TokenStore:
    """Get-or-renew for token secrets, with a warm-container cache and a cross-instance lease."""

    def __init__(
        self,
        reader: CredentialReader,
        writer: CredentialWriter,
        leases: Leases,
        *,
        clock: Callable[[], float] = time.time,
        margin: float = RENEW_MARGIN,
        lease_ttl: float = 20.0,
        wait_step: float = 0.2,
        max_wait: float = 15.0,
        sleep: Callable[[float], None] = time.sleep,
        on_renew: Callable[[str], None] | None = None,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._leases = leases
        self._clock = clock
        self._margin = margin
        self._lease_ttl = lease_ttl
        self._wait_step = wait_step
        self._max_wait = max_wait
        self._sleep = sleep
        self._on_renew = on_renew
        """Told the secret name (never the value) after each renewal from WeCom (metrics)."""

    def get(
        self,
        name: str,
        fetch: Callable[[], IssuedToken],
        *,
        not_value: str | None = None,
        min_validity: float = 0.0,
    ) -> StoredToken:
        """A token for ``name`` that need not be renewed yet; ``not_value`` is a value known to be invalid.

        ``min_validity``: a stored token with less than this many seconds left is renewed first
        (single-flight as usual), unless WeCom was already asked inside that last stretch of its
        life (see :func:`lasts`).
        """

        def good(token: StoredToken | None) -> bool:
            return (
                token is not None
                and token.value != not_value
                and self._clock() < token.renew_after
                and lasts(token, min_validity, self._clock())
            )

        token = self._read(name, force=not_value is not None)
        if good(token):
            assert token is not None
            return token
        # A forced read, or a missing secret (never cached), already asked Secrets Manager.
        asked = not_value is not None or token is None
        deadline = self._clock() + self._max_wait
        lease = f"token:{name}"
        while True:
            if not asked:
                token = self._read(name, force=True)  # another instance may have renewed it meanwhile
                if good(token):
                    assert token is not None
                    return token
            asked = False
            if self._leases.acquire(lease, self._lease_ttl):
                try:
                    # Re-check under the lease: the previous holder may have renewed it
                    # between our read above and our acquiring the lease.
                    token = self._read(name, force=True)
                    if good(token):
                        assert token is not None
                        return token
                    return self._renew(name, fetch, token, not_value)
                finally:
                    self._leases.release(lease)
            if self._clock() > deadline:
                raise TokenBusyError("another instance is renewing this token")
            self._sleep(self._wait_step)

    def delete(self, name: str) -> None:
        self._writer.delete(name)
        self._reader.forget(name)

    def _renew(
        self, name: str, fetch: Callable[[], IssuedToken], stored: StoredToken | None, not_value: str | None
    ) -> StoredToken:
        issued = fetch()
        if self._on_renew is not None:
            self._on_renew(name)
        same = stored is not None and issued.value == stored.value and issued.value != not_value
        if same or issued.expires_in <= self._margin:
            # WeCom handed back the current token: use it, look again in five minutes.
            renew_after = min(issued.expires_at - 1.0, issued.obtained_at + RECHECK_SAME_TOKEN)
        else:
            renew_after = issued.expires_at - self._margin
        token = StoredToken(issued.value, issued.obtained_at, issued.expires_at, renew_after)

        def better(new: dict[str, Any], old: dict[str, Any]) -> bool:
            # A token known to be invalid is always replaced; otherwise only by a later one.
            return old.get("token") == not_value or float(new["obtained_at"]) > float(old["obtained_at"])

        written = self._writer.write(name, token.to_document(), better, probably_new=stored is None)
        if written.outcome is WriteOutcome.NOT_NEWER:
            newer = self._read(name, force=True)
            if newer is not None and newer.value != not_value and self._clock() < newer.expires_at:
                return newer
        self._reader.forget(name)  # the next read fetches what is now stored
        return token

    def _read(self, name: str, *, force: bool) -> StoredToken | None:
        document = self._reader.read(name, force=force)
        return None if document is None else StoredToken.from_document(document)


def lasts(token: StoredToken, min_validity: float, now: float) -> bool:
    """Whether ``token`` is as long-lived as the caller needs, or as WeCom can make it.

    ⚠️ WeCom hands back the *same* token while it lives (spec §3.1, §3.4): once it was asked
    (``obtained_at``) inside the token's last ``min_validity`` seconds and answered with this
    token, asking again before it expires only repeats that answer and spends quota. Such a
    token counts as lasting: the caller gets it with its true ``expires_at`` (never overstated)
    rather than an error for a token nobody can improve on.
    """
    if min_validity <= 0:
        return True
    return token.expires_at - now >= min_validity or token.obtained_at >= token.expires_at - min_validity


class PermanentCodes:
    """Permanent codes (for 代开发: the corp app's secret), one secret per (suite, corp)."""

    def __init__(self, reader: CredentialReader, writer: CredentialWriter, names: SecretNames) -> None:
        self._reader = reader
        self._writer = writer
        self._names = names

    def get(self, suite_id: str, corp_id: str, *, force: bool = False) -> str | None:
        document = self._reader.read(self._names.permanent_code(suite_id, corp_id), force=force)
        return None if document is None else str(document["permanent_code"])

    def put(
        self, suite_id: str, corp_id: str, permanent_code: str, obtained_at: float, *, event_time: int | None = None
    ) -> bool:
        """Store (or rotate, after reset_permanent_code) the code; an older exchange never wins.

        ``event_time`` is the install's (or rotation's) WeCom TimeStamp: kept with the code so that a
        cancel_auth older than it never deletes it (:meth:`delete`). Returns whether a previous code
        was replaced (its corp token is then void).
        """
        name = self._names.permanent_code(suite_id, corp_id)
        document: dict[str, Any] = {
            "permanent_code": permanent_code,
            "suite_id": suite_id,
            "corp_id": corp_id,
            "obtained_at": obtained_at,
        }
        if event_time is not None:
            document["event_time"] = event_time
        result = self._writer.write(
            name, document, lambda new, old: float(new["obtained_at"]) > float(old.get("obtained_at", 0))
        )
        self._reader.forget(name)
        return result.replaced

    def delete(self, suite_id: str, corp_id: str, *, cancelled_at_event: int | None = None) -> None:
        """Delete the code; with ``cancelled_at_event`` (the cancel_auth's WeCom TimeStamp), not one stored by
        a later install: a re-install processed while its corp's uninstall was being applied keeps its code."""

        def newer(document: dict[str, Any]) -> bool:
            installed = document.get("event_time")
            return cancelled_at_event is not None and installed is not None and int(installed) > cancelled_at_event

        name = self._names.permanent_code(suite_id, corp_id)
        self._writer.delete(name, keep=None if cancelled_at_event is None else newer)
        self._reader.forget(name)


class Tokens:
    """Suite and corp tokens for the fetch pipeline, with WeCom's invalidate-refresh-retry-once rule."""

    def __init__(
        self,
        *,
        store: TokenStore,
        names: SecretNames,
        suites: SuiteDirectory,
        tickets: TicketStore,
        permanent_codes: PermanentCodes,
        client: WeComClient,
    ) -> None:
        self._store = store
        self._names = names
        self._suites = suites
        self._tickets = tickets
        self._codes = permanent_codes
        self._client = client

    def suite_token(self, suite_id: str, *, not_value: str | None = None) -> str:
        def fetch() -> IssuedToken:
            config = self._suites.get(suite_id).config
            ticket = self._tickets.load(suite_id)
            if ticket is None:
                raise TicketMissingError(f"no suite_ticket stored for {suite_id} yet")
            return self._client.get_suite_token(suite_id, config.suite_secret.get_secret_value(), ticket.ticket)

        return self._store.get(self._names.suite_token(suite_id), fetch, not_value=not_value).value

    def corp_token(self, suite_id: str, corp_id: str, *, not_value: str | None = None) -> str:
        return self.corp_access_token(suite_id, corp_id, not_value=not_value).value

    def corp_access_token(
        self,
        suite_id: str,
        corp_id: str,
        *,
        not_value: str | None = None,
        min_validity: float = 0.0,
        before_fetch: Callable[[], None] | None = None,
    ) -> StoredToken:
        """The corp token as stored (value and expiry), renewed first if it has under ``min_validity`` s left.

        ``before_fetch`` runs under the renewal lease just before WeCom is asked (never when a
        stored token is good enough): the token broker counts and rate-limits WeCom calls there,
        and may raise to refuse the renewal.
        """

        def issue(code: str) -> IssuedToken:
            if self._suites.get(suite_id).config.kind == "customized":
                # 代开发: the permanent code is the corp app's secret (spec §3.4).
                return self._client.get_customized_token(corp_id, code)
            return self.with_suite_token(suite_id, lambda token: self._client.get_corp_token(token, corp_id, code))

        def fetch() -> IssuedToken:
            code = self.permanent_code(suite_id, corp_id)
            if before_fetch is not None:
                before_fetch()
            return with_fresh_code(
                code,
                issue,
                reread=lambda: self._codes.get(suite_id, corp_id, force=True),
                stale=lambda exc: isinstance(exc, WeComError) and exc.errcode in STALE_CODE_ERRCODES,
            )

        name = self._names.corp_token(suite_id, corp_id)
        return self._store.get(name, fetch, not_value=not_value, min_validity=min_validity)

    def permanent_code(self, suite_id: str, corp_id: str) -> str:
        code = self._codes.get(suite_id, corp_id)
        if code is None:
            raise CorpNotAuthorizedError(f"no permanent code for corp {corp_id} of suite {suite_id}")
        return code

    def with_suite_token(self, suite_id: str, call: Callable[[str], T]) -> T:
        return _retry_once(lambda stale: self.suite_token(suite_id, not_value=stale), call, "suite")

    def with_corp_token(self, suite_id: str, corp_id: str, call: Callable[[str], T]) -> T:
        return _retry_once(lambda stale: self.corp_token(suite_id, corp_id, not_value=stale), call, "corp")

    def provider_token(self, suite_id: str, *, not_value: str | None = None) -> str:
        """The provider_access_token of ``suite_id``'s provider (license and ID-model APIs), single-flight."""
        config = self._suites.get(suite_id).config
        corpid, secret = config.provider_corpid, config.provider_secret
        if not corpid or secret is None:
            raise ProviderNotConfiguredError(f"suite {suite_id} has no provider_corpid and provider_secret")

        def fetch() -> IssuedToken:
            return self._client.get_provider_token(corpid, secret.get_secret_value())

        return self._store.get(self._names.provider_token(corpid), fetch, not_value=not_value).value

    def with_provider_token(self, suite_id: str, call: Callable[[str], T]) -> T:
        # Only this token is in the call: a token error of any kind is about it.
        return _retry_once(lambda stale: self.provider_token(suite_id, not_value=stale), call, None)

    def forget_corp(self, suite_id: str, corp_id: str, *, cancelled_at_event: int | None = None) -> None:
        """Delete the corp's permanent code and access token (cancel_auth): not a code a later install stored
        (see :meth:`PermanentCodes.delete`); the token goes either way (a later code's is simply fetched again)."""
        self._codes.delete(suite_id, corp_id, cancelled_at_event=cancelled_at_event)
        self._store.delete(self._names.corp_token(suite_id, corp_id))

    def forget_corp_token(self, suite_id: str, corp_id: str) -> None:
        """Drop the corp token (its permanent code was rotated by reset_permanent_code)."""
        self._store.delete(self._names.corp_token(suite_id, corp_id))


def _retry_once[R](token: Callable[[str | None], str], call: Callable[[str], R], kind: str | None) -> R:
    """WeCom's rule for a token it refuses (spec §4): drop that value, get a fresh one, retry once.

    ``token(stale)`` returns a token other than ``stale`` (None: any); ``kind`` is the token kind
    whose errors mean "this token" (None: any token error).
    """
    value = token(None)
    try:
        return call(value)
    except WeComTokenError as exc:
        if kind is not None and exc.token_kind != kind:
            raise
        return call(token(value))
