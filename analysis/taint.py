"""Capability taint: where the module-scope capabilities of a game module may flow.

`module`, `require`, `exports`, the CommonJS wrapper's `arguments`, `process`, `globalThis`/`global`,
module-scope `this`, and outside strict mode any function's `this` (a plain call makes it the
global object) reach the loader and the host (`module.parent.require('fs')`,
`arguments[1]('child_process')`). Instead of recognising ways to misuse them, the pass allows
only their safe forms and blocks every other flow (`capability-escape`):

- `module.exports` (read, assigned, extended), `module.id`/`filename`/`loaded`/`path`/`paths`;
- `exports.x` and module-scope `this.x`, and `exports` as the target of an `Object.*` call;
- `require('literal')` and `module.require('literal')` (the module name is judged by the older
  rules: host modules block, the game's own `./x` files warn);
- a few harmless `process` members (`nextTick`, `hrtime`, `uptime`, ...);
- `globalThis.x` for any x that is not itself a capability;
- tests that only look at the value: `typeof`, comparisons, conditions, arithmetic.

Anything else, as a value (stored, assigned, destructured, passed, returned, thrown, yielded,
spread, put in an object, array or class field, exported, indexed by a key computed at run time),
is an escape, so no alias of a capability can exist. Like checks.py the pass runs over the nodes
the parser finished (children first): a value-position child that holds a taint is consumed by
its parent, which drops it (safe), passes it on (`a || module`, `await module`, `module.require`)
or reports it. Names that are not references (`obj.module`, `{ module: 1 }`, parameters) are
never consumed as values, and leftovers are ignored. Whether a `this` or `arguments` is the
module's is only known once the enclosing functions are seen, so reports wait for the end of the
pass (scopes.py). One dict lookup per tainted child, none while nothing is tainted: linear.

Also here: `fetch()` and `new WebSocket()` to a host outside the game (`network-egress`, a
warning: the container blocks outbound traffic anyway).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter
from typing import Any

from analysis.checks import Hit, fold_string
from analysis.parsing import BudgetExceeded
from analysis.rules import RULES
from analysis.scopes import Scopes
from core.contracts import Severity

MODULE, REQUIRE, EXPORTS, ARGS, PROCESS, GLOBAL = ("module", "require", "exports", "args",
                                                   "process", "global")
# Not a capability the pass guards, only followed to its calls: fetch and WebSocket.
NET = "net"
SOURCES: dict[str, str] = {"module": MODULE, "require": REQUIRE, "exports": EXPORTS,
                           "arguments": ARGS, "process": PROCESS, "globalThis": GLOBAL,
                           "global": GLOBAL, "fetch": NET, "WebSocket": NET}
# Members of the global object that are capabilities (or network clients) themselves.
GLOBAL_MEMBERS = {k: v for k, v in SOURCES.items() if k != "arguments"}
THIS_MEMBERS = {k: v for k, v in GLOBAL_MEMBERS.items() if v not in (NET, EXPORTS)}
MODULE_SAFE = frozenset({"exports", "id", "filename", "loaded", "path", "paths"})
# Plain data and scheduling; not stdout/stderr (their constructor is net.Socket), not `on`.
PROCESS_SAFE = frozenset({"nextTick", "hrtime", "uptime", "memoryUsage", "cpuUsage",
                          "resourceUsage", "pid", "ppid", "platform", "arch", "version",
                          "versions", "argv", "argv0", "title", "emitWarning"})
# Assignments that store the right-hand side (the others compute a primitive from it).
STORING = frozenset({"=", "||=", "&&=", "??="})
WHAT = {
    MODULE: "the module object reaches the loader and the runtime's own modules",
    REQUIRE: "require loads any module",
    EXPORTS: "only exports.x = ... is a safe form",
    ARGS: "the module wrapper's arguments are exports, require, module, __filename, __dirname",
    PROCESS: "process reaches the host",
    GLOBAL: "the global object holds process",
}
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


@dataclass(slots=True)
class Taint:
    """A capability value: its kind, how the code reached it, and the reference it came from."""

    kind: str
    path: str
    origin: Any


class TaintPass:
    """One pass over the finished nodes; `run()` returns the capability and egress hits."""

    def __init__(self, nodes: list[Any], deadline: float, shift: int, earlier: list[Hit]) -> None:
        self.nodes = nodes
        self.deadline = deadline
        self.shift = shift
        # An older rule that blocks at the same place says it more precisely.
        self.blocked = {h.start for h in earlier if RULES[h.rule].severity == Severity.BLOCK}
        self.pending: dict[int, Taint] = {}
        self.escapes: list[tuple[Taint, Any, str]] = []
        self.egress: list[Hit] = []
        self.scopes = Scopes(shift)

    def run(self) -> list[Hit]:
        drop = self._drop
        handlers: dict[str, Callable[[Any], None]] = {
            "MemberExpression": self._member, "CallExpression": self._call,
            "NewExpression": self._new, "VariableDeclarator": self._declarator,
            "AssignmentExpression": self._assignment, "Property": self._property,
            "LogicalExpression": self._pass_on, "ConditionalExpression": self._pass_on,
            "SequenceExpression": self._pass_on, "ChainExpression": self._pass_on,
            "AwaitExpression": self._pass_on, "ArrowFunctionExpression": self._arrow,
            "PropertyDefinition": self._field, "FieldDefinition": self._field,
            "ExportNamedDeclaration": self._export,
            "UnaryExpression": drop, "UpdateExpression": drop, "BinaryExpression": drop,
            "ExpressionStatement": drop, "IfStatement": drop, "WhileStatement": drop,
            "DoWhileStatement": drop, "ForStatement": drop, "ForInStatement": drop,
            "SwitchStatement": drop, "SwitchCase": drop, "MethodDefinition": drop,
        }
        for node_type, (fields, how) in _ESCAPING.items():
            handlers[node_type] = self._escaping(fields, how)
        # Handlers act on tainted children only, so while nothing is pending (most of a file)
        # only the scopes are recorded.
        scopes = self.scopes
        quiet: dict[str, Callable[[Any], None]] = {
            "FunctionExpression": self._function, "FunctionDeclaration": self._function,
            "StaticBlock": scopes.function, "PropertyDefinition": self._field,
            "FieldDefinition": self._field, "ArrowFunctionExpression": scopes.arrow,
            "ClassBody": scopes.strict_code, "Program": scopes.program,
        }
        handlers.update((t, h) for t, h in quiet.items() if t not in handlers)
        pending = self.pending
        get = handlers.get
        get_quiet = quiet.get
        nodes = self.nodes
        for chunk in range(0, len(nodes), 4096):
            if perf_counter() > self.deadline:
                raise BudgetExceeded
            for node in nodes[chunk:chunk + 4096]:
                t = node.type
                if t == "Identifier":
                    kind = SOURCES.get(node.name)
                    if kind is not None:
                        pending[id(node)] = Taint(kind, node.name, node)
                    continue
                if t == "ThisExpression":
                    pending[id(node)] = Taint(EXPORTS, "this", node)
                    continue
                handler = get(t) if pending else get_quiet(t)
                if handler is not None:
                    handler(node)
        return self._verdicts() + self.egress

    # -- consuming children --

    def _take(self, child: Any) -> Taint | None:
        return self.pending.pop(id(child), None) if child is not None else None

    def _escape(self, taint: Taint, node: Any, how: str) -> None:
        if taint.kind != NET:
            self.escapes.append((taint, node, how))

    def _drop(self, node: Any) -> None:
        pending = self.pending
        for key in _DROPPED.get(node.type, ()):
            value = getattr(node, key, None)
            if isinstance(value, list):
                for item in value:
                    pending.pop(id(item), None)
            elif value is not None:
                pending.pop(id(value), None)

    def _pass_on(self, node: Any) -> None:
        """The node's value may be one of these children: it carries the taint on."""
        t = node.type
        if t == "ConditionalExpression":
            self._take(node.test)
            parts = [node.consequent, node.alternate]
        elif t == "SequenceExpression":
            for expr in node.expressions[:-1]:
                self._take(expr)
            parts = node.expressions[-1:]
        elif t == "LogicalExpression":
            parts = [node.left, node.right]
        elif t == "ChainExpression":
            parts = [node.expression]
        else:
            parts = [node.argument]
        carried = None
        for part in parts:
            taint = self._take(part)
            if taint is None:
                continue
            if carried is None:
                carried = taint
            else:
                self._escape(taint, part, "is one of two values an expression may have")
        if carried is not None:
            self.pending[id(node)] = carried

    def _escaping(self, fields: tuple[str, ...], how: str) -> Callable[[Any], None]:
        def handler(node: Any) -> None:
            for field in fields:
                value = getattr(node, field, None)
                if field == "quasi":  # a tag receives the substitutions' values, not strings
                    value = value.expressions if value is not None else None
                for item in value if isinstance(value, list) else (value,):
                    taint = self._take(item)
                    if taint is not None:
                        self._escape(taint, item, how)
        return handler

    # -- member access: the safe forms --

    def _member(self, node: Any) -> None:
        taint = self._take(node.object)
        self._take(node.property)  # a name, or a key (which becomes a string)
        key = fold_string(node.property, 8) if node.computed else node.property.name
        if taint is not None:
            outcome = member_of(taint, key)
            if isinstance(outcome, Taint):
                self.pending[id(node)] = outcome
            elif outcome:
                self._escape(taint, node, outcome)

    # -- calls --

    def _call(self, node: Any) -> None:
        callee = node.callee
        args = node.arguments
        taint = self._take(callee)
        if taint is not None and taint.kind == NET:
            if args and taint.path.endswith("fetch"):
                self._egress_check(node, args[0], "fetch()")
        elif taint is not None:
            if taint.kind != REQUIRE:
                self._escape(taint, callee, "is called")
            elif callee.type not in ("Identifier", "MemberExpression"):
                # `(0, require)('fs')`: the module name rules only see require called by name.
                self._escape(taint, callee, "is called through an expression")
            elif not args or fold_string(args[0]) is None:
                self._escape(taint, callee, "is called with a module name computed at run time")
        into_object = (callee.type == "MemberExpression" and callee.object.type == "Identifier"
                       and callee.object.name == "Object")
        for index, arg in enumerate(args):
            taint = self._take(arg)
            if taint is not None and not (into_object and index == 0 and taint.path == "exports"):
                self._escape(taint, arg, "is passed to a function")

    def _new(self, node: Any) -> None:
        taint = self._take(node.callee)
        if taint is not None and taint.kind == NET:
            if node.arguments and taint.path.endswith("WebSocket"):
                self._egress_check(node, node.arguments[0], "new WebSocket()")
        elif taint is not None:
            self._escape(taint, node.callee, "is called with new")
        for arg in node.arguments:
            taint = self._take(arg)
            if taint is not None:
                self._escape(taint, arg, "is passed to a constructor")

    def _egress_check(self, node: Any, url: Any, how: str) -> None:
        hit = egress_hit(node, url, how)
        if hit is not None:
            self.egress.append(hit)

    # -- storing --

    def _declarator(self, node: Any) -> None:
        self._take(node.id)  # a declared name, not a reference
        taint = self._take(node.init)
        if taint is None:
            return
        target = node.id
        if target.type == "ObjectPattern":
            self._destructure(taint, target)
        elif target.type == "Identifier":
            self._escape(taint, node.init, f"is stored in `{target.name}`")
        else:
            self._escape(taint, node.init, "is destructured")

    def _assignment(self, node: Any) -> None:
        self._take(node.left)  # overwriting a name or a member is not a use of its old value
        taint = self._take(node.right)
        if taint is None or node.operator not in STORING:
            return
        if node.left.type == "ObjectPattern" and node.operator == "=":
            self._destructure(taint, node.left)
        else:
            self._escape(taint, node.right, "is assigned to another name")

    def _destructure(self, taint: Taint, pattern: Any) -> None:
        """`const { nextTick } = process` is as safe as process.nextTick; any other key is not."""
        for prop in pattern.properties:
            if prop.type == "RestElement":
                self._escape(taint, prop, "is copied with ...rest")
                continue
            key_node = prop.key
            if prop.computed:
                key = fold_string(key_node, 8)
            else:
                key = key_node.name if key_node.type == "Identifier" else str(key_node.value)
            outcome = member_of(taint, key)
            if isinstance(outcome, Taint):
                self._escape(outcome, prop, "is destructured into a variable")
            elif outcome:
                self._escape(taint, prop, outcome)

    def _property(self, node: Any) -> None:
        self._take(node.key)
        taint = self._take(node.value)
        if taint is not None:
            self.pending[id(node)] = taint  # the object (or pattern) around it decides

    def _export(self, node: Any) -> None:
        if node.source is not None:
            return  # `export { process } from './x'` names the other file's export
        for spec in node.specifiers:
            taint = self._take(spec.local)
            if taint is not None:
                self._escape(taint, spec.local, "is exported")

    # -- scopes --

    def _function(self, node: Any) -> None:
        self._take(node.id)  # a declared name, not a reference
        self.scopes.function(node)

    def _field(self, node: Any) -> None:
        self._take(node.key)
        value = node.value
        if value is not None:
            taint = self._take(value)
            if taint is not None:
                self._escape(taint, value, "is stored in a class field")
            self.scopes.field_value(value)

    def _arrow(self, node: Any) -> None:
        self.scopes.arrow(node)
        if node.expression:
            taint = self._take(node.body)
            if taint is not None:
                self._escape(taint, node.body, "is returned")

    def _verdicts(self) -> list[Hit]:
        if not self.escapes:
            return []
        scopes = self.scopes
        scopes.settle()
        hits = []
        for taint, node, how in self.escapes:
            origin = taint.origin
            if scopes.is_arrow_parameter(origin):
                continue
            sloppy_this = False
            if origin.type == "ThisExpression":
                if scopes.in_function(origin._start):
                    # Outside strict mode a plain call (f(), m = o.m; m()) makes `this` the
                    # global object, so only there is a function's `this` a capability.
                    if scopes.is_strict(origin._start):
                        continue
                    sloppy_this = True
            elif origin.name == "arguments" and scopes.in_function(origin._start):
                continue
            start = int(node._start)
            if start in self.blocked:
                continue
            hits.append(Hit("capability-escape", _message(taint, how, sloppy_this), start,
                            int(node._end)))
        return hits


# Value positions whose taint always escapes: node type -> (fields, how).
_ESCAPING: dict[str, tuple[tuple[str, ...], str]] = {
    "ObjectExpression": (("properties",), "is stored in an object"),
    "ArrayExpression": (("elements",), "is stored in an array"),
    "ForOfStatement": (("right",), "is iterated"),
    "ClassDeclaration": (("superClass",), "is extended by a class"),
    "ClassExpression": (("superClass",), "is extended by a class"),
    "ReturnStatement": (("argument",), "is returned"),
    "ThrowStatement": (("argument",), "is thrown"),
    "YieldExpression": (("argument",), "is yielded"),
    "SpreadElement": (("argument",), "is spread"),
    "WithStatement": (("object",), "is the object of a with statement"),
    "AssignmentPattern": (("right",), "is a default value"),
    "ExportDefaultDeclaration": (("declaration",), "is exported"),
    "TaggedTemplateExpression": (("tag", "quasi"), "is handed to a template tag"),
    "ImportExpression": (("source", "options"), "is passed to import()"),
}
# Children whose value is only tested, coerced to a primitive or thrown away.
_DROPPED: dict[str, tuple[str, ...]] = {
    "UnaryExpression": ("argument",), "UpdateExpression": ("argument",),
    "BinaryExpression": ("left", "right"), "ExpressionStatement": ("expression",),
    "IfStatement": ("test",), "WhileStatement": ("test",), "DoWhileStatement": ("test",),
    "ForStatement": ("init", "test", "update"), "ForInStatement": ("left", "right"),
    "SwitchStatement": ("discriminant",), "SwitchCase": ("test",),
    "MethodDefinition": ("key",),
}


def member_of(taint: Taint, key: str | None) -> Taint | str | None:
    """What reading `key` from a capability gives: None (a safe value), the capability it
    reaches, or the reason it is an escape."""
    kind = taint.kind
    if kind == EXPORTS:
        if taint.path != "this":
            return None
        # Outside strict mode a function's `this` may be the global object (the verdict in
        # TaintPass._verdicts knows which `this` is which): follow what it reaches.
        if key is None:
            return "this[...] is read with a key computed at run time"
        reached = THIS_MEMBERS.get(key)
        return None if reached is None else Taint(reached, f"this.{key}", taint.origin)
    if kind == NET:
        return None
    if key is None:
        return f"{taint.path}[...] is read with a key computed at run time ({WHAT[kind]})"
    path = f"{taint.path}.{key}"
    if kind == MODULE:
        if key in MODULE_SAFE:
            return None
        if key == "require":
            return Taint(REQUIRE, path, taint.origin)
    elif kind == PROCESS:
        if key in PROCESS_SAFE:
            return None
    elif kind == GLOBAL:
        reached = GLOBAL_MEMBERS.get(key)
        return None if reached is None else Taint(reached, path, taint.origin)
    return f"{path} is not one of the safe forms ({WHAT[kind]})"


def _message(taint: Taint, how: str, sloppy_this: bool) -> str:
    message = how if how.startswith(taint.path) else f"{taint.path} {how}"
    if sloppy_this:
        return message + (" (outside strict mode `this` is the global object when the function is "
                          "called on its own: add 'use strict', or use a class)")
    if taint.kind in (MODULE, REQUIRE, ARGS, PROCESS, GLOBAL) and "(" not in how:
        message += f" ({WHAT[taint.kind]})"
    return message


def egress_hit(node: Any, url: Any, how: str) -> Hit | None:
    """A network-egress hit for fetch()/new WebSocket() of `url`, unless the URL is relative."""
    prefix, whole = _static_prefix(url)
    if whole and not _SCHEME.match(prefix) and not prefix.startswith(("//", "\\")):
        return None
    if not whole and (prefix.startswith(("./", "../"))
                      or (len(prefix) > 1 and prefix[0] == "/" and prefix[1] not in "/\\")):
        return None
    target = f"'{prefix[:80]}'" if whole else "a URL built at run time"
    return Hit("network-egress", f"{how} to {target} reaches a host outside the game (the "
               "container blocks outbound traffic)", int(node._start), int(node._end))


def _static_prefix(node: Any) -> tuple[str, bool]:
    """The text a URL expression starts with, and whether that is all of it."""
    whole = fold_string(node)
    if whole is not None:
        return whole, True
    for _ in range(16):
        if node.type == "TemplateLiteral":
            cooked = node.quasis[0].value.cooked if node.quasis else ""
            return (cooked if isinstance(cooked, str) else ""), False
        if node.type == "BinaryExpression" and node.operator == "+":
            left = fold_string(node.left)
            if left is not None:
                return left, False
            node = node.left
            continue
        break
    return "", False


def check_taint(nodes: list[Any], deadline: float, shift: int, earlier: list[Hit]) -> list[Hit]:
    """Capability escapes and network egress in the finished nodes of one parse."""
    return TaintPass(nodes, deadline, shift, earlier).run()

