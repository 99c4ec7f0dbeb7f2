"""Lambda's DynamoDB stream event source mappings, as poller threads (for the local stack).

One :class:`StreamPoller` per ``AWS::Lambda::EventSourceMapping`` whose ``EventSourceArn`` is a
table's ``StreamArn``. Like Lambda it reads the stream in order from ``TRIM_HORIZON`` (moto's
tables have one shard), drops records its ``FilterCriteria`` do not match, invokes the function
with up to ``BatchSize`` records and then:

* success: the batch is done;
* an invocation that raises, or (with ``ReportBatchItemFailures``) a ``batchItemFailures``
  entry: the batch is retried from the first failed record (by sequence number; an unknown
  identifier fails the whole batch, as Lambda does), records before it are done;
* after ``MaximumRetryAttempts`` retries the failed records are skipped and, with an
  ``OnFailure`` destination queue, a message describing them is sent there (Lambda's
  ``DDBStreamBatchInfo``), so nothing is skipped silently.

⚠️ Not emulated: ``BisectBatchOnFunctionError`` (a failing batch is retried whole from its first
failed record), ``MaximumRecordAgeInSeconds``, batching windows, parallelisation factors.
Filter patterns support exact-value lists only (what the template uses); any other operator is
refused when the stack starts instead of being misread.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from authsync_dev.local_functions import Activity, BackgroundWorker, LocalFunction, describe_error

__all__ = ["StreamPoller", "StreamSource", "lambda_stream_record", "matches", "stream_event_sources"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamSource:
    """A DynamoDB stream → function mapping from the template."""

    name: str
    function: str
    table: str
    """The table's logical id."""
    batch_size: int = 100
    patterns: tuple[Mapping[str, Any], ...] = ()
    report_batch_item_failures: bool = False
    max_retries: int = -1
    """-1: until the record expires (Lambda's default); here: forever."""
    on_failure_queue: str | None = None
    """The ``OnFailure`` destination queue's logical id."""

    def selects(self, record: Mapping[str, Any]) -> bool:
        """Whether the mapping's ``FilterCriteria`` let ``record`` through (no filter: every record)."""
        return not self.patterns or any(matches(pattern, record) for pattern in self.patterns)


def stream_event_sources(template: Mapping[str, Any]) -> list[StreamSource]:
    resources: Mapping[str, Any] = template["Resources"]
    sources: list[StreamSource] = []
    for logical_id, resource in resources.items():
        properties = resource.get("Properties") or {}
        arn = properties.get("EventSourceArn")
        if resource.get("Type") != "AWS::Lambda::EventSourceMapping" or not isinstance(arn, Mapping):
            continue
        target = arn.get("Fn::GetAtt") or [None, None]
        if target[1] != "StreamArn" or resources.get(target[0], {}).get("Type") != "AWS::DynamoDB::Table":
            continue
        patterns = tuple(
            _checked(json.loads(f["Pattern"])) for f in (properties.get("FilterCriteria") or {}).get("Filters", [])
        )
        destination = ((properties.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        sources.append(
            StreamSource(
                name=logical_id,
                function=properties["FunctionName"]["Ref"],
                table=target[0],
                batch_size=int(properties.get("BatchSize", 100)),
                patterns=patterns,
                report_batch_item_failures="ReportBatchItemFailures" in (properties.get("FunctionResponseTypes") or []),
                max_retries=int(properties.get("MaximumRetryAttempts", -1)),
                on_failure_queue=destination["Fn::GetAtt"][0] if isinstance(destination, Mapping) else None,
            )
        )
    return sources


def _checked(pattern: Any) -> Mapping[str, Any]:
    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            for value in node.values():
                walk(value)
        elif not (isinstance(node, list) and all(isinstance(v, str | int | float) for v in node)):
            raise ValueError(f"filter pattern operator not supported locally: {node!r}")

    walk(pattern)
    return pattern  # type: ignore[no-any-return]


def matches(pattern: Mapping[str, Any], record: Any) -> bool:
    """EventBridge-style matching of exact-value lists (nested keys must all match)."""
    if not isinstance(record, Mapping):
        return False
    for key, wanted in pattern.items():
        if key not in record:
            return False
        if isinstance(wanted, Mapping):
            if not matches(wanted, record[key]):
                return False
        elif record[key] not in wanted:
            return False
    return True


def lambda_stream_record(record: Mapping[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    """A ``GetRecords`` record as Lambda hands it to the function (source ARN and region added)."""
    change = dict(record["dynamodb"])
    created: Any = change.get("ApproximateCreationDateTime")
    if hasattr(created, "timestamp"):  # boto3 parsed it into a datetime; Lambda sends epoch seconds
        change["ApproximateCreationDateTime"] = int(created.timestamp())
    return {**record, "dynamodb": change, "eventSourceARN": stream_arn, "awsRegion": region}


class StreamPoller(BackgroundWorker):
    """Runs one :class:`StreamSource` against its table's stream in a daemon thread."""

    def __init__(
        self,
        source: StreamSource,
        function: LocalFunction,
        streams: Any,
        *,
        stream_arn: str,
        activity: Activity,
        region: str,
        sqs: Any = None,
        on_failure_url: str | None = None,
        interval: float = 0.1,
    ) -> None:
        super().__init__(f"stream-{source.name}")
        self.source = source
        self.function = function
        self.stream_arn = stream_arn
        self._streams = streams
        self._activity = activity
        self._region = region
        self._sqs = sqs
        self._on_failure_url = on_failure_url
        self._interval = interval
        (shard,) = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][:1]
        self._shard = shard["ShardId"]
        self._iterator: str | None = None
        self._pending: list[dict[str, Any]] = []
        self._retries = 0
        self._last_sequence: str | None = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.poll_once():
                    self._stop.wait(self._interval)
            except Exception as exc:
                if self._stop.is_set():
                    return
                log.warning("stream poller %s: %s; retrying in 1 s", self.source.name, type(exc).__name__)
                self._stop.wait(1.0)

    def caught_up(self) -> bool:
        """Nothing pending and nothing in the stream after the last record read (for ``wait_idle``)."""
        if self._pending:
            return False
        if self._last_sequence is None:
            position: dict[str, Any] = {"ShardIteratorType": "TRIM_HORIZON"}
        else:
            position = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": self._last_sequence}
        iterator = self._streams.get_shard_iterator(StreamArn=self.stream_arn, ShardId=self._shard, **position)
        return not self._streams.get_records(ShardIterator=iterator["ShardIterator"], Limit=1)["Records"]

    def poll_once(self) -> int:
        """Read new records (if none are pending), invoke once; how many records the function was given."""
        if not self._pending:
            self._read()
        if not self._pending:
            return 0
        batch = self._pending[: self.source.batch_size]
        with self._activity.busy():
            self._settle(batch)
        return len(batch)

    def _read(self) -> None:
        if self._iterator is None:
            self._iterator = self._streams.get_shard_iterator(
                StreamArn=self.stream_arn, ShardId=self._shard, ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
        answer = self._streams.get_records(ShardIterator=self._iterator, Limit=1000)
        self._iterator = answer.get("NextShardIterator") or self._iterator
        for record in answer["Records"]:
            self._last_sequence = record["dynamodb"]["SequenceNumber"]
            if self.source.selects(record):
                self._pending.append(lambda_stream_record(record, self.stream_arn, self._region))

    def _settle(self, batch: list[dict[str, Any]]) -> None:
        sequences = [r["dynamodb"]["SequenceNumber"] for r in batch]
        failed_from: int | None = None
        error: str | None = None
        try:
            response = self.function.invoke({"Records": batch})
        except Exception as exc:
            failed_from, error = 0, describe_error(exc)
        else:
            failures = (response or {}).get("batchItemFailures") if self.source.report_batch_item_failures else None
            if failures:
                ids = [f.get("itemIdentifier") for f in failures]
                failed_from = min((sequences.index(i) for i in ids if i in sequences), default=0)
                if any(i not in sequences for i in ids):
                    failed_from = 0  # an identifier not in the batch fails it whole, as Lambda does
        if failed_from is None:
            del self._pending[: len(batch)]
            self._retries = 0
            log.info("%s <- %s: %d stream record(s) ok", self.function.logical_id, self.source.table, len(batch))
            return
        del self._pending[:failed_from]
        self._retries += 1
        if 0 <= self.source.max_retries < self._retries:
            self._give_up(batch[failed_from:])
            return
        log.warning(
            "%s <- %s: %d stream record(s), retrying from record %d (attempt %d)%s",
            self.function.logical_id,
            self.source.table,
            len(batch),
            failed_from,
            self._retries,
            f": {error}" if error else "",
        )

    def _give_up(self, records: list[dict[str, Any]]) -> None:
        del self._pending[: len(records)]
        self._retries = 0
        info = {
            "shardId": self._shard,
            "startSequenceNumber": records[0]["dynamodb"]["SequenceNumber"],
            "endSequenceNumber": records[-1]["dynamodb"]["SequenceNumber"],
            "streamArn": self.stream_arn,
            "batchSize": len(records),
        }
        log.error(
            "%s <- %s: %d record(s) skipped after retries", self.function.logical_id, self.source.table, len(records)
        )
        if self._sqs is not None and self._on_failure_url is not None:
            self._sqs.send_message(QueueUrl=self._on_failure_url, MessageBody=json.dumps({"DDBStreamBatchInfo": info}))
