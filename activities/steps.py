"""Node-local pipeline steps that the game-server deployment does not use itself (DESIGN §5).

`pull_image`, `prepare_network` and `write_config` act for the run's owner (their `caller`, set by
the API): images only from the registries in GSF_PIPELINE_REGISTRIES, networks and volumes made
with the caller's `gsf.owner_id` label and reused only when they carry it, at most
GSF_PIPELINE_MAX_{VOLUMES,NETWORKS}_PER_USER of them per user on this node and at most
GSF_PIPELINE_MAX_CONFIG_BYTES in one config volume. Admins may reuse anything gsf made here and are
not counted. Every check runs before the step touches Docker; a refusal is a non-retryable
`StepForbidden` (not the caller's, registry not allowed) or `StepQuotaExceeded`.
"""

from __future__ import annotations

import asyncio
import io
import tarfile
import threading
import time
from collections.abc import Iterator
from typing import Any

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
    StepCaller,
    StepResult,
    WriteConfigInput,
)
from core.pipeline import MAX_CONFIG_FILES, image_registry, registry_allowed
from core.settings import Settings

OWNER_LABEL = "gsf.owner_id"
# The options of ContainerActivities._create_network: no traffic between containers, no masquerade.
GAME_NETWORK_OPTIONS = {"com.docker.network.bridge.enable_icc": "false",
                        "com.docker.network.bridge.enable_ip_masquerade": "false"}


def forbidden(message: str) -> ApplicationError:
    return ApplicationError(message, type="StepForbidden", non_retryable=True)


def over_quota(message: str) -> ApplicationError:
    return ApplicationError(message, type="StepQuotaExceeded", non_retryable=True)


def _caller(step: str, caller: StepCaller | None) -> StepCaller:
    """Who the step acts for; a step without one (a run started before owners were checked, or not
    through the API) is refused."""
    if caller is None:
        raise forbidden(f"{step}: the step does not say whom it acts for; start the pipeline again")
    return caller


class _Stream(io.RawIOBase):
    """A readable file over an iterator of byte chunks that refuses to read past `limit` bytes."""

    def __init__(self, chunks: Iterator[bytes], limit: int) -> None:
        self.chunks, self.limit, self.read_bytes, self.rest = chunks, limit, 0, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self.rest:
            try:
                self.rest = next(self.chunks)
            except StopIteration:
                return 0
        n = min(len(buffer), len(self.rest))
        buffer[:n], self.rest = self.rest[:n], self.rest[n:]
        self.read_bytes += n
        if self.read_bytes > self.limit:
            raise OverflowError(self.limit)
        return n


class StepActivities:
    def __init__(self, client: docker.DockerClient, settings: Settings, containers: ContainerActivities) -> None:
        self.client = client
        self.settings = settings
        self.containers = containers
        self._quota_lock = threading.Lock()  # one count-then-create at a time on this node

    def _owned_by(self, labels: dict[str, str] | None, caller: StepCaller) -> bool:
        return caller.admin or (labels or {}).get(OWNER_LABEL) == caller.owner_id

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
        caller = _caller("pull_image", input.caller)
        if not caller.admin and not registry_allowed(input.image, self.settings.pipeline_registries):
            raise forbidden(f"pull_image: registry {image_registry(input.image)} is not allowed "
                            f"(allowed: {', '.join(self.settings.pipeline_registries) or 'none'})")
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
        """The isolated game network (no traffic between containers, no masquerade): the platform's
        own (`name` empty or GSF_GAME_NETWORK), or one of the caller's, made if missing."""
        caller = _caller("prepare_network", input.caller)
        name = input.name or self.settings.game_network
        if name != self.settings.game_network:
            with self._quota_lock:
                network = self._get(self.client.networks, name)
                if network is None:
                    self._count("networks", self.client.networks.list(filters={"label": self._owner(caller)}),
                                self.settings.pipeline_max_networks_per_user, caller)
                    self.client.networks.create(name, driver="bridge", options=GAME_NETWORK_OPTIONS, labels={
                        "gsf.kind": "game-network", OWNER_LABEL: caller.owner_id})
                else:
                    labels = network.attrs.get("Labels") or {}
                    if labels.get("gsf.kind") != "game-network":
                        raise forbidden(f"prepare_network: network {name!r} exists and is not a game network "
                                        "made by gsf")
                    if not self._owned_by(labels, caller):
                        raise forbidden(f"prepare_network: network {name!r} is not one of yours")
        name = self.containers.ensure_network(name)  # the host firewall rules of a game network
        return StepResult(output={"network": name}, logs=[f"network {name} ready"])

    @staticmethod
    def _get(collection: Any, name: str) -> Any:
        """A network or volume by name, None when there is none (raised outside the lookup's
        `except`, a refusal keeps its own type as the step's error)."""
        try:
            return collection.get(name)
        except docker.errors.NotFound:
            return None

    @staticmethod
    def _owner(caller: StepCaller) -> str:
        return f"{OWNER_LABEL}={caller.owner_id}"

    @staticmethod
    def _count(kind: str, existing: list[Any], limit: int, caller: StepCaller) -> None:
        """Refuse to make one more of `kind` when the caller has `limit` already (admins: no limit)."""
        if not caller.admin and len(existing) >= limit:
            raise over_quota(f"you have {len(existing)} {kind} on this node; one user may have {limit}")

    @activity.defn(name="write_config")
    def write_config(self, input: WriteConfigInput) -> StepResult:
        """Write files into a named volume (through a never-started helper container)."""
        for path in input.files:
            if path.startswith("/") or ".." in path.split("/"):
                raise ApplicationError(f"write_config: {path!r} must be a relative path inside the volume",
                                       type="StepRefused", non_retryable=True)
        caller = _caller("write_config", input.caller)
        cap = self.settings.pipeline_max_config_bytes
        if not caller.admin:
            self._check_size(input.files, {}, cap)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for path, content in sorted(input.files.items()):
                data = content.encode()
                info = tarfile.TarInfo(path)
                info.size, info.mode, info.uid, info.gid = len(data), 0o644, 1000, 1000
                tar.addfile(info, io.BytesIO(data))
        with self._quota_lock:  # counted, checked and written as one: two writes cannot both fit
            volume = self._get(self.client.volumes, input.volume)
            if volume is None:
                self._count("volumes", self.client.volumes.list(filters={"label": self._owner(caller)}),
                            self.settings.pipeline_max_volumes_per_user, caller)
                self.client.volumes.create(input.volume, labels={"gsf.kind": "config", OWNER_LABEL: caller.owner_id})
            else:
                # Only a config volume write_config made, and for the caller: a pipeline must not write
                # into whatever else the node's Docker holds (a database's data, another user's config).
                labels = volume.attrs.get("Labels") or {}
                if labels.get("gsf.kind") != "config":
                    raise ApplicationError(f"write_config: volume {input.volume!r} exists and is not a config "
                                           "volume made by write_config", type="StepRefused", non_retryable=True)
                if not self._owned_by(labels, caller):
                    raise forbidden(f"write_config: volume {input.volume!r} is not one of yours")
            helper = self.client.containers.create(self.settings.base_image, command=["node", "-e", "0"],
                                                   volumes={input.volume: {"bind": "/data", "mode": "rw"}},
                                                   network_mode="none", labels={"gsf.kind": "helper"})
            try:
                if volume is not None and not caller.admin:  # what stays in the volume counts against its cap
                    self._check_size(input.files, self._contents(helper, cap), cap)
                helper.put_archive("/data", buf.getvalue())
            finally:
                helper.remove(force=True)
        return StepResult(output={"volume": input.volume, "files": sorted(input.files)},
                          logs=[f"wrote {len(input.files)} file(s) into volume {input.volume}"])

    @staticmethod
    def _check_size(files: dict[str, str], present: dict[str, int], cap: int) -> None:
        """The volume after the write (files it keeps plus the new ones) within the cap."""
        kept = {path: size for path, size in present.items() if path not in files}
        size = sum(kept.values()) + sum(len(content.encode()) for content in files.values())
        count = len(kept) + len(files)
        if size > cap or count > MAX_CONFIG_FILES:
            raise over_quota(f"write_config: the volume would hold {count} file(s), {size} bytes; a config "
                             f"volume holds at most {cap} bytes in {MAX_CONFIG_FILES} files")

    @staticmethod
    def _contents(helper: Any, cap: int) -> dict[str, int]:
        """Path -> size of the regular files in the helper's /data, read as a tar stream that stops
        past what a volume within its cap can take (a bigger one counts as over the cap)."""
        chunks, _ = helper.get_archive("/data")
        stream = _Stream(iter(chunks), limit=cap + 1024 * (MAX_CONFIG_FILES + 8))
        sizes: dict[str, int] = {}
        try:
            with tarfile.open(fileobj=io.BufferedReader(stream), mode="r|") as tar:
                for member in tar:
                    if member.isfile():
                        sizes[member.name.split("/", 1)[1] if "/" in member.name else member.name] = member.size
        except OverflowError:
            return {"": cap + 1}
        return sizes

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
