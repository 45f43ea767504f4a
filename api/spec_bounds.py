"""The bounds of the OpenAPI document that come from settings: the plans and the admin's maxima
of a server's limits, the largest fleet. The route models state what never changes; this fills in
what an installation sets, so what the document allows, the server accepts (issue #19)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from core.settings import Settings

MULTIPART = "multipart/form-data"
# Schemas whose `plan`, `memory_mb`, `cpus` and `pids` are a server's plan and its overrides.
LIMIT_FIELDS = ("memory_mb", "cpus", "pids")
FLEET_SIZES = {"FleetCreate": ("replicas", "max_size", "min_size", "buffer"),
               "FleetUpdate": ("replicas", "max_size", "min_size", "buffer")}


def install(app: FastAPI, settings: Settings) -> None:
    """Complete `app`'s document (already built by `api.errors.document`) with the settings' bounds."""
    generate: Callable[[], dict[str, Any]] = app.openapi
    done = False

    def openapi() -> dict[str, Any]:
        nonlocal done
        schema = generate()  # cached by FastAPI after the first call: tightened once
        if not done:
            tighten(schema, settings)
            done = True
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def tighten(document: dict[str, Any], settings: Settings) -> None:
    schemas: dict[str, Any] = document.get("components", {}).get("schemas", {})
    maxima = {"memory_mb": settings.max_server_memory_mb, "cpus": settings.max_server_cpus,
              "pids": settings.max_server_pids}
    # Empty: the default plan. A plan beyond the maxima deploys only with overrides that bring it
    # within them, which a schema cannot say: the document leaves such a plan out.
    plans = ["", *sorted(name for name, plan in settings.plans.items()
                         if all(plan.get(field, 0) <= maxima[field] for field in LIMIT_FIELDS))]
    for name, schema in schemas.items():
        props: dict[str, Any] = schema.get("properties", {})
        if all(field in props for field in LIMIT_FIELDS):
            for field in LIMIT_FIELDS:
                props[field]["maximum"] = maxima[field]
            if "plan" in props:
                props["plan"]["enum"] = plans
        for field in FLEET_SIZES.get(name, ()):
            _bound(props[field], settings.fleet_max_size)
    for body in _multipart_bodies(document):
        _no_nulls(schemas.get(body, {}))
    # PostgreSQL stores no NUL character in text (a 422 `validation-error`): no parameter or body
    # field whose text the server looks up or stores may hold one.
    for ops in document.get("paths", {}).values():
        for op in ops.values():
            for param in op.get("parameters", []):
                _text_without_nul(param.get("schema", {}))
    for name in _request_bodies(document):  # requests only: an answer states what is stored
        for prop in schemas.get(name, {}).get("properties", {}).values():
            _text_without_nul(prop)
            for inner in (prop.get("additionalProperties"), *prop.get("patternProperties", {}).values()):
                if isinstance(inner, dict):
                    _text_without_nul(inner)


NO_NUL = "^[^\\u0000]*$"


def _text_without_nul(schema: dict[str, Any]) -> None:
    for branch in schema.get("anyOf", [schema]):
        constrained = {"pattern", "enum", "const", "format", "contentMediaType"} & set(branch)
        if branch.get("type") == "string" and not constrained:
            branch["pattern"] = NO_NUL


def _bound(prop: dict[str, Any], maximum: int) -> None:
    for branch in prop.get("anyOf", [prop]):
        if branch.get("type") == "integer":
            branch["maximum"] = min(branch.get("maximum", maximum), maximum)


def _request_bodies(document: dict[str, Any], media_type: str | None = None) -> set[str]:
    """The component schemas that request bodies (of `media_type`, or any) refer to."""
    found = set()
    for ops in document.get("paths", {}).values():
        for op in ops.values():
            for kind, content in op.get("requestBody", {}).get("content", {}).items():
                ref = content.get("schema", {}).get("$ref", "")
                if ref and media_type in (None, kind):
                    found.add(ref.rpartition("/")[2])
    return found


def _multipart_bodies(document: dict[str, Any]) -> set[str]:
    return _request_bodies(document, MULTIPART)


def _no_nulls(schema: dict[str, Any]) -> None:
    """A form field is absent or a value, never null: `null` would travel as the text "null"."""
    for prop in schema.get("properties", {}).values():
        branches = [b for b in prop.get("anyOf", []) if b.get("type") != "null"]
        if "anyOf" in prop and len(branches) == 1:
            del prop["anyOf"]
            prop.update({k: v for k, v in branches[0].items() if k not in prop})
