"""moto's server, in this process's threads or in a process of its own (the local stack's AWS).

``python -m authsync_dev.moto_process --port N`` runs moto's own server (``moto.server.main``)
with the patches of :func:`tuned_moto`. The local stack starts it this way with
``moto="process"`` (:class:`authsync_dev.stack_config.StackConfig`): moto then answers on the
machine's second core instead of sharing one interpreter lock with the functions, the
emulator and the HTTP API (the chaos campaign needs both cores). The same moto, the same HTTP
endpoint, ``/moto-api/reset`` included; the patches change what moto costs, and make its
DynamoDB linearizable as DynamoDB is, not what it answers.
"""

from __future__ import annotations

import argparse
import copy
import logging
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from unittest import mock

import requests

__all__ = ["MotoProcess", "free_port", "linearizable_dynamodb", "quick_sqs_clock", "tuned_moto"]

log = logging.getLogger(__name__)


@contextmanager
def quick_sqs_clock() -> Iterator[None]:
    """moto's SQS with its clock functions replaced by ``time.time``: the same epoch seconds, ~40x cheaper.

    moto re-evaluates every queued message's visibility on each read of a queue's
    attributes -- twice per SendMessage, once per *received* message, once per
    GetQueueAttributes -- through a datetime-based ``unix_time`` (~9 µs a call). With
    1,000 messages queued that is O(n²): minutes spent in moto's clock. The replacement
    returns the same value; what SQS does is unchanged.
    """
    from moto.core import utils
    from moto.sqs import models

    def unix_time(dt: datetime | None = None) -> float:
        return time.time() if dt is None else utils.unix_time(dt)

    def unix_time_millis(dt: datetime | None = None) -> float:
        return time.time() * 1000.0 if dt is None else utils.unix_time_millis(dt)

    with (
        mock.patch.object(models, "unix_time", unix_time),
        mock.patch.object(models, "unix_time_millis", unix_time_millis),
    ):
        yield


def _one_at_a_time(call_action: Any) -> Any:
    """moto's DynamoDB request handler, answering one request at a time (see :func:`tuned_moto`)."""
    import threading

    lock = threading.RLock()

    def serialized(self: Any) -> Any:
        with lock:
            return call_action(self)

    return serialized


@contextmanager
def linearizable_dynamodb() -> Iterator[None]:
    """In-process moto (``mock_aws``) with DynamoDB answering one request at a time, as :func:`tuned_moto`
    makes the server: concurrent conditional writes are then judged as DynamoDB judges them."""
    from moto.dynamodb.responses import DynamoHandler

    with mock.patch.object(DynamoHandler, "call_action", _one_at_a_time(DynamoHandler.call_action)):
        yield


def tuned_moto() -> None:
    """Patch this process's moto server for hundreds of concurrent clients (for good: call once, at start).

    * **One DynamoDB request at a time.** moto's server answers in threads, and its DynamoDB
      backend has no locks: a conditional write racing another write could pass a condition
      DynamoDB would fail, and a read could iterate a table being written ("dictionary changed
      size"). DynamoDB itself is linearizable per item; one lock makes moto at least that.
    * **Transactions roll back the items they touch**, not a deep copy of every table they
      name: moto copies the whole table before each TransactWriteItems (quadratic in the
      table's size: minutes of a 300-corp campaign). The items named by the transaction are
      copied instead and put back if it is cancelled; what it answers is unchanged.
    * **A long poll waits instead of spinning**: moto's ReceiveMessage loops while the queue
      has visible messages, and a FIFO queue whose visible messages all belong to groups in
      flight has them without any being deliverable -- every long-polling consumer then spins
      a core until its wait ends. Here it sleeps until a message arrives or 50 ms pass.
    * **The service lookup of each request is cached**: moto lists its own package
      directory (``os.listdir`` + ``isdir`` of ~200 entries) on every request, under a lock.
    """

    from moto import backends
    from moto.dynamodb import models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.responses import DynamoHandler
    from moto.sqs.models import Queue

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules

    def wait_for_messages(self: Queue, timeout: int) -> None:
        with self._messages_lock:
            self._messages_lock.wait(min(timeout, 0.05))  # add_message notifies

    Queue.wait_for_messages = wait_for_messages  # type: ignore[method-assign]

    DynamoHandler.call_action = _one_at_a_time(DynamoHandler.call_action)  # type: ignore[method-assign]

    class _TablesNotCopied:
        """``copy`` for moto's DynamoDB models: a Table "copy" is the table itself (see below)."""

        copy = staticmethod(copy.copy)

        @staticmethod
        def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
            return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    models.copy = _TablesNotCopied  # type: ignore[attr-defined,assignment]
    transact = models.DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved: list[tuple[Table, DynamoType, DynamoType | None, Any]] = []
        for entry in transact_items:
            operation = next(iter(entry.values()), None) or {}
            table = self.tables.get(operation.get("TableName"))
            key = operation.get("Key") or operation.get("Item") or {}
            if table is None or table.hash_key_attr not in key:
                continue  # moto's own validation answers for it
            hash_key = DynamoType(key[table.hash_key_attr])
            range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr in key else None
            if table.has_range_key and range_key is None:
                continue
            saved.append((table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))))
        try:
            transact(self, transact_items)
        except Exception:
            for table, hash_key, range_key, item in reversed(saved):
                if range_key is None:
                    table.items.pop(hash_key, None) if item is None else table.items.__setitem__(hash_key, item)
                elif item is None:
                    table.items[hash_key].pop(range_key, None)
                else:
                    table.items[hash_key][range_key] = item
            raise

    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def free_port(host: str) -> int:
    """A port the OS just handed out on ``host`` (another process binds it next)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


class MotoProcess:
    """moto's server as a child process on ``host:port`` (0: a free port); :meth:`stop` ends it."""

    def __init__(self, host: str, port: int = 0) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> MotoProcess:
        command = [sys.executable, "-m", __name__, "--host", self.host, "--port", str(self.port)]
        # moto's server logs every request line: nothing of it is kept.
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"moto's server exited at start (status {self._process.returncode})")
            try:
                requests.get(f"{self.endpoint}/moto-api/data.json", timeout=1).raise_for_status()
                return self
            except requests.RequestException:
                time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"moto's server did not answer on {self.endpoint} within {timeout:g} s")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            log.warning("moto's server ignored SIGTERM; killed")
            process.kill()
            process.wait(10)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="moto's server with a cheaper SQS clock")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    from moto.server import main as serve

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request, formatted for nobody
    tuned_moto()
    with quick_sqs_clock():
        serve(["--host", args.host, "--port", str(args.port)])


if __name__ == "__main__":
    main()
