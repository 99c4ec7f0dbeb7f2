"""Lists that grow with the corp, stored in pages beside the snapshot instead of inside it.

A DynamoDB item holds 400 KB; a corp's authorized-member list (``chatdata/get_auth_user_list``,
all pages) is about 60 bytes a member, so ~5,000 members no longer fit a snapshot item, and
100,000 are 6 MB. Such a list is written as pages of at most :data:`PAGE_BYTES` under the corp's
partition (``sk = L#<name>#<tag>#<page>``); the snapshot document keeps only a reference:
``{"$list": {"count": n, "digest": sha256}}``. The tag is the digest's prefix, so writing the
same list again rewrites the same items (idempotent), and a new list never overwrites the
pages the current snapshot still points at: pages are written *before* the snapshot that
references them, and the other tags are deleted only *after* it landed. A crash in between
leaves unreferenced pages that the next write (or the corp's cancellation) deletes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

__all__ = ["LIST_MARKER", "PAGE_BYTES", "ListPages", "list_ref", "ref_of"]

PAGE_BYTES = 200_000
"""The serialized size a page stays under (half DynamoDB's item limit)."""

LIST_MARKER = "$list"
_TAG = 16
_BATCH = 25


def list_ref(items: list[Any]) -> dict[str, Any]:
    """The reference a snapshot keeps of ``items``: its length and the SHA-256 of its canonical JSON."""
    canonical = json.dumps(items, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return {"count": len(items), "digest": hashlib.sha256(canonical.encode("utf-8")).hexdigest()}


def ref_of(value: object) -> dict[str, Any] | None:
    """The reference inside a stored document's value (``{"$list": ref}``), or None if it is not one."""
    if isinstance(value, Mapping) and set(value) == {LIST_MARKER} and isinstance(value[LIST_MARKER], Mapping):
        return dict(value[LIST_MARKER])
    return None


def _pages(items: list[Any]) -> Iterator[list[Any]]:
    page: list[Any] = []
    size = 2
    for item in items:
        item_bytes = len(json.dumps(item, ensure_ascii=False).encode("utf-8")) + 1
        if page and size + item_bytes > PAGE_BYTES:
            yield page
            page, size = [], 2
        page.append(item)
        size += item_bytes
    if page or not items:
        yield page


class ListPages:
    """Pages of named lists under a corp's partition of the corps table."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def write(self, pk: str, name: str, digest: str, items: list[Any]) -> int:
        """Store ``items`` under ``digest``'s tag (idempotent); the number of pages."""
        count = 0
        for number, page in enumerate(_pages(items)):
            self._client.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": pk},
                    "sk": {"S": _sk(name, digest, number)},
                    "items": {"S": json.dumps(page, ensure_ascii=False, separators=(",", ":"))},
                },
            )
            count += 1
        return count

    def read(self, pk: str, name: str, digest: str) -> list[Any] | None:
        """The list stored under ``digest``'s tag, in order; None if its pages are gone."""
        items: list[Any] = []
        found = False
        for item in self._query(pk, f"L#{name}#{digest[:_TAG]}#"):
            found = True
            items.extend(json.loads(item["items"]["S"]))
        return items if found else None

    def delete_others(self, pk: str, name: str | None = None, *, keep: str | None = None) -> int:
        """Delete the pages of ``name`` (every list when None) except ``keep``'s tag; how many items went."""
        prefix = f"L#{name}#" if name is not None else "L#"
        kept = f"L#{name}#{keep[:_TAG]}#" if name is not None and keep is not None else None
        keys = [
            {"pk": item["pk"], "sk": item["sk"]}
            for item in self._query(pk, prefix, keys_only=True)
            if kept is None or not item["sk"]["S"].startswith(kept)
        ]
        for start in range(0, len(keys), _BATCH):
            requests: Any = [{"DeleteRequest": {"Key": k}} for k in keys[start : start + _BATCH]]
            while requests:
                answer = self._client.batch_write_item(RequestItems={self._table: requests})
                requests = answer.get("UnprocessedItems", {}).get(self._table, [])
        return len(keys)

    def _query(self, pk: str, prefix: str, *, keys_only: bool = False) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": pk}, ":prefix": {"S": prefix}},
            "ConsistentRead": True,
        }
        if keys_only:
            kwargs["ProjectionExpression"] = "pk, sk"
        while True:
            page = self._client.query(**kwargs)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _sk(name: str, digest: str, number: int) -> str:
    return f"L#{name}#{digest[:_TAG]}#{number:05d}"
