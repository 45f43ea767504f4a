"""`gsf fleets`, `gsf fleet create|scale|update|delete` and `gsf allocate` (issue #10)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from cli.client import (
    ApiError,
    call,
    compact_table,
    console,
    err,
    id_column,
    make_client,
    resolve_id,
    short_ids,
)
from core.settings import Settings


def _labels(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"gsf: expected key=value, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


def _refused(what: str, exc: ApiError) -> int:
    err.print(f"[red]{what} refused ({exc.status}):[/] {exc}")
    for e in exc.body.get("errors", []):
        err.print(f"  {'.'.join(str(x) for x in e['loc'])}: {e['msg']}")
    for f in exc.body.get("findings", []):
        err.print(f"  {f['severity']} {f['line']}:{f['column']} {f['rule']} {f['message']}")
    return 1


def _fleet(client: httpx.Client, ref: str) -> str:
    """A fleet's id from its name, id, or a unique prefix of its id (live fleets first)."""
    return resolve_id(client, "fleet", ref, "/api/v1/fleets", names=("name",),
                      passes=({}, {"include_deleted": "true"}))


def _upload(client: httpx.Client, game: str, file: Path) -> int:
    """Upload `file` as the next version of `game`; its version number."""
    version = call(client, "POST", "/api/v1/games", data={"name": game},
                   files={"file": (file.name, file.read_bytes(), "application/javascript")})
    console.print(f"game {game} version [bold]{version['version']}[/] ({version['source_sha256'][:12]})")
    return int(version["version"])


def _counts(fleet: dict[str, Any]) -> str:
    c = fleet.get("counts") or {}
    return (f"{c.get('ready', 0)} ready, {c.get('allocated', 0)} allocated, {c.get('deploying', 0)} starting"
            + (f", {c['retiring']} stopping" if c.get("retiring") else ""))


def _size(fleet: dict[str, Any]) -> str:
    if fleet["replicas"] is not None:
        return f"{fleet['replicas']} replicas"
    return f"buffer {fleet['buffer']} ({fleet['min_size']}-{fleet['max_size']})"


def fleets(settings: Settings, as_json: bool) -> int:
    with make_client(settings) as client:
        page = call(client, "GET", "/api/v1/fleets")
    if as_json:
        print(json.dumps(page))
        return 0
    short = short_ids(f["id"] for f in page["items"])
    table = compact_table(id_column(), "name", "game", "version", "size", "servers", "status")
    for f in page["items"]:
        table.add_row(short[f["id"]], f["name"], f["game"], str(f["version"]), _size(f), _counts(f),
                      f["status"] + (" (no capacity)" if f["capacity_limited"] else ""))
    console.print(table)
    return 0


def fleet_create(settings: Settings, name: str, game: str, file: Path | None, version: int | None,
                 replicas: int | None, buffer: int | None, min_size: int, max_size: int | None, labels: list[str],
                 plan: str, on_empty: str, max_rooms: int | None = None, migrate_rooms: bool = False) -> int:
    body: dict[str, Any] = {"name": name, "game": game, "labels": _labels(labels), "plan": plan,
                            "on_empty": on_empty, "migrate_rooms": migrate_rooms}
    if max_rooms is not None:
        body["max_rooms"] = max_rooms
    if buffer is not None:
        body.update(buffer=buffer, min_size=min_size, max_size=max_size)
    else:
        body["replicas"] = 1 if replicas is None else replicas
    with make_client(settings) as client:
        try:
            if file is not None:
                version = _upload(client, game, file)
            if version is not None:
                body["version"] = version
            fleet = call(client, "POST", "/api/v1/fleets", json=body)
        except ApiError as exc:
            return _refused("fleet", exc)
    console.print(f"fleet [bold]{fleet['name']}[/] ({fleet['id']}): {fleet['game']} v{fleet['version']}, "
                  f"{_size(fleet)}\nworkflow {fleet['workflow_url']}", soft_wrap=True)
    return 0


def _patch(settings: Settings, fleet: str, body: dict[str, Any], game_file: Path | None = None) -> int:
    with make_client(settings) as client:
        fleet = _fleet(client, fleet)
        try:
            if game_file is not None:
                current = call(client, "GET", f"/api/v1/fleets/{fleet}")
                body["version"] = _upload(client, current["game"], game_file)
            updated = call(client, "PATCH", f"/api/v1/fleets/{fleet}", json=body)
        except ApiError as exc:
            return _refused("change", exc)
    console.print(f"fleet [bold]{updated['name']}[/]: v{updated['version']}, {_size(updated)}; {_counts(updated)}")
    return 0


def fleet_scale(settings: Settings, fleet: str, replicas: int | None, buffer: int | None, min_size: int | None,
                max_size: int | None) -> int:
    body = {k: v for k, v in {"replicas": replicas, "buffer": buffer, "min_size": min_size,
                              "max_size": max_size}.items() if v is not None}
    if not body:
        raise SystemExit("gsf: give --replicas, or --buffer/--min/--max")
    return _patch(settings, fleet, body)


def fleet_update(settings: Settings, fleet: str, version: int | None, file: Path | None, max_surge: str | None,
                 max_unavailable: str | None, on_empty: str | None, migrate_rooms: bool | None = None) -> int:
    body = {k: v for k, v in {"version": version, "max_surge": max_surge, "max_unavailable": max_unavailable,
                              "on_empty": on_empty, "migrate_rooms": migrate_rooms}.items() if v is not None}
    if not body and file is None:
        raise SystemExit("gsf: give --version or --file (a rolling update), or a rollout setting")
    return _patch(settings, fleet, body, file)


def fleet_delete(settings: Settings, fleet: str, force: bool) -> int:
    with make_client(settings) as client:
        fleet = _fleet(client, fleet)
        try:
            gone = call(client, "DELETE", f"/api/v1/fleets/{fleet}", params={"force": force})
        except ApiError as exc:
            return _refused("delete", exc)
    console.print(f"fleet {gone['name']}: {gone['status']}"
                  + ("" if force else " (allocated servers stop once their players leave)"))
    return 0


def allocate(settings: Settings, fleet: str | None, game: str | None, selector: list[str], players: int,
             wait: float, as_json: bool) -> int:
    if (fleet is None) == (game is None):
        raise SystemExit("gsf: give --fleet or --game")
    body: dict[str, Any] = {"selector": _labels(selector), "players": players, "wait_seconds": wait}
    with make_client(settings) as client:
        body.update({"fleet": _fleet(client, fleet)} if fleet is not None else {"game": game})
        try:
            got = call(client, "POST", "/api/v1/allocations", json=body)
        except ApiError as exc:
            if as_json:
                print(json.dumps(exc.body))
            else:
                err.print(f"[red]{exc.body.get('title', 'refused')}:[/] {exc}")
            return 1
    if as_json:
        print(json.dumps(got))
        return 0
    console.print(f"allocation [bold]{got['id']}[/]: server {got['server_id']} at {got['ws_url']}", soft_wrap=True)
    for seat in got["seats"]:  # a seat's URL carries its token: one line, to be copied whole
        console.print(f"  {seat['player_id']}  {seat['ws_url']}", highlight=False, soft_wrap=True)
    return 0
