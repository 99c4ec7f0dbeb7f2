"""A Lambda context object as the runtime passes it (Powertools reads these attributes)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field


@dataclass
class FakeLambdaContext:
    function_name: str = "callback-ingest"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:callback-ingest"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/callback-ingest"
    log_stream_name: str = "local"
    remaining_ms: int = 30_000
    """What the runtime would answer at the start of an invocation of a function with a 30 s Timeout (auth-info's)."""

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms
