"""HTTP client commands of `gsf`: deploy, servers, logs, stop, delete."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from core.settings import Settings

console = Console()
err = Console(stderr=True)

STEPS = ["pending", "analyzing", "building", "starting", "running"]
DONE = {"running", "stopped", "deleted", "failed", "rejected"}


class ApiError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("detail") or body.get("title") or str(status))
        self.status = status
        self.body = body


def make_client(settings: Settings) -> httpx.Client:
    url = os.environ.get("GSF_API_URL", settings.public_api_url)
    key = os.environ.get("GSF_API_KEY", "").strip()
    key_file = settings.data_dir / "admin.key"
    if not key and key_file.exists():
        key = key_file.read_text().strip()
    if not key:
        raise SystemExit("gsf: no API key: set GSF_API_KEY (or run `gsf up` here, which keeps one in the data folder)")
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=150)


def call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    try:
        resp = client.request(method, path, **kwargs)
    except httpx.ConnectError:
        raise SystemExit(f"gsf: the API at {client.base_url} does not answer; is `gsf up` running?") from None
    if resp.status_code >= 400:
        try:
            body = resp.json()
        except ValueError:
            body = {"detail": resp.text[:300]}
        raise ApiError(resp.status_code, body)
    return resp.json() if resp.content else None


def print_findings(analysis: dict[str, Any] | None, source: str | None = None) -> None:
    if not analysis:
        return
    lines = source.splitlines() if source else []
    for f in analysis.get("findings", []):
        color = {"block": "red", "warn": "yellow"}.get(f["severity"], "cyan")
        err.print(f"[{color}]{f['severity']:5}[/] {f['line']}:{f['column']} [bold]{f['rule']}[/] {f['message']}")
        text = f.get("source_line") or (lines[f["line"] - 1] if 0 < f["line"] <= len(lines) else "")
        if text:
            err.print(f"      {text}", markup=False, highlight=False)
            err.print("      " + " " * f["column"] + "^", markup=False, highlight=False)
        if f.get("hint"):
            err.print(f"      hint: {f['hint']}", style="dim")


def deploy(settings: Settings, path: Path, name: str, max_players: int | None, labels: list[str],
           wait: bool, as_json: bool) -> int:
    source = path.read_bytes()
    data: dict[str, str] = {"name": name}
    if max_players:
        data["max_players"] = str(max_players)
    if labels:
        data["labels"] = ",".join(labels)
    with make_client(settings) as client:
        try:
            created = call(client, "POST", "/api/v1/servers", data=data,
                           files={"file": (path.name, source, "application/javascript")})
        except ApiError as exc:
            err.print(f"[red]deploy refused ({exc.status}):[/] {exc}")
            return 1
        if not as_json:
            console.print(f"server   [bold]{created['id']}[/]\nstatus   {created['status_url']}\n"
                          f"workflow {created['workflow_url']}")
        if not wait:
            if as_json:
                print(json.dumps(created))
            return 0
        server = follow_deploy(client, created["id"], quiet=as_json)
    if as_json:
        print(json.dumps(server))
    if server["status"] == "running":
        console.print(f"[green]running[/] on node {server['node_id']}: {server['ws_url']}")
        return 0
    err.print(f"[red]{server['status']}[/]: {server.get('error') or ''}")
    print_findings(server.get("analysis"), source.decode(errors="replace"))
    return 1


def follow_deploy(client: httpx.Client, server_id: str, quiet: bool = False, timeout: float = 600) -> Any:
    deadline = time.monotonic() + timeout
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=err, disable=quiet, transient=False) as progress:
        task = progress.add_task("pending", total=len(STEPS) - 1)
        while True:
            server = call(client, "GET", f"/api/v1/servers/{server_id}")
            status = server["status"]
            step = STEPS.index(status) if status in STEPS else len(STEPS) - 1
            last = server["events"][-1]["message"] if server.get("events") else ""
            progress.update(task, completed=step, description=f"{status:10} {last}")
            if status in DONE or time.monotonic() > deadline:
                return server
            time.sleep(0.25)


def servers(settings: Settings, as_json: bool) -> int:
    with make_client(settings) as client:
        page = call(client, "GET", "/api/v1/servers", params={"limit": 200})
    if as_json:
        print(json.dumps(page))
        return 0
    table = Table("id", "name", "game", "status", "node", "address", "created")
    for s in page["items"]:
        table.add_row(s["id"], s["name"], s["game"], s["status"], s["node_id"] or "", s["ws_url"] or "",
                      s["created_at"][:19])
    console.print(table)
    return 0


def show(settings: Settings, server_id: str) -> int:
    with make_client(settings) as client:
        try:
            server = call(client, "GET", f"/api/v1/servers/{server_id}")
        except ApiError as exc:
            err.print(f"[red]{exc}[/]")
            return 1
    for key in ("id", "name", "game", "status", "node_id", "ws_url", "image", "workflow_url", "created_at",
                "updated_at", "error"):
        console.print(f"{key:12} {server.get(key) or ''}")
    table = Table("seq", "at", "status", "message")
    for e in server["events"]:
        table.add_row(str(e["seq"]), e["at"][:23], e["status"], e["message"])
    console.print(table)
    return 0


def logs(settings: Settings, server_id: str, tail: int, follow: bool) -> int:
    with make_client(settings) as client:
        if not follow:
            try:
                page = call(client, "GET", f"/api/v1/servers/{server_id}/logs", params={"tail": tail})
            except ApiError as exc:
                err.print(f"[red]{exc}[/]")
                return 1
            for line in page["lines"]:
                console.print(f"[dim]{line['ts'][:23]}[/] {line['line']}", highlight=False)
            return 0
        with client.stream("GET", f"/api/v1/servers/{server_id}/logs", params={"tail": tail, "follow": True},
                           headers={"Accept": "application/x-ndjson"}, timeout=None) as resp:
            if resp.status_code >= 400:
                err.print(f"[red]{resp.read().decode()[:300]}[/]")
                return 1
            for raw in resp.iter_lines():
                if raw:
                    line = json.loads(raw)
                    console.print(f"[dim]{line['ts'][:23]}[/] {line['line']}", highlight=False)
    return 0


def stop(settings: Settings, server_id: str, delete: bool) -> int:
    with make_client(settings) as client:
        try:
            server = call(client, "DELETE" if delete else "POST",
                          f"/api/v1/servers/{server_id}" + ("" if delete else "/stop"))
        except ApiError as exc:
            err.print(f"[red]{exc}[/]")
            return 1
    console.print(f"{server['id']}: {server['status']}")
    return 0


def nodes(settings: Settings, as_json: bool) -> int:
    with make_client(settings) as client:
        try:
            page = call(client, "GET", "/api/v1/nodes")
        except ApiError as exc:
            err.print(f"[red]{exc}[/]")
            return 1
    if as_json:
        print(json.dumps(page))
        return 0
    table = Table("id", "status", "online", "servers", "cpu %", "memory %", "labels", "last heartbeat")
    for n in page["items"]:
        m = n.get("metrics") or {}
        table.add_row(n["id"], n["status"], "yes" if n["online"] else "[red]no[/]", str(n["servers"]),
                      str(m.get("cpu_percent", "")), str(m.get("memory_percent", "")),
                      ",".join(f"{k}={v}" for k, v in (n["labels"] or {}).items()), (n["last_online"] or "")[:19])
    console.print(table)
    return 0


STEP_STYLE = {"succeeded": "green", "failed": "red", "running": "yellow", "cancelled": "magenta", "skipped": "dim"}


def follow_pipeline(client: httpx.Client, run_id: str, timeout: float = 3600) -> Any:
    """A live view of the steps until the run ends or pauses."""
    from rich.live import Live

    deadline = time.monotonic() + timeout
    with Live(console=err, refresh_per_second=8, transient=False) as live:
        while True:
            run = call(client, "GET", f"/api/v1/pipelines/{run_id}")
            table = Table("#", "step", "type", "status", "attempts", "error",
                          title=f"{run['name']} on {run['node_id']}: {run['status']} ({run['progress']:.0%})")
            for s in run["state"]["steps"]:
                style = STEP_STYLE.get(s["status"], "")
                table.add_row(str(s["index"]), s["name"] + (" (cleanup)" if s["cleanup"] else ""), s["type"],
                              f"[{style}]{s['status']}[/]" if style else s["status"], str(s["attempts"]),
                              (s["error"] or "")[:80])
            live.update(table)
            if run["status"] in ("succeeded", "failed", "cancelled", "paused") or time.monotonic() > deadline:
                return run
            time.sleep(0.3)


def pipeline_run(settings: Settings, definition: str, node: str, variables: list[str], wait: bool) -> int:
    body: dict[str, Any] = {"variables": dict(v.split("=", 1) for v in variables)}
    path = Path(definition)
    if path.suffix in (".yaml", ".yml") and path.exists():
        body["yaml"] = path.read_text()
    else:
        body["definition"] = definition
    if "=" in node:
        body["node_selector"] = dict(part.split("=", 1) for part in node.split(","))
    elif node:
        body["node_id"] = node
    with make_client(settings) as client:
        try:
            run = call(client, "POST", "/api/v1/pipelines", json=body)
        except ApiError as exc:
            err.print(f"[red]pipeline refused ({exc.status}):[/] {exc}")
            for e in exc.body.get("errors", []):
                err.print(f"  {e['loc']}: {e['msg']}")
            return 1
        console.print(f"pipeline {run['id']}  workflow {run['workflow_url']}")
        if not wait:
            return 0
        run = follow_pipeline(client, run["id"])
    return 0 if run["status"] == "succeeded" else 1


def pipeline_action(settings: Settings, action: str, run_id: str, variables: list[str] | None = None) -> int:
    with make_client(settings) as client:
        try:
            if action == "status":
                run = follow_pipeline(client, run_id)
                return 0 if run["status"] == "succeeded" else 1
            if action == "logs":
                for line in call(client, "GET", f"/api/v1/pipelines/{run_id}/logs")["lines"]:
                    console.print(f"[dim]{line['step']}:{line['name']}[/] {line['line']}", highlight=False)
                return 0
            body = {"variables": dict(v.split("=", 1) for v in variables or [])} if action == "resume" else None
            run = call(client, "POST", f"/api/v1/pipelines/{run_id}/{action}", json=body)
            console.print(f"{run['id']}: {run['status']}")
            run = follow_pipeline(client, run_id)
        except ApiError as exc:
            err.print(f"[red]{exc}[/]")
            return 1
    return 0 if run["status"] in ("succeeded", "cancelled") else 1
