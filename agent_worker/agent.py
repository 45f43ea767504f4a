"""The node agent: a Temporal worker on `gsf-node-<node_id>` plus the node's housekeeping loops,
each in its own module:

- registers the node and heartbeats its metrics to the API (`agent_worker/heartbeat.py`);
- relays each game server's status (players, metadata) to the matchmaker (`agent_worker/relay.py`),
  beside each container's resource samples (`agent_worker/stats.py`);
- watches Docker events and reports containers that die unexpectedly to their workflow
  (`agent_worker/crashes.py`), and removes orphaned containers at start (`agent_worker/reconcile.py`);
- ships container logs to the API (`agent_worker/logs.py`);
- fetches a game's source for the image build (`agent_worker/sources.py`);
- answers players' pings, which the SDKs time to choose a region (`agent_worker/ping.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import docker
import docker.errors
import httpx
from docker.models.containers import Container
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Worker

from activities.containers import ContainerActivities
from activities.durable import DurableActivities
from activities.matchmaking import MatchmakingActivities
from activities.steps import StepActivities
from agent_worker.crashes import CrashReporter
from agent_worker.credentials import NodeCredential
from agent_worker.durable import SnapshotPuller, run_puller
from agent_worker.heartbeat import NodeHeartbeat
from agent_worker.logs import LogShipper
from agent_worker.metrics import AgentMetrics
from agent_worker.ping import PingServer
from agent_worker.reconcile import Reconciler
from agent_worker.relay import Relay
from agent_worker.room_events import RoomEvents
from agent_worker.sources import SourceFetcher
from agent_worker.stats import StatsSampler
from core.artifacts import LocalArtifactStore
from core.contracts import CrashReport, DurableRoomsReport
from core.queues import gameserver_workflow_id, node_queue
from core.settings import Settings
from core.temporal import connect
from workflows.gameserver import GameServerWorkflow

log = logging.getLogger("gsf.agent")
MAX_CONCURRENT_ACTIVITIES = 16


class Agent:
    def __init__(self, settings: Settings, node_id: str, client: Client | None = None) -> None:
        self.settings = settings
        self.node_id = node_id
        self.client = client
        self.credential = NodeCredential(settings, node_id)
        self.headers = self.credential.headers  # one dict, renewed in place (agent_worker/credentials.py)
        self.docker = docker.from_env()
        self.artifacts = LocalArtifactStore(settings.artifact_dir)
        self.sources = SourceFetcher(settings, self.artifacts, self.headers)
        self.containers = ContainerActivities(self.docker, settings, node_id, self.sources.fetch)
        self.stopping = threading.Event()
        self.logs = LogShipper(settings, self.docker, self.headers, self.stopping)
        self.containers.on_ended = self.logs.ship_ended
        self.stats = StatsSampler(self.docker, self.headers)
        self.heartbeat = NodeHeartbeat(settings, node_id, self.docker, self.credential,
                                       lambda: len(self._our_containers()), lambda: self.stats.instances)
        self.relay = Relay(settings, node_id, self.headers, self.containers, self._signal, room_events=RoomEvents())
        # The report goes through `_signal_crash` looked up when it is sent (tests observe it there).
        self.crashes = CrashReporter(node_id, self.docker, self.headers, self.containers, self.stopping,
                                     self.logs.ship_ended, lambda sid, report: self._signal_crash(sid, report))
        self.reconciler = Reconciler(self.headers, self.containers, self._our_containers)
        self.snapshots = SnapshotPuller(settings, self.headers, self._our_containers)  # durable rooms
        self.snapshots.on_durable = self._signal_durable
        self.ping = PingServer(settings)  # players' SDKs time it to choose a region (issue #23)

    # --- main ----------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self._run()
        finally:
            # Its connections to the engine (an in-process agent stopped and started again, as
            # the tests do, would otherwise keep them open for the life of the process).
            self.stopping.set()
            self.crashes.close()
            self.docker.close()

    async def _run(self) -> None:
        self.crashes.loop = asyncio.get_running_loop()
        await asyncio.to_thread(self.containers.check_runtime)
        # Metrics (issue #7): counted by the matchmaker client's transport and the worker's interceptor.
        self.metrics = AgentMetrics(self.node_id, lambda: len(self._our_containers()))
        if self.client is None:
            self.client = await connect(self.settings)
        async with httpx.AsyncClient(base_url=self.settings.matchmaker_url, timeout=10,
                                     transport=self.metrics.relay_transport()) as mm_http, \
                httpx.AsyncClient(base_url=self.settings.public_api_url, timeout=10) as api_http:
            await self.credential.obtain(api_http)
            self.crashes.mm = mm_http
            matchmaking = MatchmakingActivities(mm_http, self.headers, status=self.relay.status_of,
                                                listed=self.relay.mark_listed, node_labels=self.settings.node_labels)
            steps = StepActivities(self.docker, self.settings, self.containers)
            self.snapshots.api = api_http
            durable = DurableActivities(self.snapshots, self.settings,
                                        register=matchmaking.register_with_matchmaker)
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
                        durable.restore_rooms,
                        durable.restore_and_register,
                    ],
                    activity_executor=executor,
                    max_concurrent_activities=MAX_CONCURRENT_ACTIVITIES,
                    identity=f"agent@{self.node_id}",
                    graceful_shutdown_timeout=timedelta(seconds=5),
                    interceptors=[self.metrics.interceptor],
                )
                events = threading.Thread(target=self.crashes.watch_events, name="gsf-events", daemon=True)
                events.start()
                tasks = [
                    asyncio.create_task(self.heartbeat.loop(api_http), name="heartbeat"),
                    asyncio.create_task(self._relay_loop(mm_http, api_http), name="relay"),
                    asyncio.create_task(self.logs.ship_loop(api_http), name="logs"),
                    asyncio.create_task(self.metrics.serve(self.settings), name="metrics"),
                    asyncio.create_task(run_puller(self.snapshots, api_http), name="snapshots"),
                    asyncio.create_task(self.ping.serve(), name="ping"),
                ]
                log.info("agent %s polling %s", self.node_id, node_queue(self.node_id))
                tasks.append(asyncio.create_task(self.reconciler.at_start(api_http), name="reconcile"))
                try:
                    await self.crashes.report_dead_containers(
                        await asyncio.to_thread(self._our_containers, True))
                    await worker.run()
                finally:
                    self.stopping.set()
                    for task in tasks:
                        task.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)
                    with contextlib.suppress(Exception):
                        await self.logs.flush(api_http)

    def _our_containers(self, all: bool = False) -> list[Container]:
        return list(self.docker.containers.list(all=all, filters={
            "label": ["gsf.kind=gameserver", f"gsf.node_id={self.node_id}"]}))

    # --- matchmaker relay ----------------------------------------------------------------

    async def _relay_loop(self, mm: httpx.AsyncClient, api: httpx.AsyncClient) -> None:
        """Every heartbeat interval: relay the rooms' status to the matchmaker. Resource samples
        (slow `docker stats` calls under load) run beside it, one round at a time, so they never
        delay a heartbeat past the room's TTL."""
        interval = self.settings.agent_heartbeat_seconds
        stats: asyncio.Task[None] | None = None
        rooms: asyncio.Task[None] | None = None  # room transitions to the API (webhooks), one send at a time
        async with httpx.AsyncClient(timeout=2) as probe:
            try:
                while True:
                    began = time.monotonic()
                    try:
                        containers = await asyncio.to_thread(self._our_containers)
                        await self._relay(containers, probe, mm)
                        for c in containers:
                            self.logs.follow_logs(c)
                        if stats is None or stats.done():
                            stats = asyncio.create_task(self.stats.ship(containers, api), name="stats")
                        if self.relay.room_events is not None and (rooms is None or rooms.done()):
                            rooms = asyncio.create_task(self.relay.room_events.flush(api, self.headers),
                                                        name="room-events")
                    except (docker.errors.APIError, httpx.HTTPError) as exc:
                        log.warning("relay failed: %s", exc)
                    await asyncio.sleep(max(0.1, interval - (time.monotonic() - began)))
            finally:
                for task in (stats, rooms):
                    if task is not None:
                        task.cancel()

    async def _relay(self, containers: list[Container], probe: httpx.AsyncClient,
                     mm: httpx.AsyncClient) -> None:
        """One round of the relay (`agent_worker/relay.py`), each status polled by `_poll`."""
        await self.relay.relay(containers, probe, mm, poll=self._poll)

    async def _poll(self, c: Container, probe: httpx.AsyncClient) -> dict[str, Any] | None:
        return await self.relay.poll(c, probe)

    # --- signals to the server's workflow -----------------------------------------------------

    async def _signal(self, server_id: str, signal: str, arg: Any) -> None:
        assert self.client is not None
        try:
            await self.client.get_workflow_handle(gameserver_workflow_id(server_id)).signal(signal, arg)
        except RPCError as exc:
            log.info("%s for %s not delivered: %s", signal, server_id, exc)

    async def _signal_crash(self, server_id: str, report: CrashReport) -> None:
        assert self.client is not None
        handle = self.client.get_workflow_handle_for(GameServerWorkflow.run, gameserver_workflow_id(server_id))
        try:
            await handle.signal(GameServerWorkflow.report_crash, report)
            log.warning("server %s: container %s died (exit %s)", server_id, report.container_id[:12],
                        report.exit_code)
        except RPCError as exc:
            log.info("crash of %s not reported: %s", server_id, exc)

    async def _signal_durable(self, server_id: str) -> None:
        assert self.client is not None
        handle = self.client.get_workflow_handle_for(GameServerWorkflow.run, gameserver_workflow_id(server_id))
        try:
            await handle.signal(GameServerWorkflow.report_durable, DurableRoomsReport())
        except RPCError as exc:
            log.info("durable rooms of %s not reported: %s", server_id, exc)
