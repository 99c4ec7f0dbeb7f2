"""DynamoDB helpers the adapters share."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from authsync.aws.credentials import error_code

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

__all__ = ["put_new"]


def put_new(client: DynamoDBClient, table: str, item: Mapping[str, Any]) -> bool:
    """Put ``item`` only if no item has its key (``pk``): True if written, False if one existed (the first stays)."""
    try:
        client.put_item(TableName=table, Item=dict(item), ConditionExpression="attribute_not_exists(pk)")
    except ClientError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise
    return True
