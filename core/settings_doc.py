"""Render docs/settings.md from the Settings class: `python -m core.settings_doc > docs/settings.md`.

Names, types, defaults and sections come from `core.settings.Settings`: a section per settings group
it inherits, in that order, headed and introduced by the group's docstring; the one-line meanings
come from `Field(description=...)` or, until a field has one, from DESCRIPTIONS below. A field
without a meaning is an error, so the page cannot fall behind.
"""

from __future__ import annotations

import argparse
import enum
import inspect
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo

from core.settings import GroupSettings, Settings

DOC_PATH = Path(__file__).resolve().parent.parent / "docs" / "settings.md"

DESCRIPTIONS: dict[str, str] = {
    "env": "`production` refuses to start without a real `GSF_SECRET_KEY`; `test` is what the test suite uses",
    "data_dir": "the embedded state: SQLite database, Temporal file, artifacts, logs, `secret.key`, `admin.key`; "
                "made absolute at start",
    "database_url": "SQLAlchemy async URL of the platform records; empty: `sqlite+aiosqlite:///<data_dir>/gsf.db`. "
                    "PostgreSQL: `postgresql+asyncpg://user:password@host/db`",
    "temporal_address": "host:port of the Temporal frontend; `gsf up` starts a dev server here unless one answers "
                        "(port 0: on a free port)",
    "temporal_namespace": "Temporal namespace of every workflow",
    "temporal_ui_url": "base of the Temporal Web UI links in API answers and the console",
    "temporal_ui_port": "port of the Web UI of the dev server `gsf up` starts (0: a free port)",
    "temporal_tls_cert": "client certificate file (mTLS); with `GSF_TEMPORAL_TLS_KEY`",
    "temporal_tls_key": "client key file (mTLS)",
    "temporal_tls_ca": "CA file that signed the Temporal server's certificate",
    "temporal_api_key": "API key (Temporal Cloud); switches TLS on",
    "control_queue": "task queue of the control worker; side-by-side installs and tests use their own",
    "api_host": "address the API binds to",
    "api_port": "port of the API and the web console (0: `gsf up` picks a free one, prints it and writes it to "
                "`<data>/endpoints.json`)",
    "public_api_url": "how agents and the CLI reach the API; empty: `http://<api_host>:<api_port>`",
    "matchmaker_host": "address the matchmaker binds to",
    "matchmaker_port": "port of the matchmaker (0: as for `GSF_API_PORT`)",
    "matchmaker_url": "how the API and agents reach the matchmaker; empty: `http://<matchmaker_host>:<matchmaker_port>`",
    "redis_url": "Redis of the matchmaker's room registry (and of the model status cache); empty: in-process store",
    "secret_key": "signs seat tokens (per-server keys are derived from it), node tokens and agent keys; empty outside "
                  "production: generated once into `<data_dir>/secret.key`. Every process must share it",
    "node_id": "this agent's node id; its task queue is `gsf-node-<node_id>`",
    "node_name": "display name of the node; empty: the node id",
    "node_labels": "labels this node offers to `node_selector`s, as JSON: `{\"region\": \"eu\"}`",
    "public_host": "the address players reach this node's game servers at (goes into `ws_url`)",
    "publish_host": "the host address game ports are published on (`0.0.0.0` to serve players on other machines)",
    "agent_heartbeat_seconds": "agent heartbeat period; a node is offline after three missed heartbeats",
    "game_network": "Docker bridge of the game containers (no traffic between containers, no masquerade)",
    "base_image": "Node.js base of every game image",
    "build_base_image_locally": "make `base_image` from this host's `node` instead of pulling it (offline machines)",
    "server_memory_mb": "memory limit of the `standard` plan (no swap); `small` gets half, `large` double",
    "server_cpus": "CPU limit (cores) of the `standard` plan; `small` gets half, `large` double",
    "server_pids": "process and thread limit of the `standard` plan; `large` gets double",
    "server_tmpfs_mb": "size of each game container's `/tmp` (tmpfs, `noexec`)",
    "server_nofile": "open-file limit (`nofile` ulimit) of a game container",
    "server_log_max_size": "Docker log rotation size per file of a game container",
    "server_log_max_files": "Docker log files kept per game container",
    "plans": "resource plans as JSON, `{\"name\": {\"memory_mb\": 256, \"cpus\": 1, \"pids\": 64}}`; empty: "
             "`small`, `standard`, `large` from the `server_*` values. A plan below the runtime's floors "
             "(64 MiB, 0.05 CPU, 32 pids: `core/limits.py`) stops every process at start",
    "default_plan": "plan of an upload that names none",
    "max_server_memory_mb": "largest `memory_mb` an upload may ask for",
    "max_server_cpus": "largest `cpus` an upload may ask for",
    "max_server_pids": "largest `pids` an upload may ask for",
    "restart_limit": "crashes of a game server that are restarted before it ends as `failed`",
    "ready_timeout_seconds": "how long a new container has to answer `/health` with 200",
    "idle_timeout_seconds": "stop a server after this long without players; 0: never. An upload's `idle_timeout` wins",
    "pipeline_exec_allowed": "programs an `exec` pipeline step may run inside a game container, as JSON list",
    "node_schedule_to_start_seconds": "a node that does not pick up its work within this long is treated as lost; "
                                      "the work is placed elsewhere",
    "max_upload_bytes": "largest game module upload (also the analyzer's `input-too-large` limit)",
    "max_json_bytes": "largest request body of other API routes",
    "analysis_max_depth": "deepest nesting of brackets the analyzer accepts (`too-deep`)",
    "analysis_time_budget_seconds": "time budget of one analysis (`time-budget`)",
    "seat_reservation_seconds": "life of a seat reservation and of its seat token",
    "room_ttl_seconds": "a room whose heartbeats stop is dropped from the room list after this long",
    "admin_email": "e-mail of the admin user `gsf up` creates on the first start",
    "tripo_api_key": "Tripo API key (`tsk_...`) of the 3D-model proxy; read by the control worker only",
    "tripo_base_url": "Tripo API base URL (point it at `gsf fake-tripo` for local work)",
    "tripo_timeout_seconds": "timeout of one Tripo HTTP call",
    "tripo_concurrency": "Tripo tasks running at once per API key",
    "tripo_poll_initial_seconds": "first wait between status polls of a Tripo task",
    "tripo_poll_max_seconds": "longest wait between status polls (backoff cap)",
    "tripo_deadline_seconds": "a model job that has not finished after this long fails",
    "max_image_bytes": "largest image upload of `POST /api/v1/models`",
    "max_model_bytes": "largest GLB file downloaded from Tripo",
    "object_store": "where artifacts (sources, images, GLB files) live: `local` (`<data_dir>/artifacts`) or `s3`",
    "s3_endpoint_url": "S3-compatible endpoint, e.g. `https://cos.ap-guangzhou.myqcloud.com` (Tencent COS)",
    "s3_bucket": "bucket name (Tencent COS: `<name>-<appid>`)",
    "s3_region": "bucket region",
    "s3_access_key": "access key id",
    "s3_secret_key": "secret access key",
    "s3_addressing_style": "`virtual` (bucket in the host name), `path`, or `auto`",
    "s3_presign_seconds": "life of the pre-signed download URLs of model results",
    "model_status_cache_ttl": "seconds a model job's status stays in the Redis cache",
    "model_status_cache_prefix": "Redis key prefix of the model status cache",
}


def groups() -> list[tuple[str, str, list[str]]]:
    """(heading, introduction, field names) of each settings group `Settings` inherits, in its order."""
    out = []
    for group in Settings.__bases__:
        if not issubclass(group, GroupSettings):
            continue
        title, _, intro = (inspect.getdoc(group) or "").partition("\n")
        if not title:
            raise ValueError(f"{group.__name__} has no docstring: its first line is its section's heading")
        out.append((title.strip().rstrip("."), intro.strip(), list(group.model_fields)))
    named = [name for _, _, names in out for name in names]
    if stray := sorted(set(Settings.model_fields) - set(named)):
        raise ValueError(f"settings outside every group (declare them in a group of core/settings/): "
                         f"{', '.join(stray)}")
    if twice := sorted({name for name in named if named.count(name) > 1}):
        raise ValueError(f"settings declared by more than one group: {', '.join(twice)}")
    return out


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join(_type_name(a) for a in args)}]"
    if annotation is type(None):
        return "none"
    if isinstance(annotation, type):
        return "path" if issubclass(annotation, Path) else annotation.__name__
    return str(annotation)


def _default(field: FieldInfo) -> str:
    factory = field.default_factory
    value = factory() if factory is not None else field.default  # type: ignore[call-arg]
    if value is None or value == "":
        return "—"
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, (dict, list)):
        return f"`{json.dumps(value)}`"
    return f"`{value}`"


def _constraints(field: FieldInfo) -> str:
    parts = []
    for item in field.metadata:
        for attr, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            bound = getattr(item, attr, None)
            if bound is not None:
                parts.append(f"{sign} {bound}")
    return f" ({', '.join(parts)})" if parts else ""


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render() -> str:
    """The whole Markdown page."""
    prefix = str(Settings.model_config.get("env_prefix", ""))
    missing = [name for name, f in Settings.model_fields.items() if not (f.description or DESCRIPTIONS.get(name))]
    if missing:
        raise ValueError(f"settings without a description (add one to core/settings_doc.py): {', '.join(missing)}")
    stale = sorted(set(DESCRIPTIONS) - set(Settings.model_fields))
    if stale:
        raise ValueError(f"descriptions of settings that no longer exist: {', '.join(stale)}")
    out = [
        "# Settings reference",
        "",
        ("<!-- Generated by `python -m core.settings_doc > docs/settings.md` from core/settings/;"
         " tests/docs fails when it is out of date. Do not edit by hand. -->"),
        "",
        f"Every gsf process reads one settings class, `core.settings.Settings`, from `{prefix}*` environment",
        "variables (nothing else reads the environment). Values are parsed by pydantic: booleans are",
        "`true`/`false`/`1`/`0`, lists and mappings are JSON (`GSF_NODE_LABELS='{\"region\": \"eu\"}'`),",
        "paths are file names. An empty value keeps the default. Settings marked \"empty: ...\" are",
        "computed at start from the others when left empty. Each section below is one group of",
        "`Settings` (a class in `core/settings/` it inherits); the names stay flat all the same.",
        "",
    ]
    for title, intro, names in groups():
        out += [f"## {title}", "", *([intro, ""] if intro else []),
                "| variable | type | default | meaning |", "| --- | --- | --- | --- |"]
        for name in names:
            field = Settings.model_fields[name]
            meaning = field.description or DESCRIPTIONS[name]
            out.append(f"| `{prefix}{name.upper()}` | {_cell(_type_name(field.annotation))}{_constraints(field)} "
                       f"| {_cell(_default(field))} | {_cell(meaning)} |")
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.settings_doc", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help=f"exit 1 when {DOC_PATH.name} is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = DOC_PATH.read_text() if DOC_PATH.exists() else ""
        if current != text:
            print(f"{DOC_PATH} is out of date: run `python -m core.settings_doc > docs/settings.md`",
                  file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
