"""A verdict per npm package a project installs: what it reaches on the host, whether it runs
install scripts or ships native code. A package that does any of these blocks the project unless
an admin allow-lists that exact `name@version`.

What is read: the lockfile (names, versions, `hasInstallScript`), and when the packages are
installed (`npm ci --ignore-scripts --omit=dev` puts them where Node finds them), each package's
package.json and files. The host-module scan over a package's JavaScript is lexical (a literal
`require('x')`, `import ... from 'x'`, `import('x')`), not the full analyzer: a dependency tree is
hundreds of files, and the container remains the boundary for what a lexical scan misses.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from analysis.nodejs import HOST_MODULES

INSTALL_SCRIPTS = ("preinstall", "install", "postinstall")
_SCANNED = (".js", ".cjs", ".mjs")
_MAX_SCANNED_BYTES = 32 * 1024 * 1024  # per file: bigger than any real module; bounds memory
_MAX_FILES_PER_PACKAGE = 20_000
_LOADS = re.compile(
    r"""(?:\brequire\s*\(\s*|\bimport\s*\(\s*|\bfrom\s*|\bimport\s+)(['"`])(?:node:)?([A-Za-z0-9_]+)(?:/[^'"`]*)?\1""")


class DependencyVerdict(BaseModel):
    """One installed package and what blocks it (`verdict`: ok, blocked, or allowed by the admin)."""

    package: str
    name: str
    version: str
    verdict: str = "ok"
    host_modules: list[str] = Field(default_factory=list)
    host_files: list[str] = Field(default_factory=list)
    install_scripts: list[str] = Field(default_factory=list)
    native_addons: list[str] = Field(default_factory=list)
    inspected: bool = False

    @property
    def blocking(self) -> bool:
        return self.verdict == "blocked"

    @property
    def reasons(self) -> list[str]:
        out = []
        if self.host_modules:
            out.append("requires " + ", ".join(self.host_modules) + f" ({', '.join(self.host_files[:3])})")
        if self.install_scripts:
            out.append("has install scripts (" + ", ".join(self.install_scripts) + ")")
        if self.native_addons:
            out.append("has native addons (" + ", ".join(self.native_addons[:3]) + ")")
        return out


def judge_dependencies(lockfile: Mapping[str, Any] | None, node_modules_root: Path | None = None, *,
                       allow: Iterable[str] = ()) -> list[DependencyVerdict]:
    """A verdict for every non-dev package of the lockfile (v2/v3 `packages`), sorted by name.

    `node_modules_root` is the folder holding `node_modules/` as `npm ci` laid it out (the lockfile's
    keys are paths under it); without it only what the lockfile says is judged (`inspected` False).
    """
    allowed = frozenset(allow)
    packages = (lockfile or {}).get("packages")
    verdicts: list[DependencyVerdict] = []
    if not isinstance(packages, dict):
        return verdicts
    for key, meta in packages.items():
        if not key or not isinstance(meta, dict) or meta.get("dev") or meta.get("link"):
            continue
        name = str(meta.get("name") or key.rsplit("node_modules/", 1)[-1])
        version = str(meta.get("version", "?"))
        verdict = DependencyVerdict(package=f"{name}@{version}", name=name, version=version)
        if meta.get("hasInstallScript"):
            verdict.install_scripts.append("install script (lockfile: hasInstallScript)")
        folder = node_modules_root / key if node_modules_root is not None else None
        if folder is not None and folder.is_dir() and not folder.is_symlink():
            _inspect(verdict, folder)
        if verdict.host_modules or verdict.install_scripts or verdict.native_addons:
            verdict.verdict = "allowed" if verdict.package in allowed else "blocked"
        verdicts.append(verdict)
    verdicts.sort(key=lambda v: (v.name, v.version))
    return verdicts


def _inspect(verdict: DependencyVerdict, folder: Path) -> None:
    verdict.inspected = True
    manifest = _manifest(folder / "package.json")
    scripts = manifest.get("scripts") if isinstance(manifest.get("scripts"), dict) else {}
    named = [s for s in INSTALL_SCRIPTS if isinstance(scripts, dict) and scripts.get(s)]
    if named:
        verdict.install_scripts[:] = named
    if manifest.get("gypfile") or (folder / "binding.gyp").is_file():
        verdict.native_addons.append("binding.gyp")
        if not named:
            verdict.install_scripts[:] = ["install (node-gyp rebuild, implied by binding.gyp)"]
    hosts: set[str] = set()
    for rel, path in _package_files(folder):
        if rel.endswith(".node"):
            verdict.native_addons.append(rel)
        elif rel.endswith(_SCANNED):
            found = _host_loads(path)
            if found:
                hosts.update(m for m, _ in found)
                verdict.host_files.extend(f"{rel}:{line}" for _, line in found[:3])
    verdict.host_modules = sorted(hosts)


def _manifest(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _package_files(folder: Path) -> list[tuple[str, Path]]:
    """The package's own files (not its nested node_modules, which are packages of their own)."""
    out: list[tuple[str, Path]] = []
    stack = [(folder, "")]
    while stack and len(out) < _MAX_FILES_PER_PACKAGE:
        current, prefix = stack.pop()
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue
        for entry in entries:
            rel = prefix + entry.name
            if entry.is_dir(follow_symlinks=False):
                if entry.name != "node_modules":
                    stack.append((Path(entry.path), rel + "/"))
            elif entry.is_file(follow_symlinks=False):
                out.append((rel, Path(entry.path)))
    return sorted(out)


def _host_loads(path: Path) -> list[tuple[str, int]]:
    """(host module, line) of every literal load of a host module in one file."""
    try:
        if path.stat().st_size > _MAX_SCANNED_BYTES:
            return []
        text = path.read_text("utf-8", errors="replace")
    except OSError:
        return []
    out = []
    for match in _LOADS.finditer(text):
        if match.group(2) in HOST_MODULES:
            out.append((match.group(2), text.count("\n", 0, match.start()) + 1))
    return out
