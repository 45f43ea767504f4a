"""`gsf users` and `gsf keys` against a running API (the harness's, in this test's event loop). Here, not in
tests/cli/: that folder is held to opening no platform database."""

from __future__ import annotations

import json

import pytest
from typer.testing import Result

from tests.harness import Harness

pytestmark = [pytest.mark.temporal]


async def gsf(h: Harness, key: str, *args: str) -> Result:
    return await h.cli(key, *args, columns=200)


async def test_users_and_keys_commands(h: Harness) -> None:
    root = await h.user_key("root@example.com", admin=True)
    made = await gsf(h, root, "users", "create", "ivy@example.com", "--name", "Ivy", "--json")
    assert made.exit_code == 0, made.output
    ivy = json.loads(made.stdout)
    ivy_key = ivy["key"]["key"]
    shown = await gsf(h, root, "users", "create", "jon@example.com")
    assert shown.exit_code == 0, shown.output
    assert "jon@example.com" in shown.stdout, shown.output
    assert "gsf_" in shown.stdout, shown.output
    listed = await gsf(h, root, "users", "list", "--json")
    assert {u["email"] for u in json.loads(listed.stdout)} == {"root@example.com", "ivy@example.com",
                                                               "jon@example.com"}
    assert (await gsf(h, ivy_key, "users", "list")).exit_code == 1, "a non-admin lists no users"

    # Her own keys: scopes within her key's, and no wider key from a narrower one.
    ci = await gsf(h, ivy_key, "keys", "create", "--name", "ci", "--scope", "models", "--json")
    assert ci.exit_code == 0, ci.output
    ci_key = json.loads(ci.stdout)
    assert ci_key["scopes"] == ["models"]
    wider = await gsf(h, ci_key["key"], "keys", "create", "--scope", "servers")
    assert wider.exit_code == 1, wider.output
    assert "403" in wider.output, wider.output
    table = await gsf(h, ivy_key, "keys", "list")
    assert table.exit_code == 0, table.output
    assert "ci" in table.stdout, table.output
    assert ci_key["id"] in table.stdout, table.output

    # An admin sees and revokes them, by email or id.
    theirs = await gsf(h, root, "keys", "list", "--user", "ivy@example.com", "--json")
    assert {k["name"] for k in json.loads(theirs.stdout)} == {"first", "ci"}
    revoked = await gsf(h, root, "keys", "revoke", ci_key["id"], "--user", ivy["id"])
    assert revoked.exit_code == 0, revoked.output
    assert (await gsf(h, ci_key["key"], "keys", "list")).exit_code == 1
    assert (await gsf(h, root, "keys", "revoke", ci_key["id"], "--user", "jon@example.com")).exit_code == 1

    deleted = await gsf(h, root, "users", "delete", "ivy@example.com")
    assert deleted.exit_code == 0, deleted.output
    assert "deleted" in deleted.stdout, deleted.output
    assert (await gsf(h, ivy_key, "keys", "list")).exit_code == 1
    after = json.loads((await gsf(h, root, "users", "list", "--json")).stdout)
    assert next(u for u in after if u["email"] == "ivy@example.com")["deleted_at"] is not None
    assert (await gsf(h, root, "users", "delete", "nobody@example.com")).exit_code == 1
