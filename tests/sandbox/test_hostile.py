"""The hostile corpus: game modules that attack their container, each started by the platform's
`start_container` with the default limits (128 MB, 0.5 CPU, 64 pids, 16 MB /tmp, 1024 files),
while a well-behaved chat room on the same node keeps answering its player: its WebSocket round
trip p99 during every attack stays under 50 ms.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from core import security
from core.contracts import Limits
from tests.sandbox.conftest import GAMES, HOSTILE, GameBox, Pinger, Sandbox

pytestmark = pytest.mark.docker

P99_BUDGET_MS = 50.0
T = TypeVar("T")
MEASURED: dict[str, str] = {}
ATTACKERS: list[GameBox] = []  # started by the current attack attempt


@pytest.fixture(scope="module")
async def healthy(sandbox: Sandbox) -> AsyncIterator[Pinger]:
    """The chat room and one connected player; each test runs a Pinger on it during its attack."""
    box = await asyncio.to_thread(sandbox.start, GAMES / "chat.js")
    ws = await box.join("bystander")
    MEASURED["no attack (baseline)"] = (await measure(Pinger(ws), 3.0)).summary()
    yield Pinger(ws)
    await ws.close()
    for name, summary in MEASURED.items():
        print(f"\nhealthy chat during {name}: {summary}")


async def measure(healthy: Pinger, seconds: float) -> Pinger:
    pinger = Pinger(healthy.ws)
    pinger.start()
    await asyncio.sleep(seconds)
    await pinger.stop()
    return pinger


async def under_attack(healthy: Pinger, name: str, attack: Callable[[], Awaitable[T]],
                       min_seconds: float = 5.0, attempts: int = 3) -> T:
    """Run `attack` while pinging the healthy room for at least `min_seconds`; check the p99.

    The host is shared: other processes' CPU bursts show up as latency too. A window over budget
    is measured again with a fresh attack, up to `attempts` times; a no-attack window after each
    failed one is recorded next to it. An attack that by itself pushed the p99 over budget would
    do so in every window, so one clean window under the same attack is the evidence.
    """
    history: list[str] = []
    for attempt in range(1, attempts + 1):
        ATTACKERS.clear()
        pinger = Pinger(healthy.ws)
        pinger.start()
        started = time.monotonic()
        try:
            result = await attack()
            left = min_seconds - (time.monotonic() - started)
            if left > 0:
                await asyncio.sleep(left)
        finally:
            await pinger.stop()
        history.append(f"attempt {attempt}: {pinger.summary()}")
        assert not pinger.failures, pinger.summary()
        assert len(pinger.samples) >= 50, pinger.summary()
        if pinger.p99() < P99_BUDGET_MS:
            MEASURED[name] = " | ".join(history)
            return result
        for box in ATTACKERS:
            await asyncio.to_thread(box.remove)
        quiet = await measure(healthy, 2.0)
        history.append(f"no-attack check: {quiet.summary()}")
        MEASURED[name] = " | ".join(history)
    raise AssertionError(f"{name}: p99 over {P99_BUDGET_MS} ms in {attempts} attempts: {MEASURED[name]}")


async def start(sandbox: Sandbox, module: str, *, wait: bool = True, **kwargs: Any) -> GameBox:
    box = await asyncio.to_thread(sandbox.start, HOSTILE / module, wait=False, **kwargs)
    ATTACKERS.append(box)
    if wait:
        await asyncio.to_thread(box.wait_ready)
    return box


def cpu_ns(box: GameBox) -> int:
    """Total CPU time of the container's cgroup (cgroup v1 cpuacct on the host; stats API elsewhere)."""
    path = Path(f"/sys/fs/cgroup/cpuacct/docker/{box.container.id}/cpuacct.usage")
    if path.is_file():
        return int(path.read_text())
    return box.cpu_usage_ns()


async def cpu_share(box: GameBox, seconds: float = 2.0) -> float:
    """CPU cores the container used over `seconds` of wall time."""
    before, t0 = cpu_ns(box), time.monotonic()
    await asyncio.sleep(seconds)
    return (cpu_ns(box) - before) / 1e9 / (time.monotonic() - t0)


async def test_fork_bomb_hits_the_pids_limit(sandbox: Sandbox, healthy: Pinger) -> None:
    # Memory raised so that the pids limit, not the OOM killer, is what stops the bomb.
    limits = Limits(memory_mb=1024, pids=64)

    async def attack() -> tuple[GameBox, dict[str, Any], int]:
        box = await start(sandbox, "fork_bomb.js", limits=limits)
        peak = 0
        for _ in range(8):
            peak = max(peak, await asyncio.to_thread(box.pids))
            await asyncio.sleep(0.25)
        bomb = await asyncio.to_thread(box.wait_state, "bomb")
        return box, bomb, peak

    box, bomb, peak = await under_attack(healthy, "fork bomb", attack)
    print(f"\nfork bomb: peak pids {peak}, {bomb}")
    assert 0 < peak <= limits.pids, peak
    errors = {**bomb["spawnErrors"], **bomb["workerErrors"]}
    # The kernel refused new tasks: fork/clone fails with EAGAIN, threads fail to start.
    assert bomb["spawnErrors"].get("EAGAIN", 0) > 0, bomb
    assert set(errors) <= {"EAGAIN", "ERR_WORKER_INIT_FAILED", "ERR_WORKER_OUT_OF_MEMORY"}, bomb
    assert bomb["spawned"] + bomb["workers"] < 400, bomb
    box.remove()


async def test_memory_balloon_is_oom_killed(sandbox: Sandbox, healthy: Pinger) -> None:
    async def attack() -> dict[str, Any]:
        box = await start(sandbox, "memory_balloon.js", wait=False)
        return await asyncio.to_thread(box.wait_exit, 20)

    state = await under_attack(healthy, "memory balloon", attack)
    assert state["OOMKilled"] is True, state
    assert state["ExitCode"] == 137, state


async def test_cpu_spin_in_ontick_is_held_by_the_quota(sandbox: Sandbox, healthy: Pinger) -> None:
    async def attack() -> tuple[GameBox, float]:
        box = await start(sandbox, "cpu_tick.js")  # spinning from onCreate on
        return box, await cpu_share(box, 3.0)

    box, cores = await under_attack(healthy, "CPU spin in onTick", attack)
    assert 0.2 < cores <= 0.56, cores  # busy, but never more than its 0.5 CPU
    assert box.status()["state"]["spins"] > 0
    box.remove()


async def test_cpu_spin_at_load_time_is_held_by_the_quota(sandbox: Sandbox, healthy: Pinger) -> None:
    async def attack() -> tuple[GameBox, float]:
        box = await start(sandbox, "cpu_load.js", wait=False)
        cores = await cpu_share(box, 2.0)
        await asyncio.to_thread(box.wait_ready)
        return box, cores

    box, cores = await under_attack(healthy, "CPU spin at load", attack)
    assert cores <= 0.56, cores
    assert box.status()["state"]["loadSpins"] > 0  # it did load, late
    box.remove()


async def test_filling_tmp_and_writing_outside_it(sandbox: Sandbox, healthy: Pinger) -> None:
    async def attack() -> tuple[GameBox, dict[str, Any]]:
        box = await start(sandbox, "fs_abuse.js")
        return box, await asyncio.to_thread(box.wait_state, "fs")

    box, fs = await under_attack(healthy, "tmpfs fill", attack)
    print(f"\nfs_abuse: {fs}")
    assert fs["fillError"] == "ENOSPC", fs
    assert 14 <= fs["writtenMb"] <= 16, fs  # the 16 MB tmpfs, not the host's disk
    outside = fs["outside"]
    for file in ("/app/game/game.js", "/app/runtime/server.js", "/etc/passwd", "/evil",
                 "/usr/local/bin/evil", "/app/evil"):
        assert outside[file] == "EROFS", (file, outside[file])
    assert outside["/proc/sys/kernel/hostname"] in ("EROFS", "EACCES"), outside
    # Docker's /dev/shm (64 MB tmpfs, noexec) is writable; its pages count against the container's
    # memory limit, so it is no way around it (docs/sandbox.md).
    assert outside["/dev/shm/evil"] == "written", outside
    box.remove()


async def test_thousands_of_sockets_hit_the_nofile_limit(sandbox: Sandbox, healthy: Pinger) -> None:
    async def attack() -> tuple[GameBox, dict[str, Any]]:
        box = await start(sandbox, "sockets.js")
        return box, await asyncio.to_thread(box.wait_state, "sockets")

    box, sockets = await under_attack(healthy, "socket flood", attack)
    print(f"\nsockets: {sockets}")
    assert sockets["error"] == "EMFILE", sockets
    assert 900 < sockets["opened"] < sandbox.settings.server_nofile, sockets
    assert box.status()["ready"] is True  # the sockets were released; the runtime answers again
    box.remove()


async def test_secrets_are_out_of_the_games_reach(sandbox: Sandbox, healthy: Pinger) -> None:
    box = await start(sandbox, "secrets.js")
    found = await asyncio.to_thread(box.wait_state, "found")
    text = json.dumps(found)
    secret_key = sandbox.settings.secret_key
    for secret in (security.seat_secret(secret_key, box.server_id), security.agent_key(secret_key, box.server_id),
                   secret_key):
        assert secret not in text
    assert "GSF_SEAT_SECRET" not in found["env"]
    assert "GSF_AGENT_KEY" not in found["env"]
    # Never in the environment of any process of the container: they came over stdin, which the
    # runtime read to its end before loading the game (nothing is left to read there).
    for environ in (found["selfEnviron"], found["initEnviron"]):
        values = dict(item.split("=", 1) for item in environ.split("\0") if "=" in item)
        assert values["GSF_SECRETS_STDIN"] == "1"
        assert "GSF_SEAT_SECRET" not in values
        assert "GSF_AGENT_KEY" not in values
    assert found["stdin"] == "", found
    assert found["initStdin"] in ("", "!EACCES"), found
    assert found["dockerSocket"] == "!ENOENT"
    # The platform itself still reaches its container with the real keys.
    assert box.status()["server_id"] == box.server_id
    ws = await box.join("legit")
    await ws.close()
    box.remove()


async def test_endless_loop_in_onmessage_trips_the_watchdog(sandbox: Sandbox, healthy: Pinger) -> None:
    async def attack() -> tuple[GameBox, dict[str, Any], float]:
        box = await start(sandbox, "busy_loop.js")
        async with await box.join("spinner") as ws:
            await ws.send(json.dumps({"type": "spin", "data": None}))
            spun = time.monotonic()
            state = await asyncio.to_thread(box.wait_exit, 15)
            return box, state, time.monotonic() - spun

    box, state, took = await under_attack(healthy, "endless loop in onMessage", attack)
    logs = box.logs()
    box.remove()
    assert state["ExitCode"] == 4, state
    assert state["OOMKilled"] is False, state
    assert "watchdog: event loop blocked for " in logs, logs
    assert 4.5 < took < 9.0, took  # GSF_WATCHDOG_MS defaults to 5000
