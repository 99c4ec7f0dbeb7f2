"""The emulator's mutable world, behind one lock, and the credential bookkeeping on it.

The HTTP worker threads, the ticket pusher and the test thread all touch the same
suites, corps and tokens; every read-modify-write happens under :attr:`EmulatorState.lock`
(re-entrant, so helpers compose). Callers never hold it across network I/O: a
callback receiver that calls back into the emulator while being pushed to must not
deadlock.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Literal

from authsync_dev.emulator.entitlement_book import EntitlementBook
from authsync_dev.emulator.entitlements import DEFAULT_PROVIDER_CORPID, Provider
from authsync_dev.emulator.errors import WeComError
from authsync_dev.emulator.model import (
    AuthCode,
    Authorization,
    CorpRecord,
    IssuedToken,
    SuiteRecord,
    TokenKind,
    new_secret,
)

if TYPE_CHECKING:
    from authsync_dev.emulator.clock import Clock

__all__ = ["DEFAULT_TOKEN_TTL", "EmulatorState"]

DEFAULT_TOKEN_TTL = 7200


class EmulatorState:
    """The provider, suites, corps, authorizations, auth codes, issued tokens and entitlements."""

    def __init__(
        self,
        clock: Clock,
        *,
        token_ttl: int = DEFAULT_TOKEN_TTL,
        provider_corpid: str | None = None,
        provider_secret: str | None = None,
    ) -> None:
        if token_ttl <= 0:
            raise ValueError("token_ttl must be positive")
        self.lock = threading.RLock()
        self.clock = clock
        self.token_ttl = token_ttl
        self.provider = Provider(provider_corpid or DEFAULT_PROVIDER_CORPID, provider_secret or new_secret(32))
        self.entitlements = EntitlementBook()
        self.suites: dict[str, SuiteRecord] = {}
        self.corps: dict[str, CorpRecord] = {}
        self.authorizations: dict[tuple[str, str], Authorization] = {}
        self.auth_codes: dict[str, AuthCode] = {}
        self.tokens: dict[str, IssuedToken] = {}
        self._current: dict[tuple[TokenKind, str, str | None], str] = {}
        """(kind, suite_id, corpid or None for a suite token) -> the token handed out again while live."""

    # -- lookups that raise WeCom errors ------------------------------------------------

    def suite(self, suite_id: str) -> SuiteRecord:
        suite = self.suites.get(suite_id)
        if suite is None:
            raise WeComError(40083)
        return suite

    def authorization_by_code(self, suite_id: str, corpid: str, permanent_code: str) -> Authorization:
        """The live authorization a (corpid, permanent_code) pair names, as get_auth_info checks it.

        Unknown corp: 40013. A cancelled install, a reset (old) code, a code of another
        suite or just a wrong one: 40084.
        """
        if corpid not in self.corps:
            raise WeComError(40013)
        auth = self.authorizations.get((suite_id, corpid))
        if auth is None or not auth.active or auth.permanent_code != permanent_code:
            raise WeComError(40084)
        return auth

    # -- credentials --------------------------------------------------------------------

    def mint_auth_code(
        self, suite_id: str, corpid: str, purpose: Literal["create_auth", "reset_permanent_code"]
    ) -> str:
        code = AuthCode(new_secret(72), suite_id, corpid, purpose, self.clock.now())
        self.auth_codes[code.value] = code
        return code.value

    def issue_token(
        self, suite_id: str, corpid: str | None, *, fresh: bool = False, provider: bool = False
    ) -> IssuedToken:
        """Hand out the live token again (WeCom does within its 2 h) or mint a new one.

        A suite token without ``corpid``, a corp token with it; ``provider`` the provider token
        (``suite_id`` ``""``, ``corpid`` the provider's; ⚠️ handed out again like a suite token).
        ``fresh`` ends the current token early first (the ``invalidate_token`` fault).
        """
        now = self.clock.now()
        kind: TokenKind = "provider" if provider else "suite" if corpid is None else "corp"
        key = (kind, suite_id, corpid)
        current = self.tokens.get(self._current.get(key, ""))
        if current is not None and fresh:
            current.invalidated = True
        if current is not None and current.live(now):
            return current
        token = IssuedToken(new_secret(96), kind, suite_id, corpid, now, now + self.token_ttl)
        self.tokens[token.value] = token
        self._current[key] = token.value
        return token

    def invalidate_tokens(
        self,
        *,
        suite_id: str | None = None,
        corpid: str | None = None,
        kind: TokenKind | None = None,
        revoke: bool = False,
    ) -> int:
        """End matching live tokens early (reported as expired) or ``revoke`` them (reported as invalid)."""
        now = self.clock.now()
        count = 0
        for token in self.tokens.values():
            if not token.live(now):
                continue
            if suite_id is not None and token.suite_id != suite_id:
                continue
            if corpid is not None and token.corpid != corpid:
                continue
            if kind is not None and token.kind != kind:
                continue
            if revoke:
                token.revoked = True
            else:
                token.invalidated = True
            count += 1
        return count

    def invalidate_value(self, value: str) -> bool:
        """End one presented token early; ``False`` if it is not a live token."""
        token = self.tokens.get(value)
        if token is None or not token.live(self.clock.now()):
            return False
        token.invalidated = True
        return True
