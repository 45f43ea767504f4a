"""Node-local pipeline steps that the game-server deployment does not use itself (DESIGN §5)."""

from __future__ import annotations

import asyncio
import io
import tarfile
import time

import docker
import docker.errors
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.containers import ContainerActivities, container_name
from core.contracts import (
    ExecInput,
    NoopInput,
    PrepareNetworkInput,
    PullImageInput,
    SleepInput,
    StepResult,
    WriteConfigInput,
)
from core.settings import Settings


class StepActivities:
    def __init__(self, client: docker.DockerClient, settings: Settings, containers: ContainerActivities) -> None:
        self.client = client
        self.settings = settings
        self.containers = containers

    @activity.defn(name="step_noop")
    async def noop(self, input: NoopInput) -> StepResult:
        """Does nothing; pipelines use it for markers, tests and benchmarks."""
        return StepResult(logs=[input.message or "noop"])

    @activity.defn(name="step_sleep")
    async def sleep(self, input: SleepInput) -> StepResult:
        """Waits, heartbeating, so a cancel request stops it within a heartbeat."""
        deadline = time.monotonic() + input.seconds
        while (left := deadline - time.monotonic()) > 0:
            activity.heartbeat(left)
            await asyncio.sleep(min(left, 0.5))
        return StepResult(logs=[f"slept {input.seconds:g} s"])

    @activity.defn(name="pull_image")
    def pull_image(self, input: PullImageInput) -> StepResult:
        """Make the image present on this node: kept if already there, else pulled from its registry."""
        try:
            image = self.client.images.get(input.image)
            return StepResult(output={"image": input.image, "id": image.id, "pulled": False},
                              logs=[f"{input.image} already present"])
        except docker.errors.ImageNotFound:
            pass
        activity.heartbeat()
        try:
            image = self.containers._heartbeating(lambda: self.client.images.pull(input.image))
        except docker.errors.APIError as exc:
            raise ApplicationError(f"cannot pull {input.image}: {exc.explanation or exc}", type="StepRefused",
                                   non_retryable=exc.status_code == 404) from None
        return StepResult(output={"image": input.image, "id": image.id, "pulled": True},
                          logs=[f"pulled {input.image}"])

    @activity.defn(name="prepare_network")
    def prepare_network(self, input: PrepareNetworkInput) -> StepResult:
        """The isolated game network (no traffic between containers, no masquerade)."""
        name = self.containers.ensure_network(input.name or None)
        return StepResult(output={"network": name}, logs=[f"network {name} ready"])

    @activity.defn(name="write_config")
    def write_config(self, input: WriteConfigInput) -> StepResult:
        """Write files into a named volume (through a never-started helper container)."""
        for path in input.files:
            if path.startswith("/") or ".." in path.split("/"):
                raise ApplicationError(f"write_config: {path!r} must be a relative path inside the volume",
                                       type="StepRefused", non_retryable=True)
        try:
            volume = self.client.volumes.get(input.volume)
        except docker.errors.NotFound:
            self.client.volumes.create(input.volume, labels={"gsf.kind": "config"})
        else:
            # Only a volume this step made: a pipeline must not write into whatever else the node's
            # Docker holds (a database's data, another service's volume).
            if (volume.attrs.get("Labels") or {}).get("gsf.kind") != "config":
                raise ApplicationError(f"write_config: volume {input.volume!r} exists and is not a config volume "
                                       "made by write_config", type="StepRefused", non_retryable=True)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for path, content in sorted(input.files.items()):
                data = content.encode()
                info = tarfile.TarInfo(path)
                info.size, info.mode, info.uid, info.gid = len(data), 0o644, 1000, 1000
                tar.addfile(info, io.BytesIO(data))
        helper = self.client.containers.create(self.settings.base_image, command=["node", "-e", "0"],
                                               volumes={input.volume: {"bind": "/data", "mode": "rw"}},
                                               network_mode="none", labels={"gsf.kind": "helper"})
        try:
            helper.put_archive("/data", buf.getvalue())
        finally:
            helper.remove(force=True)
        return StepResult(output={"volume": input.volume, "files": sorted(input.files)},
                          logs=[f"wrote {len(input.files)} file(s) into volume {input.volume}"])

    @activity.defn(name="exec_in_container")
    def exec_in_container(self, input: ExecInput) -> StepResult:
        """Run an allowed program inside a server's container (its sandbox applies)."""
        if input.command[0] not in self.settings.pipeline_exec_allowed:
            raise ApplicationError(f"exec: {input.command[0]!r} is not allowed "
                                   f"(allowed: {', '.join(self.settings.pipeline_exec_allowed)})",
                                   type="StepRefused", non_retryable=True)
        try:
            container = self.client.containers.get(container_name(input.server_id))
        except docker.errors.NotFound:
            raise ApplicationError(f"exec: no container for server {input.server_id}", type="StepRefused",
                                   non_retryable=True) from None
        code, out = container.exec_run(input.command, user="1000:1000")
        lines = out.decode(errors="replace").splitlines()[-200:]
        if code != 0:
            raise ApplicationError(f"exec exited with {code}: {' | '.join(lines[-5:])}", type="StepRefused",
                                   non_retryable=True)
        return StepResult(output={"exit_code": code}, logs=lines)
