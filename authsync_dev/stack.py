"""The local stack: the whole pipeline on 127.0.0.1, read from ``template.yaml`` (dev tooling only).

* **AWS** is moto in server mode (``ThreadedMotoServer``, ephemeral port; or, with
  ``moto="process"``, moto's server in a child process: :mod:`authsync_dev.moto_process`). The process
  gets ``AWS_ENDPOINT_URL``, fake credentials and a region (and no profile, config file
  or instance metadata), so the *unmodified* handlers' default boto3 clients reach it.
  Every queue, DLQ, table and topic of the template is created through
  :func:`authsync_dev.template.deploy_data_resources` (moto's CloudFormation), plus one
  config secret per configured suite (``<SUITE_SECRET_PREFIX><suite_id>/config``).
* **WeCom** is the emulator (:mod:`authsync_dev.emulator`), its callback URL pointed at our
  HTTP API, each suite registered; functions get ``WECOM_API_BASE`` = the emulator
  (through the template's ``WeComApiBase`` parameter). With ``wecom="real"`` there is no
  emulator and the functions call https://qyapi.weixin.qq.com; WeCom's callbacks then
  need a public URL forwarding to :attr:`LocalStack.callback_base_url` (a tunnel) —
  untested here.
* **HTTP API**: :mod:`authsync_dev.local_api` serves the functions' ``HttpApi`` routes.
  ``AWS_IAM`` routes are served without SigV4 checks.
* **Functions** run in this process (:mod:`authsync_dev.local_functions`), loaded lazily from
  ``CodeUri``/``Handler``: up to ``concurrency`` (config) invocations of one function at a time,
  each in its own container (its own import of the handler module), with as many poller
  threads per SQS source.
* **Event source mappings** (:mod:`authsync_dev.local_sqs`) and **schedules**
  (:mod:`authsync_dev.local_schedules`, ``time_scale``) run in daemon threads.

Python::

    with LocalStack(time_scale=360) as stack:
        corp = stack.emulator.add_corp(verified=True)
        stack.emulator.create_auth(stack.suites[0].suite_id, corp.corpid)   # pushed to our callback URL
        stack.wait_idle(30)                                                  # queues drained, nothing running
        url = stack.query_url(stack.suites[0].suite_id, corp.corpid)
        state = requests.get(url, headers=local_api.signed("GET", url)).json()  # IAM route: sign it
        stack.fire("ReconcileFunction")                                      # a schedule, on demand

One stack per process at a time (it owns process-wide environment variables and moto's
in-process state); never inside moto's ``mock_aws`` (it uses the server). CLI:
``python -m authsync_dev.serve`` (:mod:`authsync_dev.serve`).

Where one process differs from Lambda: a function's ``Timeout`` is only warned about, not
enforced; containers share one process (and its GIL) and scale out to ``concurrency`` at most;
Powertools' cold-start flag and its Metrics buffer are process-wide, so only the first invocation overall reports a cold
start and an EMF line may carry another concurrently running function's metrics.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import boto3
import requests
from moto.server import ThreadedMotoServer

from authsync.aws.suites import SuiteConfig
from authsync_dev.emulator import Emulator
from authsync_dev.local_api import HOST, HttpApiServer, Route, http_routes
from authsync_dev.local_functions import (
    ACCOUNT_ID,
    Activity,
    FunctionStats,
    Handler,
    LocalFunction,
    ModuleLoader,
    function_specs,
    merged_environment,
)
from authsync_dev.local_schedules import ScheduleRunner, ScheduleSpec, scheduled_events
from authsync_dev.local_sqs import EventSource, QueuePoller, sqs_event_sources
from authsync_dev.local_streams import StreamPoller, StreamSource, stream_event_sources
from authsync_dev.moto_process import MotoProcess
from authsync_dev.stack_config import REAL_WECOM_API_BASE, StackConfig, suite_credentials
from authsync_dev.template import TEMPLATE, Deployment, load_template
from authsync_dev.world import World, provision, suites_provider

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = ["LocalStack", "StackConfig", "routes_table"]

log = logging.getLogger(__name__)

FAKE_KEY = "testing"
_UNSET_AWS = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
)


class _EnvironmentPatch:
    """Sets and unsets process environment variables, remembering what to restore."""

    def __init__(self) -> None:
        self._saved: dict[str, str | None] = {}

    def set(self, name: str, value: str | None) -> None:
        if name not in self._saved:
            self._saved[name] = os.environ.get(name)
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value

    def restore(self) -> None:
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved.clear()


def _output_path(template: Mapping[str, Any], output: str, suffix: str) -> str:
    """The path of a URL output (``https://${Api}.execute-api.../wecom/callback/{suite_id}``), minus ``suffix``."""
    value = (template.get("Outputs") or {}).get(output, {}).get("Value")
    text = value.get("Fn::Sub") if isinstance(value, Mapping) else value
    if not isinstance(text, str) or "://" not in text or not text.endswith(suffix):
        raise ValueError(f"template output {output} should be an https://…{suffix} URL")
    return "/" + text.split("://", 1)[1].split("/", 1)[1][: -len(suffix)].strip("/")


def _check_port(port: int) -> None:
    """Fail early if a fixed port is taken (moto's server thread would otherwise hang the start)."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            raise OSError(f"port {port} on {HOST} is not available ({exc.strerror})") from None


class LocalStack:
    """The template's stack on 127.0.0.1: moto, the WeCom emulator, the HTTP API, pollers, schedules.

    ``time_scale`` accelerates schedules and the emulator's periodic ticket pushes;
    ``visibility_scale`` shortens how long failed SQS messages stay invisible (both
    default to the config's values, 1). ``handlers`` replaces functions' handlers by
    logical id (tests; a function still being written). ``schedules=False`` leaves
    schedules to :meth:`fire`.
    """

    _guard: ClassVar[threading.Lock] = threading.Lock()
    _active: ClassVar[LocalStack | None] = None

    def __init__(
        self,
        config: StackConfig | None = None,
        *,
        time_scale: float | None = None,
        visibility_scale: float | None = None,
        handlers: Mapping[str, Handler] | None = None,
        schedules: bool = True,
        template: Path = TEMPLATE,
    ) -> None:
        self.config = config or StackConfig()
        self.time_scale = self.config.time_scale if time_scale is None else float(time_scale)
        self.visibility_scale = self.config.visibility_scale if visibility_scale is None else float(visibility_scale)
        if self.time_scale <= 0 or self.visibility_scale < 0:
            raise ValueError("time_scale must be positive and visibility_scale zero or positive")
        self.template_path = template
        self.template: dict[str, Any] = load_template(template)
        self.routes: list[Route] = http_routes(self.template)
        self.event_sources: list[EventSource] = sqs_event_sources(self.template)
        self.stream_sources: list[StreamSource] = stream_event_sources(self.template)
        self.schedules: list[ScheduleSpec] = []
        self._callback_path = _output_path(self.template, "CallbackUrl", "/{suite_id}")
        self._query_path = _output_path(self.template, "CorpQueryUrl", "/{suite_id}/{corp_id}")
        self._token_path = _output_path(self.template, "TokenBrokerUrl", "/{suite_id}/{corp_id}/token")
        paths = {r.path for r in self.routes}
        served = (
            self._callback_path + "/{suite_id}",
            self._query_path + "/{suite_id}/{corp_id}",
            self._token_path + "/{suite_id}/{corp_id}/token",
        )
        for path in served:
            if path not in paths:
                raise ValueError(f"template outputs name {path}, but no HttpApi route serves it")
        functions = {k for k, v in self.template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}
        unknown = set(handlers or {}) - functions
        if unknown:
            raise ValueError(f"handlers for unknown functions {sorted(unknown)}")
        self._handlers = dict(handlers or {})
        undeclared = set(self.config.parameters) - set(self.template.get("Parameters") or {})
        if undeclared:
            raise ValueError(f"parameters {sorted(undeclared)} are not declared in {template.name}")
        self._run_schedules = schedules
        self._activity = Activity()
        self._env = _EnvironmentPatch()
        self._session: boto3.session.Session | None = None
        self._sqs: SQSClient | None = None
        self._moto: ThreadedMotoServer | MotoProcess | None = None
        self._moto_endpoint: str | None = None
        self._api: HttpApiServer | None = None
        self._emulator: Emulator | None = None
        self._deployment: Deployment | None = None
        self._world: World | None = None
        self._loader = ModuleLoader()
        self._functions: dict[str, LocalFunction] = {}
        self._pollers: list[QueuePoller] = []
        self._stream_pollers: list[StreamPoller] = []
        self._runners: list[ScheduleRunner] = []
        self._saved_session: boto3.session.Session | None = None
        self._isolated = False
        self._saved_werkzeug_level: int | None = None
        self._running = False
        self._used = False

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> LocalStack:
        if self._used:
            raise RuntimeError("a LocalStack starts once; make a new one")
        self._used = True
        with LocalStack._guard:
            if LocalStack._active is not None:
                raise RuntimeError("a LocalStack is already running in this process (one at a time)")
            LocalStack._active = self
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._running

    def _start(self) -> None:
        started = time.monotonic()
        config = self.config
        self._isolate_aws_configuration()
        self._start_moto()
        self._api = HttpApiServer(self.routes, self._invoke_route, port=config.api_port)
        if config.wecom == "emulator":
            corpid, secret = suites_provider(config.suites)
            self._emulator = Emulator(
                port=config.emulator_port,
                callback_url=self.callback_base_url,
                provider_corpid=corpid,
                provider_secret=secret,
            ).start()
        self._world = provision(
            self._emulator,
            config.suites,
            stack_name=config.stack_name,
            parameters=self._parameters(),
            region=config.region,
            path=self.template_path,
        )
        self._deployment = self._world.deployment
        specs = function_specs(
            self.template, self._world.environments, root=self.template_path.parent, stack_name=config.stack_name
        )
        merged = merged_environment(specs)
        for name, value in merged.items():
            self._env.set(name, value)
        self._check_layers()
        self._functions = {
            logical_id: LocalFunction(
                spec,
                loader=self._loader,
                activity=self._activity,
                region=config.region,
                override=self._handlers.get(logical_id),
                concurrency=config.concurrency,
            )
            for logical_id, spec in specs.items()
        }
        self._api.start()
        self._start_pollers()
        self._start_schedules()
        self._running = True
        if self._emulator is not None:
            # The emulator's own pusher, each round counted as activity (wait_idle waits for a push in flight).
            if config.push_ticket_on_start:
                self._emulator.push_ticket_round(self._activity.busy)
            if config.ticket_interval > 0:
                self._emulator.start_ticket_pusher(
                    config.ticket_interval / self.time_scale, immediately=False, guard=self._activity.busy
                )
        log.info(
            "local stack %s up in %.1f s: %d function(s), %d route(s), %d queue poller(s), %d stream poller(s), "
            "%d schedule(s)",
            config.stack_name,
            time.monotonic() - started,
            len(self._functions),
            len(self.routes),
            len(self._pollers),
            len(self._stream_pollers),
            len(self._runners),
        )

    def stop(self) -> None:
        """Stop everything this stack started and restore the environment; safe to call twice."""
        self._running = False
        for runner in self._runners:
            runner.signal_stop()
        for poller in [*self._pollers, *self._stream_pollers]:
            poller.signal_stop()
        stopping = time.monotonic()
        steps: list[tuple[str, Callable[[], object] | None]] = [
            ("ticket pusher", self._emulator.stop_ticket_pusher if self._emulator else None),
            ("schedules", self._join_runners),
            ("pollers", self._join_pollers),
            ("http api", self._api.stop if self._api else None),
            ("emulator", self._emulator.stop if self._emulator else None),
            ("functions", self._unload_functions),
            ("moto", self._stop_moto),
            ("environment", self._restore_process_state),
        ]
        for label, step in steps:
            if step is None:
                continue
            try:
                step()
            except Exception as exc:
                log.warning("stopping %s failed (%s)", label, type(exc).__name__)
        self._runners, self._pollers, self._stream_pollers = [], [], []
        self._api = self._emulator = None
        with LocalStack._guard:
            if LocalStack._active is self:
                LocalStack._active = None
                log.info("local stack %s stopped in %.1f s", self.config.stack_name, time.monotonic() - stopping)

    # -- start-up pieces -------------------------------------------------------------------

    def _isolate_aws_configuration(self) -> None:
        """Fake credentials and region for the process; nothing from the user's AWS setup applies."""
        region = self.config.region
        for name in [*_UNSET_AWS, *(n for n in os.environ if n.startswith("AWS_ENDPOINT_URL_"))]:
            self._env.set(name, None)
        for name, value in {
            "AWS_ACCESS_KEY_ID": FAKE_KEY,
            "AWS_SECRET_ACCESS_KEY": FAKE_KEY,
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon here (Tracing: Active in the template)
        }.items():
            self._env.set(name, value)
        for name in ("NO_PROXY", "no_proxy"):  # a user's HTTP(S)_PROXY must not see local traffic
            current = os.environ.get(name, "")
            self._env.set(name, ",".join(filter(None, [current, "127.0.0.1", "localhost"])))
        self._saved_session = boto3.DEFAULT_SESSION
        boto3.DEFAULT_SESSION = None  # clients made from here on read the settings above
        self._isolated = True
        werkzeug = logging.getLogger("werkzeug")  # moto's server logs every request at INFO
        self._saved_werkzeug_level = werkzeug.level
        werkzeug.setLevel(logging.WARNING)

    def _start_moto(self) -> None:
        _check_port(self.config.moto_port)
        if self.config.moto == "process":
            self._moto = MotoProcess(HOST, self.config.moto_port).start()
            self._moto_endpoint = self._moto.endpoint
        else:
            threaded = ThreadedMotoServer(ip_address=HOST, port=self.config.moto_port, verbose=False)
            self._moto = threaded
            threaded.start()
            _, port = threaded.get_host_and_port()
            self._moto_endpoint = f"http://{HOST}:{port}"
        self._env.set("AWS_ENDPOINT_URL", self._moto_endpoint)
        # One moto state per process: start from an empty account even if a stack ran before.
        requests.post(f"{self._moto_endpoint}/moto-api/reset", timeout=10).raise_for_status()
        self._session = boto3.session.Session(
            aws_access_key_id=FAKE_KEY, aws_secret_access_key=FAKE_KEY, region_name=self.config.region
        )
        self._sqs = self._session.client("sqs", endpoint_url=self._moto_endpoint)

    def _parameters(self) -> dict[str, str]:
        declared = set(self.template.get("Parameters") or {})
        derived = {"Stage": self.config.stage, "SuiteIds": ",".join(self.config.suite_ids)}
        if self._emulator is not None:
            derived["WeComApiBase"] = self._emulator.base_url
        return {**{k: v for k, v in derived.items() if k in declared}, **self.config.parameters}

    def _check_layers(self) -> None:
        """Each layer's package must be importable (Lambda's /opt/python): the project installs
        ``authsync`` (``pip install -e .``); nothing is added to ``sys.path`` here.

        A built layer (``.aws-sam/build``) has its packages under ``python/``; when one of them is
        imported from elsewhere (the installed sources), a warning says so: the built functions then
        run with the source package, not the built layer (see :mod:`authsync_dev.built_layer`)."""
        import importlib.util

        for logical_id, resource in self.template["Resources"].items():
            if resource.get("Type") != "AWS::Serverless::LayerVersion":
                continue
            content = (resource.get("Properties") or {}).get("ContentUri")
            if not isinstance(content, str):
                continue
            layer = (self.template_path.parent / content).resolve()
            built = (layer / "python").is_dir()
            root = layer / "python" if built else layer
            # The layer's own packages have no .dist-info (copied from the sources, not pip-installed).
            installed = {
                line.split(",", 1)[0].split("/", 1)[0]
                for record in root.glob("*.dist-info/RECORD")
                for line in record.read_text(encoding="utf-8").splitlines()
            }
            for package in sorted(p.name for p in root.iterdir() if (p / "__init__.py").is_file()):
                spec = importlib.util.find_spec(package)
                if spec is None:
                    raise RuntimeError(
                        f"layer {logical_id}: package {package} is not importable; install the project (make venv)"
                    )
                found = [Path(p).resolve() for p in spec.submodule_search_locations or ()]
                own = package not in installed
                if built and own and not any(p.is_relative_to(root) for p in found):
                    log.warning(
                        "layer %s: package %s is imported from %s, not from the built layer %s "
                        "(put authsync_dev.built_layer's host view on PYTHONPATH)",
                        logical_id,
                        package,
                        ", ".join(map(str, found)) or spec.origin,
                        root,
                    )

    def _start_pollers(self) -> None:
        assert self._sqs is not None
        for source in self.event_sources:
            if not source.enabled:
                log.info("event source %s is disabled in the template; not polled", source.name)
                continue
            function = self._functions[source.function]
            # Lambda scales an SQS source out to concurrent batches (for FIFO: one message group
            # in flight at a time, which SQS itself enforces); here one poller thread per container.
            for _ in range(function.concurrency):
                poller = QueuePoller(
                    source,
                    function,
                    self._sqs,
                    queue_url=self.queue_url(source.queue),
                    activity=self._activity,
                    region=self.config.region,
                    visibility_scale=self.visibility_scale,
                )
                self._pollers.append(poller.start())
        assert self._deployment is not None
        for stream in self.stream_sources:
            # Lambda reads a shard with one batch in flight at a time: one poller (moto's tables have one shard).
            on_failure = self.queue_url(stream.on_failure_queue) if stream.on_failure_queue else None
            stream_poller = StreamPoller(
                stream,
                self._functions[stream.function],
                self.client("dynamodbstreams"),
                stream_arn=self._deployment.attribute(stream.table, "StreamArn"),
                activity=self._activity,
                region=self.config.region,
                sqs=self._sqs,
                on_failure_url=on_failure,
            )
            self._stream_pollers.append(stream_poller.start())

    def _start_schedules(self) -> None:
        assert self._deployment is not None
        self.schedules = scheduled_events(self.template, self._deployment.resolve)
        for spec in self.schedules:
            runner = ScheduleRunner(
                spec,
                self._functions[spec.function],
                activity=self._activity,
                time_scale=self.time_scale,
                sqs=self._sqs,
                dead_letter_url=self.queue_url(spec.dead_letter_queue) if spec.dead_letter_queue else None,
                schedule_arn=f"arn:aws:scheduler:{self.config.region}:{ACCOUNT_ID}:schedule/default/"
                f"{self.config.stack_name}-{spec.name.replace('.', '-')}",
            )
            if spec.problem:
                log.warning("schedule %s (%s): %s", spec.name, spec.expression, spec.problem)
            if not spec.enabled:
                log.info("schedule %s is DISABLED in the template; fire() only", spec.name)
            elif runner.interval is not None and self._run_schedules:
                log.info("schedule %s: %s, every %.1f s real time", spec.name, spec.expression, runner.interval)
                runner.start()
            self._runners.append(runner)

    # -- shutdown pieces --------------------------------------------------------------------

    def _join_runners(self) -> None:
        for runner in self._runners:
            runner.join()

    def _join_pollers(self) -> None:
        for poller in [*self._pollers, *self._stream_pollers]:
            poller.join()

    def _unload_functions(self) -> None:
        for function in self._functions.values():
            function.unload()
        self._loader.unload_all()

    def _stop_moto(self) -> None:
        if self._moto is None:
            return
        try:
            if self._moto_endpoint:
                requests.post(f"{self._moto_endpoint}/moto-api/reset", timeout=10)
        finally:
            self._moto.stop()
            self._moto = None

    def _restore_process_state(self) -> None:
        self._env.restore()
        if self._isolated:
            boto3.DEFAULT_SESSION = self._saved_session
            self._saved_session, self._isolated = None, False
        if self._saved_werkzeug_level is not None:
            logging.getLogger("werkzeug").setLevel(self._saved_werkzeug_level)
            self._saved_werkzeug_level = None

    # -- addresses --------------------------------------------------------------------------

    def _require(self, value: Any, what: str) -> Any:
        if value is None:
            raise RuntimeError(f"{what} is not available: the stack is not started")
        return value

    @property
    def suites(self) -> tuple[SuiteConfig, ...]:
        return self.config.suites

    @property
    def api_base_url(self) -> str:
        api: HttpApiServer = self._require(self._api, "the HTTP API")
        return api.url

    @property
    def callback_base_url(self) -> str:
        """``http://127.0.0.1:<port>/wecom/callback``: WeCom posts to ``<this>/<suite_id>``."""
        return self.api_base_url + self._callback_path

    def callback_url(self, suite_id: str) -> str:
        return f"{self.callback_base_url}/{suite_id}"

    @property
    def query_base_url(self) -> str:
        """``http://127.0.0.1:<port>/corps``: GET ``<this>/<suite_id>/<corp_id>``, signed (``local_api.signed``)."""
        return self.api_base_url + self._query_path

    def query_url(self, suite_id: str, corp_id: str) -> str:
        return f"{self.query_base_url}/{suite_id}/{corp_id}"

    def token_url(self, suite_id: str, corp_id: str) -> str:
        """The token broker's ``GET`` (``POST <this>/invalidate``); :class:`authsync.broker_client.BrokerClient`
        takes :attr:`api_base_url`."""
        return f"{self.api_base_url}{self._token_path}/{suite_id}/{corp_id}/token"

    @property
    def moto_endpoint(self) -> str:
        endpoint: str = self._require(self._moto_endpoint, "moto")
        return endpoint

    @property
    def uses_emulator(self) -> bool:
        return self.config.wecom == "emulator"

    @property
    def emulator(self) -> Emulator:
        """The WeCom emulator (raises with ``wecom="real"``)."""
        if not self.uses_emulator:
            raise RuntimeError("this stack talks to real WeCom: there is no emulator")
        emulator: Emulator = self._require(self._emulator, "the emulator")
        return emulator

    @property
    def wecom_api_base(self) -> str:
        return self.emulator.base_url if self.uses_emulator else REAL_WECOM_API_BASE

    @property
    def deployment(self) -> Deployment:
        deployment: Deployment = self._require(self._deployment, "the deployment")
        return deployment

    @property
    def iam_routes(self) -> list[str]:
        return [r.route_key for r in self.routes if r.iam]

    def describe(self) -> dict[str, Any]:
        """What ``python -m authsync_dev.serve`` prints first (it contains the suites' token and AES key)."""
        emulator = self._emulator
        return {
            "api_base_url": self.api_base_url,
            "callback_base_url": self.callback_base_url,
            "callback_url": self.callback_base_url + "/{suite_id}",
            "query_base_url": self.query_base_url,
            "query_url": self.query_base_url + "/{suite_id}/{corp_id}",
            "token_url": self.token_url("{suite_id}", "{corp_id}"),
            "emulator_admin_url": emulator.admin_url if emulator else None,
            "emulator_base_url": emulator.base_url if emulator else None,
            "wecom": self.config.wecom,
            "wecom_api_base": self.wecom_api_base,
            "moto_endpoint": self.moto_endpoint,
            "region": self.config.region,
            "stack_name": self.config.stack_name,
            "stage": self.config.stage,
            "event_bus_name": self.deployment.physical["ChangeEventBus"],
            "time_scale": self.time_scale,
            "visibility_scale": self.visibility_scale,
            "iam_auth": {
                "enforced": "signature required, not verified",
                "routes": self.iam_routes,
                "note": "AWS_IAM routes answer 403 to an unsigned request; any SigV4 credentials are accepted",
            },
            "suites": [suite_credentials(s) for s in self.config.suites],
            "outputs": self.deployment.outputs(),
        }

    # -- driving ----------------------------------------------------------------------------

    def function(self, logical_id: str) -> LocalFunction:
        if not self._functions:
            raise RuntimeError("the stack is not started")
        try:
            return self._functions[logical_id]
        except KeyError:
            raise KeyError(f"no function {logical_id!r}; functions: {sorted(self._functions)}") from None

    def _invoke_route(self, logical_id: str, event: dict[str, Any]) -> Any:
        return self.function(logical_id).invoke(event)

    def invoke(self, logical_id: str, event: Any = None) -> Any:
        """Invoke a function directly (as ``aws lambda invoke`` would): its result, or its exception."""
        return self.function(logical_id).invoke({} if event is None else event)

    def fire(self, schedule_function: str) -> Any:
        """Run a scheduled function now with its schedule's payload (once, no retries): result or exception.

        Accepts the function's logical id (``ReconcileFunction``) or ``Function.EventName``.
        """
        specs = [s for s in self.schedules if schedule_function in (s.function, s.name)]
        if not specs:
            names = sorted({s.function for s in self.schedules})
            raise KeyError(f"{schedule_function!r} has no ScheduleV2 event; scheduled functions: {names}")
        return self.function(specs[0].function).invoke(specs[0].payload)

    def stats(self) -> dict[str, FunctionStats]:
        """Per-function counters: invocations, errors (raised), failed_items (reported), last_error."""
        return {logical_id: function.stats() for logical_id, function in self._functions.items()}

    def invocations(self, logical_id: str) -> int:
        return self.function(logical_id).stats().invocations

    def errors(self, logical_id: str) -> int:
        return self.function(logical_id).stats().errors

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` in this stack's moto."""
        session: boto3.session.Session = self._require(self._session, "moto")
        return session.client(service, endpoint_url=self.moto_endpoint)  # type: ignore[call-overload]

    def secret(self, name: str) -> dict[str, Any] | None:
        """A JSON secret's current value (AWSCURRENT), or ``None`` if it does not exist."""
        client = self.client("secretsmanager")
        try:
            value = client.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")
        except client.exceptions.ResourceNotFoundException:
            return None
        document: dict[str, Any] = json.loads(value["SecretString"])
        return document

    def credential(self, name: str) -> dict[str, Any] | None:
        """A credential document by name, from the store the stack's functions use (per-corp names: the
        vault or a secret, per ``CorpCredentialStore``), read the way they read it; ``None`` if absent."""
        from authsync.settings import FetchSettings, load
        from authsync.wiring import build_credentials

        settings = load(FetchSettings, self.deployment.function_environment("AuthInfoFunction"))
        found = build_credentials(settings, client=self.client)[1].read(name)
        return None if found is None else found[1]

    def queue_url(self, logical_id: str) -> str:
        resource = self.template["Resources"].get(logical_id, {})
        if resource.get("Type") != "AWS::SQS::Queue":
            raise KeyError(f"{logical_id!r} is not a queue of the template")
        return self.deployment.physical[logical_id]

    def queue_depth(self, logical_id: str) -> int:
        """Messages in the queue: visible, in flight (or waiting to be redelivered) and delayed."""
        sqs: SQSClient = self._require(self._sqs, "moto")
        attributes = sqs.get_queue_attributes(
            QueueUrl=self.queue_url(logical_id),
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())

    def busy(self) -> list[str]:
        """Why the stack is not idle (empty when idle): work in flight, messages in source queues."""
        reasons: list[str] = []
        in_flight = self._activity.count
        if in_flight:
            reasons.append(f"{in_flight} invocation(s) or batch(es) in flight")
        for queue in dict.fromkeys(p.source.queue for p in self._pollers):
            depth = self.queue_depth(queue)
            if depth:
                reasons.append(f"{queue}: {depth} message(s) waiting or in flight")
        for stream in self._stream_pollers:
            if not stream.caught_up():
                reasons.append(f"{stream.source.table}: stream records not yet processed")
        return reasons

    def wait_idle(self, timeout: float = 30.0, *, poll: float = 0.05) -> None:
        """Block until every polled queue is empty and nothing runs (seen twice in a row).

        DLQs are not polled and so do not count. Raises ``TimeoutError`` saying what is busy.
        A failed message waits out its (scaled) visibility timeout before it counts as done.
        """
        deadline = time.monotonic() + timeout
        quiet = 0
        while True:
            reasons = self.busy()
            quiet = 0 if reasons else quiet + 1
            if quiet >= 2:
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"local stack not idle after {timeout:g} s: {'; '.join(reasons)}")
            time.sleep(poll)


def routes_table(routes: Sequence[Route]) -> list[str]:
    """``GET /corps/{suite_id}/{corp_id} -> CorpQueryFunction (AWS_IAM: signature required, not verified)`` lines."""
    return [
        f"{r.route_key} -> {r.function}" + (" (AWS_IAM: signed, not verified locally)" if r.iam else "") for r in routes
    ]
