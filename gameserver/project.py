"""The build side of a game project: npm dependencies into a cached layer, the project's own
files (TypeScript or JavaScript) into one CommonJS bundle with its source map.

- Dependencies: `npm ci --ignore-scripts --omit=dev` into a folder named by the sha256 of the
  lockfile (`DependencyCache`), so a new version of a game with the same lockfile reuses the
  layer instead of installing again; the registry (a mirror, for nodes without internet) is a
  parameter handed to npm as `--registry`.
- Code: esbuild (pinned in gameserver/tooling/package.json, installed by scripts/bootstrap.sh)
  bundles what the entry reaches into `.gsf/game.js` + `.gsf/game.js.map`; npm packages stay
  external, `require`d from the layer. Run it with Node's `--enable-source-maps`
  (`BuildResult.runtime_env`) and stack traces name the .ts file and line. esbuild runs as one
  long-lived service (gameserver/esbuild_service.py), and one request compiles each TypeScript
  file (for the analysis, cached by content) and bundles those compiled files: a `Compilation`
  serves the analysis and the build of a project with one esbuild run.
- `ProjectBuilder` does both, content-addressed by the project's hash: the same project never
  builds twice. docs/projects.md is the developer's side of this.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.archives import TYPESCRIPT_SUFFIXES, Project
from core.settings import Settings
from gameserver.esbuild_service import SERVICE, TOOLING, ServiceError

log = logging.getLogger(__name__)

BUILD_TOOLS = TOOLING
BUNDLE_DIR = ".gsf"
BUNDLE_FILE = f"{BUNDLE_DIR}/game.js"
_COMPLETE = ".gsf-complete"
NPM_TIMEOUT_SECONDS = 600.0
ESBUILD_TIMEOUT_SECONDS = 120.0


class BuildError(RuntimeError):
    """A build step failed for a reason the project cannot fix alone (npm could not install, the
    tooling is missing); `output` is what the tool printed."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output


def _esbuild(request: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return SERVICE.request(request, timeout=ESBUILD_TIMEOUT_SECONDS)
    except ServiceError as exc:
        raise BuildError(str(exc), exc.output) from None


def transpile_typescript(files: Mapping[str, str]) -> dict[str, Any]:
    """Each TypeScript file compiled on its own (imports kept as written) with its source map:
    {"files": {path: {"code", "map"}}, "errors": [{file, line, column, text, line_text}], "stats":
    {"transformed", "cached"}}. The `transpile` that analysis.project.analyze_project takes; a file
    compiled before (same content) comes from the service's cache."""
    return _esbuild({"op": "transform", "files": dict(files)})


def typescript_sources(project: Project) -> dict[str, str]:
    """The project's TypeScript files as text, as the analysis hands them to `transpile`."""
    return {p: project.files[p].decode("utf-8", errors="replace").removeprefix("\ufeff")
            for p in project.sources if p.endswith(TYPESCRIPT_SUFFIXES)}


# --- dependencies ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DependencyLayer:
    """Installed dependencies: `path/node_modules` as `npm ci` made it; `reused` when an earlier
    install with the same lockfile was found instead of installing."""

    key: str
    path: Path
    reused: bool
    packages: int

    @property
    def node_modules(self) -> Path:
        return self.path / "node_modules"


class DependencyCache:
    """Dependency layers under `root`, one folder per lockfile hash; `installs` counts the
    `npm ci` runs this object made (a reused layer does not count)."""

    def __init__(self, root: Path, *, registry: str | None = None, npm: str = "npm",
                 npm_cache: Path | None = None, timeout: float = NPM_TIMEOUT_SECONDS) -> None:
        self.root = Path(root)
        self.registry = registry
        self.npm = npm
        self.npm_cache = npm_cache
        self.timeout = timeout
        self.installs = 0

    @staticmethod
    def key(lockfile: bytes) -> str:
        return hashlib.sha256(lockfile).hexdigest()

    def ensure(self, project: Project) -> DependencyLayer | None:
        """The layer of the project's lockfile, installed if missing; None when nothing to install."""
        lockfile = project.files.get("package-lock.json")
        if lockfile is None or not project.dependencies:
            return None
        key = self.key(lockfile)
        final = self.root / key
        if (final / _COMPLETE).is_file():
            return DependencyLayer(key, final, True, len(project.dependencies))
        self.root.mkdir(parents=True, exist_ok=True)
        work = self.root / f".{key}.{os.getpid()}.{time.monotonic_ns()}"
        work.mkdir()
        try:
            (work / "package.json").write_bytes(project.files.get("package.json", b"{}"))
            (work / "package-lock.json").write_bytes(lockfile)
            self._npm_ci(work)
            (work / _COMPLETE).write_text(json.dumps({"packages": list(project.dependencies)}))
            try:
                work.rename(final)
            except OSError:
                if not (final / _COMPLETE).is_file():
                    raise
                # Another build installed the same lockfile meanwhile: theirs is as good as ours.
        finally:
            shutil.rmtree(work, ignore_errors=True)
        self.installs += 1
        return DependencyLayer(key, final, False, len(project.dependencies))

    def _npm_ci(self, folder: Path) -> None:
        command = [self.npm, "ci", "--ignore-scripts", "--omit=dev", "--no-audit", "--no-fund",
                   "--loglevel=error", "--no-update-notifier"]
        if self.registry:
            command.append(f"--registry={self.registry}")
        if self.npm_cache is not None:
            command.append(f"--cache={self.npm_cache}")
        started = time.monotonic()
        try:
            done = subprocess.run(command, cwd=folder, capture_output=True, timeout=self.timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BuildError(f"npm ci did not finish: {exc}") from None
        if done.returncode != 0:
            raise BuildError("npm ci failed: the lockfile's packages could not be installed",
                             (done.stdout + done.stderr).decode(errors="replace")[-4000:])
        log.info("installed dependencies %s in %.1f s", folder.name, time.monotonic() - started)


# --- the bundle ----------------------------------------------------------------------------------


@dataclass
class BuildResult:
    """A built project in `path`: `entry_file` is the bundle to hand the runtime as GSF_GAME_FILE.
    `errors` (file, line, column, text) are esbuild's, by .ts/.js file; `built` is False when an
    earlier build of the same project was reused."""

    path: Path
    entry_file: Path
    layer: DependencyLayer | None
    built: bool
    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    compiled: dict[str, Any] = field(default_factory=dict)  # esbuild's answer: compiled files, stats

    @property
    def ok(self) -> bool:
        return not self.errors

    def runtime_env(self) -> dict[str, str]:
        """The environment the runtime needs for this build: the bundle, and source maps on."""
        return {"GSF_GAME_FILE": str(self.entry_file), "NODE_OPTIONS": "--enable-source-maps"}


def bundle_project(project: Project, dest: Path, layer: DependencyLayer | None, *,
                   link_dependencies: bool = True, sources: Mapping[str, str] | None = None) -> BuildResult:
    """Write the project into `dest` and bundle its entry into `dest/.gsf/game.js` (+ .map), in one
    esbuild run that also compiles each TypeScript file on its own (`BuildResult.compiled`, what the
    analysis reads): the bundle is made of those very files, so nothing is compiled twice.

    `sources` are the TypeScript texts to compile (default: the project's, `typescript_sources`).
    With `link_dependencies`, `dest/node_modules` is a symbolic link to the layer, for runs on
    this machine; an image copies the layer's node_modules in as its own layer instead.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    project.write_to(dest)
    if layer is not None and link_dependencies:
        link = dest / "node_modules"
        if not link.exists():
            link.symlink_to(layer.node_modules, target_is_directory=True)
    outfile = dest / BUNDLE_FILE
    answer = _esbuild({"op": "build", "root": str(dest), "entry": project.entry, "outfile": str(outfile),
                       "files": dict(typescript_sources(project) if sources is None else sources)})
    bundle = dict(answer.get("bundle", {}))
    return BuildResult(path=dest, entry_file=outfile, layer=layer, built=True,
                       errors=list(bundle.get("errors", [])), warnings=list(bundle.get("warnings", [])),
                       compiled=answer)


class Compilation:
    """One esbuild run for a project's analysis and its build, in a work folder of the builder.

    `transpile` is the analysis's Transpiler: it makes the bundle along with the compiled files it
    answers. `keep()` files the bundle as the project's build (ProjectBuilder.build then reuses
    it; a project no transpile was asked for, JavaScript only, is bundled then); a compilation not
    kept (the analysis blocked the project) leaves nothing behind.
    """

    def __init__(self, builder: ProjectBuilder, project: Project, layer: DependencyLayer | None) -> None:
        self.builder, self.project, self.layer = builder, project, layer
        self.final = builder.root / "builds" / project.sha256
        self.work = builder.root / "builds" / f".{project.sha256}.{os.getpid()}.{time.monotonic_ns()}"
        self.result: BuildResult | None = None

    def transpile(self, sources: Mapping[str, str]) -> dict[str, Any]:
        if self.result is None and not (self.final / _COMPLETE).is_file():
            self.result = bundle_project(self.project, self.work, self.layer, link_dependencies=False, sources=sources)
            return self.result.compiled
        return transpile_typescript(sources)  # built already: the compiled files are in the service's cache

    def keep(self) -> BuildResult:
        """The project's build: the one this compilation made, an earlier one, or made now."""
        if (self.final / _COMPLETE).is_file():
            return BuildResult(path=self.final, entry_file=self.final / BUNDLE_FILE, layer=self.layer, built=False)
        result = self.result or bundle_project(self.project, self.work, self.layer, link_dependencies=False)
        if not result.ok:
            return result
        if self.layer is not None:
            (self.work / "node_modules").symlink_to(self.layer.node_modules, target_is_directory=True)
        # The map names sources relative to the bundle, so the folder may move as a whole.
        (self.work / _COMPLETE).write_text(self.project.sha256)
        try:
            self.work.rename(self.final)
        except OSError:
            if not (self.final / _COMPLETE).is_file():
                raise
        self.builder.builds += 1
        return BuildResult(path=self.final, entry_file=self.final / BUNDLE_FILE, layer=self.layer, built=True,
                           warnings=result.warnings, compiled=result.compiled)

    def discard(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)

    def __enter__(self) -> Compilation:
        return self

    def __exit__(self, *_: object) -> None:
        self.discard()


class ProjectBuilder:
    """Dependency layers and bundles under `root` (the data dir's `projects/`), both cached by
    content: `builds` counts bundles made, `dependencies.installs` the npm installs."""

    def __init__(self, root: Path, *, registry: str | None = None, npm_cache: Path | None = None) -> None:
        self.root = Path(root)
        self.dependencies = DependencyCache(self.root / "deps", registry=registry, npm_cache=npm_cache)
        self.builds = 0

    def prepare(self, project: Project) -> DependencyLayer | None:
        """The project's dependency layer (installed if missing), with esbuild started meanwhile
        for a project that has anything to compile: a cold build waits for npm, not for both. The
        service is held while npm runs, so a slow install does not outlast its idle stop."""
        with contextlib.ExitStack() as stack:
            if project.sources and not (self.root / "builds" / project.sha256 / _COMPLETE).is_file():
                # A service that cannot start is reported by the request that needs it, not as npm's.
                with contextlib.suppress(ServiceError):
                    stack.enter_context(SERVICE.held())
            return self.dependencies.ensure(project)

    def compilation(self, project: Project, layer: DependencyLayer | None) -> Compilation:
        """A compilation of the project (a context manager): analyze with its `transpile`, then
        `keep()` it when the project is accepted. What analyze_code does on a host whose agent
        shares the data dir: the agent's build then finds the bundle made."""
        (self.root / "builds").mkdir(parents=True, exist_ok=True)
        return Compilation(self, project, layer)

    def build(self, project: Project) -> BuildResult:
        """The built project, made once per project hash (a failed build is not kept)."""
        layer = self.prepare(project)
        with self.compilation(project, layer) as run:
            return run.keep()


def builder_for(data_dir: Path, registry: str | None = None) -> ProjectBuilder:
    """The builder of a data dir: `<data_dir>/projects/{deps,builds}`."""
    return ProjectBuilder(Path(data_dir) / "projects", registry=registry)


def project_root(settings: Settings) -> Path:
    """Where an installation keeps dependency layers and builds: `<data_dir>/projects`. The control
    worker (analysis) and an agent on the same host share it, so a lockfile installs once."""
    return settings.data_dir / "projects"


def settings_builder(settings: Settings) -> ProjectBuilder:
    """The builder of an installation: its data dir, its npm registry (GSF_NPM_REGISTRY)."""
    return ProjectBuilder(project_root(settings), registry=settings.npm_registry or None)
