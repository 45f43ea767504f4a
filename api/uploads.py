"""Checks shared by the routes that take a game module upload (servers, game versions)."""

from __future__ import annotations

import re
from typing import Any

from fastapi import UploadFile

from analysis import invalid_allow_rules
from analysis.rules import FIXED_RULES, RULES
from core.db.models import User
from core.errors import Forbidden, InvalidAllowList, InvalidUpload, NotText, UploadTooLarge
from core.settings import Settings

# What the checks below refuse, said in the schema of a game module upload: text with at least one
# character that is neither ASCII whitespace nor NUL, and no NUL anywhere (UTF-8 is the encoding of
# every multipart text part). The size limit is GSF_MAX_UPLOAD_BYTES (413 beyond it).
GAME_MODULE_SCHEMA: dict[str, Any] = {"minLength": 1, "pattern": "^[^\\u0000]*[^\\t\\n\\u000b\\f\\r \\u0000][^\\u0000]*$"}
# The file part's name carries the module kind (.js, .mjs, .cjs); `encoding` says which name to send.
GAME_MODULE_FILENAME = 'form-data; name="file"; filename="game.js"'


def game_module_upload(fields: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The `openapi_extra` of a route taking a game module: the file part's name and type."""
    return {"requestBody": {"content": {"multipart/form-data": {"encoding": {"file": {
        "contentType": "text/javascript",
        "headers": {"Content-Disposition": {"schema": {"type": "string", "example": GAME_MODULE_FILENAME}}}},
        **fields}}}}}


# Allow lists: comma-separated ids of rules that may be allowed (unknown or fixed ones are a 422).
_ALLOWABLE = "|".join(r for r in sorted(set(RULES) - FIXED_RULES) if re.fullmatch(r"[a-z0-9-]+", r))
ALLOW_RULES_SCHEMA: dict[str, Any] = {"pattern": f"^(?:(?:{_ALLOWABLE})(?:,(?:{_ALLOWABLE}))*)?$"}


async def read_game_module(file: UploadFile, settings: Settings) -> bytes:
    """The uploaded module's bytes: a .js/.mjs/.cjs file, not empty, UTF-8 text within the upload limit."""
    if file.filename and not re.search(r"\.(c|m)?js$", file.filename):
        raise InvalidUpload("the upload must be a JavaScript module (.js, .mjs or .cjs)")
    source = await read_source(file, settings)
    if not source.strip():
        raise InvalidUpload("the upload is empty")
    return source


async def read_source(file: UploadFile, settings: Settings) -> bytes:
    """The upload's bytes, refused over the upload limit and unless they are UTF-8 text without
    a NUL byte: what no JavaScript engine would load is refused here, not later by the analyzer."""
    source = await file.read(settings.max_upload_bytes + 1)
    if len(source) > settings.max_upload_bytes:
        raise UploadTooLarge(f"the game module is larger than {settings.max_upload_bytes} bytes")
    if (nul := source.find(b"\0")) >= 0:
        raise NotText(f"the upload holds a NUL byte at offset {nul}: a binary, not source text")
    try:
        source.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotText(f"the upload is not UTF-8 text (byte {exc.start} cannot be decoded)") from None
    return source


def allowed_rules(allow_rules: str, user: User) -> list[str]:
    """The analysis rules an upload allows: comma-separated ids, admins only, allowable ones only."""
    allow = [r.strip() for r in allow_rules.split(",") if r.strip()]
    if allow and not user.is_admin:
        raise Forbidden("only an admin may allow analysis rules")
    if bad := invalid_allow_rules(allow):
        raise InvalidAllowList(f"allow_rules: unknown rules or rules that cannot be allowed: {', '.join(bad)}")
    return allow
