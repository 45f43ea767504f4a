"""The API's code analyses, run in worker processes: off the event loop, bounded per key and in total.

The analyzer is pure Python and holds the GIL for its whole budget, so a thread would still
stall every other request of the process; a process of its own (`api.analysis_worker`) does
not. Each API key may have `GSF_ANALYSIS_PER_KEY` analyses running or waiting (one more: 429),
the process `GSF_ANALYSIS_QUEUE` in all (one more: 503), both with Retry-After; at most
`GSF_ANALYSIS_WORKERS` workers run them, started on first use and kept. A worker that overruns
the analyzer's own budget by far, or whose request is abandoned, is killed, not waited for.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from starlette.exceptions import HTTPException

from api.analysis_worker import LENGTH
from core.contracts import AnalysisReport
from core.errors import Unavailable
from core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
WORKER = [sys.executable, "-m", "api.analysis_worker"]
STOP_GRACE_SECONDS = 2.0


class _Worker:
    """One `api.analysis_worker` process, one request at a time."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls) -> _Worker:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        return cls(await asyncio.create_subprocess_exec(*WORKER, stdin=asyncio.subprocess.PIPE,
                                                        stdout=asyncio.subprocess.PIPE, env=env))

    async def ask(self, request: bytes) -> bytes:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(LENGTH.pack(len(request)) + request)
        await self.proc.stdin.drain()
        (size,) = LENGTH.unpack(await self.proc.stdout.readexactly(LENGTH.size))
        return await self.proc.stdout.readexactly(size)

    async def stop(self) -> None:
        if self.proc.returncode is None and self.proc.stdin is not None:
            self.proc.stdin.close()  # the worker ends at the end of its input
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), STOP_GRACE_SECONDS)
        self.kill()
        await self.proc.wait()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            if self.proc.returncode is None:
                self.proc.kill()


class AnalysisPool:
    """Worker processes for `analysis.analyze` with a per-key and a total bound."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._slots = asyncio.Semaphore(settings.analysis_workers)
        self._idle: list[_Worker] = []
        self._workers: set[_Worker] = set()  # every live worker, idle or busy
        self._dying: set[asyncio.Task[int]] = set()
        self._held: Counter[str] = Counter()  # analyses running or waiting, per key
        # The analyzer keeps its own budget; this is for a worker that does not come back.
        self._deadline = settings.analysis_time_budget_seconds * 2 + 10

    @property
    def in_flight(self) -> int:
        """Analyses running or waiting for a worker."""
        return sum(self._held.values())

    def _retry_after(self, waiting: int) -> str:
        """Seconds until `waiting` analyses ahead of this one have had their budget, at least 1."""
        rounds = math.ceil(max(waiting, 1) / self.settings.analysis_workers)
        return str(max(1, math.ceil(rounds * self.settings.analysis_time_budget_seconds)))

    async def analyze(self, key: str, source: bytes, *, filename: str,
                      allow_rules: Iterable[str] = ()) -> AnalysisReport:
        """The report of `source`, or 429/503 (with Retry-After) when the bounds are reached."""
        if self._held[key] >= self.settings.analysis_per_key:
            raise HTTPException(429, f"this key has {self._held[key]} analyses running or waiting (at most "
                                f"{self.settings.analysis_per_key}); retry when one is done",
                                headers={"Retry-After": self._retry_after(1)})
        total = self.in_flight
        if total >= self.settings.analysis_queue:
            raise HTTPException(503, f"{total} analyses are running or waiting; retry later",
                                headers={"Retry-After": self._retry_after(total)})
        s = self.settings
        header = json.dumps({"filename": filename, "allow_rules": list(allow_rules), "max_bytes": s.max_upload_bytes,
                             "max_depth": s.analysis_max_depth,
                             "time_budget_seconds": s.analysis_time_budget_seconds}).encode()
        self._held[key] += 1
        try:
            async with self._slots:
                return AnalysisReport.model_validate_json(await self._run(header + b"\n" + source))
        finally:
            self._held[key] -= 1
            if self._held[key] <= 0:
                del self._held[key]

    async def _run(self, request: bytes) -> bytes:
        worker = None
        while self._idle and worker is None:
            candidate = self._idle.pop()
            if candidate.proc.returncode is None:
                worker = candidate
            else:
                self._workers.discard(candidate)  # it died while idle (killed, out of memory)
        if worker is None:
            worker = await _Worker.start()
            self._workers.add(worker)
        try:
            answer = await asyncio.wait_for(worker.ask(request), self._deadline)
        except BaseException as exc:
            # Overrun, died, or abandoned (the request was cancelled): its state is unknown.
            worker.kill()
            self._workers.discard(worker)
            task = asyncio.ensure_future(worker.proc.wait())
            self._dying.add(task)
            task.add_done_callback(lambda _: self._dying.discard(task))
            if isinstance(exc, TimeoutError):
                raise Unavailable(f"the analysis did not finish within {self._deadline:g} s") from None
            if isinstance(exc, asyncio.IncompleteReadError | ConnectionError):
                raise Unavailable("the analysis worker stopped; analyze again") from None
            raise
        self._idle.append(worker)
        return answer

    async def close(self) -> None:
        """Stop every worker: idle ones at the end of their input, one still busy (a request the
        server gave up on) at once."""
        idle = set(self._idle)
        workers, self._workers, self._idle = self._workers, set(), []
        for worker in workers - idle:
            worker.kill()
        await asyncio.gather(*(w.stop() for w in workers), *self._dying)


def get_analysis_pool(request: Request) -> AnalysisPool:
    pool: AnalysisPool = request.app.state.analysis_pool
    return pool


def caller_key(request: Request) -> str:
    """What the per-key bound counts: the API key of the request (set by `get_current_user`)."""
    return str(getattr(request.state, "key_id", None) or getattr(request.state, "user_id", ""))


AnalysisPoolDep = Annotated[AnalysisPool, Depends(get_analysis_pool)]
