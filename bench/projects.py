"""Build time of a game project (issue #24): the TypeScript sample examples/projects/dice-duel
through the platform's path (analysis with its dependency layer, bundle, images), next to the raw
`npm ci` + `esbuild` + `docker build` of the same project and to a single-file game's path, in
one run on one machine:

- platform cold:        nothing cached: npm install (from a local mirror, empty npm cache), analysis,
                        bundle, dependency image, game image (each image one commit of a created,
                        never started container: gameserver/image.py `_commit_layer`)
- platform warm deps:   the dependency layer is on disk (same lockfile), the dependency image is not
- platform one-line:    a one-line change of a deployed project: layer and dependency image reused,
                        the esbuild service still running (a burst: CI, `gsf dev`, several versions)
- platform one-line, idle service: the same after the esbuild service stopped (idle), so the
                        deploy starts node and esbuild again and compiles every file
- raw:                  `npm ci --ignore-scripts --omit=dev` + `esbuild --bundle` + `docker build`
                        (FROM the same runtime image, COPY node_modules and the bundle)
- single file:          examples/games/chat.js (a new source each run): analysis + game image

Container start, readiness and registration are the same for every kind of game and are left out:
what is compared is what a project adds. Packages come from tests/projects/registry.py on
127.0.0.1 (a mirror, as GSF_NPM_REGISTRY names one), never from the internet.

    .venv/bin/python -m bench.projects [--runs 3]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import statistics
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors

from analysis import AnalysisLimits, analyze
from analysis.project_report import project_report
from core.archives import Project, build_project, canonical_archive, read_project
from core.artifacts import sha256_hex
from core.settings import Settings
from gameserver import image as images
from gameserver.esbuild_service import SERVICE
from gameserver.project import BUILD_TOOLS, ProjectBuilder
from tests.projects.registry import cached_tarball, serve_registry

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "examples" / "projects" / "dice-duel"
SINGLE = REPO / "examples" / "games" / "chat.js"
RESULTS = Path(__file__).parent / "results"
ESBUILD = BUILD_TOOLS / "node_modules" / ".bin" / "esbuild"
# The medians recorded before the project images were commits (a `docker build` per image: COPY +
# LABEL for the dependency image, COPY + ENV + LABEL for the game layer, a container and a commit per
# instruction) and before the esbuild service was held while npm runs (an install slower than its
# 1.5 s idle stop left the first request to start it again), for the table's first column: another
# run, at another load (the ratios compare).
BEFORE = {"platform_cold": 1630.6, "platform_warm_deps": 577.8, "platform_one_line": 569.6,
          "platform_one_line_idle": 639.3, "raw": 1208.5, "single_file": 496.6}
BEFORE_RATIOS = {"cold_vs_raw": 1.35, "one_line_vs_single_file": 1.15, "one_line_idle_vs_single_file": 1.29}
RAW_DOCKERFILE = "FROM {runtime}\nCOPY node_modules/ /app/game/node_modules/\nCOPY gsf/ /app/game/.gsf/\n" \
                 "ENV GSF_GAME_FILE=/app/game/.gsf/game.js NODE_OPTIONS=--enable-source-maps\n"


def variant(project: Project, tag: str) -> Project:
    """The project with a one-line change (a comment naming `tag`) in its entry."""
    files = dict(project.files)
    files[project.entry] = files[project.entry] + f"// {tag}\n".encode()
    return build_project(files)


def timed(fn: Callable[..., Any], *args: Any) -> float:
    """Milliseconds `fn(*args)` took. The build containers a project image went through are removed
    in the background once committed (gameserver/image.py); that is waited for after the measure, so
    that it does not fall on the next one."""
    started = time.perf_counter()
    fn(*args)
    elapsed = (time.perf_counter() - started) * 1000
    images.settle()
    return elapsed


class Bench:
    def __init__(self, client: docker.DockerClient, settings: Settings, registry: str, scratch: Path) -> None:
        self.client, self.settings, self.registry, self.scratch = client, settings, registry, scratch
        self.runtime = images.ensure_runtime_image(client, settings)
        self.made: list[str] = []
        self.limits = AnalysisLimits(max_bytes=settings.project_max_file_bytes)

    @contextlib.contextmanager
    def npm_cache(self, name: str) -> Iterator[None]:
        """An empty npm cache: every install downloads from the mirror, as a fresh node does."""
        old = os.environ.get("NPM_CONFIG_CACHE")
        os.environ["NPM_CONFIG_CACHE"] = str(self.scratch / f"npm-{name}")
        try:
            yield
        finally:
            if old is None:
                os.environ.pop("NPM_CONFIG_CACHE", None)
            else:
                os.environ["NPM_CONFIG_CACHE"] = old

    def forget_deps_image(self, project: Project) -> None:
        assert project.lockfile_sha256 is not None
        with contextlib.suppress(docker.errors.ImageNotFound):
            self.client.images.remove(images.deps_image_tag(project.lockfile_sha256, self.settings.base_image),
                                      force=True)

    def platform(self, project: Project, builder: ProjectBuilder) -> None:
        """The platform's path: dependency layer, analysis with the bundle in the same esbuild run,
        images (what analyze_code and ensure_image do for a new project on one host)."""
        layer = builder.prepare(project)
        with builder.compilation(project, layer) as run:
            report = project_report(project, transpile=run.transpile,
                                    node_modules_root=layer.path if layer is not None else None, limits=self.limits)
            assert report.ok, report.findings
            run.keep()
        archive = canonical_archive(project)
        made = images.ensure_project_image(self.client, self.settings, archive, sha256_hex(archive), builder)
        assert made.built
        self.made.append(made.tag)

    def raw(self, project: Project, name: str) -> None:
        """By hand: npm ci, esbuild's CLI, docker build."""
        folder = self.scratch / f"raw-{name}"
        project.write_to(folder)
        subprocess.run(["npm", "ci", "--ignore-scripts", "--omit=dev", "--no-audit", "--no-fund", "--loglevel=error",
                        f"--registry={self.registry}"], cwd=folder, check=True, capture_output=True, timeout=600)
        subprocess.run([str(ESBUILD), project.entry, "--bundle", "--platform=node", "--format=cjs",
                        "--packages=external", "--sourcemap", "--target=node20", "--outfile=.gsf/game.js",
                        "--log-level=error"], cwd=folder, check=True, capture_output=True, timeout=120)
        context = io.BytesIO()
        with tarfile.open(fileobj=context, mode="w") as tar:
            data = RAW_DOCKERFILE.format(runtime=self.runtime).encode()
            info = tarfile.TarInfo("Dockerfile")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            tar.add(str(folder / "node_modules"), arcname="node_modules")
            tar.add(str(folder / ".gsf"), arcname="gsf")
        tag = f"gsf-bench-raw:{name}"
        self.client.images.build(fileobj=io.BytesIO(context.getvalue()), custom_context=True,
                                 tag=tag, rm=True, network_mode="none", pull=False)
        self.made.append(tag)

    def single(self, source: bytes) -> None:
        report = analyze(source, filename="game.js")
        assert report.ok
        tag, built = images.ensure_game_image(self.client, self.settings, source, sha256_hex(source))
        assert built
        self.made.append(tag)

    def cleanup(self) -> None:
        for tag in reversed(self.made):
            with contextlib.suppress(docker.errors.ImageNotFound, docker.errors.APIError):
                self.client.images.remove(tag, force=True)


def run(runs: int, pairs: int = 3) -> dict[str, Any]:
    client = docker.from_env()
    times: dict[str, list[float]] = {k: [] for k in ("platform_cold", "platform_warm_deps", "platform_one_line",
                                                     "platform_one_line_idle", "raw", "single_file")}
    base = read_project(SAMPLE)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="gsf-bench-projects-") as tmp, serve_registry() as registry:
        scratch = Path(tmp)
        settings = Settings(data_dir=scratch / "data")
        registry.add(cached_tarball("seedrandom@3.0.5", scratch))
        bench = Bench(client, settings, registry.url, scratch)
        chat = SINGLE.read_bytes()
        try:
            for i in range(runs):
                stamp = f"bench-{os.getpid()}-{i}"
                # Raw first, then the platform cold: each from an empty npm cache and nothing built.
                with bench.npm_cache(f"raw-{i}"):
                    times["raw"].append(timed(bench.raw, variant(base, stamp + "-raw"), str(i)))
                bench.forget_deps_image(base)
                builder = ProjectBuilder(scratch / f"projects-{i}", registry=registry.url)
                SERVICE.close()  # cold: no esbuild process, nothing compiled
                with bench.npm_cache(f"cold-{i}"):
                    times["platform_cold"].append(timed(bench.platform, variant(base, stamp + "-cold"), builder))
                bench.forget_deps_image(base)  # the layer on disk stays
                times["platform_warm_deps"].append(timed(bench.platform, variant(base, stamp + "-warm"), builder))
                # The three deploys that differ by a few ms are taken in turns, `pairs` times, so the
                # machine's noise (docker build varies by ±100 ms here) falls on each alike.
                for k in range(pairs):
                    line = variant(base, f"{stamp}-line-{k}")
                    times["platform_one_line"].append(timed(bench.platform, line, builder))
                    times["single_file"].append(timed(bench.single, chat + f"// {stamp}-{k}\n".encode()))
                    SERVICE.close()
                    times["platform_one_line_idle"].append(timed(bench.platform, variant(base, f"{stamp}-idle-{k}"),
                                                                 builder))
                shutil.rmtree(scratch / f"raw-{i}", ignore_errors=True)
        finally:
            bench.cleanup()
            bench.forget_deps_image(base)
    median = {k: round(statistics.median(v), 1) for k, v in times.items()}
    return {
        "runs": runs, "pairs": pairs, "unit": "ms", "median": median, "cores": os.cpu_count(),
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "all": {k: [round(x, 1) for x in v] for k, v in times.items()},
        "ratios": {
            "cold_vs_raw": round(median["platform_cold"] / median["raw"], 2),
            "one_line_vs_single_file": round(median["platform_one_line"] / median["single_file"], 2),
            "one_line_idle_vs_single_file": round(median["platform_one_line_idle"] / median["single_file"], 2),
        },
        # Each cold build over the raw build taken just before it: npm's time varies most, and alike
        # for both within a pair.
        "cold_vs_raw_per_run": [round(c / r, 2) for c, r in zip(times["platform_cold"], times["raw"], strict=True)],
        "targets": {"cold_vs_raw": 1.25, "one_line_vs_single_file": 1.25},
    }


def write(result: dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "projects.json").write_text(json.dumps(result, indent=2) + "\n")
    m, r = result["median"], result["ratios"]
    lines = [
        "# Project builds (bench/projects.py)", "",
        f"The TypeScript sample `examples/projects/dice-duel` (seedrandom from a local npm mirror), median of "
        f"{result['runs']} runs in one process ({result['pairs']} one-line / single-file / idle-service deploys taken "
        f"in turns per run); container start/readiness left out (the same for every game). "
        f"{result['cores']} cores, load average {result['load_average'][0]} before and {result['load_average'][1]} "
        "after (other work on the machine: at such a load one timing varies by hundreds of ms, npm's most).", "",
        "| path | before: a `docker build` per image (ms) | now: a commit per image, esbuild held during npm (ms) |",
        "| --- | ---: | ---: |",
        *(f"| {label} | {BEFORE.get(key, '–')} | {m[key]} |" for key, label in (
            ("platform_cold", "platform, cold (npm install, analysis, bundle, dependency image, game image)"),
            ("platform_warm_deps", "platform, warm dependency layer (dependency image rebuilt)"),
            ("platform_one_line", "platform, one-line change (layer and dependency image reused, esbuild service "
                                  "running)"),
            ("platform_one_line_idle", "platform, one-line change after the esbuild service idled out"),
            ("raw", "raw `npm ci` + `esbuild` + `docker build`"),
            ("single_file", "single-file game (analysis + game image)"))), "",
        f"- cold / raw: **{r['cold_vs_raw']}×** (target ≤ 1.25×; before: {BEFORE_RATIOS['cold_vs_raw']}×); "
        f"each run's cold over its raw: {', '.join(f'{x}×' for x in result['cold_vs_raw_per_run'])}",
        f"- one-line change / single file: **{r['one_line_vs_single_file']}×** (target ≤ 1.25×; before: "
        f"{BEFORE_RATIOS['one_line_vs_single_file']}×); after the service idled out: "
        f"**{r['one_line_idle_vs_single_file']}×** (before: {BEFORE_RATIOS['one_line_idle_vs_single_file']}×)", "",
    ]
    (RESULTS / "projects.md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=3, help="one-line/single-file deploys taken in turns per run")
    args = parser.parse_args()
    result = run(args.runs, args.pairs)
    write(result)
    print(json.dumps(result["median"]), json.dumps(result["ratios"]))


if __name__ == "__main__":
    main()
