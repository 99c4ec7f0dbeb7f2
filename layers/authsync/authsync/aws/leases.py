"""Single-flight across Lambda instances: a lease is one DynamoDB item, taken with a conditional put.

Whoever puts the item (it did not exist, or its ``held_until`` has passed) holds the lease
until then; everyone else is told "no" at once and decides for itself whether to wait.
Release is conditional on the owner, so an instance whose lease expired (it was slow)
never deletes the lease another instance took over. ``expires_at`` only lets DynamoDB's
TTL clean up abandoned items; the clock that matters is ``held_until``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from authsync.aws.credentials import error_code

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

__all__ = ["Leases"]


class Leases:
    """Single-flight across instances: one DynamoDB item per lease, taken with a conditional put."""

    def __init__(self, client: DynamoDBClient, table: str, *, clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._table = table
        self._clock = clock
        self._owner = uuid.uuid4().hex

    def acquire(self, key: str, ttl: float) -> bool:
        now = self._clock()
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "lease": {"S": key},
                    "owner": {"S": self._owner},
                    "held_until": {"N": f"{now + ttl:.3f}"},
                    "expires_at": {"N": str(int(now + ttl) + 3600)},  # TTL clean-up only
                },
                ConditionExpression="attribute_not_exists(lease) OR held_until < :now",
                ExpressionAttributeValues={":now": {"N": f"{now:.3f}"}},
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def release(self, key: str) -> None:
        try:
            self._client.delete_item(
                TableName=self._table,
                Key={"lease": {"S": key}},
                ConditionExpression="#o = :me",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":me": {"S": self._owner}},
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise  # someone else's lease by now (ours expired): leave it
