"""The state the code rules share over one pass (`CheckerState`), and the judgements several rule
families make (a member path, a module specifier)."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any

from analysis.estree import fold_string
from analysis.nodejs import HOST_MODULES, PATH_RULES, ROOTS, WATCHED

# Roles a parent gives a watched reference.
VALUE, CALL, NEW, OBJECT, NAME, TYPEOF, COMPARE = range(7)


@dataclass(slots=True)
class Hit:
    """A rule that fired, with code point offsets into the parsed text."""

    rule: str
    message: str
    start: int
    end: int


@dataclass(slots=True)
class ModuleImport:
    """A module named by a literal: `require`, `import`, `import()` or `export ... from`, with the
    code point offsets of the loading node (the project analysis follows these between files)."""

    specifier: str
    kind: str
    start: int
    end: int


class CheckerState:
    """What the rule families (`analysis/check_*.py`) record as the pass goes, judged after it."""

    def __init__(self, nodes: list[Any], deadline: float, shift: int = 0) -> None:
        self.nodes = nodes
        self.deadline = deadline
        # Nodes before this offset belong to the CommonJS wrapper, not to the module.
        self.shift = shift
        self.hits: list[Hit] = []
        self.imports: list[ModuleImport] = []
        # Watched references and the role their parent gave them.
        self.refs: dict[int, tuple[Any, str]] = {}
        self.roles: dict[int, int] = {}
        # Member paths, memoized by node id, for chains rooted at an interesting name.
        self.paths: dict[int, str] = {}
        self.decoders: list[Any] = []
        self.sink_slots: list[Any] = []
        self.timers: list[Any] = []
        self.loops: list[Any] = []
        self.functions: list[Any] = []
        self.fn_names: dict[int, str] = {}
        self.fn_declared: set[str] = set()
        self.string_consts: set[str] = set()
        self.constructor_reads: list[Any] = []
        self.proto_calls: set[int] = set()
        self.assigned_inits: list[tuple[str, Any]] = []

    def hit(self, rule: str, message: str, node: Any) -> None:
        self.hits.append(Hit(rule, message, int(node._start or 0), int(node._end or 0)))

    def _role(self, child: Any, role: int) -> None:
        cid = id(child)
        if cid in self.refs:
            self.roles[cid] = role

    def _path_of(self, node: Any) -> str | None:
        t = node.type
        if t == "Identifier":
            return node.name if node.name in ROOTS else None
        if t == "MemberExpression":
            return self.paths.get(id(node))
        if t == "ChainExpression":
            return self._path_of(node.expression)
        return None

    def _check_path(self, path: str, node: Any) -> None:
        if path in WATCHED:
            self.refs[id(node)] = (node, path)
        elif path == "module.require":
            self.refs[id(node)] = (node, "require")
        else:
            rule = PATH_RULES.get(path)
            if rule is not None:
                self.hit(rule[0], rule[1], node)

    def _require(self, node: Any, args: list[Any], how: str) -> None:
        if not args:
            return
        spec = fold_string(args[0])
        if spec is None:
            self.hit("dynamic-require", f"{how} with a name computed at run time", node)
            self.sink_slots.append(args[0])
            return
        self._specifier_check(spec, node, how)

    def _specifier_check(self, spec: str, node: Any, how: str) -> None:
        self.imports.append(ModuleImport(spec, how, int(node._start or 0), int(node._end or 0)))
        name = spec.removeprefix("node:")
        base = name.split("/", 1)[0]
        if base in HOST_MODULES:
            self.hit("host-module", f"{how} loads '{spec}', which reaches the host", node)
        elif spec.startswith("data:"):
            self.hit("eval", f"{how} of a data: URL runs a string as code", node)
        elif spec.startswith(("/", "file:")) or (
                spec.startswith(".") and posixpath.normpath(spec).startswith("..")):
            # Not the game's own folder: the runtime's files and whatever else is on disk.
            self.hit("capability-escape", f"{how} loads '{spec}', a file outside the game's own "
                     "folder", node)
        elif spec.startswith((".", "http:", "https:")):
            self.hit("local-module", f"{how} loads '{spec}', which is not part of the upload", node)
