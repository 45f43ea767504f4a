"""The compact state encoding `c1` (`&enc=c1`; docs/clients.md "State sync on the wire").

`$p` frames are a flat list where each path gets a number once per stream:
``k, v`` sets path #k to v (replace, add a member, or append at index == length); ``"/p", v``
defines the next number as "/p" and sets it; ``[k]`` removes that member; ``[k, n]`` truncates the
array at that path to length n; ``null`` forgets every number. A `$state` empties the table and
`$paths` (["/p", ...]) right after it sets it. Applied copy-on-write like RFC 6902 patches, but each
container is copied once per patch (a patch of 200 numbers copies the entity map once, not 200 times).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from gsf_client.patch import PatchError, copy_path, format_pointer, parse_pointer

_INDEX = re.compile(r"^(0|[1-9][0-9]*)$")


class PathTable:
    """One stream's path numbers, each kept parsed."""

    def __init__(self) -> None:
        self._paths: list[list[str]] = []

    def reset(self, paths: Sequence[str] = ()) -> None:
        self._paths = [parse_pointer(str(p)) for p in paths]

    def __len__(self) -> int:
        return len(self._paths)

    def resolve(self, ref: Any) -> list[str]:
        if isinstance(ref, int) and not isinstance(ref, bool):
            if not 0 <= ref < len(self._paths):
                raise PatchError(f"unknown path number {ref}")
            return self._paths[ref]
        if isinstance(ref, str):
            parts = parse_pointer(ref)
            self._paths.append(parts)
            return parts
        raise PatchError(f"a c1 path is a number or a string, got {ref!r}")


def _index(key: str) -> int:
    if not _INDEX.match(key):
        raise PatchError(f"bad array index {key!r}")
    return int(key)


class _Writer:
    """Copy-on-write of one patch: containers copied in this patch are edited in place."""

    def __init__(self, doc: Any) -> None:
        self.root = doc
        self._fresh: set[int] = set()
        self._keep: list[Any] = []  # the copies stay alive, so no id() is reused within the patch

    def _own(self, node: Any) -> Any:
        if id(node) in self._fresh:
            return node
        copy = list(node) if isinstance(node, list) else dict(node)
        self._fresh.add(id(copy))
        self._keep.append(copy)
        return copy

    def _parent(self, parts: Sequence[str]) -> Any:
        self.root, node = copy_path(self.root, parts, self._own, lambda _arr, key: _index(key))
        return node

    def set(self, parts: Sequence[str], value: Any) -> None:
        if not parts:
            self.root = value
            return
        node = self._parent(parts)
        key = parts[-1]
        if isinstance(node, list):
            i = _index(key)
            if i > len(node):
                raise PatchError(f"array index {i} out of range (length {len(node)})")
            if i == len(node):
                node.append(value)
            else:
                node[i] = value
        else:
            node[key] = value

    def remove(self, parts: Sequence[str]) -> None:
        if not parts:
            raise PatchError("cannot remove the whole state")
        node = self._parent(parts)
        key = parts[-1]
        if isinstance(node, list):
            i = _index(key)
            if i >= len(node):
                raise PatchError(f"array index {i} out of range (length {len(node)})")
            del node[i]
        elif key in node:
            del node[key]
        else:
            raise PatchError(f"no member {format_pointer(parts)}")

    def truncate(self, parts: Sequence[str], length: Any) -> None:
        if not isinstance(length, int) or isinstance(length, bool) or length < 0:
            raise PatchError(f"bad array length {length!r}")
        if not parts:
            if not isinstance(self.root, list):
                raise PatchError("the state is not an array")
            arr = self.root = self._own(self.root)
        else:
            node = self._parent(parts)
            key = parts[-1]
            at: Any = _index(key) if isinstance(node, list) else key
            if isinstance(node, list) and at >= len(node):
                raise PatchError(f"path {format_pointer(parts)} does not exist")
            current = node.get(at) if isinstance(node, dict) else node[at]
            if not isinstance(current, list):
                raise PatchError(f"{format_pointer(parts)} is not an array")
            arr = node[at] = self._own(current)
        if length > len(arr):
            raise PatchError(f"cannot truncate {len(arr)} items to {length}")
        del arr[length:]


def apply_compact(doc: Any, ops: Any, table: PathTable) -> Any:
    """A whole `$p` patch applied to `doc` (left untouched); `table` gains its definitions."""
    if not isinstance(ops, list):
        raise PatchError("a c1 patch is a list")
    w = _Writer(doc)
    i = 0
    while i < len(ops):
        item = ops[i]
        if item is None:
            table.reset()
            i += 1
        elif isinstance(item, list):
            if not item:
                raise PatchError("an empty c1 op")
            parts = table.resolve(item[0])
            if len(item) == 1:
                w.remove(parts)
            else:
                w.truncate(parts, item[1])
            i += 1
        else:
            if i + 1 >= len(ops):
                raise PatchError("a c1 set has no value")
            w.set(table.resolve(item), ops[i + 1])
            i += 2
    return w.root
