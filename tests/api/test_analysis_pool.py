"""Issue #19: analyses of uploads run in worker processes, bounded per API key and in total."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.analysis_pool import AnalysisPool
from bench.analysis_throughput import generated_game
from core.errors import Unavailable
from core.settings import Settings
from tests.harness import Harness, platform
from tests.problems import assert_problem

pytestmark = [pytest.mark.temporal]
HEAVY = generated_game()  # 1 MiB of game code: seconds of analysis, far longer than an upload takes


@pytest.fixture
async def h(settings: Settings, temporal_env: Any) -> Any:
    # A short budget keeps the test short: the heavy uploads still hold their places for a second each.
    bounded = settings.model_copy(update={"analysis_workers": 1, "analysis_per_key": 1, "analysis_queue": 2,
                                          "analysis_time_budget_seconds": 1.0})
    async with platform(bounded, temporal_env.client, agent=False) as harness:
        yield harness


async def analyze(api: httpx.AsyncClient, data: bytes = HEAVY) -> httpx.Response:
    return await api.post("/api/v1/analysis", files={"file": ("game.js", data)})


async def test_a_key_gets_429_beyond_its_concurrent_analyses_and_the_api_503_beyond_its_queue(h: Harness) -> None:
    alice, bob, carol = [await h.user_key(f"{n}@example.com") for n in ("alice", "bob", "carol")]
    async with h.api(alice) as a, h.api(bob) as b, h.api(carol) as c:
        first = asyncio.create_task(analyze(a))
        second = asyncio.create_task(analyze(b))
        app = h.servers["api"].config.app
        assert isinstance(app, FastAPI)
        pool = app.state.analysis_pool
        for _ in range(100):  # both uploaded and holding their places (one runs, one waits)
            if pool.in_flight == 2:
                break
            await asyncio.sleep(0.05)
        assert pool.in_flight == 2
        assert not first.done()
        assert not second.done()
        busy = await analyze(a)
        assert_problem(busy, 429, "rate-limited")
        assert int(busy.headers["retry-after"]) >= 1
        full = await analyze(c, b"module.exports = {};\n")  # a key of its own, but the queue is full
        assert_problem(full, 503, "unavailable")
        assert int(full.headers["retry-after"]) >= 1
        for done in await asyncio.gather(first, second):
            assert done.status_code == 200, done.text
            assert done.json()["size"] == len(HEAVY)
        # Places are given back: the same key analyzes again, and the worker is reused.
        again = await analyze(a, b"module.exports = { maxPlayers: 2 };\n")
        assert again.status_code == 200
        assert again.json()["exports"]["maxPlayers"] == 2


async def test_a_worker_that_died_is_replaced_and_one_that_overruns_is_killed(settings: Settings) -> None:
    pool = AnalysisPool(settings.model_copy(update={"analysis_workers": 1}))
    try:
        assert (await pool.analyze("k", b"module.exports = {};\n", filename="a.js")).size == 21
        (worker,) = pool._workers
        os.kill(worker.proc.pid, signal.SIGKILL)  # out of memory, say, between two analyses
        await asyncio.wait_for(worker.proc.wait(), 10)
        report = await pool.analyze("k", b"module.exports = { maxPlayers: 3 };\n", filename="a.js")
        assert report.exports["maxPlayers"] == 3
        assert worker not in pool._workers
        assert len(pool._workers) == 1
        # A worker that does not answer in time is killed, and the request answered 503.
        pool._deadline = 0.05
        with pytest.raises(Unavailable):
            await pool.analyze("k", HEAVY, filename="a.js")
        assert pool._workers == set()
        assert pool.in_flight == 0
    finally:
        await pool.close()
