"""API Gateway HTTP API (payload format 2.0) events, as API Gateway would build them."""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any
from urllib.parse import quote, unquote

__all__ = ["http_api_event"]


def http_api_event(
    method: str,
    path: str,
    *,
    query: dict[str, str] | str | None = None,
    body: bytes | str | None = None,
    base64_body: bool = False,
    path_parameters: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    route_key: str | None = None,
) -> dict[str, Any]:
    """Build an HTTP API v2 event. ``query`` given as a dict is percent-encoded like a client would."""
    if isinstance(query, dict):
        raw_query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query.items())
    else:
        raw_query = query or ""
    params: dict[str, str] = {}
    for part in filter(None, raw_query.split("&")):
        name, _, value = part.partition("=")
        key = unquote(name)
        params[key] = f"{params[key]},{unquote(value)}" if key in params else unquote(value)
    raw_body = body.encode("utf-8") if isinstance(body, str) else body
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key or f"{method} {path}",
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": {"content-type": "text/xml", "user-agent": "wecom-authsync-dev", **(headers or {})},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "wecom-authsync-dev",
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key or f"{method} {path}",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "timeEpoch": int(time.time() * 1000),
        },
        "isBase64Encoded": base64_body,
    }
    if params:
        event["queryStringParameters"] = params
    if path_parameters:
        event["pathParameters"] = path_parameters
    if raw_body is not None:
        event["body"] = base64.b64encode(raw_body).decode("ascii") if base64_body else raw_body.decode("utf-8")
    return event
