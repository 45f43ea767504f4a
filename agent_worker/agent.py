"""The node agent: a Temporal worker on `gsf-node-<node_id>` plus the node's housekeeping loops.

- registers the node and heartbeats its metrics to the API;
- relays each game server's status (players, metadata) to the matchmaker;
- watches Docker events and reports containers that die unexpectedly to their workflow;
- ships container logs to the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import queue
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import docker
import docker.errors
import httpx
from docker.models.containers import Container
from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Worker

from activities.containers import ContainerActivities, container_port
from activities.matchmaking import MatchmakingActivities
from activities.steps import StepActivities
from agent_worker.credentials import NodeCredential
from agent_worker.fingerprint import MetricsSampler, hardware, network
from agent_worker.metrics import AgentMetrics
from core import security
from core.artifacts import LocalArtifactStore
from core.contracts import CrashReport, PlayersReport
from core.queues import gameserver_workflow_id, node_queue
from core.settings import Settings
from core.temporal import connect

log = logging.getLogger("gsf.agent")
MAX_CONCURRENT_ACTIVITIES = 16



SOURCE_FETCH_PATIENCE_SECONDS = 60.0

def _parse_docker_time(value: str) -> datetime | None:
    """Docker's RFC 3339 times carry nanoseconds, which `fromisoformat` does not take."""
    if not value or value.startswith("0001-"):
        return None
    head, _, frac = value.rstrip("Z").partition(".")
    try:
        return datetime.fromisoformat(head + (f".{frac[:6]}" if frac else "")).replace(tzinfo=UTC)
    except ValueError:
        return None

class Agent:
    def __init__(self, settings: Settings, node_id: str, client: Client | None = None) -> None:
        self.settings = settings
        self.node_id = node_id
        self.client = client
        self.credential = NodeCredential(settings, node_id)
        self.headers = self.credential.headers  # one dict, renewed in place (agent_worker/credentials.py)
        self.docker = docker.from_env()
        self.artifacts = LocalArtifactStore(settings.artifact_dir)
        self.containers = ContainerActivities(self.docker, settings, node_id, self._fetch_source)
        self.containers.on_ended = self._ship_ended
        self.log_queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=100_000)
        self.log_threads: dict[str, threading.Thread] = {}
        self._log_lock = threading.Lock()
        self.stopping = threading.Event()
        self._cpu_prev: dict[str, tuple[int, int]] = {}
        self._players: dict[str, int] = {}
        self.instances: list[dict[str, Any]] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self.mm: httpx.AsyncClient | None = None  # the matchmaker, while `run` runs

    # --- sources ------------------------------------------------------------------

    def _fetch_source(self, sha: str) -> bytes:
        try:
            return self.artifacts.get("sources", sha)
        except KeyError:
            pass
        # Another host: ask the API for the bytes, then keep them locally. An API that is restarting
        # (refused connections, 5xx) is waited for up to a minute, heartbeating, rather than failing
        # the build on the step's short retry schedule.
        deadline = time.monotonic() + SOURCE_FETCH_PATIENCE_SECONDS
        while True:
            try:
                resp = httpx.get(f"{self.settings.public_api_url}/api/v1/agent/sources/{sha}",
                                 headers=self.headers, timeout=30)
                if resp.status_code < 500:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
            else:
                if time.monotonic() > deadline:
                    break
            if activity.in_activity():
                activity.heartbeat()
            time.sleep(0.5)
        resp.raise_for_status()
        if hashlib.sha256(resp.content).hexdigest() != sha:
            raise ValueError(f"source {sha} arrived corrupted")
        self.artifacts.put("sources", resp.content)
        return resp.content

    # --- main ----------------------------------------------------------------------

    async def run(self) -> None:
        self.loop = asyncio.get_running_loop()
        await asyncio.to_thread(self.containers.check_runtime)
        # Metrics (issue #7): counted by the matchmaker client's transport and the worker's interceptor.
        self.metrics = AgentMetrics(self.node_id, lambda: len(self._our_containers()))
        if self.client is None:
            self.client = await connect(self.settings)
        async with httpx.AsyncClient(base_url=self.settings.matchmaker_url, timeout=10,
                                     transport=self.metrics.relay_transport()) as mm_http, \
                httpx.AsyncClient(base_url=self.settings.public_api_url, timeout=10) as api_http:
            await self.credential.obtain(api_http)
            self.mm = mm_http
            matchmaking = MatchmakingActivities(mm_http, self.headers, status=self._status_of)
            steps = StepActivities(self.docker, self.settings, self.containers)
            with ThreadPoolExecutor(max_workers=MAX_CONCURRENT_ACTIVITIES + 4,
                                    thread_name_prefix="gsf-activity") as executor:
                worker = Worker(
                    self.client,
                    task_queue=node_queue(self.node_id),
                    activities=[
                        self.containers.ensure_image,
                        self.containers.start_container,
                        self.containers.wait_ready,
                        self.containers.stop_container,
                        matchmaking.register_with_matchmaker,
                        matchmaking.deregister_from_matchmaker,
                        steps.noop,
                        steps.sleep,
                        steps.pull_image,
                        steps.prepare_network,
                        steps.write_config,
                        steps.exec_in_container,
                    ],
                    activity_executor=executor,
                    max_concurrent_activities=MAX_CONCURRENT_ACTIVITIES,
                    identity=f"agent@{self.node_id}",
                    graceful_shutdown_timeout=timedelta(seconds=5),
                    interceptors=[self.metrics.interceptor],
                )
                events = threading.Thread(target=self._watch_events, name="gsf-events", daemon=True)
                events.start()
                tasks = [
                    asyncio.create_task(self._heartbeat_loop(api_http), name="heartbeat"),
                    asyncio.create_task(self._relay_loop(mm_http, api_http), name="relay"),
                    asyncio.create_task(self._ship_logs_loop(api_http), name="logs"),
                    asyncio.create_task(self.metrics.serve(self.settings), name="metrics"),
                ]
                log.info("agent %s polling %s", self.node_id, node_queue(self.node_id))
                tasks.append(asyncio.create_task(self._reconcile_at_start(api_http), name="reconcile"))
                try:
                    await self._report_dead_containers()
                    await worker.run()
                finally:
                    self.stopping.set()
                    for task in tasks:
                        task.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)
                    with contextlib.suppress(Exception):
                        await self._flush_logs(api_http)

    def _our_containers(self, all: bool = False) -> list[Container]:
        return list(self.docker.containers.list(all=all, filters={
            "label": ["gsf.kind=gameserver", f"gsf.node_id={self.node_id}"]}))

    # --- node heartbeat -----------------------------------------------------------------

    async def _heartbeat_loop(self, api: httpx.AsyncClient) -> None:
        sampler = MetricsSampler(str(self.settings.data_dir))
        try:
            docker_version = str(self.docker.version().get("Version", ""))
        except docker.errors.APIError:
            docker_version = ""
        body: dict[str, Any] = {
            "name": self.settings.node_name if self.settings.node_id == self.node_id else self.node_id,
            "hardware": hardware(docker_version),
            # The address its game servers are reached at: the host of every ws_url it registers.
            "network": {**network(), "public_host": self.settings.public_host},
            "labels": self.settings.node_labels, "heartbeat_seconds": self.settings.agent_heartbeat_seconds,
        }
        body["resources"] = {
            "cpus": body["hardware"]["cpu_threads"],
            "memory_mb": body["hardware"]["memory_bytes"] // (1024 * 1024),
            "max_servers": 0,
        }
        registered = refused = False
        while True:
            try:
                instances = len(await asyncio.to_thread(self._our_containers))
                body["metrics"] = sampler.sample(instances)
                body["metrics"]["instances"] = self.instances  # each server's CPU, memory, pids, network
                body["metrics"]["servers_total"] = {  # node-level totals of its game servers
                    key: round(sum(float(i.get(key) or 0) for i in self.instances), 2)
                    for key in ("cpu_percent", "memory_bytes", "pids", "net_rx_bytes", "net_tx_bytes")}
                resp = await api.put("/api/v1/agent/heartbeat", json=body, headers=self.headers)
                if resp.status_code == 401:
                    if await self.credential.renew(api):
                        continue  # rotated: the token an operator put in the file, or a new enrollment
                    refused = True  # revoked, or the node deleted: retry at the heartbeat pace, re-create nothing
                resp.raise_for_status()
                registered, refused = True, False
            except (httpx.HTTPError, docker.errors.APIError) as exc:
                # Until the first heartbeat lands, retry quickly: the API may still be starting.
                if registered and not refused:
                    log.warning("node heartbeat failed: %s", exc)
            await asyncio.sleep(self.settings.agent_heartbeat_seconds if registered or refused else 0.2)

    # --- matchmaker relay ----------------------------------------------------------------

    async def _relay_loop(self, mm: httpx.AsyncClient, api: httpx.AsyncClient) -> None:
        """Every heartbeat interval: relay the rooms' status to the matchmaker. Resource samples
        (slow `docker stats` calls under load) run beside it, one round at a time, so they never
        delay a heartbeat past the room's TTL."""
        interval = self.settings.agent_heartbeat_seconds
        stats: asyncio.Task[None] | None = None
        async with httpx.AsyncClient(timeout=2) as probe:
            try:
                while True:
                    began = time.monotonic()
                    try:
                        containers = await asyncio.to_thread(self._our_containers)
                        await self._relay(containers, probe, mm)
                        for c in containers:
                            self._follow_logs(c)
                        if stats is None or stats.done():
                            stats = asyncio.create_task(self._ship_stats(containers, api), name="stats")
                    except (docker.errors.APIError, httpx.HTTPError) as exc:
                        log.warning("relay failed: %s", exc)
                    await asyncio.sleep(max(0.1, interval - (time.monotonic() - began)))
            finally:
                if stats is not None:
                    stats.cancel()

    async def _ship_stats(self, containers: list[Container], api: httpx.AsyncClient) -> None:
        try:
            samples = [s for s in await asyncio.gather(
                *(asyncio.to_thread(self._sample, c) for c in containers)) if s]
            self.instances = samples
            if samples:
                await api.post("/api/v1/agent/stats", json={"samples": samples}, headers=self.headers)
        except (docker.errors.APIError, httpx.HTTPError) as exc:
            log.warning("stats not shipped: %s", exc)

    def _sample(self, c: Container) -> dict[str, Any] | None:
        """CPU % since the previous sample (of one core = 100) and memory without page cache."""
        try:
            raw = self.docker.api.stats(c.id, stream=False, one_shot=True)
        except docker.errors.APIError:
            return None
        cpu = raw.get("cpu_stats") or {}
        total = int((cpu.get("cpu_usage") or {}).get("total_usage") or 0)
        system = int(cpu.get("system_cpu_usage") or 0)
        online = int(cpu.get("online_cpus") or 1)
        previous = self._cpu_prev.get(c.id)
        self._cpu_prev[c.id] = (total, system)
        percent = 0.0
        if previous and system > previous[1]:
            percent = (total - previous[0]) / (system - previous[1]) * online * 100
        mem = raw.get("memory_stats") or {}
        # As `docker stats` counts it: usage minus inactive page cache. Not minus all of the
        # cache, which on cgroup v1 includes the tmpfs that the memory limit does count.
        stats = mem.get("stats") or {}
        cache = int(stats.get("total_inactive_file") or stats.get("inactive_file") or 0)
        nets = (raw.get("networks") or {}).values()
        started = _parse_docker_time(c.attrs.get("State", {}).get("StartedAt", ""))
        now = datetime.now(UTC)
        return {"server_id": c.labels.get("gsf.server_id", ""), "ts": now.isoformat(),
                "cpu_percent": round(max(percent, 0.0), 2), "memory_bytes": max(int(mem.get("usage") or 0) - cache, 0),
                "pids": int((raw.get("pids_stats") or {}).get("current") or 0),
                "net_rx_bytes": sum(int(n.get("rx_bytes") or 0) for n in nets),
                "net_tx_bytes": sum(int(n.get("tx_bytes") or 0) for n in nets),
                "uptime_seconds": round((now - started).total_seconds(), 1) if started else 0.0}

    async def _relay(self, containers: list[Container], probe: httpx.AsyncClient,
                     mm: httpx.AsyncClient) -> None:
        """Poll every game container's status, then relay them all in one batch heartbeat."""
        polled = await asyncio.gather(*(self._poll(c, probe) for c in containers))
        beats = {beat["server_id"]: (c, beat) for c, beat in zip(containers, polled, strict=True)
                 if beat is not None}
        if not beats:
            return
        resp = await mm.post("/heartbeats", json={"heartbeats": [b for _, b in beats.values()]},
                             headers=self.headers)
        if resp.status_code in (413, 422):
            # One status the matchmaker refuses (a game's oversized metadata, say), or a batch too
            # large as a whole, must not silence the node's other rooms: this round, each goes on its own.
            log.warning("matchmaker refused the heartbeat batch: %s %s", resp.status_code, resp.text[:300])
            for c, beat in beats.values():
                one = await mm.put(f"/servers/{beat['server_id']}/heartbeat", headers=self.headers,
                                   json={k: v for k, v in beat.items() if k != "server_id"})
                if one.status_code == 404 and beat["ready"] and c.id not in self.containers.expected_stops:
                    await self._reregister(c, beat, mm)
            return
        if resp.status_code != 200:
            log.warning("matchmaker heartbeats: %s %s", resp.status_code, resp.text[:200])
            return
        for result in resp.json().get("results", []):
            c, beat = beats[result["server_id"]]
            if result["status"] == 404 and beat["ready"] and c.id not in self.containers.expected_stops:
                await self._reregister(c, beat, mm)
            elif result["status"] != 200:
                log.warning("matchmaker heartbeat for %s: %s %s", result["server_id"],
                            result["status"], result.get("problem"))

    async def _poll(self, c: Container, probe: httpx.AsyncClient) -> dict[str, Any] | None:
        """A container's heartbeat from its status endpoint, or None if it does not answer."""
        server_id = c.labels.get("gsf.server_id", "")
        port = container_port(c)
        if not server_id or not port or c.id in self.containers.expected_stops:
            return None
        key = security.agent_key(self.settings.secret_key, server_id)
        try:
            resp = await probe.get(f"http://{self.settings.publish_host}:{port}/status",
                                   headers={"Authorization": f"Bearer {key}"})
            status = resp.json() if resp.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            status = None
        if not isinstance(status, dict):
            return None
        players = int(status.get("players", 0))
        if self._players.get(server_id) != players:
            self._players[server_id] = players
            await self._signal(server_id, "report_players", PlayersReport(players=players))
        return {"server_id": server_id, "players": players,
                "max_players": int(status.get("max_players", 0)),
                "player_ids": list(status.get("player_ids") or []),
                "metadata": status.get("metadata") or {}, "locked": bool(status.get("locked", False)),
                # Not ready while the game loads (onCreate): the room is not listed before then.
                "ready": bool(status.get("ready", True)),
                # The game process: another one (a restart) releases the seats held for the last.
                "instance": str(status["instance"])[:64] if status.get("instance") else None}

    async def _status_of(self, server_id: str, ws_url: str) -> dict[str, Any] | None:
        """A game's /status, found through the port of its ws_url (published on this node)."""
        port = urllib.parse.urlsplit(ws_url).port
        if not port:
            return None
        key = security.agent_key(self.settings.secret_key, server_id)
        try:
            async with httpx.AsyncClient(timeout=2) as probe:
                resp = await probe.get(f"http://{self.settings.publish_host}:{port}/status",
                                       headers={"Authorization": f"Bearer {key}"})
            status = resp.json() if resp.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None
        return status if isinstance(status, dict) else None

    async def _reregister(self, c: Container, beat: dict[str, Any], mm: httpx.AsyncClient) -> None:
        """The matchmaker restarted (in-process store) or expired the room: register it again."""
        server_id, port = beat["server_id"], container_port(c)
        registration = {
            "server_id": server_id, "name": c.labels.get("gsf.name", server_id),
            "game": c.labels.get("gsf.game", ""), "owner_id": c.labels.get("gsf.owner_id", ""),
            "node_id": self.node_id, "ws_url": f"ws://{self.settings.public_host}:{port}/ws",
            "max_players": int(c.labels.get("gsf.max_players") or beat["max_players"] or 0),
            "labels": json.loads(c.labels.get("gsf.labels", "{}")),
        }
        resp = await mm.post("/servers", json=registration, headers=self.headers)
        if resp.status_code not in (200, 201):
            log.warning("re-registering %s: %s %s", server_id, resp.status_code, resp.text[:200])
            return
        single = {k: v for k, v in beat.items() if k != "server_id"}
        single["generation"] = resp.json().get("generation")
        resp = await mm.put(f"/servers/{server_id}/heartbeat", json=single, headers=self.headers)
        if resp.status_code == 200:
            log.info("re-registered %s with the matchmaker", server_id)

    # --- crash reports ----------------------------------------------------------------------

    def _watch_events(self) -> None:
        while not self.stopping.is_set():
            try:
                stream = self.docker.events(decode=True, filters={
                    "type": "container", "event": "die", "label": [f"gsf.node_id={self.node_id}"]})
                for event in stream:
                    if self.stopping.is_set():
                        break
                    self._on_die(event)
            except (docker.errors.APIError, OSError, ValueError) as exc:
                log.warning("docker event stream broke (%s); reconnecting", exc)
                self.stopping.wait(1.0)

    def _on_die(self, event: dict[str, Any]) -> None:
        cid = event.get("id", "")
        attrs = event.get("Actor", {}).get("Attributes", {})
        server_id = attrs.get("gsf.server_id")
        if not server_id or cid in self.containers.expected_stops:
            self.containers.expected_stops.discard(cid)
            return
        exit_code = int(attrs["exitCode"]) if str(attrs.get("exitCode", "")).isdigit() else None
        # Before the workflow hears of it (and removes the container for a restart): its output,
        # also when it died before the relay began to follow it.
        self._ship_ended(server_id, cid)
        try:
            oom = bool(self.docker.api.inspect_container(cid)["State"].get("OOMKilled"))
        except docker.errors.APIError:
            oom = False
        report = CrashReport(container_id=cid, exit_code=exit_code, reason=self.containers._tail(cid, 3),
                             oom_killed=oom, log_tail=self.containers._output(cid, 20))
        if self.loop is not None:
            asyncio.run_coroutine_threadsafe(self._crashed(server_id, report), self.loop)

    async def _crashed(self, server_id: str, report: CrashReport) -> None:
        await self._unlist(server_id)
        await self._signal_crash(server_id, report)

    async def _unlist(self, server_id: str) -> None:
        """The game process is gone: its room leaves the list (joins of it are refused as not ready)
        and the seats held for it are released, until the restarted one is ready and registered.
        Without this, the room stays listed until that registration, and every seat handed out
        meanwhile meets a refused connection and holds a slot for the seat's lifetime."""
        if self.mm is None:
            return
        try:
            resp = await self.mm.put(f"/servers/{server_id}/heartbeat", headers=self.headers,
                                     json={"players": 0, "ready": False, "instance": ""})
        except httpx.HTTPError as exc:
            log.info("could not unlist %s after its crash: %s", server_id, exc)
            return
        if resp.status_code not in (200, 404):  # 404: not registered (it never got ready)
            log.info("could not unlist %s after its crash: %s %s", server_id, resp.status_code,
                     resp.text[:200])

    async def _signal(self, server_id: str, signal: str, arg: Any) -> None:
        assert self.client is not None
        try:
            await self.client.get_workflow_handle(gameserver_workflow_id(server_id)).signal(signal, arg)
        except RPCError as exc:
            log.info("%s for %s not delivered: %s", signal, server_id, exc)

    async def _signal_crash(self, server_id: str, report: CrashReport) -> None:
        assert self.client is not None
        handle = self.client.get_workflow_handle(gameserver_workflow_id(server_id))
        try:
            await handle.signal("report_crash", report)
            log.warning("server %s: container %s died (exit %s)", server_id, report.container_id[:12],
                        report.exit_code)
        except RPCError as exc:
            log.info("crash of %s not reported: %s", server_id, exc)

    async def _reconcile_at_start(self, api: httpx.AsyncClient) -> None:
        for _ in range(120):  # the API may still be starting
            if await self._remove_orphans(api):
                return
            await asyncio.sleep(0.5)
        log.warning("gave up reconciling containers: the API never answered")

    async def _remove_orphans(self, api: httpx.AsyncClient) -> bool:
        """After a restart: containers of servers the platform no longer expects here are removed;
        the others are adopted as they are (the relay and log shipping pick them up)."""
        containers = await asyncio.to_thread(self._our_containers, True)
        ids = sorted({c.labels["gsf.server_id"] for c in containers if c.labels.get("gsf.server_id")})
        if not ids:
            return True
        try:
            resp = await api.post("/api/v1/agent/reconcile", json={"server_ids": ids}, headers=self.headers)
            resp.raise_for_status()
        except httpx.HTTPError:
            return False
        orphans = set(resp.json()["orphans"])
        for c in containers:
            if c.labels.get("gsf.server_id") in orphans:
                self.containers.expected_stops.add(c.id)
                await asyncio.to_thread(c.remove, force=True)
                log.info("removed orphan container %s of server %s", c.short_id, c.labels["gsf.server_id"])
        return True

    async def _report_dead_containers(self) -> None:
        """After an agent restart: containers that died while nobody watched are reported now."""
        for c in await asyncio.to_thread(self._our_containers, True):
            if c.status in ("exited", "dead") and c.labels.get("gsf.server_id"):
                state = c.attrs.get("State", {})
                await self._crashed(c.labels["gsf.server_id"], CrashReport(
                    container_id=c.id, exit_code=state.get("ExitCode"), reason="found dead at agent start"))

    # --- logs ---------------------------------------------------------------------------------

    def _follow_logs(self, c: Container) -> None:
        self._follow(c.labels.get("gsf.server_id", ""), c.id)

    def _follow(self, server_id: str, cid: str, again: bool = True) -> threading.Thread:
        """The thread that ships this container's output (started unless one runs, or with
        `again=False` has run: an ended container has nothing more to say)."""
        with self._log_lock:
            thread = self.log_threads.get(cid)
            if thread is not None and (thread.is_alive() or not again):
                return thread
            thread = threading.Thread(target=self._tail_logs, args=(cid, server_id), daemon=True,
                                      name=f"gsf-logs-{cid[:12]}")
            self.log_threads[cid] = thread
            thread.start()
            return thread

    def _ship_ended(self, server_id: str, cid: str) -> None:
        """A container that ended (before it was ready, or before the relay saw it run): queue
        all it printed that is not shipped yet, as the server's logs, and wait until it is queued."""
        self._follow(server_id, cid, again=False).join(timeout=3.0)

    def _tail_logs(self, cid: str, server_id: str) -> None:
        since = self._log_cursor(server_id, cid)
        try:
            stream = self.docker.api.logs(cid, stream=True, follow=True, timestamps=True, since=since)
            buffer = b""
            for chunk in stream:
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for raw in lines:
                    self._queue_line(server_id, cid, raw)
                if self.stopping.is_set():
                    break
            if buffer:
                self._queue_line(server_id, cid, buffer)
        except (docker.errors.APIError, OSError) as exc:
            log.debug("log stream of %s ended: %s", cid[:12], exc)

    def _log_cursor(self, server_id: str, cid: str) -> float | None:
        try:
            resp = httpx.get(f"{self.settings.public_api_url}/api/v1/agent/logs/{server_id}/cursor",
                             params={"container_id": cid}, headers=self.headers, timeout=5)
            ts = resp.json().get("ts") if resp.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None
        return datetime.fromisoformat(ts).timestamp() + 1e-6 if ts else None

    def _queue_line(self, server_id: str, cid: str, raw: bytes) -> None:
        text = raw.decode(errors="replace").rstrip("\r")
        ts, _, line = text.partition(" ")
        try:
            when = datetime.fromisoformat(ts.replace("Z", "+00:00")[:26] + "+00:00")
        except ValueError:
            when, line = datetime.now(UTC), text
        with contextlib.suppress(queue.Full):
            self.log_queue.put_nowait({"server_id": server_id, "container_id": cid, "ts": when.isoformat(),
                                       "line": line[:8192]})

    async def _ship_logs_loop(self, api: httpx.AsyncClient) -> None:
        while True:
            await asyncio.sleep(0.3)
            try:
                await self._flush_logs(api)
            except httpx.HTTPError as exc:
                log.warning("log shipping failed: %s", exc)
                await asyncio.sleep(2)

    async def _flush_logs(self, api: httpx.AsyncClient) -> None:
        batch: list[dict[str, Any]] = []
        while len(batch) < 2000:
            try:
                batch.append(self.log_queue.get_nowait())
            except queue.Empty:
                break
        if not batch:
            return
        try:
            resp = await api.post("/api/v1/agent/logs", json={"lines": batch}, headers=self.headers)
            resp.raise_for_status()
        except httpx.HTTPError:
            for item in batch:  # keep them for the next try
                with contextlib.suppress(queue.Full):
                    self.log_queue.put_nowait(item)
            raise
