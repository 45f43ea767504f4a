"""RFC 6901 JSON Pointers and RFC 6902 JSON Patch, applied copy-on-write: containers on a changed
path are copied and the rest is shared, so the state before a patch stays intact (listeners get
the previous value) and a failing patch changes nothing."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

_INDEX = re.compile(r"^(0|[1-9][0-9]*)$")
MISSING: Any = object()


class PatchError(ValueError):
    """A patch that does not apply to the document."""


def parse_pointer(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f"a JSON Pointer starts with '/': {pointer!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/")]


def format_pointer(parts: Iterable[str]) -> str:
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def get_at(doc: Any, parts: Sequence[str]) -> Any:
    """The value at `parts`, or MISSING."""
    node = doc
    for key in parts:
        if isinstance(node, list):
            if not _INDEX.match(key) or int(key) >= len(node):
                return MISSING
            node = node[int(key)]
        elif isinstance(node, dict):
            if key not in node:
                return MISSING
            node = node[key]
        else:
            return MISSING
    return node


def _index(arr: list[Any], key: str, for_add: bool) -> int:
    if for_add and key == "-":
        return len(arr)
    if not _INDEX.match(key):
        raise PatchError(f"bad array index {key!r}")
    i = int(key)
    if i > len(arr) or (not for_add and i == len(arr)):
        raise PatchError(f"array index {i} out of range (length {len(arr)})")
    return i


def _copy(node: Any) -> Any:
    return list(node) if isinstance(node, list) else dict(node)


def copy_path(doc: Any, parts: Sequence[str], copy: Callable[[Any], Any],
              index: Callable[[list[Any], str], int]) -> tuple[Any, Any]:
    """`doc` and every container on the way to the parent of `parts` replaced by `copy(container)`:
    (the new root, that parent). An array step is `index(array, key)`; a missing step is a PatchError."""
    if not isinstance(doc, dict | list):
        raise PatchError(f"path {format_pointer(parts)} does not exist")
    root = node = copy(doc)
    for key in parts[:-1]:
        if isinstance(node, list):
            at: Any = index(node, key)
            if at >= len(node):
                raise PatchError(f"path {format_pointer(parts)} does not exist")
        elif key in node:
            at = key
        else:
            raise PatchError(f"path {format_pointer(parts)} does not exist")
        child = node[at]
        if not isinstance(child, dict | list):
            raise PatchError(f"path {format_pointer(parts)} does not exist")
        node[at] = node = copy(child)
    return root, node


def _edit_parent(doc: Any, parts: Sequence[str], op: str, value: Any = None) -> Any:
    root, node = copy_path(doc, parts, _copy, lambda arr, key: _index(arr, key, False))
    key = parts[-1]
    if isinstance(node, list):
        if op == "add":
            node.insert(_index(node, key, True), value)
        elif op == "remove":
            del node[_index(node, key, False)]
        else:
            node[_index(node, key, False)] = value
    else:
        if op != "add" and key not in node:
            raise PatchError(f"no member {format_pointer(parts)}")
        if op == "remove":
            del node[key]
        else:
            node[key] = value
    return root


def apply_operation(doc: Any, op: Mapping[str, Any]) -> Any:
    """One operation applied to `doc`; returns the new document (`doc` is left untouched)."""
    kind = op.get("op")
    parts = parse_pointer(str(op.get("path", "")))
    if kind in ("add", "replace"):
        return op.get("value") if not parts else _edit_parent(doc, parts, kind, op.get("value"))
    if kind == "remove":
        return None if not parts else _edit_parent(doc, parts, "remove")
    if kind in ("move", "copy"):
        source = parse_pointer(str(op.get("from", "")))
        value = get_at(doc, source)
        if value is MISSING:
            raise PatchError(f"{kind} from missing {op.get('from')!r}")
        base = _edit_parent(doc, source, "remove") if kind == "move" and source else doc
        return value if not parts else _edit_parent(base, parts, "add", value)
    if kind == "test":
        if get_at(doc, parts) != op.get("value"):
            raise PatchError(f"test failed at {op.get('path')!r}")
        return doc
    raise PatchError(f"unknown patch operation {kind!r}")


def apply_patch(doc: Any, ops: Iterable[Mapping[str, Any]]) -> Any:
    """A whole patch, atomically: a failing operation raises and `doc` is unchanged."""
    if not isinstance(ops, list):
        raise PatchError("a patch is a list of operations")
    for op in ops:
        if not isinstance(op, Mapping):
            raise PatchError("a patch operation is an object")
        doc = apply_operation(doc, op)
    return doc
