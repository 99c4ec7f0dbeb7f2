"""A consumer's client for the token broker: SigV4-signed requests to ``/corps/{suite_id}/{corp_id}/token``.

The broker's routes are IAM-authorized (API Gateway answers 403 to an unsigned request), so a
consumer signs each request with its own AWS credentials (botocore's ``SigV4Auth``, service
``execute-api``); its role needs ``execute-api:Invoke`` on the two route ARNs (README "Token
broker"). Usage::

    client = BrokerClient("https://abc123.execute-api.ap-east-1.amazonaws.com")
    token = client.token(suite_id, corp_id)          # CorpToken: .access_token, .expires_at
    ...  # WeCom answers 40014/42001 to token.access_token:
    token = client.invalidate(suite_id, corp_id, token.access_token)

Tokens never appear in a ``repr`` or an error. botocore and requests are imported when the
client is created, not with this module (a Lambda consumer already has botocore).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

__all__ = [
    "BrokerClient",
    "BrokerError",
    "BrokerUnavailableError",
    "CorpNotFoundError",
    "CorpToken",
    "InvalidationLimitedError",
    "sigv4_headers",
]

_REGION_IN_URL = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com")


class BrokerError(RuntimeError):
    """The broker did not hand out a token: ``status`` is its HTTP status (403: not allowed to invoke)."""

    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(f"token broker: HTTP {status} ({message})")
        self.status = status
        self.retry_after = retry_after


class CorpNotFoundError(BrokerError):
    """404: the corp is unknown, cancelled or not (or no longer) authorized: there is no token for it."""


class InvalidationLimitedError(BrokerError):
    """429: this corp's token was invalidated less than a minute ago; ``retry_after`` seconds."""


class BrokerUnavailableError(BrokerError):
    """503: WeCom cannot be reached or is busy; retry after ``retry_after`` seconds."""


_ERRORS: dict[int, type[BrokerError]] = {
    404: CorpNotFoundError,
    429: InvalidationLimitedError,
    503: BrokerUnavailableError,
}


@dataclass(frozen=True)
class CorpToken:
    """A corp access token and when it expires (epoch seconds); ``repr`` hides the token."""

    access_token: str = field(repr=False)
    expires_at: int

    def remaining(self, now: float | None = None) -> float:
        return self.expires_at - (time.time() if now is None else now)


def sigv4_headers(method: str, url: str, body: bytes | None, *, credentials: Any, region: str) -> dict[str, str]:
    """Headers that make ``method url`` (with ``body``) a SigV4-signed ``execute-api`` request (any IAM route)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    if hasattr(credentials, "get_frozen_credentials"):
        credentials = credentials.get_frozen_credentials()  # one consistent key/secret/token set
    headers = {"Content-Type": "application/json"} if body is not None else {}
    request = AWSRequest(method=method, url=url, data=body, headers=headers)
    SigV4Auth(credentials, "execute-api", region).add_auth(request)
    return dict(request.headers.items())


class BrokerClient:
    """Signs and sends broker requests; ``session`` is a botocore session (credentials and region from it).

    ``credentials`` (anything with ``access_key``, ``secret_key``, ``token``, or botocore's
    refreshable credentials) overrides the session's. The region defaults to the one in an
    ``execute-api`` URL, then to the session's.
    """

    def __init__(
        self,
        base_url: str,
        *,
        region: str | None = None,
        session: Any = None,
        credentials: Any = None,
        timeout: float = 30.0,
        http: Any = None,
    ) -> None:
        import botocore.session
        import requests

        self.base_url = base_url.rstrip("/")
        self._session = session if session is not None else botocore.session.get_session()
        self._credentials = credentials
        found = _REGION_IN_URL.search(self.base_url)
        # The API's own region signs (an execute-api URL names it), whatever the session's default is.
        self.region = region or (found.group(1) if found else None) or self._session.get_config_variable("region") or ""
        if not self.region:
            raise ValueError("no AWS region: pass region= or configure one")
        self._timeout = timeout
        self._http = http if http is not None else requests.Session()

    def __repr__(self) -> str:
        return f"BrokerClient(base_url={self.base_url!r}, region={self.region!r})"

    def token(self, suite_id: str, corp_id: str) -> CorpToken:
        """A token valid at least five more minutes (unless WeCom cannot do better: check ``expires_at``)."""
        return self._token(self._send("GET", self._path(suite_id, corp_id), None))

    def invalidate(self, suite_id: str, corp_id: str, access_token: str) -> CorpToken:
        """Report ``access_token`` as rejected by WeCom (40014/42001); answers the token to use instead."""
        body = json.dumps({"access_token": access_token}).encode("utf-8")
        return self._token(self._send("POST", self._path(suite_id, corp_id) + "/invalidate", body))

    @staticmethod
    def _path(suite_id: str, corp_id: str) -> str:
        return f"/corps/{quote(suite_id, safe='')}/{quote(corp_id, safe='')}/token"

    def signed(self, method: str, path: str, body: bytes | None) -> tuple[str, dict[str, str]]:
        """The URL and headers (``Authorization``, ``X-Amz-Date``, ``X-Amz-Security-Token``) of a signed request."""
        credentials = self._credentials if self._credentials is not None else self._session.get_credentials()
        if credentials is None:
            raise BrokerError(0, "no AWS credentials to sign with")
        url = self.base_url + path
        return url, sigv4_headers(method, url, body, credentials=credentials, region=self.region)

    def _send(self, method: str, path: str, body: bytes | None) -> Any:
        url, headers = self.signed(method, path, body)
        return self._http.request(method, url, headers=headers, data=body, timeout=self._timeout)

    @staticmethod
    def _token(response: Any) -> CorpToken:
        status = int(response.status_code)
        if status == 200:
            document = response.json()
            return CorpToken(str(document["access_token"]), int(document["expires_at"]))
        try:
            message = str(response.json().get("message", ""))
        except ValueError:
            message = ""
        retry = response.headers.get("Retry-After")
        retry_after = int(retry) if retry is not None and retry.isdigit() else None
        raise _ERRORS.get(status, BrokerError)(status, message[:200], retry_after)
