"""Pipeline definitions: the YAML schema, the table of step types, validation and variables.

A pipeline (DESIGN §5) is YAML:

    name: platform-start
    description: ...
    variables: {server_id: null, source_sha256: null}     # name -> default (null = required)
    steps:
      - {type: build_image, name: build, params: {server_id: "${server_id}", ...}, timeout_seconds: 600}
    cleanup:                                              # run when the pipeline is cancelled or fails
      - {type: remove_container, params: {server_id: "${server_id}"}}
    pause_timeout_seconds: 86400                          # a failed step waits this long for resume

`${name}` refers to a variable, `${steps.<step name>.<field>}` to an earlier step's output.
A string that is exactly one reference keeps the referenced value's type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.contracts import (
    DeregisterServerInput,
    EmptyResult,
    EnsureImageInput,
    EnsureImageResult,
    ExecInput,
    NoopInput,
    PrepareNetworkInput,
    PullImageInput,
    RegisterServerInput,
    SleepInput,
    StartContainerInput,
    StartContainerResult,
    StepCaller,
    StepDef,
    StepResult,
    StopContainerInput,
    StopContainerResult,
    WaitReadyInput,
    WaitReadyResult,
    WriteConfigInput,
)
from core.errors import BadRequest, Forbidden, GsfError

if TYPE_CHECKING:
    from core.settings import Settings

PIPELINE_DIR = Path(__file__).resolve().parent.parent / "config" / "pipeline"
REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.-]*)\}")


@dataclass(frozen=True)
class StepSpec:
    """How a step type runs: its activity on the node's queue, typed input and result, heartbeat."""

    activity: str
    input: type[BaseModel]
    result: type[BaseModel]
    heartbeat: timedelta | None = timedelta(seconds=10)
    defaults: tuple[tuple[str, Any], ...] = ()


STEP_TYPES: dict[str, StepSpec] = {
    "noop": StepSpec("step_noop", NoopInput, StepResult, heartbeat=None),
    "sleep": StepSpec("step_sleep", SleepInput, StepResult, heartbeat=timedelta(seconds=5)),
    "pull_image": StepSpec("pull_image", PullImageInput, StepResult),
    "build_image": StepSpec("ensure_image", EnsureImageInput, EnsureImageResult),
    "prepare_network": StepSpec("prepare_network", PrepareNetworkInput, StepResult),
    "write_config": StepSpec("write_config", WriteConfigInput, StepResult),
    "start_container": StepSpec("start_container", StartContainerInput, StartContainerResult),
    "wait_ready": StepSpec("wait_ready", WaitReadyInput, WaitReadyResult),
    "register": StepSpec("register_with_matchmaker", RegisterServerInput, EmptyResult),
    "deregister": StepSpec("deregister_from_matchmaker", DeregisterServerInput, EmptyResult),
    "stop_container": StepSpec("stop_container", StopContainerInput, StopContainerResult),
    "remove_container": StepSpec("stop_container", StopContainerInput, StopContainerResult,
                                 defaults=(("remove", True),)),
    "exec": StepSpec("exec_in_container", ExecInput, StepResult),
}


class PipelineDef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    description: str = ""
    variables: dict[str, Any] = Field(default_factory=dict)
    steps: list[StepDef] = Field(min_length=1, max_length=100)
    cleanup: list[StepDef] = Field(default_factory=list, max_length=50)
    # A failed step pauses the run for `resume`; past this the run fails (cleanup runs). 0: fail at once.
    pause_timeout_seconds: float = Field(default=86_400.0, ge=0, le=30 * 86_400.0)


class PipelineInvalid(BadRequest):
    """A pipeline definition that cannot run; `errors` say where (step index and field)."""

    slug, status, title = "invalid-pipeline", 422, "Invalid pipeline"


class RegistryNotAllowed(Forbidden):
    """A `pull_image` of a registry that is not on the admin's list (`GSF_PIPELINE_REGISTRIES`)."""

    slug, status, title = "registry-not-allowed", 403, "Registry not allowed"


class PipelineQuotaExceeded(GsfError):
    """A pipeline that would make more volumes or networks on a node than one user may have."""

    slug, status, title = "pipeline-quota-exceeded", 429, "Pipeline quota exceeded"


def resolve(value: Any, variables: dict[str, Any], outputs: dict[str, dict[str, Any]],
            strict: bool = True) -> Any:
    """Substitute `${...}` references; unresolved ones raise KeyError when `strict`, else stay."""
    if isinstance(value, dict):
        return {k: resolve(v, variables, outputs, strict) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, variables, outputs, strict) for v in value]
    if not isinstance(value, str) or "${" not in value:
        return value

    def lookup(ref: str) -> Any:
        if ref.startswith("steps."):
            _, step, field = (ref.split(".", 2) + ["", ""])[:3]
            if step in outputs and field in outputs[step]:
                return outputs[step][field]
        elif ref in variables and variables[ref] is not None:
            return variables[ref]
        if strict:
            raise KeyError(ref)
        return "${" + ref + "}"

    whole = REF.fullmatch(value)
    if whole:
        return lookup(whole.group(1))
    return REF.sub(lambda m: str(lookup(m.group(1))), value)


def step_input(step: StepDef, variables: dict[str, Any], outputs: dict[str, dict[str, Any]]) -> BaseModel:
    """The typed activity input of a step, with references resolved (raises KeyError/ValidationError)."""
    spec = STEP_TYPES[step.type]
    params = {**dict(spec.defaults), **resolve(step.params, variables, outputs)}
    return spec.input.model_validate(params)


def parse(text: str) -> PipelineDef:
    """Parse and validate YAML; every problem is reported with its place (`steps[2].params.seconds`)."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise PipelineInvalid(f"not valid YAML{where}: {getattr(exc, 'problem', exc)}",
                              errors=[{"loc": [], "msg": "invalid YAML" + where}]) from None
    if not isinstance(doc, dict):
        raise PipelineInvalid("a pipeline is a YAML mapping with `name` and `steps`",
                              errors=[{"loc": [], "msg": "expected a mapping"}])
    try:
        pipeline = PipelineDef.model_validate(doc)
    except ValidationError as exc:
        errors = [{"loc": _loc(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        raise PipelineInvalid("; ".join(f"{e['loc']}: {e['msg']}" for e in errors[:5]), errors=errors) from None
    errors = []
    names: set[str] = set()
    for section in ("steps", "cleanup"):
        for index, step in enumerate(getattr(pipeline, section)):
            where = f"{section}[{index}]"
            if step.type not in STEP_TYPES:
                errors.append({"loc": f"{where}.type",
                               "msg": f"unknown step type {step.type!r}; known: {', '.join(sorted(STEP_TYPES))}"})
                continue
            if "caller" in step.params:
                errors.append({"loc": f"{where}.params.caller", "msg": "set by the platform, not by a pipeline"})
            if not step.name:
                step.name = f"{step.type}-{index}" if section == "steps" else f"cleanup-{step.type}-{index}"
            if step.name in names:
                errors.append({"loc": f"{where}.name", "msg": f"duplicate step name {step.name!r}"})
            names.add(step.name)
            errors += _check_params(step, where, pipeline.variables)
    if errors:
        raise PipelineInvalid("; ".join(f"{e['loc']}: {e['msg']}" for e in errors[:5]), errors=errors)
    return pipeline


def _check_params(step: StepDef, where: str, variables: dict[str, Any]) -> list[dict[str, Any]]:
    """Validate what can be known before the run: fields that are still references are skipped."""
    spec = STEP_TYPES[step.type]
    params = {**dict(spec.defaults), **resolve(step.params, variables, {}, strict=False)}
    try:
        spec.input.model_validate(params)
    except ValidationError as exc:
        out = []
        for e in exc.errors():
            if isinstance(e.get("input"), str) and REF.search(e["input"]):
                continue  # resolved at run time
            out.append({"loc": f"{where}.params.{_loc(e['loc'])}", "msg": e["msg"]})
        return out
    return []


def _loc(loc: tuple[Any, ...] | list[Any]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


# Step parameters that name something a user owns (a server, a user, an upload, an image), and the
# step types where they do (None: every type that has the parameter). The API checks them for every
# caller but admins; `image` of pull_image names a registry image, nobody's (its registry must be
# allowed: check_node_resources).
GUARDED_PARAMS: dict[str, frozenset[str] | None] = {
    "server_id": None, "owner_id": None, "source_sha256": None, "remove_image": None,
    "image": frozenset({"start_container"})}


def guarded_params(pipeline: PipelineDef, variables: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(place, parameter, value) of every step parameter in GUARDED_PARAMS that is set, resolved
    with the run's variables (a step type's defaults included); the value is None when only an
    earlier step's output will decide it. Values are as given: the caller checks their type."""
    out: list[tuple[str, str, Any]] = []
    for section in ("steps", "cleanup"):
        for index, step in enumerate(getattr(pipeline, section)):
            spec = STEP_TYPES[step.type]
            params = {**dict(spec.defaults), **resolve(step.params, variables, {}, strict=False)}
            for name, types in GUARDED_PARAMS.items():
                if name not in params or params[name] is None or (types is not None and step.type not in types):
                    continue
                value = params[name]
                late = isinstance(value, str) and REF.search(value) is not None
                out.append((f"{section}[{index}].params.{name}", name, None if late else value))
    return out


def with_variables(pipeline: PipelineDef, given: dict[str, Any]) -> dict[str, Any]:
    """Defaults overridden by the caller's values; a variable without either is an error."""
    unknown = sorted(set(given) - set(pipeline.variables))
    if unknown:
        raise PipelineInvalid(f"unknown variables: {', '.join(unknown)}",
                              errors=[{"loc": f"variables.{u}", "msg": "not declared by the pipeline"}
                                      for u in unknown])
    merged = {**pipeline.variables, **given}
    missing = sorted(k for k, v in merged.items() if v is None)
    if missing:
        raise PipelineInvalid(f"variables without a value: {', '.join(missing)}",
                              errors=[{"loc": f"variables.{m}", "msg": "required"} for m in missing])
    return merged


def load_named(name: str) -> str:
    """The YAML text of a definition in config/pipeline/."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]{0,63}", name):
        raise PipelineInvalid(f"invalid pipeline name {name!r}", errors=[{"loc": "definition", "msg": "bad name"}])
    path = PIPELINE_DIR / f"{name}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in PIPELINE_DIR.glob("*.yaml"))
        raise PipelineInvalid(f"no pipeline {name!r}; known: {', '.join(known)}",
                              errors=[{"loc": "definition", "msg": "unknown"}])
    return path.read_text()


# --- What a pipeline makes on the node's Docker (issue #19) -----------------------------------------
# Steps that pull, make or reuse images, networks and volumes act for their caller: the API puts the
# run's owner into their `caller` parameter, and the node touches only what is labelled with it.
CALLER_STEPS = frozenset({"pull_image", "prepare_network", "write_config"})
DEFAULT_REGISTRY = "docker.io"
_DOCKER_HUB = {"docker.io", "index.docker.io", "registry-1.docker.io"}
MAX_CONFIG_FILES = 256  # files one config volume may hold after a write_config


def normalize_registry(host: str) -> str:
    """A registry as the allow-list compares it: lower case, Docker Hub's aliases as `docker.io`."""
    host = host.strip().lower().rstrip("/")
    return DEFAULT_REGISTRY if host in _DOCKER_HUB else host


def image_registry(image: str) -> str:
    """The registry Docker pulls `image` from, by Docker's own rule (distribution/reference): the part
    before the first `/` is a registry when it has a `.` or `:`, is `localhost` or has capitals;
    otherwise (`node:20`, `library/node`) the image is Docker Hub's."""
    first, slash, _ = image.strip().partition("/")
    if not slash or (not any(c in first for c in ".:") and first != "localhost" and first == first.lower()):
        return DEFAULT_REGISTRY
    return normalize_registry(first)


def registry_allowed(image: str, allowed: list[str]) -> bool:
    return image_registry(image) in {normalize_registry(r) for r in allowed}


def with_caller(pipeline: PipelineDef, caller: StepCaller) -> PipelineDef:
    """A copy whose steps in CALLER_STEPS carry `caller` (what the node checks ownership against)."""
    out = pipeline.model_copy(deep=True)
    for step in [*out.steps, *out.cleanup]:
        if step.type in CALLER_STEPS:
            step.params = {**step.params, "caller": caller.model_dump()}
    return out


def check_node_resources(pipeline: PipelineDef, variables: dict[str, Any], settings: Settings,
                         platform_network: str) -> None:
    """The early, API-side form of what the node enforces for a caller who is not an admin: images
    from allowed registries only, config content within the per-volume cap, no more volumes or
    networks named than one user may have. Values decided by a step's output are left to the node."""
    refused: list[dict[str, Any]] = []
    too_big: list[dict[str, Any]] = []
    volumes: set[str] = set()
    networks: set[str] = set()
    for section in ("steps", "cleanup"):
        for index, step in enumerate(getattr(pipeline, section)):
            if step.type not in CALLER_STEPS:
                continue
            where = f"{section}[{index}].params"
            params = resolve(step.params, variables, {}, strict=False)
            if step.type == "pull_image":
                image = params.get("image")
                if isinstance(image, str) and not REF.search(image) \
                        and not registry_allowed(image, settings.pipeline_registries):
                    refused.append({"loc": f"{where}.image", "msg": f"registry {image_registry(image)} is not allowed"})
            elif step.type == "prepare_network":
                name = params.get("name") or ""
                if isinstance(name, str) and name and name != platform_network and not REF.search(name):
                    networks.add(name)
            else:
                volume = params.get("volume")
                if isinstance(volume, str) and not REF.search(volume):
                    volumes.add(volume)
                files = params.get("files")
                if isinstance(files, dict):
                    size = sum(len(v.encode()) for v in files.values() if isinstance(v, str))
                    if size > settings.pipeline_max_config_bytes or len(files) > MAX_CONFIG_FILES:
                        too_big.append({"loc": f"{where}.files", "msg": (
                            f"{len(files)} file(s), {size} bytes: a config volume holds at most "
                            f"{settings.pipeline_max_config_bytes} bytes in {MAX_CONFIG_FILES} files")})
    if refused:
        allowed = ", ".join(settings.pipeline_registries) or "none"
        raise RegistryNotAllowed(f"{refused[0]['loc']}: {refused[0]['msg']} (allowed: {allowed})", errors=refused)
    if too_big:
        raise PipelineInvalid(f"{too_big[0]['loc']}: {too_big[0]['msg']}", errors=too_big)
    for kind, names, limit in (("volumes", volumes, settings.pipeline_max_volumes_per_user),
                               ("networks", networks, settings.pipeline_max_networks_per_user)):
        if len(names) > limit:
            raise PipelineQuotaExceeded(f"this pipeline names {len(names)} {kind}; one user may have {limit} "
                                        "on a node", kind=kind, limit=limit)
