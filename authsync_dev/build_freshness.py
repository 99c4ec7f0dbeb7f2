"""Is ``.aws-sam/build`` still what the sources say? (:func:`check_fresh`, for tests that run the build.)

The built template must be ``template.yaml`` (but for the paths ``sam build`` rewrites),
every function's and the layer package's ``.py`` files byte-identical to the sources, every
shipped ``.pyc`` of our package compiled from the ``.py`` next to it (an unchecked-hash
``.pyc`` runs whatever it was compiled from, whatever the source says now), and the layer's
distributions the versions ``requirements.txt`` pins.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from authsync_dev.template import ROOT, TEMPLATE, load_template

__all__ = [
    "BUILD_DIR",
    "BUILT_TEMPLATE",
    "StaleBuild",
    "check_fresh",
    "layer_python_dir",
    "locked_versions",
    "normalize",
    "pyc_source_hash",
]

BUILD_DIR = ROOT / ".aws-sam" / "build"
BUILT_TEMPLATE = BUILD_DIR / "template.yaml"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")
_PYC_HASH_BASED = 0b01
_PYC_CHECK_SOURCE = 0b10
_MAX_PROBLEMS = 8


class StaleBuild(RuntimeError):
    """``.aws-sam/build`` no longer matches the sources: ``make build``."""


def normalize(name: str) -> str:
    """A distribution name as PEP 503 compares them (``pydantic_core`` = ``pydantic-core``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_versions(requirements: Path) -> dict[str, str]:
    """``name == version`` pins of a lock file, by normalized name."""
    return {
        normalize(m.group(1)): m.group(2)
        for line in requirements.read_text(encoding="utf-8").splitlines()
        if (m := _PIN.match(line.strip()))
    }


def _resources(template: Mapping[str, Any], kind: str) -> dict[str, Mapping[str, Any]]:
    return {k: v for k, v in (template.get("Resources") or {}).items() if v.get("Type") == kind}


def _uri(resource: Mapping[str, Any], key: str, where: str) -> str:
    value = (resource.get("Properties") or {}).get(key)
    if not isinstance(value, str):
        raise StaleBuild(f"stale build: run make build ({where} has no local {key})")
    return value


def layer_python_dir(built_template: Path = BUILT_TEMPLATE) -> Path:
    """The ``python/`` directory of the built template's (one) layer."""
    if not built_template.is_file():
        raise StaleBuild(f"no build: {built_template} does not exist; run make build")
    layers = _resources(load_template(built_template), "AWS::Serverless::LayerVersion")
    if len(layers) != 1:
        raise StaleBuild(f"{built_template} has {len(layers)} layers; expected one")
    ((logical_id, resource),) = layers.items()
    return (built_template.parent / _uri(resource, "ContentUri", logical_id) / "python").resolve()


def _python_files(root: Path) -> dict[str, Path]:
    """``*.py`` under ``root`` by relative path, ``__pycache__`` not included."""
    if not root.is_dir():
        return {}
    return {
        path.relative_to(root).as_posix(): path
        for path in sorted(root.rglob("*.py"))
        if "__pycache__" not in path.relative_to(root).parts
    }


def _compare_trees(source: Path, built: Path, problems: list[str]) -> None:
    sources, builds = _python_files(source), _python_files(built)
    for name in sorted(sources.keys() - builds.keys()):
        problems.append(f"{_show(sources[name])} is not in the build")
    for name in sorted(builds.keys() - sources.keys()):
        problems.append(f"{_show(builds[name])} has no source any more")
    for name in sorted(sources.keys() & builds.keys()):
        if sources[name].read_bytes() != builds[name].read_bytes():
            problems.append(f"{_show(sources[name])} differs from {_show(builds[name])}")


def pyc_source_hash(pyc: Path) -> tuple[int, bytes | None]:
    """A ``.pyc`` header's flags and, for a hash-based ``.pyc``, the source hash it was compiled from."""
    header = pyc.read_bytes()[:16]
    if len(header) < 16 or header[:4] != importlib.util.MAGIC_NUMBER:
        raise ValueError(f"{pyc} is not bytecode for this Python ({sys.version_info.major}.{sys.version_info.minor})")
    flags = int.from_bytes(header[4:8], "little")
    return flags, header[8:16] if flags & _PYC_HASH_BASED else None


def _check_bytecode(package: Path, problems: list[str]) -> None:
    """Each ``.py`` has its unchecked-hash ``.pyc``, compiled from exactly that ``.py``."""
    for source in _python_files(package).values():
        pyc = Path(importlib.util.cache_from_source(str(source)))
        if not pyc.is_file():
            problems.append(f"{_show(source)} has no {pyc.name}")
            continue
        try:
            flags, recorded = pyc_source_hash(pyc)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        if recorded is None or flags & _PYC_CHECK_SOURCE:
            problems.append(f"{_show(pyc)} is not unchecked-hash bytecode (flags {flags:#x})")
        elif recorded != importlib.util.source_hash(source.read_bytes()):
            problems.append(f"{_show(pyc)} was not compiled from {source.name}")


def _check_pins(requirements: Path, layer: Path, problems: list[str]) -> None:
    if not requirements.is_file():
        return
    pins = locked_versions(requirements)
    built = {
        normalize(d.metadata["Name"]): d.version
        for d in (importlib.metadata.PathDistribution(p) for p in layer.glob("*.dist-info"))
    }
    for name in sorted(pins.keys() | built.keys()):
        if pins.get(name) != built.get(name):
            problems.append(
                f"{_show(requirements)} pins {name} {pins.get(name, '(nothing)')}, "
                f"the build has {built.get(name, 'nothing')}"
            )


def _normalized(template: Mapping[str, Any]) -> dict[str, Any]:
    """The template minus what ``sam build`` rewrites: CodeUri, ContentUri, Metadata.SamResourceId."""
    copy = dict(template)
    resources: dict[str, Any] = {}
    for logical_id, original in (template.get("Resources") or {}).items():
        resource = dict(original)
        if "Properties" in resource:
            properties = dict(resource["Properties"])
            for key in ("CodeUri", "ContentUri"):
                properties.pop(key, None)
            resource["Properties"] = properties
        if isinstance(resource.get("Metadata"), Mapping):
            metadata = {k: v for k, v in resource["Metadata"].items() if k != "SamResourceId"}
            if metadata:
                resource["Metadata"] = metadata
            else:
                del resource["Metadata"]
        resources[logical_id] = resource
    copy["Resources"] = resources
    return copy


def _show(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def check_fresh(built_template: Path = BUILT_TEMPLATE, source_template: Path = TEMPLATE) -> None:
    """Raise :class:`StaleBuild` ("stale build: run make build (…)") unless the build matches the sources.

    The built template must be the source template but for CodeUri/ContentUri (and SAM's
    ``Metadata.SamResourceId``); every function's ``.py`` files (``functions/<name>/``, through
    the source template's CodeUri) and every package of each layer (``layers/authsync/authsync``
    against ``<build>/AuthsyncLayer/python/authsync``) byte-identical; each built package
    ``.py`` with its unchecked-hash ``.pyc`` compiled from it; the layer's distributions the
    versions its ``requirements.txt`` pins.
    """
    if not built_template.is_file():
        raise StaleBuild(f"no build: {built_template} does not exist; run make build")
    source, built = load_template(source_template), load_template(built_template)
    problems: list[str] = []
    if _normalized(source) != _normalized(built):
        problems.append(f"{_show(source_template)} changed since the build")
    source_root, built_root = source_template.parent, built_template.parent
    for kind, key in (("AWS::Serverless::Function", "CodeUri"), ("AWS::Serverless::LayerVersion", "ContentUri")):
        built_resources = _resources(built, kind)
        for logical_id, resource in _resources(source, kind).items():
            if logical_id not in built_resources:
                problems.append(f"{logical_id} is not in the build")
                continue
            source_dir = (source_root / _uri(resource, key, logical_id)).resolve()
            built_dir = (built_root / _uri(built_resources[logical_id], key, f"built {logical_id}")).resolve()
            if kind == "AWS::Serverless::Function":
                _compare_trees(source_dir, built_dir, problems)
                continue
            python = built_dir / "python"
            for package in sorted(p for p in source_dir.iterdir() if (p / "__init__.py").is_file()):
                _compare_trees(package, python / package.name, problems)
                _check_bytecode(python / package.name, problems)
            _check_pins(source_dir / "requirements.txt", python, problems)
    if problems:
        shown = "; ".join(problems[:_MAX_PROBLEMS])
        more = f"; and {len(problems) - _MAX_PROBLEMS} more" if len(problems) > _MAX_PROBLEMS else ""
        raise StaleBuild(f"stale build: run make build ({shown}{more})")
