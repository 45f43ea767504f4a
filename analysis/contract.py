"""The game module contract (DESIGN §4), checked on the module's top-level statements.

What the runtime (gameserver/runtime/server.js) loads: `module.exports` for CommonJS; for an
ES module the default export when there is one, else the namespace of named exports. That
value must be an object with at least onJoin or onMessage; hooks must be functions; maxPlayers
an integer from 1 to 100000 and tickRate an integer from 0 to 60 (the runtime's clamp); the room
exports of issue #22, when given: maxRooms an integer from 1 to 10000 (rooms per server) and
emptyRoomSeconds a number from 0 to 3600.
When the exported object is built at run time (a factory call, a spread of something unknown),
the contract cannot be checked statically: that is a warning, and the runtime checks at start.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from analysis.checks import FUNCTION_TYPES, Hit, fold_string
from analysis.estree import arithmetic as _arithmetic
from core.request_bounds import MAX_ROOMS as MAX_ROOMS_BOUND
from core.request_bounds import MIN_ROOMS

HOOKS = ("onCreate", "onJoin", "onMessage", "onLeave", "onTick", "onDispose", "onDrop", "onReconnect", "onRestore",
         "onMigrate", "view")
REQUIRED_HOOKS = ("onJoin", "onMessage")
MAX_PLAYERS = (1, 100_000)
TICK_RATE = (0, 60)
MAX_ROOMS = (MIN_ROOMS, MAX_ROOMS_BOUND)
"""Rooms one server may host: the module's `maxRooms`, `gsf deploy --max-rooms`, the API's `max_rooms`."""
EMPTY_ROOM_SECONDS = (0, 3600)
DEFAULT_MAX_PLAYERS = 8
"""The seats a server gets when neither the deployment nor the analyzer knows the module's
maxPlayers (workflows/gameserver.py uses this constant)."""
_FOLD_BUDGET = 64
_MATH_ONE: dict[str, Callable[[float], float]] = {
    "floor": math.floor, "ceil": math.ceil, "trunc": math.trunc, "abs": abs,
    "round": lambda x: math.floor(x + 0.5)}  # Math.round: halves go up, as in JavaScript
_SEATS_NOTE = (f"the server gets {DEFAULT_MAX_PLAYERS} seats unless the deployment sets "
               "max_players (gsf deploy --max-players)")
_LOWER_HOOKS = {hook.lower(): hook for hook in HOOKS}
_EXAMPLE = ("module.exports = { onJoin(room, player) {}, onMessage(room, player, type, data) {} }"
            " (ES module: export default { ... })")

# How an exported value looks without running it.
FUNCTION, UNKNOWN, OTHER, ABSENT = "function", "unknown", "other", "absent"


@dataclass
class _Exported:
    """The exported object as far as it is known: key -> (value node, node to point at)."""

    props: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    complete: bool = True
    form: str = "none"
    at: Any = None
    not_object: str | None = None


@dataclass
class ContractResult:
    hits: list[Hit]
    exports: dict[str, object]


class _Module:
    def __init__(self, body: list[Any]) -> None:
        self.body = body
        self.decls: dict[str, Any] = {}
        self.reassigned: set[str] = set()  # names a top-level statement assigns again
        self.member_writes: dict[str, list[tuple[str, Any, Any]]] = {}
        self.hits: list[Hit] = []

    def hit(self, rule: str, message: str, node: Any) -> None:
        start = int(node._start or 0) if node is not None else 0
        end = int(node._end or 0) if node is not None else 0
        self.hits.append(Hit(rule, message, start, end))

    # -- the top level --

    def statements(self) -> list[Any]:
        """Top-level statements, looking one level into top-level if/blocks (UMD guards)."""
        out: list[Any] = []
        for stmt in self.body:
            if stmt.type == "ReturnStatement":
                break  # CommonJS top-level return: nothing after it runs
            out.append(stmt)
            if stmt.type == "IfStatement":
                for branch in (stmt.consequent, stmt.alternate):
                    if branch is None:
                        continue
                    out.extend(branch.body if branch.type == "BlockStatement" else [branch])
            elif stmt.type == "BlockStatement":
                out.extend(stmt.body)
        return out

    def index(self, statements: list[Any]) -> None:
        for stmt in statements:
            decl = stmt.declaration if stmt.type == "ExportNamedDeclaration" else stmt
            if decl is None:
                continue
            if decl.type in ("FunctionDeclaration", "ClassDeclaration") and decl.id is not None:
                self.decls[decl.id.name] = decl
            elif decl.type == "VariableDeclaration":
                for d in decl.declarations:
                    if d.id.type == "Identifier":
                        self.decls[d.id.name] = d.init
            elif decl.type == "ExpressionStatement":
                expr = decl.expression
                target = expr.left if expr.type == "AssignmentExpression" else (
                    expr.argument if expr.type == "UpdateExpression" else None)
                if target is not None and target.type == "Identifier":
                    self.reassigned.add(str(target.name))
                if expr.type == "AssignmentExpression" and expr.operator == "=":
                    left = expr.left
                    if left.type == "MemberExpression" and left.object.type == "Identifier":
                        key = _key(left)
                        if key is not None:
                            self.member_writes.setdefault(left.object.name, []).append(
                                (key, expr.right, expr))

    def resolve(self, node: Any, depth: int = 0) -> Any:
        """Follow an identifier to its top-level declaration (a few steps at most)."""
        while node is not None and node.type == "Identifier" and depth < 8:
            if node.name not in self.decls or node.name in self.reassigned:
                return node
            node = self.decls[node.name]
            depth += 1
        return node

    def fold(self, node: Any, left: list[int]) -> float | None:
        """The number `node` always evaluates to when the module is loaded, as far as the
        analyzer can compute it (bounded by `left[0]` nodes), else None."""
        left[0] -= 1
        if left[0] < 0 or node is None:
            return None
        t = node.type
        if t == "Literal":
            value = node.value
            return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        if t == "Identifier":
            if node.name in self.reassigned or node.name not in self.decls:
                return None
            return self.fold(self.decls[node.name], left)
        if t == "UnaryExpression" and node.operator in ("-", "+"):
            inner = self.fold(node.argument, left)
            return None if inner is None else (-inner if node.operator == "-" else inner)
        if t == "BinaryExpression":
            a = self.fold(node.left, left)
            b = self.fold(node.right, left) if a is not None else None
            return None if a is None or b is None else _arithmetic(node.operator, a, b)
        if t == "MemberExpression":
            value = self.member(node, left)
            return None if value is None else self.fold(value, left)
        if t == "CallExpression":
            callee = node.callee
            if (callee.type == "MemberExpression" and callee.object.type == "Identifier"
                    and callee.object.name == "Math" and "Math" not in self.decls
                    and node.arguments):
                name = _key(callee)
                if name not in ("min", "max") and name not in _MATH_ONE:
                    return None
                args = [self.fold(arg, left) for arg in node.arguments]
                numbers = [a for a in args if a is not None and not math.isnan(a)]
                if len(numbers) != len(args):
                    return None
                if name == "min":
                    return min(numbers)
                if name == "max":
                    return max(numbers)
                first = numbers[0]
                return float(_MATH_ONE[str(name)](first)) if math.isfinite(first) else first
        return None

    def member(self, node: Any, left: list[int]) -> Any:
        """The value node of `obj.key` when obj is a top-level const object literal (or a
        property of one) whose `key` nothing else can change; else None."""
        left[0] -= 1
        key = _key(node)
        owner = node.object
        if key is None or left[0] < 0:
            return None
        if owner.type == "Identifier":
            if owner.name in self.reassigned or owner.name not in self.decls:
                return None
            if any(k == key for k, _, _ in self.member_writes.get(owner.name, [])):
                return None
            obj = self.decls[owner.name]
        elif owner.type == "MemberExpression":
            obj = self.member(owner, left)
        else:
            obj = owner
        while obj is not None and obj.type == "Identifier" and obj.name in self.decls and left[0] > 0:
            left[0] -= 1
            obj = self.decls[obj.name]
        if obj is None or obj.type != "ObjectExpression":
            return None
        found = None
        for prop in obj.properties:
            name = _key(prop) if prop.type == "Property" else None
            if name is None:
                found = None  # a spread or a computed key may override what came before
                continue
            if name == key:
                found = prop.value if prop.kind == "init" else None
        return found

    def kind(self, node: Any) -> str:
        value = self.resolve(node)
        if value is None:
            return UNKNOWN
        t = value.type
        if t in FUNCTION_TYPES or t in ("ClassExpression", "ClassDeclaration"):
            return FUNCTION
        if t == "Identifier":
            return ABSENT if value.name == "undefined" else UNKNOWN
        if t == "UnaryExpression" and value.operator == "void":
            return ABSENT
        if t in ("Literal", "ObjectExpression", "ArrayExpression", "TemplateLiteral",
                 "NewExpression", "UpdateExpression", "BinaryExpression"):
            return OTHER
        return UNKNOWN

    # -- building the exported object --

    def object_props(self, exported: _Exported, value: Any, name: str | None = None) -> None:
        """Add what `value` (an exported expression) contributes to the exported object."""
        names = [name] if name is not None else []
        while value is not None and value.type == "Identifier" and value.name in self.decls:
            if value.name in names:
                break
            names.append(value.name)
            value = self.decls[value.name]
        if value is None:
            exported.complete = False
            return
        t = value.type
        if t == "Identifier":
            exported.complete = False
            return
        if t == "ObjectExpression":
            for prop in value.properties:
                if prop.type == "SpreadElement":
                    inner = self.resolve(prop.argument)
                    if inner is not None and inner.type == "ObjectExpression" and inner is not value:
                        self.object_props(exported, inner)
                    else:
                        exported.complete = False
                    continue
                key = _key(prop)
                if key is None:
                    exported.complete = False
                elif prop.kind in ("get", "set"):
                    exported.props[key] = (None, prop)
                else:
                    exported.props[key] = (prop.value, prop)
        elif t in ("ClassExpression", "ClassDeclaration"):
            for member in value.body.body:
                if getattr(member, "static", False):
                    key = _key(member)
                    if key is None:
                        exported.complete = False
                    elif key != "constructor":
                        exported.props[key] = (member.value, member)
        elif t in FUNCTION_TYPES:
            pass  # a function object: hooks, if any, come from member writes below
        elif t in ("Literal", "ArrayExpression", "TemplateLiteral"):
            exported.not_object = "an array" if t == "ArrayExpression" else "a literal value"
        else:
            exported.complete = False
        if value.type in ("FunctionDeclaration", "ClassDeclaration") and value.id:
            names.append(value.id.name)
        for owner in dict.fromkeys(names):
            for key, right, stmt in self.member_writes.get(owner, []):
                exported.props[key] = (right, stmt)

    def commonjs(self, statements: list[Any]) -> _Exported:
        exported = _Exported()
        value: Any = None
        value_at: Any = None
        exports_props: dict[str, tuple[Any, Any]] = {}
        module_props: dict[str, tuple[Any, Any]] = {}
        reassigned_exports: Any = None
        for stmt in statements:
            if stmt.type != "ExpressionStatement":
                continue
            expr = stmt.expression
            if expr.type == "CallExpression" and _is_object_assign(expr):
                target = _exports_target(expr.arguments[0])
                if target is None:
                    continue
                dest = module_props if target == "module.exports" or value is None else {}
                for source in expr.arguments[1:]:
                    sub = _Exported()
                    self.object_props(sub, source)
                    dest.update(sub.props)
                    exported.complete &= sub.complete
                exported.form = exported.form if exported.form != "none" else "exports"
                continue
            if expr.type != "AssignmentExpression" or expr.operator != "=":
                continue
            left = expr.left
            target = _exports_target(left)
            if target == "module.exports":
                right = expr.right
                while right.type == "AssignmentExpression" and right.operator == "=":
                    right = right.right
                value, value_at = right, stmt
                module_props = {}
                exported.form = "module.exports"
            elif left.type == "Identifier" and left.name == "exports":
                reassigned_exports = stmt
            elif left.type == "MemberExpression":
                owner = _exports_target(left.object)
                key = _key(left)
                if owner is None:
                    continue
                if key is None:
                    exported.complete = False
                    continue
                if owner == "module.exports":
                    module_props[key] = (expr.right, stmt)
                    exported.form = "module.exports" if value is not None else "exports"
                elif value is None:
                    exports_props[key] = (expr.right, stmt)
                    exported.form = "exports"
        if value is not None:
            self.object_props(exported, value)
            exported.at = value_at
        else:
            exported.props.update(exports_props)
        exported.props.update(module_props)
        if exported.form == "none" and reassigned_exports is not None:
            exported.at = reassigned_exports
            exported.form = "exports-reassigned"
        return exported

    def esmodule(self, statements: list[Any]) -> _Exported:
        exported = _Exported()
        named: dict[str, tuple[Any, Any]] = {}
        named_complete = True
        default: Any = None
        for stmt in statements:
            t = stmt.type
            if t == "ExportDefaultDeclaration":
                default = stmt
            elif t == "ExportAllDeclaration":
                named_complete = False
            elif t == "ExportNamedDeclaration":
                decl = stmt.declaration
                if decl is not None:
                    if decl.type in ("FunctionDeclaration", "ClassDeclaration"):
                        named[decl.id.name] = (decl, decl)
                    elif decl.type == "VariableDeclaration":
                        for d in decl.declarations:
                            if d.id.type == "Identifier":
                                named[d.id.name] = (d.init, d)
                            else:
                                named_complete = False
                for spec in stmt.specifiers or []:
                    exported_name = _name(spec.exported)
                    if exported_name is None:
                        continue
                    if stmt.source is not None:
                        named[exported_name] = (None, spec)
                    elif exported_name == "default":
                        default = spec
                    else:
                        named[exported_name] = (spec.local, spec)
        if default is not None:
            exported.form = "export default"
            exported.at = default
            value = default.declaration if default.type == "ExportDefaultDeclaration" else (
                default.local)
            name = value.id.name if value is not None and value.type in (
                "FunctionDeclaration", "ClassDeclaration") and value.id else None
            self.object_props(exported, value, name)
        elif named:
            exported.form = "named"
            exported.props.update(named)
            exported.complete = named_complete
        else:
            exported.complete = named_complete
        return exported


def _name(node: Any) -> str | None:
    if node is None:
        return None
    if node.type == "Identifier":
        return str(node.name)
    return node.value if isinstance(node.value, str) else None


def _key(node: Any) -> str | None:
    """The static key of a Property, class member or MemberExpression."""
    key = node.property if node.type == "MemberExpression" else node.key
    if key is None:
        return None
    if not node.computed:
        if key.type in ("Identifier", "PrivateIdentifier"):
            return None if key.type == "PrivateIdentifier" else str(key.name)
        return fold_string(key, 4)
    return fold_string(key, 8)


def _exports_target(node: Any) -> str | None:
    if node is None:
        return None
    if node.type == "Identifier" and node.name == "exports":
        return "exports"
    if (node.type == "MemberExpression" and node.object.type == "Identifier"
            and node.object.name == "module" and _key(node) == "exports"):
        return "module.exports"
    return None


def _is_object_assign(call: Any) -> bool:
    callee = call.callee
    return (callee.type == "MemberExpression" and callee.object.type == "Identifier"
            and callee.object.name == "Object" and _key(callee) == "assign"
            and bool(call.arguments))


def _integer(module: _Module, node: Any) -> tuple[str, float | None]:
    """('number', value) for a value the analyzer can compute (literals, top-level consts,
    arithmetic, Math.min/max/floor/..., properties of const objects), ('other', None) for a
    constant non-number, ('unknown', None) for an expression only the run time knows."""
    number = module.fold(node, [_FOLD_BUDGET])
    if number is not None:
        return "number", number
    value = module.resolve(node)
    if value is None:
        return UNKNOWN, None
    if value.type in ("Literal", "TemplateLiteral", "ObjectExpression", "ArrayExpression") or (
            value.type in FUNCTION_TYPES):
        return OTHER, None
    return UNKNOWN, None


def check_contract(body: list[Any], module: bool) -> ContractResult:
    """Check the exports of a parsed module; returns findings and a JSON-able summary."""
    mod = _Module(body)
    statements = mod.statements()
    mod.index(statements)
    exported = mod.esmodule(statements) if module else mod.commonjs(statements)
    props = exported.props
    summary: dict[str, object] = {"form": exported.form, "hooks": [], "maxPlayers": None,
                                  "tickRate": None, "verified": False}

    if exported.not_object is not None:
        mod.hit("contract-exports", f"the module exports {exported.not_object}; it must export "
                f"an object with at least onJoin or onMessage: {_EXAMPLE}", exported.at)
        return ContractResult(mod.hits, summary)
    if module and exported.form == "none" and mod.commonjs(statements).form != "none":
        mod.hit("contract-exports", "this is an ES module (it uses import/export), where "
                "module.exports does not exist; export the hooks with export default { ... }",
                exported.at)
        return ContractResult(mod.hits, summary)
    if exported.form == "exports-reassigned":
        mod.hit("contract-exports", "assigning to `exports` exports nothing; assign "
                f"module.exports instead: {_EXAMPLE}", exported.at)
        return ContractResult(mod.hits, summary)

    hooks: list[str] = []
    for hook in HOOKS:
        if hook not in props:
            continue
        value, at = props[hook]
        kind = UNKNOWN if value is None else mod.kind(value)
        if kind == ABSENT:
            del props[hook]  # `onTick: undefined` is no hook at all, as for the runtime
            continue
        if kind == OTHER:
            mod.hit("contract-hook-type", f"{hook} must be a function (the runtime calls it)", at)
        else:
            hooks.append(hook)
    summary["hooks"] = hooks

    if not any(hook in hooks for hook in REQUIRED_HOOKS):
        if exported.complete and not any(h in props for h in REQUIRED_HOOKS):
            what = "nothing" if exported.form == "none" else "no onJoin or onMessage"
            mod.hit("contract-exports", f"the module exports {what}; it must export an object "
                    f"with at least onJoin or onMessage: {_EXAMPLE}", exported.at)
        elif not exported.complete:
            seats = "" if "maxPlayers" in props else f"; without a maxPlayers it can read, {_SEATS_NOTE}"
            mod.hit("contract-unverified", "the exported object is built at run time, so its "
                    f"hooks cannot be checked before deployment{seats}", exported.at)
    elif not exported.complete and "maxPlayers" not in props:
        mod.hit("contract-unverified", "the exported object is built at run time, so its "
                f"maxPlayers cannot be read before deployment: {_SEATS_NOTE}", exported.at)

    max_players = _bounded(mod, props, "maxPlayers", MAX_PLAYERS, "contract-max-players",
                           "maxPlayers must be an integer from 1 to 100000",
                           f"maxPlayers is computed at run time, so the platform cannot read it "
                           f"before deployment: {_SEATS_NOTE}; export a constant (literals, "
                           "consts, arithmetic and Math.min/max of them are read)")
    tick_rate = _bounded(mod, props, "tickRate", TICK_RATE, "contract-tick-rate",
                         "tickRate must be an integer from 0 to 60 (ticks per second; 0 = no "
                         "onTick)",
                         "tickRate is computed at run time, so it cannot be checked before "
                         "deployment: the runtime uses the value it computes at start, clamped "
                         "to 1-60 ticks per second (0 or none: no onTick calls)")
    summary["maxPlayers"] = max_players
    summary["tickRate"] = tick_rate
    _room_exports(mod, props, summary)

    if tick_rate is not None and tick_rate > 0 and "onTick" not in props and exported.complete:
        mod.hit("contract-tick", f"tickRate is {tick_rate} but there is no onTick to call",
                props["tickRate"][1])
    elif "onTick" in hooks and (tick_rate == 0 or ("tickRate" not in props and exported.complete)):
        mod.hit("contract-tick", "onTick is exported but tickRate is 0 or missing, so the "
                "runtime never calls it", props["onTick"][1])

    for key, (_, at) in props.items():
        if key in HOOKS or not key.startswith("on"):
            continue
        close = _LOWER_HOOKS.get(key.lower())
        if close is None:
            match = difflib.get_close_matches(key.lower(), list(_LOWER_HOOKS), n=1, cutoff=0.85)
            close = _LOWER_HOOKS[match[0]] if match else None
        if close is not None:
            mod.hit("contract-unknown-hook", f"{key} is not a hook the runtime calls; did you "
                    f"mean {close}?", at)

    summary["verified"] = exported.complete and exported.form != "none"
    return ContractResult(mod.hits, summary)


def _room_exports(mod: _Module, props: dict[str, tuple[Any, Any]], summary: dict[str, object]) -> None:
    """maxRooms and emptyRoomSeconds (issue #22) into the summary, only when the module exports
    them: the workflow deploys with the module's maxRooms when the deployment gives none."""
    if "maxRooms" in props:
        summary["maxRooms"] = _bounded(
            mod, props, "maxRooms", MAX_ROOMS, "contract-max-rooms",
            f"maxRooms must be an integer from {MAX_ROOMS[0]} to {MAX_ROOMS[1]} (rooms per server)",
            "maxRooms is computed at run time, so the platform cannot read it before deployment: the "
            "server hosts one room unless the deployment sets max_rooms (gsf deploy --max-rooms)")
    if "emptyRoomSeconds" in props:
        summary["emptyRoomSeconds"] = _bounded(
            mod, props, "emptyRoomSeconds", EMPTY_ROOM_SECONDS, "contract-empty-room-seconds",
            f"emptyRoomSeconds must be a number from {EMPTY_ROOM_SECONDS[0]} to {EMPTY_ROOM_SECONDS[1]} "
            "(seconds an empty room stays before onDispose)",
            "emptyRoomSeconds is computed at run time, so it cannot be checked before deployment",
            whole=False)


def _bounded(mod: _Module, props: dict[str, tuple[Any, Any]], key: str, bounds: tuple[int, int],
             rule: str, message: str, unknown: str, whole: bool = True) -> int | float | None:
    """The exported integer at `key` when the analyzer can compute it; a finding (`rule` out of
    bounds, contract-unverified with the `unknown` message) when it cannot vouch for it."""
    if key not in props:
        return None
    value, at = props[key]
    kind, number = _integer(mod, value) if value is not None else (UNKNOWN, None)
    if kind == UNKNOWN:
        mod.hit("contract-unverified", unknown, at)
        return None
    low, high = bounds
    if (number is None or not math.isfinite(number) or (whole and number != int(number))
            or not low <= number <= high):
        shown = "a non-number" if number is None else f"{number:g}"
        mod.hit(rule, f"{message}, not {shown}", at)
        return None
    return int(number) if number == int(number) else number
