"""`gsf users list|create|delete` (admin) and `gsf keys list|create|revoke` (your keys; `--user` for an admin)."""

from __future__ import annotations

import json
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
)
from core.settings import Settings


def _refused(exc: ApiError) -> int:
    err.print(f"[red]refused ({exc.status}):[/] {exc}")
    for item in exc.body.get("unfinished", []):
        err.print(f"  {item['kind']} {item['id']}: {item['detail']}", markup=False, highlight=False)
    return 1


def _user_id(client: httpx.Client, ref: str) -> str:
    """A user's id from an id, a unique prefix of one, or an email."""
    if "@" not in ref:
        return resolve_id(client, "user", ref, "/api/v1/users")
    for user in call(client, "GET", "/api/v1/users"):
        if user["email"] == ref:
            return str(user["id"])
    raise ApiError(404, {"detail": f"no user with email {ref!r}"})


def _key_id(client: httpx.Client, ref: str, user_id: str | None) -> str:
    """A key's id from the id or a unique prefix of it, among the keys it would be revoked from."""
    return resolve_id(client, "key", ref, f"/api/v1/users/{user_id}/keys" if user_id else "/api/v1/keys")


def _when(value: str | None) -> str:
    return (value or "")[:19]


def users_list(settings: Settings, as_json: bool) -> int:
    with make_client(settings) as client:
        try:
            users = call(client, "GET", "/api/v1/users")
        except ApiError as exc:
            return _refused(exc)
    if as_json:
        print(json.dumps(users))
        return 0
    # Ids whole (never cut at 80 columns): any unique prefix of one is taken back too.
    table = compact_table(id_column(), "email", "name", "admin", "created", "deleted")
    for u in users:
        table.add_row(u["id"], u["email"], u["name"], "yes" if u["is_admin"] else "", _when(u["created_at"]),
                      f"[red]{_when(u['deleted_at'])}[/]" if u.get("deleted_at") else "")
    console.print(table)
    return 0


def users_create(settings: Settings, email: str, name: str, admin: bool, as_json: bool) -> int:
    with make_client(settings) as client:
        try:
            user = call(client, "POST", "/api/v1/users", json={"email": email, "name": name, "is_admin": admin})
        except ApiError as exc:
            return _refused(exc)
    if as_json:
        print(json.dumps(user))
        return 0
    console.print(f"user [bold]{user['email']}[/] ({user['id']}){' admin' if user['is_admin'] else ''}")
    console.print(f"key  {user['key']['key']}", highlight=False)
    err.print("the key is shown this once: hand it over now", style="dim")
    return 0


def users_delete(settings: Settings, ref: str) -> int:
    with make_client(settings) as client:
        try:
            gone = call(client, "DELETE", f"/api/v1/users/{_user_id(client, ref)}")
        except ApiError as exc:
            return _refused(exc)
    console.print(f"user {gone['user']['email']} deleted: {gone['keys_revoked']} keys revoked, "
                  f"{gone['servers']} servers, {gone['fleets']} fleets, {gone['pipelines']} pipeline runs stopped, "
                  f"{gone['webhooks_disabled']} webhooks disabled")
    return 0


def keys_list(settings: Settings, user: str | None, as_json: bool) -> int:
    with make_client(settings) as client:
        try:
            path = f"/api/v1/users/{_user_id(client, user)}/keys" if user else "/api/v1/keys"
            keys: list[dict[str, Any]] = call(client, "GET", path)
        except ApiError as exc:
            return _refused(exc)
    if as_json:
        print(json.dumps(keys))
        return 0
    table = compact_table(id_column(), "name", "prefix", "scopes", "created", "expires", "last used", "revoked")
    for k in keys:
        table.add_row(k["id"], k["name"], k["prefix"], ",".join(k["scopes"]), _when(k["created_at"]),
                      _when(k["expires_at"]), _when(k["last_used_at"]),
                      f"[red]{_when(k['revoked_at'])}[/]" if k["revoked_at"] else "")
    console.print(table)
    return 0


def keys_create(settings: Settings, name: str, scopes: list[str], expires_in_days: int | None, as_json: bool) -> int:
    body: dict[str, Any] = {"name": name, "expires_in_days": expires_in_days}
    if scopes:
        body["scopes"] = scopes
    with make_client(settings) as client:
        try:
            key = call(client, "POST", "/api/v1/keys", json=body)
        except ApiError as exc:
            return _refused(exc)
    if as_json:
        print(json.dumps(key))
        return 0
    console.print(f"key [bold]{key['id']}[/] ({','.join(key['scopes'])}): {key['key']}", highlight=False)
    err.print("the key is shown this once", style="dim")
    return 0


def keys_revoke(settings: Settings, key_id: str, user: str | None) -> int:
    with make_client(settings) as client:
        try:
            user_id = _user_id(client, user) if user else None
            key_id = _key_id(client, key_id, user_id)
            path = f"/api/v1/users/{user_id}/keys/{key_id}" if user_id else f"/api/v1/keys/{key_id}"
            call(client, "DELETE", path)
        except ApiError as exc:
            return _refused(exc)
    console.print(f"key {key_id} revoked")
    return 0
