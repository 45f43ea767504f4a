"""Checks shared by the routes that take a game module upload (servers, game versions)."""

from __future__ import annotations

import re

from fastapi import UploadFile

from core.analysis import invalid_allow_rules
from core.db.models import User
from core.errors import Forbidden, InvalidAllowList, InvalidUpload, UploadTooLarge
from core.settings import Settings


async def read_game_module(file: UploadFile, settings: Settings) -> bytes:
    """The uploaded module's bytes: a .js/.mjs/.cjs file, not empty, within the upload limit."""
    if file.filename and not re.search(r"\.(c|m)?js$", file.filename):
        raise InvalidUpload("the upload must be a JavaScript module (.js, .mjs or .cjs)")
    source = await file.read(settings.max_upload_bytes + 1)
    if len(source) > settings.max_upload_bytes:
        raise UploadTooLarge(f"the game module is larger than {settings.max_upload_bytes} bytes")
    if not source.strip():
        raise InvalidUpload("the upload is empty")
    return source


def allowed_rules(allow_rules: str, user: User) -> list[str]:
    """The analysis rules an upload allows: comma-separated ids, admins only, allowable ones only."""
    allow = [r.strip() for r in allow_rules.split(",") if r.strip()]
    if allow and not user.is_admin:
        raise Forbidden("only an admin may allow analysis rules")
    if bad := invalid_allow_rules(allow):
        raise InvalidAllowList(f"allow_rules: unknown rules or rules that cannot be allowed: {', '.join(bad)}")
    return allow
