"""Programs a test runs to their end: the exit code and the output, and no process left behind
when one takes too long."""

from __future__ import annotations

import asyncio
from typing import Any


async def run_to_end(*args: str, timeout: float, **options: Any) -> tuple[int | None, str]:
    """(exit code, stdout and stderr together) of `args`, run with `options` (cwd, env) within
    `timeout` seconds; killed when the time runs out (the TimeoutError goes on)."""
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT, **options)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode, out.decode(errors="replace")
