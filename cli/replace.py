"""`gsf deploy --replace OLD`: once the new server runs, the old one stops with its durable rooms
moved into the new one (`POST /servers/{old}/stop?drain_to=<new>`; another game version: a rolling
update, the new version's `onMigrate` runs). What moved and what stayed is read back from the old
server's history: the drain's note (`migrated` / `drained`) and, when the new version refused rooms,
the `migrate_failed` transition that keeps them (and the old server) on the old version."""

from __future__ import annotations

from typing import Any

import httpx

from cli.client import ApiError, call, console, err, waiting

MOVE_EVENTS = ("migrated", "drained")


def _event(e: dict[str, Any]) -> str:
    return str((e.get("detail") or {}).get("event") or "")


def outcome(events: list[dict[str, Any]], after_seq: int) -> dict[str, Any]:
    """What the stop did with the durable rooms, from the events newer than `after_seq`:
    `moved` [{room_id, to, players, seq, ...}], `stayed` {room id: why}, `not_moved` [room id],
    `from_version` ('' when both run the same version), `note` (why nothing moved, if so)."""
    fresh = [e for e in events if int(e.get("seq", 0)) > after_seq]
    moves = [e for e in fresh if _event(e) in MOVE_EVENTS]
    detail: dict[str, Any] = (moves[-1].get("detail") or {}) if moves else {}
    stayed: dict[str, str] = {}
    for e in fresh:
        if _event(e) == "migrate_failed":
            stayed.update({str(k): str(v) for k, v in ((e.get("detail") or {}).get("rooms") or {}).items()})
    failed = {str(k): str(v) for k, v in (detail.get("failed") or {}).items()}
    notes = [str(e.get("message") or "") for e in fresh if _event(e) == "drain_failed"]
    return {"moved": list(detail.get("rooms") or []), "stayed": stayed or failed,
            "not_moved": [str(r) for r in detail.get("not_moved") or []],
            "from_version": str(detail.get("from_version") or ""), "note": notes[-1] if notes else ""}


def replace(client: httpx.Client, old_id: str, new_id: str, quiet: bool = False) -> tuple[int, dict[str, Any]]:
    """Stop `old_id` into `new_id`; (exit code, report): 1 when some room did not move."""
    try:
        before = call(client, "GET", f"/api/v1/servers/{old_id}")
        after_seq = max((int(e["seq"]) for e in before.get("events") or []), default=0)
        with waiting(f"moving the durable rooms of {old_id} into {new_id}"):
            stopped = call(client, "POST", f"/api/v1/servers/{old_id}/stop", params={"drain_to": new_id})
        server = call(client, "GET", f"/api/v1/servers/{old_id}")
    except ApiError as exc:
        reasons = "; ".join(str(e.get("msg")) for e in exc.body.get("errors") or [])
        err.print(f"[red]replace refused ({exc.status}):[/] {exc}" + (f": {reasons}" if reasons else ""),
                  soft_wrap=True)
        return 1, {"server_id": old_id, "error": str(exc)}
    report = {"server_id": old_id, "status": stopped["status"], **outcome(server.get("events") or [], after_seq)}
    if not quiet:
        print_report(report, new_id)
    return (1 if report["stayed"] or report["not_moved"] else 0), report


def print_report(report: dict[str, Any], new_id: str) -> None:
    old = report["server_id"]
    version = f" (migrated from version {report['from_version']})" if report["from_version"] else ""
    if report["moved"]:
        console.print(f"moved {len(report['moved'])} durable room(s) from {old} to {new_id}{version}:",
                      soft_wrap=True, markup=False)
        for room in report["moved"]:
            players = ", ".join(room.get("players") or []) or "no players"
            console.print(f"  {room.get('room_id')} -> {room.get('to')}: {players} (snapshot {room.get('seq')})",
                          soft_wrap=True, markup=False, highlight=False)
    elif not report["stayed"] and not report["not_moved"]:
        console.print(report["note"] or f"{old}: no durable room to move", soft_wrap=True, markup=False)
    if report["stayed"]:
        err.print(f"{len(report['stayed'])} durable room(s) stay on {old}, the old version:", style="yellow",
                  soft_wrap=True, markup=False)
        for room_id, why in sorted(report["stayed"].items()):
            err.print(f"  {room_id}: {why}", soft_wrap=True, markup=False, highlight=False)
    if report["not_moved"]:
        err.print(f"not moved (no server had room for them): {', '.join(report['not_moved'])}", style="yellow",
                  soft_wrap=True, markup=False)
    console.print(f"{old}: {report['status']}", soft_wrap=True, markup=False)
