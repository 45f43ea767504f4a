"""A Node.js client process a bench drives: one JSON command a line in, one answer a line out, in order
(bench/rooms_client.js, bench/statesync_client.js)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

MIB = 1024 * 1024


def node_binary() -> str:
    node = shutil.which("node")
    if node is None:
        raise SystemExit("bench: Node.js is required on the host")
    return node


class Driver:
    """The client process; `call` sends a command and waits for its answer."""

    def __init__(self, proc: asyncio.subprocess.Process, default_timeout: float) -> None:
        self.proc = proc
        self.next_id = 0
        self.default_timeout = default_timeout

    @classmethod
    async def start(cls, script: Path, args: list[str], node_path: Sequence[Path], *,
                    line_limit: int = 64 * MIB, default_timeout: float = 60.0) -> Driver:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "NODE_ENV": "production",
               "NODE_PATH": os.pathsep.join(str(p) for p in node_path)}
        proc = await asyncio.create_subprocess_exec(
            node_binary(), str(script), *args, env=env, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, limit=line_limit)
        driver = cls(proc, default_timeout)
        await driver._answer(0, 30)
        return driver

    async def _answer(self, wanted: int, timeout: float) -> Any:
        assert self.proc.stdout is not None
        while True:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
            if not line:
                raise RuntimeError(f"the client exited ({await self.proc.wait()})")
            reply = json.loads(line)
            if reply["id"] == wanted:
                if not reply["ok"]:
                    raise RuntimeError(f"client: {reply['error'][:2000]}")
                return reply["result"]

    async def call(self, op: str, timeout: float | None = None, **args: Any) -> Any:
        assert self.proc.stdin is not None
        self.next_id += 1
        self.proc.stdin.write((json.dumps({"id": self.next_id, "op": op, **args}) + "\n").encode())
        await self.proc.stdin.drain()
        return await self._answer(self.next_id, self.default_timeout if timeout is None else timeout)

    async def stop(self) -> None:
        if self.proc.returncode is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
