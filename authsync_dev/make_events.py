"""Write the sample events in events/ with real encryption under the test suite.

``python -m authsync_dev.make_events`` regenerates them; randomness, nonces and
timestamps are fixed so the files are reproducible and a test can check that the
committed files are exactly what this script produces.
"""

from __future__ import annotations

import json
from typing import Any

from authsync.wecom.crypto import CallbackCrypto
from authsync_dev.httpapi import http_api_event
from authsync_dev.template import ROOT
from authsync_dev.wecom import TEST_SUITE, event_xml, sign_echostr, sign_event

EVENTS = ROOT / "events"
SCHEMAS = EVENTS / "schemas"
ROUTE = "/wecom/callback/{suite_id}"
PATH = f"/wecom/callback/{TEST_SUITE.suite_id}"
SAMPLE_CORP = "wwsamplecorp000001"


def _fixed_random(seed: int) -> CallbackCrypto:
    """The test suite's crypto with deterministic 'random' prefixes (samples only)."""
    counter = iter(range(seed, seed + 1000))
    return CallbackCrypto(
        TEST_SUITE.token,
        TEST_SUITE.encoding_aes_key,
        TEST_SUITE.suite_id,
        random_bytes=lambda n: next(counter).to_bytes(n, "big"),
    )


def _stable(event: dict[str, Any], request_id: str, epoch_ms: int) -> dict[str, Any]:
    event["requestContext"]["requestId"] = request_id
    event["requestContext"]["timeEpoch"] = epoch_ms
    event["requestContext"]["time"] = "14/Nov/2023:22:13:20 +0000"
    return event


def sample_events() -> dict[str, dict[str, Any]]:
    suite = TEST_SUITE.suite_id
    ts = 1_700_000_000
    verify = sign_echostr(_fixed_random(1), "6270283574716416281", timestamp=ts, nonce="1372623149")
    documents = {
        "callback_post_suite_ticket": event_xml(
            {"SuiteId": suite, "InfoType": "suite_ticket", "TimeStamp": ts, "SuiteTicket": "sample-suite-ticket-0001"}
        ),
        "callback_post_create_auth": event_xml(
            {
                "SuiteId": suite,
                "AuthCode": "sample-auth-code-0001",
                "InfoType": "create_auth",
                "TimeStamp": ts,
                "State": "demo",
            }
        ),
        "callback_post_change_auth": event_xml(
            {"SuiteId": suite, "InfoType": "change_auth", "TimeStamp": ts, "AuthCorpId": SAMPLE_CORP}
        ),
    }
    route = {"suite_id": suite}
    events = {
        "callback_get_verify": _stable(
            http_api_event("GET", PATH, query=verify.query, route_key=f"GET {ROUTE}", path_parameters=route),
            "sample-get",
            ts * 1000,
        )
    }
    for seed, (name, document) in enumerate(documents.items(), start=10):
        signed = sign_event(_fixed_random(seed * 1000), document, timestamp=ts, nonce=str(1_000_000 + seed))
        event = http_api_event(
            "POST", PATH, query=signed.query, body=signed.body, route_key=f"POST {ROUTE}", path_parameters=route
        )
        events[name] = _stable(event, f"sample-{seed}", ts * 1000)
    return events


def fetch_events() -> dict[str, dict[str, Any]]:
    """SQS events for the fetch functions and an IAM-signed query request (as API Gateway passes it)."""
    from authsync_dev.sqs import lambda_sqs_event

    suite, ts = TEST_SUITE.suite_id, 1_700_000_000
    change = event_xml({"SuiteId": suite, "InfoType": "change_auth", "TimeStamp": ts, "AuthCorpId": SAMPLE_CORP})
    auth_message = {
        "MessageId": "6f0c2d6e-0000-4000-8000-000000000001",
        "ReceiptHandle": "sample-receipt-handle-1",
        "Body": change,
        "Attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": str(ts * 1000),
            "SenderId": "AROAEXAMPLE:callback-ingest",
            "ApproximateFirstReceiveTimestamp": str(ts * 1000 + 20),
            "SequenceNumber": "18881234567890123456",
            "MessageGroupId": f"{suite}:{SAMPLE_CORP}",
            "MessageDeduplicationId": "0" * 64,
        },
        "MessageAttributes": {
            "kind": {"DataType": "String", "StringValue": "callback"},
            "suite_id": {"DataType": "String", "StringValue": suite},
            "info_type": {"DataType": "String", "StringValue": "change_auth"},
            "corp_id": {"DataType": "String", "StringValue": SAMPLE_CORP},
        },
    }
    chat_message = {
        "MessageId": "6f0c2d6e-0000-4000-8000-000000000002",
        "ReceiptHandle": "sample-receipt-handle-2",
        "Body": json.dumps({"suite_id": suite, "corp_id": SAMPLE_CORP, "requested_at": float(ts)}),
        "Attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": str(ts * 1000 + 900),
            "MessageGroupId": f"{suite}:{SAMPLE_CORP}",
            "MessageDeduplicationId": "1" * 64,
        },
    }
    account = "arn:aws:sqs:us-east-1:123456789012"
    query = http_api_event(
        "GET",
        f"/corps/{suite}/{SAMPLE_CORP}",
        route_key="GET /corps/{suite_id}/{corp_id}",
        path_parameters={"suite_id": suite, "corp_id": SAMPLE_CORP},
        headers={"content-type": "application/json"},
    )
    # The token broker's two routes, as API Gateway passes them after SigV4 authorization.
    caller = {
        "iam": {
            "accountId": "123456789012",
            "callerId": "AROASAMPLECONSUMER:session",
            "userArn": "arn:aws:sts::123456789012:assumed-role/sample-consumer/session",
        }
    }
    token_path = f"/corps/{suite}/{SAMPLE_CORP}/token"
    broker_get = http_api_event(
        "GET",
        token_path,
        route_key="GET /corps/{suite_id}/{corp_id}/token",
        path_parameters={"suite_id": suite, "corp_id": SAMPLE_CORP},
        headers={"content-type": "application/json"},
    )
    broker_invalidate = http_api_event(
        "POST",
        token_path + "/invalidate",
        body=json.dumps({"access_token": "sample-rejected-access-token"}),
        route_key="POST /corps/{suite_id}/{corp_id}/token/invalidate",
        path_parameters={"suite_id": suite, "corp_id": SAMPLE_CORP},
        headers={"content-type": "application/json"},
    )
    for event in (broker_get, broker_invalidate):
        event["requestContext"]["authorizer"] = caller
    return {
        # EventBridge Scheduler invokes the scheduled functions with the schedule's Input: "{}" in
        # template.yaml (the functions read nothing from it).
        "schedule_reconcile": {},
        "schedule_token_refresh": {},
        "schedule_ticket_monitor": {},
        "auth_info_sqs_change_auth": lambda_sqs_event([auth_message], f"{account}:wecom-authsync-dev-auth-events.fifo"),
        "chatdata_sqs_request": lambda_sqs_event([chat_message], f"{account}:wecom-authsync-dev-chatdata.fifo"),
        "corp_query_get": _stable(query, "sample-query", ts * 1000),
        "token_broker_get": _stable(broker_get, "sample-token", ts * 1000),
        "token_broker_invalidate": _stable(broker_invalidate, "sample-invalidate", ts * 1000),
    }


def change_event_schemas() -> dict[str, dict[str, Any]]:
    """``events/schemas/<detail-type, kebab-case>.json``: one JSON schema per change event detail-type."""
    from authsync.domain.change_events import DetailType, event_schema

    return {detail_type.value.lower().replace(" ", "-"): event_schema(detail_type) for detail_type in DetailType}


def main() -> None:
    EVENTS.mkdir(exist_ok=True)
    for name, event in {**sample_events(), **fetch_events()}.items():
        path = EVENTS / f"{name}.json"
        path.write_text(json.dumps(event, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    SCHEMAS.mkdir(exist_ok=True)
    for name, schema in change_event_schemas().items():
        path = SCHEMAS / f"{name}.json"
        path.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
