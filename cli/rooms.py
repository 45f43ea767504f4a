"""`gsf rooms` and `gsf rooms <id>`: the matchmaker's room list through the API (issue #22).

A server hosts many rooms; the list has one row per room with the server that hosts it, its
players and free seats. Room ids are the matchmaker's (`rm-` + 16 hex, or a server's id for its
first room); any unique prefix of one names it, as elsewhere in `gsf`.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from rich.table import Column
from rich.text import Text

from cli.client import (
    MAX_PAGES,
    PAGE,
    AmbiguousId,
    ApiError,
    call,
    compact_table,
    console,
    err,
    fold_column,
    id_column,
    make_client,
    short_ids,
)
from core.settings import Settings

ROOMS = "/api/v1/rooms"
METADATA_CHARS = 40  # a room's metadata in the table, on one line: the rest is in `gsf rooms <id>`


def list_rooms(client: httpx.Client, game: str | None = None) -> list[dict[str, Any]]:
    """Every listed room (of `game`), page after page by the matchmaker's cursor."""
    params: dict[str, str] = {"limit": str(PAGE), "sort": "created"}
    if game:
        params["game"] = game
    items: list[dict[str, Any]] = []
    for _ in range(MAX_PAGES):
        page = call(client, "GET", ROOMS, params=params)
        items.extend(page["items"])
        if not page.get("next_cursor") or not page["items"]:
            break
        params["cursor"] = page["next_cursor"]
    return items


def resolve_room(client: httpx.Client, ref: str) -> str:
    """The room id `ref` starts (the whole id when it names one); unknown refs go to the API as
    they are, which answers 404 for them."""
    rooms = list_rooms(client)
    if any(r["room_id"] == ref for r in rooms):
        return ref
    matches = [r for r in rooms if str(r["room_id"]).startswith(ref)]
    if len(matches) == 1:
        return str(matches[0]["room_id"])
    if matches:
        raise AmbiguousId("room", ref, [{"id": r["room_id"], "game": r["game"], "name": r["server_id"]}
                                        for r in matches])
    return ref


def _metadata(room: dict[str, Any]) -> str:
    text = json.dumps(room.get("metadata") or {}, separators=(",", ":"), sort_keys=True)
    if text == "{}":
        return ""
    return text if len(text) <= METADATA_CHARS else text[:METADATA_CHARS - 1] + "…"


def _state(room: dict[str, Any]) -> str:
    if room.get("status") and room["status"] != "open":
        return str(room["status"])  # pending: reserved, not created by its server yet
    return "locked" if room.get("locked") else "open" if room.get("ready", True) else "starting"


def _age(created_at: float | None, now: float) -> str:
    if not created_at:
        return ""
    seconds = max(0, int(now - created_at))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def rooms(settings: Settings, game: str | None, server: str | None, as_json: bool) -> int:
    """The room list: room, server, game, players/seats, free seats, state, metadata, age."""
    with make_client(settings) as client:
        try:
            items = list_rooms(client, game)
        except ApiError as exc:
            err.print(f"[red]rooms unavailable ({exc.status}):[/] {exc}")
            return 1
    if server:
        items = [r for r in items if str(r["server_id"]).startswith(server)]
    if as_json:
        print(json.dumps({"items": items, "count": len(items)}))
        return 0
    if not items:
        err.print("no rooms" + (f" of game {game}" if game else "") + (f" on server {server}" if server else ""))
        return 0
    room_ids = short_ids(r["room_id"] for r in items)
    server_ids = short_ids(r["server_id"] for r in items)
    now = time.time()
    table = compact_table(id_column("room"), id_column("server"), fold_column("game"),
                          Column("players", no_wrap=True, justify="right"), Column("free", justify="right"),
                          Column("state", no_wrap=True),
                          Column("metadata", no_wrap=True, overflow="ellipsis", max_width=20),
                          Column("age", no_wrap=True))
    for r in items:
        # Metadata is the game's own text: never read as markup.
        table.add_row(room_ids[r["room_id"]], server_ids[r["server_id"]], r["game"],
                      f"{r['players']}/{r['max_players']}", str(r["free_seats"]), _state(r),
                      Text(_metadata(r)), _age(r.get("created_at"), now))
    console.print(table)
    by_server = {r["server_id"] for r in items}
    console.print(f"{len(items)} room{'s' if len(items) != 1 else ''} on {len(by_server)} "
                  f"server{'s' if len(by_server) != 1 else ''}", style="dim")
    return 0


def room(settings: Settings, ref: str, as_json: bool) -> int:
    """One room: its server, seats, metadata, options and the game state of its last heartbeat."""
    with make_client(settings) as client:
        try:
            detail = call(client, "GET", f"{ROOMS}/{resolve_room(client, ref)}")
        except ApiError as exc:
            err.print(f"[red]{exc}[/]")
            return 1
    if as_json:
        print(json.dumps(detail))
        return 0
    fields = {
        "room_id": detail["room_id"], "server_id": detail["server_id"], "name": detail["name"],
        "game": detail["game"], "node_id": detail["node_id"], "ws_url": detail["ws_url"],
        "players": f"{detail['players']}/{detail['max_players']} ({detail['reserved']} reserved, "
                   f"{detail['free_seats']} free)",
        "state": _state(detail), "labels": ",".join(f"{k}={v}" for k, v in sorted(detail["labels"].items())),
        "metadata": json.dumps(detail.get("metadata") or {}, sort_keys=True),
        "options": json.dumps(detail.get("options") or {}, sort_keys=True),
        "age": _age(detail.get("created_at"), time.time()),
    }
    for key, value in fields.items():
        console.print(f"{key:10} {value}", markup=False, highlight=False, soft_wrap=True)
    if detail.get("state") is not None:
        console.print("state", style="bold")
        console.print(json.dumps(detail["state"], indent=2, sort_keys=True)[:8000], markup=False, highlight=False)
    return 0
