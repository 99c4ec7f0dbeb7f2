"""Read a Powertools logger's structured output (it keeps the stream it was created with)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aws_lambda_powertools import Logger


@contextmanager
def structured_logs(logger: Logger) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """Within the block, the logger writes to memory; the yielded function parses its JSON lines."""
    stream = io.StringIO()
    registered = logger.registered_handler
    assert isinstance(registered, logging.StreamHandler)
    previous = registered.setStream(stream)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    finally:
        if previous is not None:
            registered.setStream(previous)
