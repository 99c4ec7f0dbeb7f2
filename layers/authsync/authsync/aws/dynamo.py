"""DynamoDB helpers the adapters share."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from authsync.aws.credentials import error_code

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

__all__ = ["LazyTable", "put_new"]


class LazyTable:
    """An adapter of one table whose client may be a factory, called on first use: callback-ingest's rarely
    written tables (the inbox, the unmodelled store) then cost no client in the init WeCom's first callback
    waits for. Several adapters share one client by sharing one (caching) factory."""

    def __init__(
        self,
        client: DynamoDBClient | Callable[[], DynamoDBClient],
        table: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client_or_factory = client
        self._table = table
        self._clock = clock

    @property
    def _client(self) -> DynamoDBClient:
        if callable(self._client_or_factory) and not hasattr(self._client_or_factory, "put_item"):
            self._client_or_factory = self._client_or_factory()
        return self._client_or_factory  # type: ignore[return-value]


def put_new(client: DynamoDBClient, table: str, item: Mapping[str, Any]) -> bool:
    """Put ``item`` only if no item has its key (``pk``): True if written, False if one existed (the first stays)."""
    try:
        client.put_item(TableName=table, Item=dict(item), ConditionExpression="attribute_not_exists(pk)")
    except ClientError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise
    return True
