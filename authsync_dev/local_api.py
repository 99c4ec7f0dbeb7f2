"""The template's HTTP API on 127.0.0.1: requests become API Gateway HTTP API (v2) events.

Routes come from each function's ``Events`` of ``Type: HttpApi`` (``Method`` + ``Path``
with ``{param}`` and greedy ``{param+}`` segments, ``ANY``, ``$default``). A request is
matched like API Gateway does (literal routes before parameter routes, greedy last),
turned into a payload-format-2.0 event (``routeKey``, ``rawPath``, ``rawQueryString``,
``queryStringParameters``, ``pathParameters``, ``cookies``, ``isBase64Encoded`` for
non-text bodies) and handed to the function; its response (``statusCode``, ``headers``,
``cookies``, ``body``, ``isBase64Encoded``) is written back as is. Unknown routes get
API Gateway's ``404 {"message":"Not Found"}``; a handler exception its
``500 {"message":"Internal Server Error"}``.

``Auth: Authorizer: AWS_IAM`` routes answer API Gateway's ``403 {"message":"Forbidden"}`` to a
request without a SigV4 ``Authorization`` header, so an unsigned caller fails locally as it would
in AWS; ⚠️ the signature itself is not verified (any credentials do). A signed request's event
carries ``requestContext.authorizer.iam`` with the signing access key as ``callerId`` (no
``userArn``: there is no IAM here). Request lines are never logged (their query strings carry
signatures); route keys are.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from authsync_dev.httpapi import http_api_event
from authsync_dev.httpserver import HOST, BackgroundHTTPServer, HttpRequest, HttpResponse
from authsync_dev.local_functions import describe_error

__all__ = ["HOST", "HttpApiServer", "Route", "api_response", "http_routes", "is_text", "signed", "signing_key"]

log = logging.getLogger(__name__)

MAX_BODY = 10 * 1024 * 1024  # API Gateway's payload limit
_TEXT_TYPES = (
    "application/json",
    "application/xml",
    "application/javascript",
    "application/x-www-form-urlencoded",
    "application/graphql",
)
_NOT_FOUND = (404, [("Content-Type", "application/json")], b'{"message":"Not Found"}')
_FAILED = (500, [("Content-Type", "application/json")], b'{"message":"Internal Server Error"}')
_FORBIDDEN = (403, [("Content-Type", "application/json")], b'{"message":"Forbidden"}')
_SIGV4_CREDENTIAL = re.compile(r"^AWS4-HMAC-SHA256 Credential=([A-Za-z0-9]+)/[^,]+,.*Signature=[0-9a-f]{64}$")
LOCAL_ACCOUNT = "123456789012"

Invoke = Callable[[str, dict[str, Any]], Any]
Answer = tuple[int, list[tuple[str, str]], bytes]


@dataclass(frozen=True)
class Route:
    """One ``HttpApi`` event: ``method`` (upper case or ``ANY``) and ``path`` as in the template."""

    method: str
    path: str
    function: str
    event_name: str
    iam: bool = False

    @property
    def route_key(self) -> str:
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"

    @property
    def _segments(self) -> list[str]:
        return [s for s in self.path.split("/") if s]

    @property
    def greedy(self) -> bool:
        return self.path == "$default" or self.path.endswith("+}")

    def precedence(self) -> tuple[int, int, int]:
        """Sort key: ``$default`` last, greedy after exact, more literal segments first, ANY last."""
        literals = sum(1 for s in self._segments if not s.startswith("{"))
        return (2 if self.path == "$default" else int(self.greedy), -literals, int(self.method == "ANY"))

    def match(self, method: str, raw_path: str) -> dict[str, str] | None:
        """Path parameters (URL-decoded) if the request matches, else ``None``."""
        if self.method not in ("ANY", method):
            return None
        if self.path == "$default":
            return {}
        pattern = "".join(_segment_pattern(s) for s in self._segments) or "/"
        found = re.fullmatch(pattern, raw_path)
        if found is None:
            return None
        return {name: unquote(value) for name, value in found.groupdict().items()}


def _segment_pattern(segment: str) -> str:
    if segment.startswith("{") and segment.endswith("+}"):
        return f"/(?P<{_group(segment[1:-2])}>.+)"
    if segment.startswith("{") and segment.endswith("}"):
        return f"/(?P<{_group(segment[1:-1])}>[^/]+)"
    return "/" + re.escape(segment)


def _group(name: str) -> str:
    if not name.isidentifier():
        raise ValueError(f"path parameter {name!r} is not supported locally")
    return name


def http_routes(template: Mapping[str, Any]) -> list[Route]:
    """The ``HttpApi`` routes of every serverless function, most specific first."""
    routes: list[Route] = []
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event_name, event in (resource.get("Properties", {}).get("Events") or {}).items():
            if event.get("Type") != "HttpApi":
                continue
            properties = event.get("Properties") or {}
            method, path = properties.get("Method", "ANY"), properties.get("Path", "$default")
            if not isinstance(method, str) or not isinstance(path, str):
                raise ValueError(f"{logical_id}.{event_name}: Method and Path must be literal strings")
            authorizer = (properties.get("Auth") or {}).get("Authorizer")
            routes.append(Route(method.upper(), path, logical_id, event_name, iam=authorizer == "AWS_IAM"))
    keys = [r.route_key for r in routes]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise ValueError(f"duplicate routes {duplicates}")
    return sorted(routes, key=Route.precedence)


def is_text(content_type: str) -> bool:
    """Whether API Gateway would pass a body with this Content-Type as text (else base64)."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media.startswith("text/") or media in _TEXT_TYPES or media.endswith(("+json", "+xml"))


def _api_gateway_error(status: int, message: str) -> HttpResponse:
    """What API Gateway answers by itself: ``{"message": ...}``."""
    return HttpResponse(status, json.dumps({"message": message}).encode(), "application/json")


def api_response(result: Any) -> Answer:
    """Translate a handler's return value as API Gateway does for payload format 2.0."""
    if not (isinstance(result, Mapping) and "statusCode" in result):
        # No statusCode: API Gateway assumes 200 and JSON, the whole result being the body.
        return 200, [("Content-Type", "application/json")], json.dumps(result).encode("utf-8")
    status = result["statusCode"]
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise ValueError("statusCode must be an integer HTTP status")
    headers: list[tuple[str, str]] = [(str(name), str(value)) for name, value in (result.get("headers") or {}).items()]
    headers.extend(("Set-Cookie", str(cookie)) for cookie in result.get("cookies") or [])
    body = result.get("body")
    if body is None:
        raw = b""
    elif result.get("isBase64Encoded"):
        raw = base64.b64decode(str(body), validate=True)
    else:
        raw = str(body).encode("utf-8")
    return status, headers, raw


class HttpApiServer:
    """Serve ``routes`` on ``127.0.0.1:port`` (0: ephemeral); the port is known before :meth:`start`."""

    def __init__(self, routes: Sequence[Route], invoke: Invoke, *, port: int = 0) -> None:
        self.routes = list(routes)
        self._invoke = invoke
        self._server = BackgroundHTTPServer(
            self._serve, port=port, max_body=MAX_BODY, reject=_api_gateway_error, name="local-httpapi"
        )

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def url(self) -> str:
        return self._server.url

    def start(self) -> HttpApiServer:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def _serve(self, request: HttpRequest) -> HttpResponse:
        status, headers, body = self.handle(request)
        if body and not any(name.lower() == "content-type" for name, _ in headers):
            headers = [*headers, ("Content-Type", "application/json")]
        return HttpResponse(status, body, content_type=None, headers=headers)

    def route(self, method: str, raw_path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            params = route.match(method, raw_path)
            if params is not None:
                return route, params
        return None

    def handle(self, request: HttpRequest) -> Answer:
        found = self.route(request.method, request.path)
        if found is None:
            log.info("%s (no route) -> 404", request.method)
            return _NOT_FOUND
        route, params = found
        if route.iam and signing_key(request.headers) is None:
            log.info("%s: not SigV4-signed -> 403", route.route_key)
            return _FORBIDDEN
        event = self.event(route, params, request)
        started = time.monotonic()
        try:
            result = self._invoke(route.function, event)
        except Exception as exc:
            log.error("%s: %s failed: %s -> 500", route.route_key, route.function, describe_error(exc))
            return _FAILED
        try:
            answer = api_response(result)
        except (ValueError, TypeError, binascii.Error) as exc:
            log.error("%s: %s returned a malformed response (%s) -> 500", route.route_key, route.function, exc)
            return _FAILED
        request_id = event["requestContext"]["requestId"]
        answer[1].append(("Apigw-Requestid", request_id))
        log.info("%s -> %d (%d ms)", route.route_key, answer[0], (time.monotonic() - started) * 1000)
        return answer

    def event(self, route: Route, params: dict[str, str], request: HttpRequest) -> dict[str, Any]:
        """The HTTP API v2 event API Gateway would pass for this request."""
        headers, body = dict(request.headers), request.body
        text = is_text(headers.get("content-type", ""))
        if text:
            try:
                body.decode("utf-8")
            except UnicodeDecodeError:
                text = False
        event = http_api_event(
            request.method,
            request.path,
            query=request.query_string,
            body=body or None,
            base64_body=bool(body) and not text,
            path_parameters=params or None,
            route_key=route.route_key,
        )
        cookies = [c.strip() for c in headers.pop("cookie", "").split(";") if c.strip()]
        port = str(self.port)
        event["headers"] = {
            **headers,
            "x-forwarded-for": request.client_ip,
            "x-forwarded-port": port,
            "x-forwarded-proto": "http",
        }
        if cookies:
            event["cookies"] = cookies
        context = event["requestContext"]
        context["apiId"] = "local"
        context["domainName"] = headers.get("host", f"{HOST}:{port}")
        context["http"]["sourceIp"] = request.client_ip
        context["http"]["userAgent"] = headers.get("user-agent", "")
        key = signing_key(request.headers) if route.iam else None
        if key is not None:
            context["authorizer"] = {"iam": {"accessKey": key, "accountId": LOCAL_ACCOUNT, "callerId": key}}
        return event


def signing_key(headers: Mapping[str, str]) -> str | None:
    """The access key of a SigV4 ``Authorization`` header (headers lower-cased), or None if unsigned."""
    found = _SIGV4_CREDENTIAL.match(headers.get("authorization", ""))
    return found.group(1) if found else None


LOCAL_ACCESS_KEY = "AKIDLOCALSTACK00000"


def signed(method: str, url: str, body: bytes | None = None, *, region: str = "us-east-1") -> dict[str, str]:
    """Headers that sign a request to an IAM route of the local API (fixed local credentials: any will do)."""
    from botocore.credentials import Credentials

    from authsync.broker_client import sigv4_headers

    return sigv4_headers(method, url, body, credentials=Credentials(LOCAL_ACCESS_KEY, "local-secret"), region=region)
