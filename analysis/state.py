"""`state-unassigned`: writes into a nested `room.state` object that nothing ever creates.

The runtime starts `room.state` as `{}`, so `room.state.n = 0` is fine, but
`room.state.players[id] = player` throws a TypeError unless some code assigns
`room.state.players` first. The pass looks at every write whose target is `R.state.K.…` (R the
room: a variable called `room`, or the first parameter of a hook) and at every call of a method
of `R.state.K`, and warns once per key K that is never assigned anywhere: not as
`X.state.K = …` (any operator, any X, so helpers taking the room under another name count), nor
as a key of an object literal assigned to `X.state`. Where the analyzer cannot see what
`room.state` receives (it is assigned something other than an object literal, stored in a
variable, destructured, passed to a function of the module, `Object.assign`ed to, or written
with a computed key), it stays quiet.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

from analysis.checks import FUNCTION_TYPES, Hit, fold_string
from analysis.parsing import BudgetExceeded

HOOKS = frozenset({"onCreate", "onJoin", "onMessage", "onLeave", "onTick", "onDispose", "onDrop", "onReconnect",
                   "onRestore", "onMigrate", "view"})
_CLOCK_EVERY = 0x3FF
_OBJECT_WRITERS = frozenset({"assign", "defineProperty", "defineProperties", "setPrototypeOf"})
_TYPES = frozenset({"AssignmentExpression", "CallExpression", "UpdateExpression", "UnaryExpression",
                    "VariableDeclarator", "FunctionDeclaration", "Property", "MethodDefinition",
                    "PropertyDefinition"})


def _key(node: Any) -> str | None:
    """The static key of a MemberExpression, Property or class member."""
    prop = node.property if node.type == "MemberExpression" else node.key
    if prop is None:
        return None
    if not node.computed:
        if prop.type == "Identifier":
            return str(prop.name)
        return fold_string(prop, 4)
    return fold_string(prop, 8)


def _chain(node: Any) -> tuple[Any, list[Any]]:
    """A member chain `a.b.c.d` as (root `a`, [the members from the outermost in])."""
    members = []
    while node is not None and node.type == "MemberExpression":
        members.append(node)
        node = node.object
    return node, members


class _StatePass:
    def __init__(self, nodes: list[Any], deadline: float) -> None:
        self.nodes = nodes
        self.deadline = deadline
        self.rooms: set[str] = {"room"}
        self.assigned: set[str] = set()
        self.opaque = False  # room.state gets something the pass cannot follow
        self.uses: dict[str, tuple[int, int, str]] = {}  # key -> first (start, end, shown)

    def room_param(self, fn: Any) -> None:
        if fn is not None and fn.type in FUNCTION_TYPES and fn.params and fn.params[0].type == "Identifier":
            self.rooms.add(str(fn.params[0].name))

    def is_state(self, node: Any, any_owner: bool = False) -> bool:
        """`R.state` (R a room name; any object when `any_owner`)."""
        if node is None or node.type != "MemberExpression" or _key(node) != "state":
            return False
        owner = node.object
        return any_owner or (owner.type == "Identifier" and owner.name in self.rooms)

    def nested_key(self, target: Any) -> str | None:
        """K when `target` is `R.state.K.<something>` (a write into the object at K)."""
        root, members = _chain(target)
        if len(members) < 3 or root is None or root.type != "Identifier" or root.name not in self.rooms:
            return None
        state, holder = members[-1], members[-2]
        if _key(state) != "state" or any(getattr(m, "optional", False) for m in members):
            return None
        return _key(holder)

    def state_written(self, target: Any, right: Any, operator: str) -> None:
        """A write to `X.state` or `X.state.K` (any X)."""
        if self.is_state(target, any_owner=True):
            if operator != "=" or right is None or right.type != "ObjectExpression":
                self.opaque = True
                return
            for prop in right.properties:
                key = _key(prop) if prop.type == "Property" else None
                if key is None:
                    self.opaque = True
                else:
                    self.assigned.add(key)
        elif target.type == "MemberExpression" and self.is_state(target.object, any_owner=True):
            key = _key(target)
            if key is None:
                self.opaque = True
            else:
                self.assigned.add(key)

    def use(self, key: str | None, node: Any) -> None:
        if key is None:
            return
        start, end = int(node._start or 0), int(node._end or 0)
        known = self.uses.get(key)
        if known is None or start < known[0]:
            root, _ = _chain(node)
            self.uses[key] = (start, end, f"{root.name}.state.{key}")

    def escapes(self, value: Any) -> bool:
        """`value` is room.state itself, handed to other code."""
        return value is not None and self.is_state(value)

    def run(self) -> list[Hit]:
        # One pass; which names are the room is known only at its end, so the writes (`targets`)
        # and the values that might hand room.state on (`values`) are judged afterwards.
        targets: list[Any] = []
        values: list[Any] = []
        destructured: list[str] = []  # const { state } = X
        deadline = self.deadline
        for i, node in enumerate(self.nodes):
            if not i & _CLOCK_EVERY and perf_counter() > deadline:
                raise BudgetExceeded
            t = node.type
            if t not in _TYPES:
                continue
            if t == "AssignmentExpression":
                left = node.left
                if left.type == "MemberExpression":
                    if _key(left) in HOOKS:
                        self.room_param(node.right)
                    self.state_written(left, node.right, node.operator)
                    targets.append(left)
                values.append(node.right)
            elif t == "CallExpression":
                callee = node.callee
                if callee.type == "MemberExpression":
                    targets.append(callee)  # room.state.players.push(p) changes `players`
                    owner = callee.object
                    if (owner.type == "Identifier" and owner.name in ("Object", "Reflect")
                            and _key(callee) in _OBJECT_WRITERS and node.arguments
                            and self.is_state(node.arguments[0], any_owner=True)):
                        self.opaque = True  # Object.assign(room.state, ...)
                elif callee.type == "Identifier":
                    values.extend(node.arguments)  # setup(room.state) may fill it
            elif t in ("UpdateExpression", "UnaryExpression"):
                if t == "UpdateExpression" or node.operator == "delete":
                    targets.append(node.argument)
            elif t == "VariableDeclarator":
                if node.id.type == "Identifier" and node.id.name in HOOKS:
                    self.room_param(node.init)
                elif node.id.type == "ObjectPattern" and node.init is not None and node.init.type == "Identifier":
                    destructured.append(str(node.init.name))
                values.append(node.init)
            elif t == "FunctionDeclaration":
                if node.id is not None and node.id.name in HOOKS:
                    self.room_param(node)
            elif _key(node) in HOOKS:  # a Property, method or class field
                self.room_param(node.value)
        if (self.opaque or any(name in self.rooms for name in destructured)
                or any(self.escapes(value) for value in values)):
            return []
        for target in targets:
            if target.type == "MemberExpression":
                self.use(self.nested_key(target), target)
        hits = []
        for key, (start, end, shown) in sorted(self.uses.items(), key=lambda kv: kv[1][0]):
            if key in self.assigned:
                continue
            hits.append(Hit("state-unassigned", f"{shown} is never assigned, so writing into it throws "
                            f"a TypeError (room.state starts as {{}}); create it first, e.g. "
                            f"{shown} = {{}} in onCreate", start, end))
        return hits


def check_state(nodes: list[Any], deadline: float) -> list[Hit]:
    """`state-unassigned` findings for the finished nodes of one parse."""
    return _StatePass(nodes, deadline).run()
