"""Checks shared by the routes that take a game upload (servers, game versions): one module file,
or a project (issue #24) as a .zip or .tar.gz, read by core/archives.py."""

from __future__ import annotations

import asyncio
import posixpath
import re
from dataclasses import dataclass
from typing import Any

from fastapi import UploadFile

from analysis import invalid_allow_rules
from analysis.rules import FIXED_RULES, RULES
from core.archives import (
    TYPESCRIPT_SUFFIXES,
    Project,
    canonical_archive,
    is_archive,
    project_limits,
    read_archive,
)
from core.db.models import User
from core.errors import Forbidden, InvalidAllowList, InvalidUpload, NotText, ProjectTooLarge, UploadTooLarge
from core.settings import Settings

# What a deployment of a project records as its file name (the stored source is the project's
# canonical .tar.gz; the analysis and the image build know it by its content, not by this name).
PROJECT_FILENAME = "project.tar.gz"
_ARCHIVE_SUFFIX = re.compile(r"\.(zip|tar\.gz|tgz)$", re.I)

# What the checks below refuse, said in the schema of a game module upload: text with at least one
# character that is neither ASCII whitespace nor NUL, and no NUL anywhere (UTF-8 is the encoding of
# every multipart text part). The size limit is GSF_MAX_UPLOAD_BYTES (413 beyond it).
GAME_MODULE_SCHEMA: dict[str, Any] = {
    "minLength": 1, "pattern": "^[^\\u0000]*[^\\t\\n\\u000b\\f\\r \\u0000][^\\u0000]*$"}
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
    return check_source(await file.read(settings.max_upload_bytes + 1), settings)


def check_source(source: bytes, settings: Settings) -> bytes:
    """`read_source`'s checks on bytes already read."""
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


def module_filename(filename: str | None) -> str:
    """The upload's extension decides CommonJS (.js/.cjs) or ES module (.mjs)."""
    name = (filename or "game.js").rsplit("/", 1)[-1]
    return "game.mjs" if name.endswith(".mjs") else "game.cjs" if name.endswith(".cjs") else "game.js"


@dataclass(frozen=True)
class GameUpload:
    """A checked upload: `source` is what is stored (the module's bytes, or the project's canonical
    .tar.gz), `filename` what the deployment records, `project` the project (None: one module file)."""

    source: bytes
    filename: str
    project: Project | None = None

    @property
    def game_name(self) -> str | None:
        """The project's package.json `name` (without an npm scope), if it has one."""
        manifest = self.project.manifest if self.project is not None else None
        name = manifest.get("name") if manifest is not None else None
        return name.rsplit("/", 1)[-1] if isinstance(name, str) and name.strip() else None


def upload_stem(filename: str | None) -> str:
    """`mygame.zip` -> `mygame`, `game.js` -> `game`: the name a game gets from its file."""
    name = (filename or "game.js").replace("\\", "/").rsplit("/", 1)[-1]
    name = _ARCHIVE_SUFFIX.sub("", name)
    return re.sub(r"\.(c|m)?[jt]s$", "", name)


async def read_game_upload(file: UploadFile, settings: Settings) -> GameUpload:
    """A game module (today's checks, unchanged) or a project: a .zip/.tar.gz (recognized by its
    bytes) or a TypeScript file. A project is refused with problem+json when unsafe
    (`unsafe-archive`), over its limits (`project-too-large`) or without an entry (`invalid-project`);
    an archive of one plain module file and nothing else is that module file."""
    head = await file.read(4)
    await file.seek(0)
    name = posixpath.basename((file.filename or "").replace("\\", "/"))
    if not is_archive(head) and not name.endswith(TYPESCRIPT_SUFFIXES):
        source = await read_game_module(file, settings)
        return GameUpload(source, module_filename(file.filename))
    limits = project_limits(settings)
    data = await file.read(limits.max_total_bytes + 1)
    if len(data) > limits.max_total_bytes:
        raise ProjectTooLarge(f"the upload is larger than the project limit of {limits.max_total_bytes:,} bytes")
    project = await asyncio.to_thread(read_archive, data, name or PROJECT_FILENAME, limits)
    if project.manifest is None and list(project.files) == [project.entry] \
            and project.entry.endswith((".js", ".mjs", ".cjs")):
        source = check_source(project.files[project.entry], settings)
        if not source.strip():
            raise InvalidUpload("the upload is empty")
        return GameUpload(source, module_filename(project.entry))
    return GameUpload(await asyncio.to_thread(canonical_archive, project), PROJECT_FILENAME, project)
