"""The rules on names: declarations, destructuring, assignments and writes to builtins, and
which names functions and watched references get."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from analysis.check_state import COMPARE, NAME, OBJECT, TYPEOF, CheckerState
from analysis.estree import fold_string, member_key
from analysis.nodejs import BUILTINS, FUNCTION_TYPES, GLOBAL_NAMES


class BindingRules(CheckerState):
    """Bindings, writes, and the roles declarations give watched references."""

    def _property(self, node: Any) -> None:
        key = node.key
        if not node.computed and id(key) in self.refs:
            self.roles[id(key)] = NAME
        value = node.value
        if value is not None and value.type in FUNCTION_TYPES:
            name = key.name if key.type == "Identifier" else key.value
            if isinstance(name, str):
                self.fn_names[id(value)] = name

    def _class_member(self, node: Any) -> None:
        key = node.key
        if not node.computed and id(key) in self.refs:
            self.roles[id(key)] = NAME
        value = node.value
        if value is not None and value.type in FUNCTION_TYPES and key is not None:
            name = key.name if key.type in ("Identifier", "PrivateIdentifier") else key.value
            if isinstance(name, str):
                self.fn_names[id(value)] = name

    def _mark_bindings(self, pattern: Any) -> None:
        """Mark the identifiers a pattern declares; they are not references."""
        stack = [pattern]
        refs = self.refs
        budget = 4096
        while stack and budget:
            budget -= 1
            node = stack.pop()
            if node is None:
                continue
            t = node.type
            if t == "Identifier":
                if id(node) in refs:
                    self.roles[id(node)] = NAME
            elif t == "ObjectPattern":
                for prop in node.properties:
                    stack.append(prop.argument if prop.type == "RestElement" else prop.value)
            elif t == "ArrayPattern":
                stack.extend(node.elements)
            elif t == "AssignmentPattern":
                stack.append(node.left)
            elif t == "RestElement":
                stack.append(node.argument)

    def _destructure(self, pattern: Any, source: Any) -> None:
        """`const { env } = process`: each key read from a known path is that member path."""
        if pattern.type != "ObjectPattern" or source is None:
            return
        base = self._path_of(source)
        if base is None:
            return
        self._role(source, OBJECT)
        for prop in pattern.properties:
            if prop.type == "RestElement":
                if base == "process":
                    self.hit("process-alias", "process is copied with ...rest", prop)
                elif base in GLOBAL_NAMES:
                    self.hit("global-alias", f"{base} is copied with ...rest", prop)
                continue
            key = prop.key.name if not prop.computed and prop.key.type == "Identifier" else (
                fold_string(prop.key, 8))
            if key is None:
                if base in GLOBAL_NAMES or base in ("process", "module", "require"):
                    self.hit("computed-global-access",
                             f"a key computed at run time is read from {base}", prop)
                continue
            path = key if base in GLOBAL_NAMES else base + "." + key
            self._check_path(path, prop)

    def _declarator(self, node: Any) -> None:
        target = node.id
        init = node.init
        if target.type == "Identifier":
            if id(target) in self.refs:
                self.roles[id(target)] = NAME
            if init is not None:
                if init.type in FUNCTION_TYPES:
                    self.fn_names[id(init)] = target.name
                    self.fn_declared.add(target.name)
                elif init.type == "Literal" and isinstance(init.value, str):
                    self.string_consts.add(target.name)
                self.assigned_inits.append((target.name, init))
        else:
            self._mark_bindings(target)
            self._destructure(target, init)

    def _assignment(self, node: Any) -> None:
        left = node.left
        t = left.type
        if t == "MemberExpression":
            self._write_target(left, node)
        elif t == "Identifier":
            if id(left) in self.refs:
                self.roles[id(left)] = NAME
            if left.name in BUILTINS:
                self.hit("prototype-pollution", f"assignment replaces the built-in {left.name}", node)
            self.assigned_inits.append((left.name, node.right))
        elif t in ("ObjectPattern", "ArrayPattern"):
            self._mark_bindings(left)
            self._destructure(left, node.right)

    def _update(self, node: Any) -> None:
        if node.argument.type == "MemberExpression":
            self._write_target(node.argument, node)

    def _unary(self, node: Any) -> None:
        op = node.operator
        if op == "typeof":
            self._role(node.argument, TYPEOF)
        elif op == "delete" and node.argument.type == "MemberExpression":
            self._write_target(node.argument, node)

    def _binary(self, node: Any) -> None:
        self._role(node.left, COMPARE)
        self._role(node.right, COMPARE)

    def _write_target(self, target: Any, node: Any) -> None:
        keys: list[str | None] = []
        cur = target
        for _ in range(12):
            if cur.type == "ChainExpression":
                cur = cur.expression
            if cur.type != "MemberExpression":
                break
            keys.append(member_key(cur))
            cur = cur.object
        else:
            return
        keys.reverse()
        root = cur.name if cur.type == "Identifier" else None
        while root in GLOBAL_NAMES and keys and keys[0] is not None:
            root = keys.pop(0)
        written = ".".join(k or "[...]" for k in keys)
        if "__proto__" in keys:
            self.hit("prototype-pollution", "a write through __proto__ changes a prototype", node)
        elif root in BUILTINS:
            self.hit("prototype-pollution", f"a write changes the built-in {root}.{written}", node)
        elif any(a == "constructor" and b == "prototype" for a, b in pairwise(keys)):
            self.hit("prototype-pollution", "a write through .constructor.prototype changes a "
                     "shared prototype", node)

    def _function(self, node: Any) -> None:
        self.functions.append(node)
        if node.id is not None:
            if id(node.id) in self.refs:
                self.roles[id(node.id)] = NAME
            if node.type == "FunctionDeclaration":
                self.fn_declared.add(node.id.name)
                self.fn_names.setdefault(id(node), node.id.name)
        for param in node.params:
            self._mark_bindings(param)

    def _catch(self, node: Any) -> None:
        if node.param is not None:
            self._mark_bindings(node.param)

    def _for_in_of(self, node: Any) -> None:
        left = node.left
        if left.type != "VariableDeclaration":
            self._mark_bindings(left)

    def _labelled(self, node: Any) -> None:
        if node.label is not None:
            self._role(node.label, NAME)

    def _specifier(self, node: Any) -> None:
        self._role(node.local, NAME)
        if node.imported is not None:
            self._role(node.imported, NAME)

    def _class(self, node: Any) -> None:
        if node.id is not None:
            self._role(node.id, NAME)

    def _with(self, node: Any) -> None:
        self.hit("with-statement", "a with statement makes every name inside it ambiguous", node)
