"""EventBridge Scheduler, locally: the template's ``ScheduleV2`` events on an accelerable clock.

Each function event of ``Type: ScheduleV2`` becomes a :class:`ScheduleRunner` thread that
invokes the function every period of its ``rate(N unit)`` expression divided by
``time_scale`` (``rate(6 hours)`` at ``time_scale=360`` fires every 60 s), the first time
one period after start. The payload is the schedule's ``Input`` (JSON) or ``{}`` as
Scheduler sends when none is given. An invocation that raises is retried up to
``RetryPolicy.MaximumRetryAttempts`` times (default 185, as Scheduler's) with exponential
backoff from 1 s of stack time while the event is younger than
``MaximumEventAgeInSeconds``; then, if ``DeadLetterConfig.Arn`` names a queue of the
template, one message goes there: the payload as body, and the ``ERROR_CODE``,
``ERROR_MESSAGE``, ``RETRY_ATTEMPTS``, ``SCHEDULE_ARN`` and ``TARGET_ARN`` attributes
modelled on Scheduler's dead-letter messages.

Not supported locally (logged at start, the schedule does not run; ``fire`` still works):
``cron(...)`` and ``at(...)`` expressions, ``State: DISABLED``, and a SAM-generated
dead-letter queue (``DeadLetterConfig: {Type: SQS}``; the failure is logged instead).
``ScheduleExpressionTimezone``, ``FlexibleTimeWindow``, ``StartDate``/``EndDate`` are ignored.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

from authsync_dev.local_functions import Activity, BackgroundWorker, LocalFunction, describe_error

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef

__all__ = ["ScheduleRunner", "ScheduleSpec", "UnsupportedSchedule", "rate_seconds", "scheduled_events"]

log = logging.getLogger(__name__)

_RATE = re.compile(r"rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
DEFAULT_MAX_RETRIES = 185
DEFAULT_MAX_EVENT_AGE = 86_400
MAX_BACKOFF = 60.0


class UnsupportedSchedule(ValueError):
    """A schedule expression the local stack cannot run (``cron``, ``at``, malformed rates)."""


def rate_seconds(expression: str) -> float:
    """Seconds between runs of ``rate(N unit)``; singular unit for 1, plural otherwise, as AWS requires."""
    found = _RATE.fullmatch(expression.strip())
    if found is None:
        kind = expression.strip().split("(", 1)[0] or "empty"
        raise UnsupportedSchedule(f"{kind} schedule expressions are not supported locally (only rate(N unit))")
    value, unit = int(found.group(1)), found.group(2)
    if value < 1 or (value == 1) == unit.endswith("s"):
        raise UnsupportedSchedule(f"{expression!r}: use rate(1 {unit.rstrip('s')}) or rate(N {unit.rstrip('s')}s)")
    return float(value * _UNIT_SECONDS[unit.rstrip("s")])


@dataclass(frozen=True)
class ScheduleSpec:
    """One ``ScheduleV2`` event of a function."""

    name: str
    function: str
    expression: str
    period: float | None
    """Seconds of stack time between runs; ``None`` when the expression is not supported."""
    payload: Any
    max_retries: int = DEFAULT_MAX_RETRIES
    max_event_age: int = DEFAULT_MAX_EVENT_AGE
    dead_letter_queue: str | None = None
    """Logical id of the dead-letter queue."""
    enabled: bool = True
    problem: str | None = None
    """Why the schedule does not run locally, if it does not."""


def scheduled_events(template: Mapping[str, Any], resolve: Callable[[Any], Any]) -> list[ScheduleSpec]:
    """Every ``ScheduleV2`` event of the template's functions (``resolve`` evaluates ``!Ref`` and co)."""
    resources: Mapping[str, Any] = template["Resources"]
    specs: list[ScheduleSpec] = []
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event_name, event in ((resource.get("Properties") or {}).get("Events") or {}).items():
            if event.get("Type") == "Schedule":
                log.warning("%s.%s: Type Schedule (EventBridge rule) is not run locally", logical_id, event_name)
            if event.get("Type") != "ScheduleV2":
                continue
            properties = event.get("Properties") or {}
            expression = str(resolve(properties.get("ScheduleExpression", "")))
            problems: list[str] = []
            try:
                period: float | None = rate_seconds(expression)
            except UnsupportedSchedule as exc:
                period = None
                problems.append(str(exc))
            retry = properties.get("RetryPolicy") or {}
            dead_letter = properties.get("DeadLetterConfig") or {}
            queue: str | None = None
            if dead_letter:
                arn = dead_letter.get("Arn")
                if isinstance(arn, Mapping) and "Fn::GetAtt" in arn:
                    queue = str(arn["Fn::GetAtt"][0])
                else:
                    problems.append("DeadLetterConfig without Arn: !GetAtt <Queue>.Arn (failures are only logged)")
            state = str(resolve(properties.get("State", "ENABLED")))
            raw_input = properties.get("Input")
            payload = json.loads(str(resolve(raw_input))) if raw_input is not None else {}
            specs.append(
                ScheduleSpec(
                    name=f"{logical_id}.{event_name}",
                    function=logical_id,
                    expression=expression,
                    period=period,
                    payload=payload,
                    max_retries=int(resolve(retry.get("MaximumRetryAttempts", DEFAULT_MAX_RETRIES))),
                    max_event_age=int(resolve(retry.get("MaximumEventAgeInSeconds", DEFAULT_MAX_EVENT_AGE))),
                    dead_letter_queue=queue,
                    enabled=state != "DISABLED",
                    problem="; ".join(problems) or None,
                )
            )
    return specs


class ScheduleRunner(BackgroundWorker):
    """Fires one schedule on the accelerated clock, with Scheduler's retries and dead-letter queue."""

    def __init__(
        self,
        spec: ScheduleSpec,
        function: LocalFunction,
        *,
        activity: Activity,
        time_scale: float = 1.0,
        sqs: SQSClient | None = None,
        dead_letter_url: str | None = None,
        schedule_arn: str = "",
    ) -> None:
        super().__init__(f"schedule-{spec.name}")
        self.spec = spec
        self.function = function
        self._activity = activity
        self._scale = time_scale
        self._sqs = sqs
        self._dead_letter_url = dead_letter_url
        self._schedule_arn = schedule_arn
        self.runs = 0
        self.failures = 0

    @property
    def interval(self) -> float | None:
        """Real seconds between runs."""
        return None if self.spec.period is None else self.spec.period / self._scale

    def start(self) -> Self:
        if self.interval is None:
            raise UnsupportedSchedule(self.spec.problem or "no period")
        return super().start()

    def _run(self) -> None:
        assert self.interval is not None
        next_run = time.monotonic() + self.interval
        while not self._stop.wait(max(0.0, next_run - time.monotonic())):
            self.run()
            # A run that overran its period does not queue up missed runs.
            next_run = max(next_run + self.interval, time.monotonic())

    def run(self) -> bool:
        """One scheduled invocation with retries; ``False`` if it ended in failure (or shutdown)."""
        with self._activity.busy():
            self.runs += 1
            started = time.monotonic()
            attempts = self.spec.max_retries + 1
            error: Exception | None = None
            for attempt in range(attempts):
                try:
                    self.function.invoke(copy.deepcopy(self.spec.payload))
                except Exception as exc:
                    error = exc
                    log.warning(
                        "schedule %s: attempt %d of %d failed: %s",
                        self.spec.name,
                        attempt + 1,
                        attempts,
                        describe_error(exc),
                    )
                else:
                    log.info("schedule %s: %s ok", self.spec.name, self.function.logical_id)
                    return True
                if attempt + 1 >= attempts:
                    break
                backoff = min(MAX_BACKOFF, 2.0**attempt)
                age = (time.monotonic() - started) * self._scale + backoff
                if age > self.spec.max_event_age:
                    log.warning("schedule %s: MaximumEventAgeInSeconds reached; no more retries", self.spec.name)
                    break
                if self._stop.wait(backoff / self._scale):
                    return False  # shutting down: the run is abandoned, as a stopped stack would
            assert error is not None
            self.failures += 1
            self._dead_letter(error, attempt)
            return False

    def _dead_letter(self, error: Exception, retries: int) -> None:
        if self._sqs is None or self._dead_letter_url is None:
            log.error("schedule %s failed after %d retries; no dead-letter queue", self.spec.name, retries)
            return
        attributes = {
            "ERROR_CODE": type(error).__name__,
            "ERROR_MESSAGE": describe_error(error),
            "RETRY_ATTEMPTS": str(retries),
            "SCHEDULE_ARN": self._schedule_arn or "-",
            "TARGET_ARN": self.function.invoked_arn,
        }
        body = json.dumps(self.spec.payload)
        message_attributes: dict[str, MessageAttributeValueTypeDef] = {
            k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()
        }
        if self._dead_letter_url.endswith(".fifo"):
            self._sqs.send_message(
                QueueUrl=self._dead_letter_url,
                MessageBody=body,
                MessageAttributes=message_attributes,
                MessageGroupId=self.spec.name,
                MessageDeduplicationId=str(uuid.uuid4()),
            )
        else:
            self._sqs.send_message(
                QueueUrl=self._dead_letter_url, MessageBody=body, MessageAttributes=message_attributes
            )
        log.error(
            "schedule %s failed after %d retries (%s); sent to %s",
            self.spec.name,
            retries,
            describe_error(error),
            self._dead_letter_url.rsplit("/", 1)[-1],
        )
