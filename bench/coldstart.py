"""Cold start of each Lambda function (its init phase), against ``boto3.client('sqs')`` in the same run.

    python bench/coldstart.py [--rounds 15] [--functions CallbackIngestFunction,...] [--no-build] [--json FILE]

Lambda runs a function's module-level code -- the *init phase* -- in a fresh runtime before
the first invocation of a new container. For callback-ingest that time counts against WeCom's
one-second deadline: the first callback after a cold start waits for init before the handler
starts. So init is measured the way a cold container pays it:

* each run is a fresh process of this python3.12 that puts the function's folder and the
  layer's ``python/`` first on ``sys.path`` (Lambda's /var/task and /opt/python), imports the
  handler module and exits; the handler is never called. The environment is minimal and
  Lambda-like: region, fake credentials, the function's template environment resolved with
  placeholder names and URLs, and ``AWS_ENDPOINT_URL`` on a closed local port, so a call
  made at init fails fast instead of reaching AWS;
* the layer is built by layers/authsync/Makefile as it deploys (the hashed lock, the package,
  unchecked-hash ``.pyc``) but for this machine's CPU (``ARCH=<host>``: the arm64 build cannot
  run here), cached in .aws-sam/coldstart/layer-<hash>/ and rebuilt when the lock, the package
  or the Makefile changes. boto3 comes from the venv, precompiled, as Lambda's runtime provides it;
* two variants per function: *pyc* is the layer as built, with the function folder compiled the
  same way; *no pyc* is a copy of both without any ``__pycache__``, run with
  PYTHONDONTWRITEBYTECODE=1, so every run compiles every module again -- what a layer shipped
  without bytecode costs on Lambda's read-only /opt;
* baseline: ``python -c "import boto3; boto3.client('sqs')"``, what any Python function with one
  AWS client pays, with the same interpreter and environment; floor: ``python -c pass``.

Before timing, one untimed run per variant checks that the modules come from where they should
(the handler from its folder, authsync and its dependencies from the layer, boto3 from the venv)
and that init opened no socket. The figure is the child's CPU time (user + sys, ``os.wait4``),
which a busy neighbour on this shared 2-core machine disturbs much less than wall time (also
printed). Runs are interleaved round-robin, the order rotating each round, so a slow spell
falls on every variant alike; medians are reported. Absolute times differ from Lambda's (another
CPU, a fraction of a vCPU at 512 MB): what is compared is the ratio to the baseline of the same run.

Targets (issue): callback-ingest init <= 1.3x the baseline, the other functions <= 2x. Printed, not asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from authsync_dev.template import ROOT, load_template

CACHE = ROOT / ".aws-sam" / "coldstart"
LAYER_SOURCE = ROOT / "layers" / "authsync"
STACK, REGION, ACCOUNT = "wecom-authsync-dev", "us-east-1", "123456789012"
CLOSED_PORT = "http://127.0.0.1:9"  # discard: nothing listens, a connection is refused at once
BASELINE = "import boto3; boto3.client('sqs')"
FLOOR = "pass"
TARGETS = {"CallbackIngestFunction": 1.3}  # WeCom's one-second deadline
DEFAULT_TARGET = 2.0
LAYER_PACKAGES = ("authsync", "aws_lambda_powertools", "pydantic", "pydantic_core", "cryptography", "requests")
RUNTIME_PACKAGES = ("boto3", "botocore")
NAME_PROPERTIES = {
    "AWS::SQS::Queue": "QueueName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::Serverless::Function": "FunctionName",
    "AWS::Lambda::Function": "FunctionName",
}

# Untimed, once per variant: the same import, plus where each module came from and any socket use.
CHECK = """\
import json, sys
calls = []
def audit(event, args):
    if event in ("socket.connect", "socket.getaddrinfo"):
        calls.append(event + " " + repr(args[1] if event == "socket.connect" else args[:2]))
sys.addaudithook(audit)
out, folder, layer, module = sys.argv[1:5]
sys.path[:0] = [folder, layer]
__import__(module)
names = [module, *sys.argv[5:]]
origins = {name: getattr(sys.modules.get(name), "__file__", None) for name in names}
with open(out, "w", encoding="utf-8") as handle:
    json.dump({"network": calls, "origins": origins}, handle)
"""


class BenchError(Exception):
    """A broken build, init or check: reported, and no figures are printed."""


# ---------------------------------------------------------------- the template


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


class Placeholders:
    """Template intrinsics resolved to stand-ins that look deployed; no stack or account is involved."""

    def __init__(self, template: dict[str, Any], stack: str = STACK) -> None:
        declared: dict[str, Any] = template.get("Parameters", {})
        self.resources: dict[str, Any] = template.get("Resources", {})
        self.parameters = {name: _scalar(spec.get("Default", "")) for name, spec in declared.items()}
        self.lists = {name for name, spec in declared.items() if "List" in str(spec.get("Type", ""))}
        self.pseudo = {
            "AWS::StackName": stack,
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{stack}/coldstart",
        }

    def resolve(self, value: Any) -> str:
        if not isinstance(value, dict):
            if isinstance(value, list):
                raise BenchError(f"a list where a string is expected: {value!r}")
            return _scalar(value)
        if len(value) != 1:
            raise BenchError(f"not an intrinsic function: {value!r}")
        ((name, argument),) = value.items()
        if name == "Ref":
            return self.ref(str(argument))
        if name == "Fn::GetAtt":
            logical, attribute = argument if isinstance(argument, list) else str(argument).split(".", 1)
            return self.attribute(logical, attribute)
        if name == "Fn::Sub":
            return self.substitute(argument)
        if name == "Fn::Join":
            separator, items = argument
            return str(separator).join(self.items(items))
        if name == "Fn::Select":
            index, items = argument
            return self.items(items)[int(index)]
        raise BenchError(f"{name} is not supported by the placeholder resolver: {value!r}")

    def items(self, value: Any) -> list[str]:
        """The operand of Fn::Join / Fn::Select: a list, or a Ref to a list parameter ("" is [])."""
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if isinstance(value, dict) and value.get("Ref") in self.lists:
            return [part for part in self.parameters[value["Ref"]].split(",") if part]
        raise BenchError(f"not a list: {value!r}")

    def ref(self, name: str) -> str:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name not in self.resources:
            raise BenchError(f"Ref to unknown {name}")
        kind = self.resources[name]["Type"]
        if kind == "AWS::SQS::Queue":
            return self.attribute(name, "QueueUrl")
        if kind == "AWS::SNS::Topic":
            return self.attribute(name, "TopicArn")
        return self.physical_name(name)

    def physical_name(self, logical: str) -> str:
        resource = self.resources[logical]
        key = NAME_PROPERTIES.get(resource["Type"])
        properties = resource.get("Properties", {})
        if key is not None and key in properties:
            return self.resolve(properties[key])
        return f"{self.pseudo['AWS::StackName']}-{logical}"

    def attribute(self, logical: str, attribute: str) -> str:
        if logical not in self.resources:
            raise BenchError(f"GetAtt of unknown {logical}")
        kind, name = self.resources[logical]["Type"], self.physical_name(logical)
        known = {
            ("AWS::SQS::Queue", "QueueName"): name,
            ("AWS::SQS::Queue", "QueueUrl"): f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}",
            ("AWS::SQS::Queue", "Arn"): f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}",
            ("AWS::DynamoDB::Table", "Arn"): f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}",
            ("AWS::DynamoDB::Table", "StreamArn"): f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}/stream/x",
            ("AWS::SNS::Topic", "TopicName"): name,
            ("AWS::SNS::Topic", "TopicArn"): f"arn:aws:sns:{REGION}:{ACCOUNT}:{name}",
        }
        if (kind, attribute) in known:
            return known[kind, attribute]
        if attribute == "Arn":  # a plausible ARN for anything else (roles, functions, log groups, ...)
            service = kind.split("::")[1].lower()
            return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{name}"
        return f"{name}-{attribute}"

    def substitute(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        values = {key: self.resolve(value) for key, value in variables.items()}

        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in values:
                return values[name]
            if "." in name and not name.startswith("AWS::"):
                logical, attribute = name.split(".", 1)
                return self.attribute(logical, attribute)
            return self.ref(name)

        return re.sub(r"\$\{([^}]*)\}", one, str(text))


@dataclass(frozen=True)
class Function:
    """One ``AWS::Serverless::Function`` of the template, as Lambda would start it."""

    logical_id: str
    folder: Path  # CodeUri
    module: str  # the Handler's module
    name: str  # AWS_LAMBDA_FUNCTION_NAME
    memory: int
    environment: dict[str, str] = field(hash=False)

    @property
    def target(self) -> float:
        return TARGETS.get(self.logical_id, DEFAULT_TARGET)


def template_functions(template: dict[str, Any]) -> list[Function]:
    placeholders = Placeholders(template)
    defaults: dict[str, Any] = template.get("Globals", {}).get("Function", {})
    shared = defaults.get("Environment", {}).get("Variables", {})
    functions = []
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        properties = {**defaults, **resource["Properties"]}
        module, _, _ = str(properties["Handler"]).rpartition(".")
        own = resource["Properties"].get("Environment", {}).get("Variables", {})
        environment = {key: placeholders.resolve(value) for key, value in {**shared, **own}.items()}
        functions.append(
            Function(
                logical_id=logical_id,
                folder=ROOT / str(properties["CodeUri"]),
                module=module,
                name=placeholders.physical_name(logical_id),
                memory=int(properties.get("MemorySize", 128)),
                environment=environment,
            )
        )
    return functions


# ---------------------------------------------------------------- the code as shipped


@dataclass(frozen=True)
class Tree:
    """One way of shipping the code: the layer's ``python/`` and a root holding the function folders."""

    name: str
    layer: Path
    functions: Path

    def folder(self, function: Function) -> Path:
        return self.functions / function.folder.name


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def host_arch() -> str:
    machine = platform.machine().lower()
    return {"arm64": "aarch64", "amd64": "x86_64"}.get(machine, machine)


def layer_key(arch: str) -> str:
    """A digest of what the layer is built from: the lock, the Makefile, every package file."""
    digest = hashlib.sha256(f"{arch}\0".encode())
    package = LAYER_SOURCE / "authsync"
    files = [LAYER_SOURCE / "requirements.txt", LAYER_SOURCE / "Makefile"]
    files += sorted(p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for path in files:
        digest.update(str(path.relative_to(LAYER_SOURCE)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def find_python312() -> str:
    candidates = [os.environ.get("PYTHON312")]
    if sys.version_info[:2] == (3, 12):
        candidates.append(sys.executable)
    candidates.append(shutil.which("python3.12"))
    for candidate in candidates:
        if candidate:
            return candidate
    raise BenchError("Python 3.12 not found: set PYTHON312=/path/to/python3.12")


def run_checked(argv: list[str], what: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BenchError(f"{what} failed (exit {result.returncode}):\n{tail(result.stdout + result.stderr)}")


def build_layer(final: Path, arch: str) -> None:
    """``make build-AuthsyncLayer`` into a staging folder, plus its copy without bytecode; then one rename."""
    CACHE.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{final.name}.", dir=CACHE))
    try:
        python312 = find_python312()
        print(f"building the layer for {arch} with {python312} into {shown(final)} ...", flush=True)
        make = ["make", "-s", "-C", str(LAYER_SOURCE), "build-AuthsyncLayer"]
        run_checked([*make, f"ARTIFACTS_DIR={staging / 'pyc'}", f"ARCH={arch}", f"PYTHON312={python312}"], "make")
        ignore = shutil.ignore_patterns("__pycache__")
        shutil.copytree(staging / "pyc" / "python", staging / "no-pyc" / "python", symlinks=True, ignore=ignore)
        staging.rename(final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already after the rename
    for stale in CACHE.glob("layer-*"):
        if stale != final and stale.is_dir() and "." not in stale.name:
            shutil.rmtree(stale, ignore_errors=True)


def prepare_layer(build: bool) -> Path:
    arch = host_arch()
    final = CACHE / f"layer-{arch}-{layer_key(arch)}"
    if not (final / "pyc" / "python").is_dir() or not (final / "no-pyc" / "python").is_dir():
        if not build:
            raise BenchError(f"no cached layer for the current sources at {shown(final)}; run without --no-build")
        build_layer(final, arch)
    for cache in list((final / "no-pyc").rglob("__pycache__")):  # from a run that wrote bytecode after all
        shutil.rmtree(cache)
    return final


def stage_functions(functions: list[Function], layer: Path) -> tuple[Tree, Tree]:
    """Fresh copies of the function folders (their sources change), compiled for the pyc variant."""
    trees = (
        Tree("pyc", layer / "pyc" / "python", CACHE / "functions" / "pyc"),
        Tree("no pyc", layer / "no-pyc" / "python", CACHE / "functions" / "no-pyc"),
    )
    for tree in trees:
        shutil.rmtree(tree.functions, ignore_errors=True)
        for function in functions:
            shutil.copytree(function.folder, tree.folder(function), ignore=shutil.ignore_patterns("__pycache__"))
    compile_all = [sys.executable, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash"]
    run_checked([*compile_all, str(trees[0].functions)], "compiling the function folders")
    return trees


# ---------------------------------------------------------------- one run


@dataclass(frozen=True)
class Variant:
    """One command measured in its own fresh process: the floor, the baseline or a function's init."""

    label: str
    code: str
    environment: dict[str, str] = field(hash=False)
    check: tuple[str, ...] = ()  # CHECK's arguments after the output file; empty: no check


@dataclass
class Samples:
    cpu_ms: list[float] = field(default_factory=list)
    wall_ms: list[float] = field(default_factory=list)

    @property
    def cpu(self) -> float:
        return statistics.median(self.cpu_ms)

    @property
    def wall(self) -> float:
        return statistics.median(self.wall_ms)


def tail(text: str, lines: int = 25) -> str:
    return "\n".join("    " + line for line in text.rstrip().splitlines()[-lines:])


def kill(pid: int, expired: threading.Event) -> None:
    expired.set()
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def spawn(args: list[str], environment: dict[str, str], timeout: float) -> tuple[float, float]:
    """Run ``python -P <args>`` to completion: (CPU ms, wall ms); a non-zero exit raises BenchError."""
    argv = [sys.executable, "-P", *args]
    with tempfile.TemporaryFile() as output:
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, output.fileno(), 1),
            (os.POSIX_SPAWN_DUP2, output.fileno(), 2),
        ]
        started = time.perf_counter()
        pid = os.posix_spawn(sys.executable, argv, environment, file_actions=actions)
        expired = threading.Event()
        killer = threading.Timer(timeout, kill, (pid, expired))
        killer.start()
        try:
            _, status, usage = os.wait4(pid, 0)
        finally:
            killer.cancel()
        wall = time.perf_counter() - started
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            output.seek(0)
            reason = f"killed after {timeout:.0f} s" if expired.is_set() else f"exit {code}"
            raise BenchError(f"{reason}:\n{tail(output.read().decode(errors='replace'))}")
    return (usage.ru_utime + usage.ru_stime) * 1e3, wall * 1e3


def check(variant: Variant, timeout: float) -> None:
    """The untimed run: init succeeds, modules come from the intended trees, no socket is opened."""
    if not variant.check:
        spawn(["-c", variant.code], variant.environment, timeout)
        return
    folder, layer, module = variant.check
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "check.json"
        names = [*LAYER_PACKAGES, *RUNTIME_PACKAGES]
        spawn(["-c", CHECK, str(report), *variant.check, *names], variant.environment, timeout)
        found = json.loads(report.read_text(encoding="utf-8"))
    if found["network"]:
        raise BenchError(f"init opened sockets: {found['network']}")
    origins: dict[str, str | None] = found["origins"]
    expected = {module: folder} | dict.fromkeys(LAYER_PACKAGES, layer)
    expected |= dict.fromkeys(RUNTIME_PACKAGES, sysconfig.get_paths()["purelib"])
    for name, place in expected.items():
        origin = origins.get(name)
        if (origin is not None or name == module) and not str(origin).startswith(place + os.sep):
            raise BenchError(f"{name} was imported from {origin}, not from {place}")


# ---------------------------------------------------------------- the variants


def base_environment(function_name: str, memory: int) -> dict[str, str]:
    home = CACHE / "home"  # empty: no ~/.aws, no user configuration of any kind
    home.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",  # every variant: nothing is ever written into the trees
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "coldstart",
        "AWS_SECRET_ACCESS_KEY": "coldstart",
        "AWS_CONFIG_FILE": str(home / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
        "AWS_ENDPOINT_URL": CLOSED_PORT,
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }


def init_variant(function: Function, tree: Tree) -> Variant:
    folder = tree.folder(function)
    code = f"import sys; sys.path[:0] = [{str(folder)!r}, {str(tree.layer)!r}]; import {function.module}"
    environment = base_environment(function.name, function.memory) | function.environment
    return Variant(
        f"{function.logical_id}/{tree.name}", code, environment, (str(folder), str(tree.layer), function.module)
    )


def build_variants(functions: list[Function], trees: Iterable[Tree]) -> dict[str, Variant]:
    memory = max((f.memory for f in functions), default=512)
    baseline_environment = base_environment(f"{STACK}-coldstart-baseline", memory)
    variants = [Variant("floor", FLOOR, baseline_environment), Variant("baseline", BASELINE, baseline_environment)]
    tree_list = list(trees)
    variants += [init_variant(function, tree) for function in functions for tree in tree_list]
    return {variant.label: variant for variant in variants}


def measure(variants: dict[str, Variant], rounds: int, timeout: float) -> dict[str, Samples]:
    """Every variant once per round, the order rotating, each in a fresh process."""
    for variant in variants.values():
        try:
            check(variant, timeout)
        except BenchError as error:
            raise BenchError(f"{variant.label}: {error}") from None
    samples = {label: Samples() for label in variants}
    labels = list(variants)
    for round_index in range(rounds):
        print(f"  round {round_index + 1}/{rounds}", end="\r", file=sys.stderr, flush=True)
        shift = round_index % len(labels)
        for label in labels[shift:] + labels[:shift]:
            try:
                cpu, wall = spawn(["-c", variants[label].code], variants[label].environment, timeout)
            except BenchError as error:
                raise BenchError(f"{label}, round {round_index + 1}: {error}") from None
            samples[label].cpu_ms.append(cpu)
            samples[label].wall_ms.append(wall)
    print(" " * 20, file=sys.stderr, flush=True)
    return samples


# ---------------------------------------------------------------- the report


def verdict(ratio: float, target: float) -> str:
    return "met" if ratio <= target else "MISSED"


Row = tuple[Function, float, float, float, float]


def ratio_rows(
    functions: list[Function], samples: dict[str, Samples], metric: Callable[[Samples], float]
) -> Iterator[Row]:
    """(function, pyc ms, no-pyc ms, pyc/baseline, no-pyc/baseline) of one metric's medians."""
    base = metric(samples["baseline"])
    for function in functions:
        pyc = metric(samples[f"{function.logical_id}/pyc"])
        raw = metric(samples[f"{function.logical_id}/no pyc"])
        yield function, pyc, raw, pyc / base, raw / base


def report(functions: list[Function], samples: dict[str, Samples], rounds: int, layer: Path) -> None:
    floor, base = samples["floor"], samples["baseline"]
    print(f"Lambda init (a fresh process imports the handler module), median of {rounds} runs per variant")
    print(f"Python {sys.version.split()[0]} on {host_arch()} ({os.cpu_count()} CPUs), layer {shown(layer)}")
    print()
    print(f"  {'':<48}{'CPU ms':>9}{'wall ms':>10}")
    print(f"  {'floor     python -c pass':<48}{floor.cpu:9.1f}{floor.wall:10.1f}")
    print(f"  {'baseline  ' + BASELINE:<48}{base.cpu:9.1f}{base.wall:10.1f}")
    print()
    print(
        f"  {'CPU ms (user+sys)':<24}{'pyc':>8}{'no pyc':>8}{'pyc/base':>10}{'nopyc/base':>12}{'nopyc/pyc':>11}"
        f"{'target':>8}  {'pyc':<8}no pyc"
    )
    for function, pyc, raw, with_pyc, without in ratio_rows(functions, samples, lambda s: s.cpu):
        target = function.target
        print(
            f"  {function.logical_id:<24}{pyc:8.1f}{raw:8.1f}{with_pyc:9.2f}x{without:11.2f}x{raw / pyc:10.2f}x"
            f"{f'<={target:.1f}x':>8}  {verdict(with_pyc, target):<8}{verdict(without, target)}"
        )
    print()
    print(f"  {'wall ms':<24}{'pyc':>8}{'no pyc':>8}{'pyc/base':>10}{'nopyc/base':>12}")
    for function, pyc, raw, with_pyc, without in ratio_rows(functions, samples, lambda s: s.wall):
        print(f"  {function.logical_id:<24}{pyc:8.1f}{raw:8.1f}{with_pyc:9.2f}x{without:11.2f}x")
    print()
    print("Targets (issue): CallbackIngestFunction init <= 1.3x the baseline's CPU, the others <= 2x;")
    print("printed, not asserted. The pyc column is the layer as it deploys (its .pyc shipped).")


def write_json(path: Path, functions: list[Function], samples: dict[str, Samples], rounds: int) -> None:
    base = samples["baseline"].cpu
    figures = {
        "python": sys.version.split()[0],
        "machine": host_arch(),
        "rounds": rounds,
        "baseline": BASELINE,
        "medians_cpu_ms": {label: s.cpu for label, s in samples.items()},
        "medians_wall_ms": {label: s.wall for label, s in samples.items()},
        "ratios_to_baseline_cpu": {
            f.logical_id: {tree: samples[f"{f.logical_id}/{tree}"].cpu / base for tree in ("pyc", "no pyc")}
            for f in functions
        },
        "targets": {f.logical_id: f.target for f in functions},
        "samples": {label: {"cpu_ms": s.cpu_ms, "wall_ms": s.wall_ms} for label, s in samples.items()},
    }
    path.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


def select(functions: list[Function], wanted: str | None) -> list[Function]:
    if not wanted:
        return functions
    by_id = {f.logical_id: f for f in functions}
    names = [name.strip() for name in wanted.split(",") if name.strip()]
    unknown = [name for name in names if name not in by_id]
    if unknown:
        raise BenchError(f"unknown function(s) {', '.join(unknown)}; the template has {', '.join(by_id)}")
    return [by_id[name] for name in names]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15, help="fresh processes per variant (interleaved)")
    parser.add_argument("--functions", help="comma-separated logical ids (default: every function)")
    parser.add_argument("--no-build", action="store_true", help="use the cached layer; fail if it is missing")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the raw figures to FILE")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds before a run is killed")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")
    if sys.version_info[:2] != (3, 12):
        parser.error("run with Python 3.12 (the Lambda runtime's, and the layer's bytecode version)")

    started = time.perf_counter()
    try:
        functions = select(template_functions(load_template()), args.functions)
        layer = prepare_layer(build=not args.no_build)
        trees = stage_functions(functions, layer)
        samples = measure(build_variants(functions, trees), args.rounds, args.timeout)
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    report(functions, samples, args.rounds, layer)
    if args.json:
        write_json(args.json, functions, samples, args.rounds)
    print(f"runtime: {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
