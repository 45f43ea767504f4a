"""Node-local activities: game images and hardened game-server containers (Docker SDK, blocking).

They run as sync activities on the agent's thread pool, so the blocking Docker SDK never stalls
the event loop, and they heartbeat so that cancellation and a dead agent are noticed.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import shlex
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

import docker
import docker.errors
import requests.exceptions
from docker.models.containers import Container
from docker.types import Ulimit
from temporalio import activity
from temporalio.exceptions import ApplicationError

from core import security
from core.archives import is_archive
from core.contracts import (
    EnsureImageInput,
    EnsureImageResult,
    StartContainerInput,
    StartContainerResult,
    StopContainerInput,
    StopContainerResult,
    WaitReadyInput,
    WaitReadyResult,
)
from core.errors import GsfError, StartupError
from core.settings import Settings
from gameserver import image as images
from gameserver.project import BuildError, settings_builder

T = TypeVar("T")
CONTAINER_PORT = 8080
LABEL_PREFIX = "gsf."


def container_name(server_id: str) -> str:
    return f"gsf-{server_id}"


# A drained server's runtime, signalled SIGUSR2, cuts the sockets of its durable rooms (they go on
# elsewhere: their players reconnect there) and ends the others as on SIGTERM (1001, onDispose);
# it is gone within two seconds. Whatever holds it up, it is killed after this long.
DRAIN_EXIT_SECONDS = 4.0


def _drain_stop(container: Container) -> None:
    """Stop a container whose durable rooms move to another server (see DRAIN_EXIT_SECONDS)."""
    try:
        container.kill(signal="SIGUSR2")
        container.wait(timeout=DRAIN_EXIT_SECONDS)
    except requests.exceptions.RequestException:  # no exit in time
        with contextlib.suppress(docker.errors.APIError):
            container.kill()
    except docker.errors.APIError as exc:
        if exc.status_code != 409:  # 409: it was not running any more
            raise


def container_port(container: Container) -> int | None:
    bindings = (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).get(f"{CONTAINER_PORT}/tcp")
    if not bindings:
        return None
    return int(bindings[0]["HostPort"])



def host_guard_rules(bridge: str) -> list[list[str]]:
    """iptables rules of a game network: no new connection to the host (INPUT), none through it
    to anywhere else (DOCKER-USER, which Docker consults first for forwarded traffic)."""
    new = ["-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment"]
    return [["INPUT", "-i", bridge, *new, "gsf: game containers may not open connections to the host",
             "-j", "REJECT"],
            ["DOCKER-USER", "-i", bridge, *new, "gsf: game containers may not open connections out",
             "-j", "DROP"]]


def hand_over_stdin(container: Container, data: bytes) -> None:
    """Start a created container with `data` as the whole of its stdin: attached before the start,
    so the process finds it at once, then closed, so it reads to the end."""
    sock = container.attach_socket(params={"stdin": 1, "stream": 1})
    raw = getattr(sock, "_sock", sock)  # docker-py returns a SocketIO around the socket
    try:
        container.start()
        raw.sendall(data)
        raw.shutdown(socket.SHUT_WR)
    finally:
        sock.close()
        if raw is not sock:
            raw.close()  # closing the SocketIO wrapper leaves its socket open


F = TypeVar("F", bound=Callable[..., Any])


def docker_reason(exc: docker.errors.APIError) -> str:
    """The engine's refusal in its own words: `str(exc)` starts with the engine's internal URL
    (`http+docker://localhost/v1.41/containers/<id>/start`), which a server's `error` must not show."""
    said = exc.explanation or (exc.response.reason if exc.response is not None else "")
    explanation = re.sub(r"[a-z][a-z0-9+.-]*://\S+", "<url>", str(said or ""))
    return f"Docker refused it ({exc.status_code or 'no status'}): {explanation or 'no reason given'}"[:500]


def docker_refusals(fn: F) -> F:
    """An activity whose Docker errors fail it with `docker_reason` (type `DockerRefused`): a
    400 (a request the engine will never take) at once, others through the retry policy."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except docker.errors.APIError as exc:
            raise ApplicationError(docker_reason(exc), type="DockerRefused",
                                   non_retryable=exc.status_code == 400) from None

    return wrapper  # type: ignore[return-value]


def _last_lines(lines: list[str], count: int, max_chars: int) -> list[str]:
    """The last `count` whole lines that fit in `max_chars`."""
    kept: list[str] = []
    size = 0
    for line in reversed(lines[-count:]):
        size += len(line) + 1
        if kept and size > max_chars:
            break
        kept.append(line)
    return kept[::-1]


def bridge_interface(network_attrs: dict[str, Any]) -> str:
    """The host-side interface of a Docker bridge network."""
    options = network_attrs.get("Options") or {}
    return str(options.get("com.docker.network.bridge.name") or f"br-{network_attrs['Id'][:12]}")

class ContainerActivities:
    """Activities on queue `gsf-node-<node_id>`; `fetch_source` gets an upload's bytes by sha256."""

    def __init__(self, client: docker.DockerClient, settings: Settings, node_id: str,
                 fetch_source: Callable[[str], bytes]) -> None:
        self.client = client
        self.settings = settings
        self.node_id = node_id
        self.fetch_source = fetch_source
        # Containers this agent stopped on purpose: their `die` events are not crashes.
        self.expected_stops: set[str] = set()
        self._lock = threading.Lock()
        self._guarded: set[str] = set()  # game networks whose host firewall rule is in place
        # Called with (server_id, container_id) when a container ends before it was ready, before the
        # failure is raised (and the container removed): the agent ships its output as the server's logs.
        self.on_ended: Callable[[str, str], None] | None = None
        # Game projects (issue #24): dependency layers and bundles under the data dir, cached by
        # lockfile and project hash; one project image build at a time, so none is made twice.
        self.projects = settings_builder(settings)
        self._project_lock = threading.Lock()
        self.deps_images_built = 0
        self.project_images_built = 0

    def check_runtime(self) -> None:
        """Fail early and clearly when the configured OCI runtime is not registered with Docker."""
        runtime = self.settings.container_runtime
        known = sorted((self.client.info().get("Runtimes") or {}).keys())
        if runtime not in known:
            raise StartupError(
                f"GSF_CONTAINER_RUNTIME={runtime!r} is not registered with this Docker engine "
                f"(it has {', '.join(known) or 'none'}). For gVisor: install runsc and add it to the "
                "engine's daemon.json `runtimes` (see docs/sandbox.md), or unset the setting for runc.")

    # --- helpers ------------------------------------------------------------

    def _heartbeating(self, fn: Callable[[], T], every: float = 2.0) -> T:
        """Run a long blocking call in a thread while this activity heartbeats."""
        result: list[T] = []
        error: list[BaseException] = []

        def target() -> None:
            try:
                result.append(fn())
            except BaseException as exc:  # noqa: BLE001 - re-raised in the activity thread
                error.append(exc)

        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        while thread.is_alive():
            activity.heartbeat()
            thread.join(every)
        if error:
            raise error[0]
        return result[0]

    def ensure_network(self, name: str | None = None) -> str:
        name = name or self.settings.game_network
        try:
            network = self.client.networks.get(name)
        except docker.errors.NotFound:
            # Docker lets two creates of one name both succeed: servers starting at once on a fresh
            # node (a fleet's) would each make one, and every later lookup by name would fail.
            with self._lock:
                try:
                    network = self.client.networks.get(name)
                except docker.errors.NotFound:
                    network = self._create_network(name)
            if self.settings.host_firewall:
                self.prune_stale_guards()
        if self.settings.host_firewall:
            self._guard_host(network.id, bridge_interface(network.attrs))
        return name

    def _create_network(self, name: str) -> Any:
        try:
            return self.client.networks.create(
                name, driver="bridge", labels={"gsf.kind": "game-network"}, options={
                    # No traffic between game servers, no masquerade to the outside world.
                    "com.docker.network.bridge.enable_icc": "false",
                    "com.docker.network.bridge.enable_ip_masquerade": "false",
                })
        except docker.errors.APIError as exc:
            if exc.status_code != 409:
                raise
            return self.client.networks.get(name)

    def _guard_host(self, network_id: str, bridge: str) -> None:
        """Firewall a game network: refuse connections its containers open to the host (its
        services bound to 0.0.0.0 or to the bridge address), and drop those they open to anywhere
        else, so no packet of a game leaves the node. Replies to connections opened from outside
        (players through published ports, the agent's status polls) are not new and pass."""
        if network_id in self._guarded:
            return
        try:
            for rule in host_guard_rules(bridge):
                if subprocess.run(["iptables", "-C", *rule], check=False, capture_output=True).returncode != 0:
                    subprocess.run(["iptables", "-I", *rule], capture_output=True, check=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            if isinstance(exc, subprocess.CalledProcessError):
                detail = exc.stderr.decode(errors="replace").strip()
            else:
                detail = str(exc)
            raise ApplicationError(
                f"cannot install the firewall rules of {bridge} ({detail}); the agent needs root and "
                "iptables, or GSF_HOST_FIREWALL=false where another firewall does this", non_retryable=True) from None
        self._guarded.add(network_id)

    @staticmethod
    def prune_stale_guards() -> int:
        """Remove the firewall rules of game networks whose bridge no longer exists (a network
        removed by hand or by a test); returns how many went."""
        removed = 0
        for chain in ("INPUT", "DOCKER-USER"):
            try:
                out = subprocess.run(["iptables", "-S", chain], check=False, capture_output=True, text=True).stdout
            except OSError:
                return removed
            for line in out.splitlines():
                parts = shlex.split(line)
                if "gsf: game containers" not in line or "-i" not in parts or parts[:1] != ["-A"]:
                    continue
                bridge = parts[parts.index("-i") + 1]
                if os.path.exists(f"/sys/class/net/{bridge}"):
                    continue
                if subprocess.run(["iptables", "-D", *parts[1:]], check=False, capture_output=True).returncode == 0:
                    removed += 1
        return removed

    def _unguard_host(self, network_id: str, bridge: str) -> None:
        with contextlib.suppress(OSError):
            for rule in host_guard_rules(bridge):
                for _ in range(10):  # every copy, should several agents have added one
                    if subprocess.run(["iptables", "-D", *rule], check=False, capture_output=True).returncode:
                        break
        self._guarded.discard(network_id)

    # --- activities ----------------------------------------------------------

    @activity.defn(name="ensure_image")
    @docker_refusals
    def ensure_image(self, input: EnsureImageInput) -> EnsureImageResult:
        """Build the game image from runtime + source unless an image of that content already exists."""
        started = time.perf_counter()
        tag = images.game_image_tag(input.source_sha256)
        try:
            self.client.images.get(tag)
            return EnsureImageResult(image=tag, built=False, duration_ms=(time.perf_counter() - started) * 1000)
        except docker.errors.ImageNotFound:
            pass
        source = self.fetch_source(input.source_sha256)
        if is_archive(source):
            return self._ensure_project_image(input, source, started)

        def build() -> tuple[str, bool]:
            images.ensure_base_image(self.client, self.settings)
            images.ensure_runtime_image(self.client, self.settings)
            return images.ensure_game_image(self.client, self.settings, source, input.source_sha256,
                                            input.module_kind)

        try:
            tag, built = self._heartbeating(build)
        except docker.errors.BuildError as exc:
            raise ApplicationError(f"image build failed: {exc.msg}", type="BuildFailed",
                                   non_retryable=True) from None
        return EnsureImageResult(image=tag, built=built, duration_ms=(time.perf_counter() - started) * 1000)

    def _ensure_project_image(self, input: EnsureImageInput, archive: bytes, started: float) -> EnsureImageResult:
        """A project's image (gameserver/image.py `ensure_project_image`): a project that does not
        build, or whose dependencies npm cannot install, fails the step for good with the reason."""

        def build() -> images.ProjectImage:
            with self._project_lock:
                images.ensure_base_image(self.client, self.settings)
                made = images.ensure_project_image(self.client, self.settings, archive, input.source_sha256,
                                                   self.projects)
                self.deps_images_built += made.deps_built
                self.project_images_built += made.built
                return made

        try:
            made = self._heartbeating(build)
        except (images.ImageError, BuildError, GsfError) as exc:
            detail = f"{exc}: {exc.output.strip()[-800:]}" if isinstance(exc, BuildError) and exc.output else str(exc)
            raise ApplicationError(f"image build failed: {detail}", type="BuildFailed", non_retryable=True) from None
        except docker.errors.BuildError as exc:
            raise ApplicationError(f"image build failed: {exc.msg}", type="BuildFailed",
                                   non_retryable=True) from None
        return EnsureImageResult(image=made.tag, built=made.built,
                                 duration_ms=(time.perf_counter() - started) * 1000)

    @activity.defn(name="start_container")
    @docker_refusals
    def start_container(self, input: StartContainerInput) -> StartContainerResult:
        """Start the hardened container; a retry after a crash adopts the container it already started."""
        name = container_name(input.server_id)
        try:
            existing = self.client.containers.get(name)
        except docker.errors.NotFound:
            existing = None
        secret = self.settings.secret_key
        secrets = json.dumps({"seat_secret": security.seat_secret(secret, input.server_id),
                              "agent_key": security.agent_key(secret, input.server_id)}).encode()
        spec = self._spec(input)
        if existing is not None:
            port = container_port(existing)
            if existing.status == "running" and existing.image.tags[:1] == [input.image] and port:
                return self._result(existing.id, port)
            restarted = self._restart(existing, spec, secrets)
            if restarted is not None:
                return restarted
            with self._lock:
                self.expected_stops.add(existing.id)
            existing.remove(force=True)

        network = self.ensure_network()
        limits = input.limits
        labels = {
            "gsf.kind": "gameserver",
            "gsf.server_id": input.server_id,
            "gsf.node_id": self.node_id,
            "gsf.owner_id": input.owner_id,
            "gsf.name": input.name,
            "gsf.game": input.game,
            "gsf.max_players": str(input.max_players),
            "gsf.max_rooms": str(max(input.max_rooms, 1)),  # the relay's value until the runtime reports its own
            "gsf.labels": json.dumps(input.labels, sort_keys=True),
            "gsf.spec": spec,
        }
        container = self.client.containers.create(
            input.image,
            name=name,
            environment={
                "PORT": str(CONTAINER_PORT),
                "GSF_SERVER_ID": input.server_id,
                "GSF_MAX_PLAYERS": str(input.max_players),
                # Always set: 1 keeps a game that never asked for rooms in one room per container,
                # whatever its module exports (the deployment already chose from that export).
                "GSF_MAX_ROOMS": str(max(input.max_rooms, 1)),
                # The secrets travel over stdin (below), never in the environment, which any
                # process of the container can read back from /proc/<pid>/environ.
                "GSF_SECRETS_STDIN": "1",
                # Failures on stdout too: one pipe keeps the lines in order (Docker reads two apart).
                "GSF_LOG_STREAM": "stdout",
                # Per-connection frame limit (gameserver/runtime/server.js reads the same names).
                "GSF_SERVER_MESSAGE_RATE": str(self.settings.server_message_rate),
                "GSF_SERVER_MESSAGE_BURST": str(self.settings.server_message_burst),
                "GSF_SERVER_MESSAGE_DROP_LIMIT": str(self.settings.server_message_drop_limit),
                "GSF_SERVER_MESSAGE_DROP_WINDOW_MS": str(self.settings.server_message_drop_window_ms),
            },
            stdin_open=True,
            labels=labels,
            network=network,
            ports={f"{CONTAINER_PORT}/tcp": (self.settings.publish_host, None)},
            user="1000:1000",
            read_only=True,
            tmpfs={"/tmp": f"rw,noexec,nosuid,nodev,size={limits.tmpfs_mb}m"},
            cap_drop=["ALL"],
            security_opt=["no-new-privileges:true"],
            privileged=False,
            cgroupns="private",  # its own cgroup tree as /, not the host's paths (default on cgroup v1: host)
            # Under gVisor the container's host pids are gVisor's own threads (about 65 at rest);
            # the game's processes are tasks of its user-space kernel, held by the memory limit.
            pids_limit=limits.pids + (self.settings.runsc_pids_overhead
                                      if self.settings.container_runtime == "runsc" else 0),
            mem_limit=f"{limits.memory_mb}m",
            memswap_limit=f"{limits.memory_mb}m",
            nano_cpus=int(limits.cpus * 1e9),
            ulimits=[Ulimit(name="nofile", soft=self.settings.server_nofile, hard=self.settings.server_nofile)],
            init=True,
            runtime=self.settings.container_runtime,
            log_config={"type": "json-file", "config": {
                "max-size": self.settings.server_log_max_size,
                "max-file": str(self.settings.server_log_max_files)}},
        )
        try:
            hand_over_stdin(container, secrets)
        except (docker.errors.APIError, OSError):
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)
            raise
        port = self._publish(container)
        if not port:
            raise ApplicationError(f"container {container.short_id} has no published port",
                                   type="ContainerExited", non_retryable=True)
        return self._result(container.id, port)

    def _spec(self, input: StartContainerInput) -> str:
        """What the container was created from: the same spec, the same container (a restart reuses it)."""
        made = {**input.model_dump(mode="json"), "network": self.settings.game_network,
                "runtime": self.settings.container_runtime, "publish_host": self.settings.publish_host}
        return hashlib.sha256(json.dumps(made, sort_keys=True).encode()).hexdigest()[:32]

    def _publish(self, container: Container) -> int | None:
        port = None
        for _ in range(100):
            container.reload()
            port = container_port(container)
            if port or container.status not in ("created", "running"):
                break
            time.sleep(0.01)
        return port

    def _restart(self, container: Container, spec: str, secrets: bytes) -> StartContainerResult | None:
        """A crash restart starts the dead container again (its secrets over stdin again, a port
        published anew), which saves removing it and creating another: ≈ 0.3 s of a restart. None
        when it cannot (another spec, or the engine refuses): the caller creates a new one."""
        if container.status not in ("exited", "created") or container.labels.get("gsf.spec") != spec:
            return None
        try:
            hand_over_stdin(container, secrets)
        except (docker.errors.APIError, OSError):
            return None
        port = self._publish(container)
        return self._result(container.id, port) if port else None

    def _result(self, container_id: str, port: int) -> StartContainerResult:
        host = self.settings.public_host
        return StartContainerResult(container_id=container_id, host=host, port=port,
                                    ws_url=f"ws://{host}:{port}/ws")

    @activity.defn(name="wait_ready")
    @docker_refusals
    def wait_ready(self, input: WaitReadyInput) -> WaitReadyResult:
        """Probe the runtime's /health until it answers 200; a container that exits fails at once."""
        started = time.perf_counter()
        url = f"http://{self.settings.publish_host}:{input.port}/health"
        deadline = started + input.timeout_seconds
        last_beat = 0.0
        while time.perf_counter() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=1.0) as resp:
                    if resp.status == 200:
                        return WaitReadyResult(ready_ms=(time.perf_counter() - started) * 1000)
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            now = time.perf_counter()
            if now - last_beat > 1.0:
                activity.heartbeat()
                last_beat = now
                state = self._state(input.container_id)
                if state is not None and state.get("Status") in ("exited", "dead"):
                    raise self._not_ready(input, f"game server exited with code {state.get('ExitCode')} "
                                          "before it was ready", "ContainerExited", state.get("ExitCode"))
            # A refused connection on loopback costs microseconds: poll tightly, readiness is the critical path.
            time.sleep(0.01)
        raise self._not_ready(input, f"game server not ready after {input.timeout_seconds:.0f} s",
                              "ReadyTimeout", None)

    def _not_ready(self, input: WaitReadyInput, what: str, kind: str, exit_code: int | None) -> ApplicationError:
        """The failure of a server that never got ready: its last output as lines, in order, in the
        message and (as `log_tail`) in the details; the whole output goes to the server's logs."""
        if self.on_ended is not None:
            self.on_ended(input.server_id, input.container_id)
        output = self._output(input.container_id, 50)
        return ApplicationError(what + "".join(f"\n{line}" for line in _last_lines(output, 20, 2000)),
                                {"exit_code": exit_code, "log_tail": output}, type=kind, non_retryable=True)

    def _state(self, container_id: str) -> dict[str, Any] | None:
        try:
            return dict(self.client.api.inspect_container(container_id)["State"])
        except docker.errors.NotFound:
            return {"Status": "dead", "ExitCode": None}

    def _output(self, container_id: str, lines: int) -> list[str]:
        """The container's last output lines (stdout and stderr), in the order they were written:
        Docker reads the two streams apart, so its file can hold them out of order; its timestamps
        put them back."""
        try:
            out = self.client.api.logs(container_id, tail=lines, timestamps=True).decode(errors="replace")
        except docker.errors.APIError:
            return []
        stamped = [line.partition(" ") for line in out.splitlines()]
        return [text[:500] for _, _, text in sorted(stamped, key=lambda part: part[0]) if text.strip()]

    def _tail(self, container_id: str, lines: int = 5) -> str:
        """The last lines, one per line (no separator that would read as part of them)."""
        return "\n".join(_last_lines(self._output(container_id, lines), lines, 800))

    @activity.defn(name="stop_container")
    @docker_refusals
    def stop_container(self, input: StopContainerInput) -> StopContainerResult:
        """Stop (and with `remove`, remove) the server's container; idempotent."""
        stopped = removed = False
        try:
            container = self.client.containers.get(container_name(input.server_id))
        except docker.errors.NotFound:
            container = None
        if container is not None:
            with self._lock:
                self.expected_stops.add(container.id)
            if container.status == "running":
                activity.heartbeat()
                if input.drain:
                    _drain_stop(container)
                else:
                    container.stop(timeout=3)
                stopped = True
            if input.remove:
                container.remove(force=True, v=True)  # with any anonymous volume
                removed = True
        if input.remove_image:
            try:
                self.client.images.remove(input.remove_image, noprune=False)
            except docker.errors.ImageNotFound:
                pass
            except docker.errors.APIError as exc:
                if exc.status_code != 409:  # still used by another server: keep it
                    raise
        if input.remove_network:
            self._remove_network_if_unused()
        return StopContainerResult(stopped=stopped, removed=removed)

    def _remove_network_if_unused(self) -> None:
        """The game network goes with its last server; the next start creates it again."""
        try:
            network = self.client.networks.get(self.settings.game_network)
            network.reload()
            if not network.attrs.get("Containers"):
                network.remove()
                if self.settings.host_firewall:
                    self._unguard_host(network.id, bridge_interface(network.attrs))
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if exc.status_code not in (403, 409):  # in use by a server that just started: keep it
                raise
