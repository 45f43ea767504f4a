"""HTTP client commands of `gsf`: deploy, servers, logs, stop, delete.

Every command that takes an id takes any unique prefix of it too, as git and docker do
(`resolve_id`); tables print ids short but unique (`short_ids`), URLs on one line. A request the
API refuses with 429 is sent again after its `Retry-After` (`send`).
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import os
import re
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.errors import LiveError
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Column, Table
from rich.text import Text

from core.request_bounds import MAX_PLAYERS, MAX_ROOMS, MIN_PLAYERS, MIN_ROOMS, SERVER_NAME_PATTERN, SERVER_NAME_RULE
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


# --- 429: wait as the API says, a bounded number of times ---------------------------------------

MAX_TRIES = 5  # a request is sent at most this many times
MAX_WAIT_SECONDS = 30.0  # and waits at most this long in all before the CLI gives up


def retry_after(resp: httpx.Response) -> float | None:
    """Seconds the response's Retry-After asks for (delay-seconds or an HTTP date), or None."""
    value = resp.headers.get("retry-after", "").strip()
    if re.fullmatch(r"[0-9]{1,6}", value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def pause(seconds: float) -> None:
    time.sleep(seconds)


@contextlib.contextmanager
def waiting(message: str) -> Iterator[None]:
    """A spinner on stderr while the CLI waits; a plain line where another live display is on
    (rich before 14 allows one at a time: `gsf deploy`'s progress bar, a pipeline's step table)."""
    status = err.status(message, spinner="dots")
    try:
        status.start()
    except LiveError:
        err.print(message, style="dim")
        yield
        return
    try:
        yield
    finally:
        status.stop()


def send(client: httpx.Client, method: str, path: str, *, stream: bool = False, **kwargs: Any) -> httpx.Response:
    """One request; refused with 429 and a Retry-After, sent again once that has passed, up to
    MAX_TRIES times and MAX_WAIT_SECONDS of waiting in all (then the 429 is the answer).

    Sending again is safe whatever the method: the API's 429s come before it acts. The rate
    limiter (api/ratelimit.py) is ASGI middleware that answers before the route runs; the
    analysis pool's per-key bound (api/analysis_pool.py) answers before anything is stored. A 429
    without Retry-After (a pipeline quota) is not one that waiting cures, and is not retried."""
    waited = 0.0
    for attempt in range(1, MAX_TRIES + 1):
        try:
            resp = client.send(client.build_request(method, path, **kwargs), stream=stream)
        except httpx.ConnectError:
            raise SystemExit(f"gsf: the API at {client.base_url} does not answer; is `gsf up` running?") from None
        wait = retry_after(resp) if resp.status_code == 429 else None
        if wait is None or attempt == MAX_TRIES or waited + wait > MAX_WAIT_SECONDS:
            return resp
        resp.close()
        with waiting(f"the API's rate limit: trying again in {wait:g} s ({attempt + 1} of {MAX_TRIES})"):
            pause(wait)
        waited += wait
    raise AssertionError("unreachable: the last try returns")


def call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    resp = send(client, method, path, **kwargs)
    if resp.status_code >= 400:
        try:
            body = resp.json()
        except ValueError:
            body = {"detail": resp.text[:300]}
        raise ApiError(resp.status_code, body)
    return resp.json() if resp.content else None


# --- ids: any unique prefix in, short unique ids out ------------------------------------------

WHOLE_ID_LENGTH = 20  # the platform's ids (core.db.models.new_id): a ref this long is taken as it is
SHORT_ID_LENGTH = 8  # tables print at least this much of an id
PAGE = 200  # the largest page the list routes give
MAX_PAGES = 100


class AmbiguousId(SystemExit):
    """A prefix that starts more than one id: the CLI stops (exit 1) and names them all."""

    def __init__(self, kind: str, ref: str, candidates: list[dict[str, Any]]) -> None:
        self.candidates = [str(c["id"]) for c in candidates]
        lines = [f"gsf: {kind} id prefix {ref!r} is ambiguous; it starts {len(candidates)} ids:"]
        for c in candidates:
            about = ", ".join(str(c[k]) for k in ("name", "email", "game", "status") if c.get(k))
            lines.append(f"  {c['id']}" + (f"  ({about})" if about else ""))
        lines.append("gsf: give more of the id")
        super().__init__("\n".join(lines))


def list_items(client: httpx.Client, path: str, params: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Every item of a list route, whether it answers a JSON list or pages of `items`."""
    items: list[dict[str, Any]] = []
    offset = 0
    for _ in range(MAX_PAGES):
        page = call(client, "GET", path, params={**(params or {}), "limit": PAGE, "offset": offset})
        if isinstance(page, list):
            return page
        got = page["items"]
        items.extend(got)
        if "next_offset" in page:  # servers
            if page["next_offset"] is None or not got:
                break
            offset = page["next_offset"]
        else:  # pipelines page by count; fleets answer all of theirs at once
            offset += len(got)
            count = page.get("count")
            if len(got) < PAGE or count is None or offset >= count:
                break
    return items


def resolve_id(client: httpx.Client, kind: str, ref: str, path: str, *, names: tuple[str, ...] = (),
               passes: Iterable[dict[str, str]] = ({},)) -> str:
    """The whole id that `ref` names: the id itself, a name (`names`: a fleet's name, kept as it is
    for the API to look up), or the one id of the list at `path` that starts with it. The list is
    read once per `passes` entry (query parameters) until one matches: live servers first, then
    the deleted ones too (names only among the first). A prefix of several ids stops the CLI
    (`AmbiguousId`); a ref that matches nothing, or a list the caller may not read (nodes:
    admins), goes to the API as it is, which answers for it (404)."""
    if len(ref) >= WHOLE_ID_LENGTH:
        return ref
    for n, params in enumerate(passes):
        try:
            items = list_items(client, path, params)
        except ApiError:
            return ref
        if any(i["id"] == ref for i in items):
            return ref
        if n == 0 and any(i.get(name) == ref for i in items for name in names):
            return ref  # a name: the API looks names up itself (among the live ones)
        matches = [i for i in items if str(i["id"]).startswith(ref)]
        if len(matches) == 1:
            return str(matches[0]["id"])
        if matches:
            raise AmbiguousId(kind, ref, matches)
    return ref


def resolve_server(client: httpx.Client, ref: str) -> str:
    return resolve_id(client, "server", ref, "/api/v1/servers", passes=({}, {"include_deleted": "true"}))


def resolve_pipeline(client: httpx.Client, ref: str) -> str:
    return resolve_id(client, "pipeline", ref, "/api/v1/pipelines")


def short_ids(ids: Iterable[str], minimum: int = SHORT_ID_LENGTH) -> dict[str, str]:
    """Each id's shortest prefix of at least `minimum` characters that starts no other of `ids`."""
    ordered = sorted(set(ids))
    out: dict[str, str] = {}
    for i, value in enumerate(ordered):
        shared = 0
        for j in (i - 1, i + 1):
            if 0 <= j < len(ordered):
                other = ordered[j]
                n = 0
                while n < min(len(value), len(other)) and value[n] == other[n]:
                    n += 1
                shared = max(shared, n)
        out[value] = value[:max(minimum, shared + 1)]
    return out


def compact_table(*columns: str | Column) -> Table:
    """A table for an 80-column terminal: no borders, one space between columns."""
    return Table(*columns, box=None, padding=(0, 1, 0, 0), header_style="bold")


def id_column(header: str = "id") -> Column:
    return Column(header, no_wrap=True)


def fold_column(header: str) -> Column:
    """Text that folds onto more lines where the width runs out: never cut with an ellipsis."""
    return Column(header, overflow="fold", min_width=4)


def url_column(header: str) -> Column:
    """A URL is printed whole on one line, to be copied: never wrapped, never cut."""
    return Column(header, no_wrap=True, overflow="ignore")


def age(iso: str | None, now: datetime | None = None) -> str:
    """`12s`, `5m`, `3h`, `2d` since an ISO time."""
    if not iso:
        return ""
    try:
        then = datetime.fromisoformat(iso)
    except ValueError:
        return iso[:19]
    seconds = max(0, int(((now or datetime.now(UTC)) - (then if then.tzinfo else then.replace(tzinfo=UTC)))
                        .total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def print_findings(analysis: dict[str, Any] | None, source: str | None = None) -> None:
    if not analysis:
        return
    lines = source.splitlines() if source else []
    for f in analysis.get("findings", []):
        color = {"block": "red", "warn": "yellow"}.get(f["severity"], "cyan")
        where = f"{f['file']}:" if f.get("file") else ""
        err.print(f"[{color}]{f['severity']:5}[/] {where}{f['line']}:{f['column']} [bold]{f['rule']}[/] {f['message']}",
                  soft_wrap=True)
        text = f.get("source_line") or (lines[f["line"] - 1] if 0 < f["line"] <= len(lines) else "")
        if text:
            err.print(f"      {text}", markup=False, highlight=False)
            err.print("      " + " " * max(0, f["column"] - 1) + "^", markup=False, highlight=False)  # 1-based
        if f.get("hint"):
            err.print(f"      hint: {f['hint']}", style="dim")


def deploy_form(name: str, max_players: int | None, labels: list[str], max_rooms: int | None = None) -> dict[str, str]:
    """The form `gsf deploy` sends, checked as the API checks it (core/request_bounds.py): what
    the API would refuse with 422 stops here, before the upload. `max_players` None (not given)
    leaves the seats to the module's `maxPlayers`; 0 is refused, never read as "not given".
    `max_rooms` likewise: None leaves the rooms to the module's `maxRooms` (else one)."""
    if not re.match(SERVER_NAME_PATTERN, name):
        raise DeployOptionError(f"--name {name!r}: {SERVER_NAME_RULE} (the file's name is the default)")
    data: dict[str, str] = {"name": name}
    if max_players is not None:
        if not MIN_PLAYERS <= max_players <= MAX_PLAYERS:
            raise DeployOptionError(f"--max-players {max_players}: from {MIN_PLAYERS} to {MAX_PLAYERS}")
        data["max_players"] = str(max_players)
    if max_rooms is not None:
        if not MIN_ROOMS <= max_rooms <= MAX_ROOMS:
            raise DeployOptionError(f"--max-rooms {max_rooms}: from {MIN_ROOMS} to {MAX_ROOMS}")
        data["max_rooms"] = str(max_rooms)
    for label in labels:
        key, sep, _ = label.partition("=")
        if not sep or not key.strip():
            raise DeployOptionError(f"--label {label!r}: expected key=value")
    if labels:
        data["labels"] = ",".join(labels)
    return data


class DeployOptionError(ValueError):
    """An option of `gsf deploy` the API would refuse."""


def describe_deploy(path: Path, size: int, data: dict[str, str]) -> str:
    seats = data.get("max_players") or "the module's maxPlayers"
    rooms = f", max rooms {data['max_rooms']}" if "max_rooms" in data else ""
    return (f"deploying {path.name} ({size:,} bytes) as {data['name']!r}: max players {seats}{rooms}"
            + (f", labels {data['labels']}" if "labels" in data else ""))


def deploy(settings: Settings, path: Path, name: str, max_players: int | None, labels: list[str],
           wait: bool, as_json: bool, max_rooms: int | None = None, replace: str | None = None) -> int:
    """`replace`: a server whose durable rooms move into the new one once it runs (cli/replace.py)."""
    try:
        data = deploy_form(name, max_players, labels, max_rooms)
        if replace is not None and not wait:
            raise DeployOptionError("--replace waits for the new server: it cannot go with --no-wait")
    except DeployOptionError as exc:
        err.print(f"gsf deploy: {exc}", markup=False, highlight=False)
        return 2
    upload = project_upload(settings, path)
    if upload is None:
        return 1
    source, upload_name, content_type = upload
    # What is sent, before it is: on stderr, so that --json keeps stdout to the API's answer.
    err.print(describe_deploy(path, len(source), data), markup=False, highlight=False, soft_wrap=True)
    with make_client(settings) as client:
        if replace is not None:
            replace = resolve_server(client, replace)
        try:
            created = call(client, "POST", "/api/v1/servers", data=data,
                           files={"file": (upload_name, source, content_type)})
        except ApiError as exc:
            err.print(f"[red]deploy refused ({exc.status}):[/] {exc}")
            return 1
        if not as_json:
            console.print(f"server   [bold]{created['id']}[/]\nstatus   {created['status_url']}\n"
                          f"workflow {created['workflow_url']}", soft_wrap=True)
        if not wait:
            if as_json:
                print(json.dumps(created))
            return 0
        server = follow_deploy(client, created["id"], quiet=as_json)
        if server["status"] == "running" and not as_json:
            rooms, seats = server.get("max_rooms") or 1, server["max_players"]
            where = f"up to {rooms} rooms of {seats} seats" if rooms > 1 else f"{seats} seats"
            console.print(f"[green]running[/] on node {server['node_id']} with {where}: {server['ws_url']}",
                          soft_wrap=True)
        code = 0
        if server["status"] == "running" and replace is not None:
            from cli.replace import replace as move_rooms

            code, server["replaced"] = move_rooms(client, replace, server["id"], quiet=as_json)
    if as_json:
        print(json.dumps(server))
    if server["status"] == "running":
        return code
    err.print(f"[red]{server['status']}[/]: {server.get('error') or ''}")
    print_findings(server.get("analysis"), None if content_type == GZIP else source.decode(errors="replace"))
    return 1


GZIP = "application/gzip"


def project_upload(settings: Settings, path: Path) -> tuple[bytes, str, str] | None:
    """(bytes, file name, content type) `gsf deploy` sends: a module file as it is; a project
    (folder, .zip, .tar.gz, .ts) read and checked here as the API will (core/archives.py), then
    sent as its canonical .tar.gz. None (the reason printed) when the project is refused."""
    from cli.project import is_project
    from core.archives import canonical_archive, project_limits, read_project
    from core.errors import GsfError

    if not is_project(path):
        return path.read_bytes(), path.name, "application/javascript"
    try:
        project = read_project(path, project_limits(settings))
    except GsfError as exc:
        err.print(f"gsf deploy: {path}: {exc.detail} ({exc.slug})", markup=False, highlight=False)
        return None
    name = path.resolve().name if path.is_dir() else path.name
    stem = re.sub(r"\.(zip|tar\.gz|tgz|[cm]?ts)$", "", name) or "project"
    err.print(f"project {name}: entry {project.entry}, {len(project.files)} files, "
              f"{len(project.dependencies)} npm packages", markup=False, highlight=False)
    return canonical_archive(project), f"{stem}.tar.gz", GZIP


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
        items = list_items(client, "/api/v1/servers")
    if as_json:
        print(json.dumps({"items": items, "count": len(items), "next_offset": None}))
        return 0
    # Short ids unique among the live servers: the set `gsf server <prefix>` looks in first.
    short = short_ids(s["id"] for s in items)
    # At 80 columns the id, the address and the short columns stay whole; name, game and node fold.
    table = compact_table(id_column(), fold_column("name"), fold_column("game"), Column("status", no_wrap=True),
                          fold_column("node"), url_column("address"), Column("age", no_wrap=True))
    for s in items:
        table.add_row(short[s["id"]], s["name"], s["game"], s["status"], s["node_id"] or "", s["ws_url"] or "",
                      age(s["created_at"]))
    console.print(table)
    return 0


def show(settings: Settings, server_id: str) -> int:
    with make_client(settings) as client:
        server_id = resolve_server(client, server_id)
        try:
            server = call(client, "GET", f"/api/v1/servers/{server_id}")
        except ApiError as exc:
            err.print(f"[red]{exc}[/]")
            return 1
        output = []
        if server["status"] == "failed":  # what the last container printed: why it failed
            with contextlib.suppress(ApiError):
                output = call(client, "GET", f"/api/v1/servers/{server_id}/logs", params={"tail": 20})["lines"]
    for key in ("id", "name", "game", "status", "node_id", "ws_url", "max_players", "max_rooms", "image",
                "workflow_url", "created_at", "updated_at", "error"):
        # A value of several lines (the error, with the container's last lines) stays in its column.
        text = str(server.get(key) or "").replace("\n", "\n" + " " * 13)
        console.print(f"{key:12} {text}", markup=False, highlight=False, soft_wrap=True)
    table = Table("seq", "at", "status", "message")
    for e in server["events"]:
        table.add_row(str(e["seq"]), e["at"][:23], e["status"], Text(e["message"]))
    console.print(table)
    if output:
        console.print(f"last output (gsf logs {server['id']}):", style="bold")
        for line in output:
            console.print(f"  {line['ts'][:23]} {line['line']}", markup=False, highlight=False, soft_wrap=True)
    return 0


def log_line(line: dict[str, Any]) -> Text:
    # The game's own text: never read as markup.
    return Text.assemble((line["ts"][:23], "dim"), " ", line["line"])


def logs(settings: Settings, server_id: str, tail: int, follow: bool) -> int:
    with make_client(settings) as client:
        server_id = resolve_server(client, server_id)
        if not follow:
            try:
                page = call(client, "GET", f"/api/v1/servers/{server_id}/logs", params={"tail": tail})
            except ApiError as exc:
                err.print(f"[red]{exc}[/]")
                return 1
            for line in page["lines"]:
                console.print(log_line(line), highlight=False)
            return 0
        # NDJSON, one line per log line (without this Accept, follow streams Server-Sent Events).
        resp = send(client, "GET", f"/api/v1/servers/{server_id}/logs", stream=True,
                    params={"tail": tail, "follow": True}, headers={"Accept": "application/x-ndjson"}, timeout=None)
        try:
            if resp.status_code >= 400:
                err.print(resp.read().decode(errors="replace")[:300], style="red", markup=False)
                return 1
            for raw in resp.iter_lines():
                if raw:
                    console.print(log_line(json.loads(raw)), highlight=False)
        finally:
            resp.close()
    return 0


def stop(settings: Settings, server_id: str, delete: bool) -> int:
    with make_client(settings) as client:
        server_id = resolve_server(client, server_id)
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
    # Node ids are names an admin gave (`local`, `eu-1`): printed whole.
    table = compact_table(id_column(), "status", "online", "servers", "cpu %", "memory %", "labels",
                          "last heartbeat")
    for n in page["items"]:
        m = n.get("metrics") or {}
        table.add_row(n["id"], n["status"], "yes" if n["online"] else "[red]no[/]", str(n["servers"]),
                      str(m.get("cpu_percent", "")), str(m.get("memory_percent", "")),
                      ",".join(f"{k}={v}" for k, v in (n["labels"] or {}).items()), (n["last_online"] or "")[:19])
    console.print(table)
    return 0


def node_drain(settings: Settings, node_id: str, reason: str, wait: float) -> int:
    """Drain a node (its servers stop, their durable rooms move); with `wait`, a bar of the servers
    still on it until none is left or `wait` seconds have passed."""
    with make_client(settings) as client:
        try:
            drained = call(client, "POST", f"/api/v1/nodes/{node_id}/drain", json={"reason": reason})
        except ApiError as exc:
            err.print(f"[red]{exc}[/]")
            return 1
        total = len(drained["servers"])
        err.print(f"node {node_id}: maintenance; stopping {total} server(s)", markup=False, highlight=False)
        if not total or wait <= 0:
            return 0
        deadline = time.monotonic() + wait
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                      console=err, transient=False) as progress:
            task = progress.add_task("stopping", total=total)
            while True:
                left = call(client, "GET", f"/api/v1/nodes/{node_id}")["servers"]
                progress.update(task, completed=total - min(left, total), description=f"{left} server(s) left")
                if not left:
                    return 0
                if time.monotonic() > deadline:
                    err.print(f"node {node_id}: {left} server(s) still stopping after {wait:g} s")
                    return 1
                time.sleep(0.5)


def node_status(settings: Settings, node_id: str, status: str, reason: str) -> int:
    with make_client(settings) as client:
        try:
            node = call(client, "PUT", f"/api/v1/nodes/{node_id}/status", json={"status": status, "reason": reason})
        except ApiError as exc:
            err.print(f"[red]{exc}[/]")
            return 1
    err.print(f"node {node_id}: {node['status']}", markup=False, highlight=False)
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
    with make_client(settings) as client:
        if node and "=" not in node:
            body["node_id"] = resolve_id(client, "node", node, "/api/v1/nodes")
        try:
            run = call(client, "POST", "/api/v1/pipelines", json=body)
        except ApiError as exc:
            err.print(f"[red]pipeline refused ({exc.status}):[/] {exc}")
            for e in exc.body.get("errors", []):
                err.print(f"  {e['loc']}: {e['msg']}")
            return 1
        console.print(f"pipeline {run['id']}  workflow {run['workflow_url']}", soft_wrap=True)
        if not wait:
            return 0
        run = follow_pipeline(client, run["id"])
    return 0 if run["status"] == "succeeded" else 1


def pipeline_action(settings: Settings, action: str, run_id: str, variables: list[str] | None = None) -> int:
    with make_client(settings) as client:
        run_id = resolve_pipeline(client, run_id)
        try:
            if action == "status":
                run = follow_pipeline(client, run_id)
                return 0 if run["status"] == "succeeded" else 1
            if action == "logs":
                for line in call(client, "GET", f"/api/v1/pipelines/{run_id}/logs")["lines"]:
                    console.print(Text.assemble((f"{line['step']}:{line['name']}", "dim"), " ", line["line"]),
                                  highlight=False)
                return 0
            body = {"variables": dict(v.split("=", 1) for v in variables or [])} if action == "resume" else None
            run = call(client, "POST", f"/api/v1/pipelines/{run_id}/{action}", json=body)
            console.print(f"{run['id']}: {run['status']}")
            run = follow_pipeline(client, run_id)
        except ApiError as exc:
            err.print(f"[red]{exc}[/]")
            return 1
    return 0 if run["status"] in ("succeeded", "cancelled") else 1
