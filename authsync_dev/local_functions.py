"""The template's functions, run in this process the way Lambda runs them (for the local stack).

Each ``AWS::Serverless::Function`` becomes a :class:`LocalFunction`: its handler module is
loaded from ``<CodeUri>/<module>.py`` under a unique module name, lazily, on the first
invocation (so a function whose ``app.py`` is still a placeholder only fails when it is
invoked, with :class:`FunctionNotReady`). Invocations of one function are serialized, as
if it had one warm container; different functions run concurrently. Powertools reads
``POWERTOOLS_SERVICE_NAME`` when a module creates its Logger/Metrics/Tracer, so that one
variable is set around each module's import; every other variable is the same for all
functions and lives in the process environment (see :func:`merged_environment`).

Concurrency: a function runs up to ``concurrency`` invocations at once, each in its own
*container* -- its own import of the handler module (Lambda's init phase: its own clients,
caches and module globals), reused warm by later invocations. A container is created only
when every existing one is busy. An invocation the runtime ends (:class:`Killed`, raised
by a chaos hook from inside the handler; a ``BaseException`` so no handler code catches
it) discards its container, as Lambda does: the next invocation starts a new one, cold.
"""

from __future__ import annotations

import importlib.util
import itertools
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any, Self

__all__ = [
    "PER_FUNCTION_VARIABLES",
    "Activity",
    "FunctionNotReady",
    "FunctionSpec",
    "FunctionStats",
    "Handler",
    "InvocationKilled",
    "Killed",
    "LocalContext",
    "LocalFunction",
    "ModuleLoader",
    "describe_error",
    "function_specs",
    "in_invocation",
    "merged_environment",
]

log = logging.getLogger(__name__)

Handler = Callable[[Any, Any], Any]
ACCOUNT_ID = "123456789012"
PER_FUNCTION_VARIABLES = frozenset({"POWERTOOLS_SERVICE_NAME"})
"""Variables allowed to differ between functions: read at import time, set around each import."""


class FunctionNotReady(RuntimeError):
    """The function's handler cannot be loaded (missing file, import error, no handler attribute)."""


_current = threading.local()


def in_invocation() -> bool:
    """Whether this thread is running a function's handler (its AWS calls are the function's own)."""
    return getattr(_current, "depth", 0) > 0


class Killed(BaseException):
    """The runtime ends the invocation here (a chaos hook raises it inside the handler).

    Not an ``Exception``: no ``except Exception`` of the handler, Powertools' batch processor
    or its idempotency layer runs, exactly as when Lambda stops a container mid-message.
    """


class InvocationKilled(RuntimeError):
    """What the caller of a killed invocation sees (Lambda's ``Runtime.ExitError``): a failed invocation."""


def describe_error(exc: BaseException) -> str:
    """For logs: the whole message of a :class:`FunctionNotReady`, only the type of anything else.

    A handler's exception message may carry data from the event; its type never does.
    """
    return str(exc) if isinstance(exc, FunctionNotReady) else type(exc).__name__


@dataclass(frozen=True)
class FunctionSpec:
    """One ``AWS::Serverless::Function`` of the template, as the local stack runs it."""

    logical_id: str
    code_dir: Path
    module_path: str
    """``app`` for ``Handler: app.lambda_handler``."""
    handler_name: str
    timeout: int
    memory: int
    function_name: str
    environment: Mapping[str, str]

    @property
    def module_file(self) -> Path:
        return self.code_dir.joinpath(*self.module_path.split(".")).with_suffix(".py")


def function_specs(
    template: Mapping[str, Any],
    environments: Mapping[str, Mapping[str, str]],
    *,
    root: Path,
    stack_name: str,
) -> dict[str, FunctionSpec]:
    """Every serverless function of ``template`` (CodeUri relative to ``root``, the template's folder)."""
    defaults = template.get("Globals", {}).get("Function", {})
    specs: dict[str, FunctionSpec] = {}
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = {**defaults, **resource.get("Properties", {})}
        code_uri, handler = properties.get("CodeUri"), properties.get("Handler")
        if not isinstance(code_uri, str) or not isinstance(handler, str) or "." not in handler:
            raise ValueError(f"{logical_id}: only a local CodeUri and a module.function Handler run locally")
        module_path, _, handler_name = handler.rpartition(".")
        specs[logical_id] = FunctionSpec(
            logical_id=logical_id,
            code_dir=(root / code_uri).resolve(),
            module_path=module_path,
            handler_name=handler_name,
            timeout=int(properties.get("Timeout", 3)),
            memory=int(properties.get("MemorySize", 128)),
            function_name=f"{stack_name}-{logical_id}"[:64],
            environment=dict(environments[logical_id]),
        )
    return specs


def merged_environment(specs: Mapping[str, FunctionSpec]) -> dict[str, str]:
    """The union of the functions' environments, for the one process that runs them all.

    Raises ``ValueError`` when a variable other than :data:`PER_FUNCTION_VARIABLES` has
    different values in different functions: in-process, only one value can exist.
    """
    merged: dict[str, str] = {}
    owners: dict[str, str] = {}
    conflicts: list[str] = []
    for logical_id, spec in specs.items():
        for name, value in spec.environment.items():
            if name in PER_FUNCTION_VARIABLES:
                continue
            if name in merged and merged[name] != value:
                conflicts.append(f"{name} ({owners[name]} vs {logical_id})")
                continue
            merged.setdefault(name, value)
            owners.setdefault(name, logical_id)
    if conflicts:
        raise ValueError(
            "the local stack runs every function in one process with one environment, "
            f"but these variables differ between functions: {', '.join(conflicts)}"
        )
    return merged


@dataclass
class FunctionStats:
    """Per-function counters (a copy is handed out; the stack keeps the live one)."""

    invocations: int = 0
    errors: int = 0
    """Invocations that raised (Lambda's ``Errors`` metric)."""
    failed_items: int = 0
    """SQS messages a successful invocation reported in ``batchItemFailures``."""
    last_error: str | None = None
    """Exception type name of the latest error (never its message: it may carry data)."""
    total_seconds: float = 0.0
    containers: int = 0
    """Containers started (cold starts): one per concurrent invocation beyond the warm ones, and
    one after every killed invocation."""
    killed: int = 0
    """Invocations ended by :class:`Killed`."""


def function_arn(spec: FunctionSpec, region: str) -> str:
    return f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{spec.function_name}"


class LocalContext:
    """The Lambda context object (the attributes Powertools and the handlers read)."""

    def __init__(self, spec: FunctionSpec, region: str) -> None:
        self.function_name = spec.function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function_arn(spec, region)
        self.memory_limit_in_mb = spec.memory
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{spec.function_name}"
        self.log_stream_name = "local"
        self.identity: Any = None
        self.client_context: Any = None
        self._deadline = time.monotonic() + spec.timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class Activity:
    """Counts work in flight (invocations, batches, schedule runs) for ``wait_idle``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy = 0

    @contextmanager
    def busy(self) -> Iterator[None]:
        with self._lock:
            self._busy += 1
        try:
            yield
        finally:
            with self._lock:
                self._busy -= 1

    @property
    def count(self) -> int:
        with self._lock:
            return self._busy


_instances = itertools.count(1)


class ModuleLoader:
    """Loads handler modules under unique names; one import at a time (the environment is shared)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._prefix = f"_authsync_local{next(_instances)}_"
        self._loaded: set[str] = set()

    def load(self, spec: FunctionSpec, container: int = 1) -> ModuleType:
        """Import the handler module afresh for ``container`` (1 keeps the plain module name)."""
        path = spec.module_file
        if not path.is_file():
            raise FunctionNotReady(f"{spec.logical_id}: {path} does not exist")
        name = f"{self._prefix}{spec.logical_id}" + (f"_c{container}" if container > 1 else "")
        with self._lock:
            module_spec = importlib.util.spec_from_file_location(name, path)
            if module_spec is None or module_spec.loader is None:
                raise FunctionNotReady(f"{spec.logical_id}: cannot load {path}")
            module = importlib.util.module_from_spec(module_spec)
            saved = {var: os.environ.get(var) for var in PER_FUNCTION_VARIABLES}
            for var in PER_FUNCTION_VARIABLES:
                _set_env(var, spec.environment.get(var))
            # Handlers here are single modules; they import only the layer package, which the
            # project installs, so nothing is added to sys.path (Lambda's task root is not emulated).
            sys.modules[name] = module
            try:
                module_spec.loader.exec_module(module)
            except Exception as exc:
                sys.modules.pop(name, None)
                raise FunctionNotReady(
                    f"{spec.logical_id}: importing {path.name} failed ({type(exc).__name__}: {exc})"
                ) from exc
            finally:
                for var, value in saved.items():
                    _set_env(var, value)
            self._loaded.add(name)
            return module

    def unload(self, module: ModuleType) -> None:
        with self._lock:
            if sys.modules.get(module.__name__) is module:
                del sys.modules[module.__name__]
            self._loaded.discard(module.__name__)

    def unload_all(self) -> None:
        with self._lock:
            for name in self._loaded:
                sys.modules.pop(name, None)
            self._loaded.clear()


def _set_env(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


class _Container:
    """One execution environment: its own import of the handler module."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.module: ModuleType | None = None


InitHook = Callable[[ModuleType], None]


class LocalFunction:
    """One function: lazy handler, up to ``concurrency`` containers, counters.

    ``override`` replaces the handler from the file (tests, or a function still being
    written); it runs with the same slots, context and counters. ``on_init`` hooks run
    after each container's import (chaos: wrap a container's ports to kill it mid-step).
    """

    def __init__(
        self,
        spec: FunctionSpec,
        *,
        loader: ModuleLoader,
        activity: Activity,
        region: str,
        override: Handler | None = None,
        concurrency: int = 1,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self.spec = spec
        self.concurrency = concurrency
        self._loader = loader
        self._activity = activity
        self._region = region
        self._override = override
        self._slots = threading.BoundedSemaphore(concurrency)
        self._pool_lock = threading.Lock()
        self._idle: list[_Container] = []
        self._live: set[_Container] = set()
        self._numbers = itertools.count(1)
        self._init_hooks: list[InitHook] = []
        self._stats_lock = threading.Lock()
        self._stats = FunctionStats()

    @property
    def logical_id(self) -> str:
        return self.spec.logical_id

    @property
    def invoked_arn(self) -> str:
        return function_arn(self.spec, self._region)

    def stats(self) -> FunctionStats:
        with self._stats_lock:
            return replace(self._stats)

    def record_failed_items(self, count: int) -> None:
        with self._stats_lock:
            self._stats.failed_items += count

    def on_init(self, hook: InitHook) -> None:
        """Run ``hook(module)`` after every container's import from now on (not for ``override``)."""
        self._init_hooks.append(hook)

    def _handler(self, container: _Container) -> Handler:
        """The container's handler, importing its module on first use; raises :class:`FunctionNotReady`."""
        if self._override is not None:
            return self._override
        if container.module is None:
            container.module = self._loader.load(self.spec, container.number)
            with self._stats_lock:
                self._stats.containers += 1
            for hook in self._init_hooks:
                hook(container.module)
        handler = getattr(container.module, self.spec.handler_name, None)
        if not callable(handler):
            # Not cached: a placeholder may be replaced by the real handler while the stack runs.
            self._loader.unload(container.module)
            container.module = None
            raise FunctionNotReady(
                f"{self.logical_id}: {self.spec.module_file} has no callable {self.spec.handler_name!r} "
                "(is the handler still a placeholder?)"
            )
        return handler  # type: ignore[no-any-return]

    @contextmanager
    def _container(self) -> Iterator[_Container]:
        """A free slot and a warm container (a new one when all are busy); a killed one is discarded."""
        with self._slots:
            with self._pool_lock:
                container = self._idle.pop() if self._idle else _Container(next(self._numbers))
                self._live.add(container)
            keep = True
            try:
                yield container
            except InvocationKilled:
                keep = False
                raise
            finally:
                with self._pool_lock:
                    if keep:
                        self._idle.append(container)
                    else:
                        self._live.discard(container)
                if not keep and container.module is not None:
                    self._loader.unload(container.module)

    def invoke(self, event: Any) -> Any:
        """Invoke as Lambda would; the handler's result or its exception (:class:`InvocationKilled` if killed)."""
        with self._activity.busy(), self._container() as container:
            started = time.monotonic()
            error: BaseException | None = None
            _current.depth = getattr(_current, "depth", 0) + 1
            try:
                return self._handler(container)(event, LocalContext(self.spec, self._region))
            except Killed as exc:
                error = exc
                raise InvocationKilled(f"{self.logical_id}: the runtime ended the invocation ({exc})") from None
            except BaseException as exc:
                error = exc
                raise
            finally:
                _current.depth -= 1
                elapsed = time.monotonic() - started
                with self._stats_lock:
                    self._stats.invocations += 1
                    self._stats.total_seconds += elapsed
                    if error is not None:
                        self._stats.errors += 1
                        self._stats.last_error = type(error).__name__
                        self._stats.killed += isinstance(error, Killed)
                if elapsed > self.spec.timeout:
                    log.warning(
                        "%s ran %.1f s, past its Timeout of %d s: Lambda would have stopped it",
                        self.logical_id,
                        elapsed,
                        self.spec.timeout,
                    )

    def unload(self) -> None:
        with self._pool_lock:
            containers, self._idle, self._live = list(self._live), [], set()
        for container in containers:
            if container.module is not None:
                self._loader.unload(container.module)
                container.module = None


class BackgroundWorker:
    """A daemon thread with a stop flag (start, signal_stop, join), shared by pollers and schedules."""

    def __init__(self, thread_name: str) -> None:
        self.thread_name = thread_name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def signal_stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float = 30.0) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("%s still busy after %.0f s; left running (daemon)", self.thread_name, timeout)
            self._thread = None

    def _run(self) -> None:
        raise NotImplementedError
