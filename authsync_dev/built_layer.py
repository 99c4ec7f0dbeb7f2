"""Run what ``sam build`` produced (``.aws-sam/build``) on this machine: a host view of the built layer.

``make build`` builds the functions and the ``authsync`` layer the way they deploy: the layer's
``python/`` holds our package and its locked third-party dependencies, compiled to
unchecked-hash ``.pyc`` (what Lambda executes as shipped), **for arm64** (the template's
``Architectures``). This machine may have another CPU (x86_64): the layer's native extensions
(pydantic_core, cryptography's ``_rust.abi3.so``, ``_cffi_backend``, charset_normalizer's
mypyc modules) cannot be loaded here, so the built layer cannot simply go on ``sys.path``.

:func:`build_host_view` makes a directory to put on ``PYTHONPATH`` instead: one symlink per
top-level entry of the layer's ``python/``, except the distributions that carry native code
for another CPU. Everything pure-Python — our package and its shipped bytecode, Powertools,
pydantic, requests, urllib3, … — is executed from the build. Only the native distributions are
left out, each as a whole (package directories, top-level modules such as
``_cffi_backend*.so``, its ``.dist-info``), so that they resolve from this environment's
site-packages, and only when that copy is the *same version* as the layer's (the venv installs
the layer's lock first, so it has the same wheels built for this CPU). Native files are found
by their ELF header's ``e_machine``, compared with this interpreter's; they are mapped to
their distributions through each ``*.dist-info/RECORD``.

The freshness check (is the build still what the sources say?) is :mod:`authsync_dev.build_freshness`.

Python::

    check_fresh()                                  # authsync_dev.build_freshness: StaleBuild
    view = build_host_view(layer_python_dir(BUILT_TEMPLATE), tmp / "site")
    env = {**os.environ, "PYTHONPATH": str(view.site), "PYTHONDONTWRITEBYTECODE": "1"}
    subprocess.Popen([sys.executable, "-m", "authsync_dev.serve", "--template", str(BUILT_TEMPLATE)], env=env)

``PYTHONPATH`` comes before site-packages and before the editable install's finder (setuptools
puts it on ``sys.meta_path`` after the normal path finder), so ``import authsync`` finds the
built layer's copy. ``PYTHONDONTWRITEBYTECODE`` keeps the build read-only, as ``/opt`` is on Lambda.
"""

from __future__ import annotations

import csv
import importlib.metadata
import importlib.util
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from authsync_dev.build_freshness import layer_python_dir, normalize

__all__ = [
    "HostView",
    "HostViewError",
    "Substitution",
    "build_host_view",
    "elf_machine",
    "host_machine",
    "layer_python_dir",
    "machine_name",
]


_ELF_MAGIC = b"\x7fELF"
_MACHINES = {
    3: "x86",
    8: "mips",
    20: "ppc",
    21: "ppc64",
    22: "s390x",
    40: "arm",
    62: "x86_64",
    183: "aarch64",
    243: "riscv",
}


class HostViewError(RuntimeError):
    """The built layer cannot be run here (a native distribution missing or of another version here)."""


# -- ELF ----------------------------------------------------------------------------------


def elf_machine(path: Path) -> int | None:
    """The ``e_machine`` of an ELF file (62: x86_64, 183: aarch64), ``None`` if ``path`` is not ELF."""
    try:
        with path.open("rb") as handle:
            header = handle.read(20)
    except OSError:
        return None
    if len(header) < 20 or header[:4] != _ELF_MAGIC:
        return None
    big_endian = header[5] == 2  # EI_DATA: 1 little-endian, 2 big-endian
    return int.from_bytes(header[18:20], "big" if big_endian else "little")


def host_machine() -> int | None:
    """This interpreter's ELF ``e_machine``; ``None`` where the interpreter is not ELF (macOS, Windows)."""
    for candidate in (Path("/proc/self/exe"), Path(os.path.realpath(sys.executable))):
        machine = elf_machine(candidate)
        if machine is not None:
            return machine
    return None


def machine_name(machine: int | None) -> str:
    if machine is None:
        return "no ELF machine"
    return _MACHINES.get(machine, f"ELF machine {machine}")


def _is_shared_object(path: Path) -> bool:
    return path.name.endswith(".so") or ".so." in path.name


def _foreign(path: Path, host: int | None) -> int | None:
    """The machine of a shared object that this interpreter cannot load, else ``None``."""
    if not _is_shared_object(path) or not path.is_file():
        return None
    machine = elf_machine(path)
    if machine is None or machine == host:
        return None
    return machine


# -- the host view --------------------------------------------------------------------------


@dataclass(frozen=True)
class Substitution:
    """A distribution of the layer with native code for another CPU, taken from this environment."""

    name: str
    """As its ``METADATA`` spells it (``pydantic_core``)."""
    version: str
    """The layer's version, which is also this environment's (checked)."""
    layer_machine: str
    """The CPU the layer's copy is built for (``aarch64``)."""
    entries: tuple[str, ...]
    """The layer's top-level entries left out of the view (``cffi``, ``_cffi_backend…so``, its dist-info)."""
    location: Path
    """The directory this environment's copy is installed in (the venv's site-packages)."""


@dataclass(frozen=True)
class HostView:
    """A directory for ``PYTHONPATH``: the built layer, but for its native distributions of another CPU."""

    site: Path
    layer: Path
    """The built layer's ``python/`` directory the links point into."""
    substituted: tuple[Substitution, ...]
    from_layer: tuple[str, ...]
    """The layer's top-level entries linked into :attr:`site` (executed from the build)."""


@dataclass(frozen=True)
class _LayerDistribution:
    name: str
    version: str
    entries: frozenset[str]
    files: tuple[Path, ...]


def _layer_distributions(layer: Path) -> list[_LayerDistribution]:
    """Every ``*.dist-info`` of the layer with the top-level entries and files its RECORD lists."""
    distributions: list[_LayerDistribution] = []
    for dist_info in sorted(layer.glob("*.dist-info")):
        metadata = importlib.metadata.PathDistribution(dist_info).metadata
        name, version = metadata["Name"], metadata["Version"]
        if not name or not version:
            raise HostViewError(f"{dist_info}: METADATA has no Name or Version")
        entries = {dist_info.name}
        files: list[Path] = []
        record = dist_info / "RECORD"
        rows: Iterable[list[str]] = []
        if record.is_file():
            with record.open(encoding="utf-8", newline="") as handle:
                rows = list(csv.reader(handle))
        for row in rows:
            if not row or not row[0]:
                continue
            relative = os.path.normpath(row[0])
            if relative.startswith("..") or os.path.isabs(relative):
                continue  # scripts pip recorded outside the target (../../bin/…): not importable
            entries.add(relative.split(os.sep, 1)[0])
            files.append(layer / relative)
        distributions.append(_LayerDistribution(name, version, frozenset(entries), tuple(files)))
    return distributions


def _environment_distribution(name: str, exclude: Iterable[Path]) -> importlib.metadata.Distribution | None:
    """This environment's copy of ``name``, first on ``sys.path`` minus the layer and the view."""
    excluded = [p.resolve() for p in exclude]
    path = [entry for entry in sys.path if not any(Path(entry or ".").resolve().is_relative_to(e) for e in excluded)]
    return next(iter(importlib.metadata.distributions(name=name, path=path)), None)


def _conflicts(layer_versions: Mapping[str, str]) -> list[str]:
    """Installed distributions whose requirements exclude a version the layer ships (why a
    ``make venv`` that installs the lock first can still end up with other versions)."""
    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:  # pragma: no cover - packaging comes with pip's and pytest's environments
        return []
    found: set[str] = set()
    for installed in importlib.metadata.distributions():
        for text in installed.requires or ():
            try:
                requirement = Requirement(text)
            except InvalidRequirement:
                continue
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue
            shipped = layer_versions.get(normalize(requirement.name))
            if shipped is not None and not requirement.specifier.contains(shipped, prereleases=True):
                found.add(
                    f"{installed.metadata['Name']} {installed.version} requires {requirement.name}"
                    f"{requirement.specifier} (the layer has {shipped})"
                )
    return sorted(found)


def _substitution(
    dist: _LayerDistribution,
    machine: int,
    host: int | None,
    exclude: Iterable[Path],
    layer_versions: Mapping[str, str],
) -> Substitution:
    built_for = machine_name(machine)
    here = _environment_distribution(dist.name, exclude)
    if here is None or here.version != dist.version:
        has = "does not have it" if here is None else f"has {here.version}"
        conflicts = _conflicts(layer_versions)
        why = (
            "; if .venv is current, its other requirements moved the lock's versions: " + "; ".join(conflicts)
            if conflicts
            else ""
        )
        raise HostViewError(
            f"layer has {dist.name} {dist.version} built for {built_for}, this environment {has}: "
            f"reinstall .venv (make venv){why}"
        )
    location = Path(str(here.locate_file(""))).resolve()
    for file in here.files or ():
        path = Path(str(here.locate_file(file)))
        other = _foreign(path, host)
        if other is not None:
            raise HostViewError(
                f"this environment's {dist.name} {here.version} is built for {machine_name(other)} too ({path}), "
                f"not for this machine ({machine_name(host)}): reinstall .venv (make venv)"
            )
    return Substitution(dist.name, dist.version, built_for, tuple(sorted(dist.entries)), location)


def _shared_objects(root: Path) -> Iterator[Path]:
    for directory, _, names in os.walk(root, followlinks=False):
        for name in names:
            path = Path(directory, name)
            if _is_shared_object(path):
                yield path


def build_host_view(layer: Path, dest: Path) -> HostView:
    """Link every top-level entry of the built layer's ``python/`` (``layer``) into ``dest`` (new or empty),
    but for the distributions with native code for another CPU, which must be in this environment at the
    same version (:class:`HostViewError` otherwise)."""
    layer = layer.resolve()
    if not layer.is_dir():
        raise HostViewError(f"{layer} is not a directory: run make build")
    host = host_machine()
    distributions = _layer_distributions(layer)
    owners: dict[str, set[str]] = {}
    for dist in distributions:
        for entry in dist.entries:
            owners.setdefault(entry, set()).add(dist.name)
    foreign_files = {path: machine for path in _shared_objects(layer) if (machine := _foreign(path, host)) is not None}
    swapped: dict[str, int] = {}
    for dist in distributions:
        machines = {foreign_files[f] for f in dist.files if f in foreign_files}
        if machines:
            swapped[dist.name] = min(machines)
    left_out = {entry for entry, names in owners.items() if names <= set(swapped)}
    problems = [
        f"{path.relative_to(layer)} ({machine_name(machine)})"
        for path, machine in sorted(foreign_files.items())
        if path.relative_to(layer).parts[0] not in left_out
    ]
    if problems:
        raise HostViewError(
            f"{layer} has native code for another CPU outside any distribution that could be swapped "
            f"(this machine: {machine_name(host)}): {', '.join(problems)}"
        )
    layer_versions = {normalize(d.name): d.version for d in distributions}
    substituted = tuple(
        _substitution(dist, swapped[dist.name], host, (layer, dest), layer_versions)
        for dist in distributions
        if dist.name in swapped
    )
    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise HostViewError(f"{dest} is not empty")
    from_layer: list[str] = []
    for entry in sorted(p.name for p in layer.iterdir()):
        if entry in left_out:
            continue
        (dest / entry).symlink_to(layer / entry, target_is_directory=(layer / entry).is_dir())
        from_layer.append(entry)
    return HostView(site=dest, layer=layer, substituted=substituted, from_layer=tuple(from_layer))
