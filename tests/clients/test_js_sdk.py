"""The TypeScript SDK (clients/js): its `node --test` suite, built from the current source, against
the platform this module serves (handed over in GSF_SDK_PLATFORM)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.clients.platform import REPO, LocalPlatform
from tests.processes import run_to_end

JS = REPO / "clients" / "js"


def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.fail("no `node` on PATH: install Node.js 20", pytrace=False)
    return found


def newest(folder: Path) -> float:
    return max(p.stat().st_mtime for p in folder.rglob("*.ts"))


async def build_if_stale() -> None:
    """dist/ comes from scripts/bootstrap.sh (npm ci, npm run build); rebuilt here if the source moved on."""
    tsc = JS / "node_modules" / "typescript" / "bin" / "tsc"
    if not tsc.is_file() or not (JS / "node_modules" / "ws").is_dir():
        pytest.fail("clients/js/node_modules is missing: run `npm ci` in clients/js (scripts/bootstrap.sh test "
                    "does)", pytrace=False)
    index = JS / "dist" / "index.js"
    if index.is_file() and index.stat().st_mtime >= newest(JS / "src"):
        return
    code, out = await run_to_end(node(), str(tsc), "-p", str(JS), timeout=120, cwd=JS)
    assert code == 0, out


async def test_the_js_sdk_suite_passes(local_platform: LocalPlatform) -> None:
    await build_if_stale()
    files = sorted(str(p.relative_to(JS)) for p in (JS / "test").glob("*.test.js"))
    assert len(files) >= 3, files
    served = {"matchmaker": local_platform.url, "servers": [gs.public() for gs in local_platform.servers]}
    env = {**os.environ, "GSF_SDK_PLATFORM": json.dumps(served)}
    # Asynchronous on purpose: the matchmaker and the relay run on this event loop meanwhile.
    code, out = await run_to_end(node(), "--test", "--test-reporter=tap", *files, timeout=180, cwd=JS, env=env)
    assert code == 0, out
    counts = dict(line[2:].split(" ", 1) for line in out.splitlines() if line.startswith("# ") and " " in line[2:])
    assert counts.get("fail") == "0", out
    assert counts.get("pass") == counts.get("tests"), out
    assert int(counts.get("tests", "0")) >= 11, out
