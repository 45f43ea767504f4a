"""The rules on what code reaches: member paths, calls, `new`, allocations, imports."""

from __future__ import annotations

from typing import Any

from analysis.check_state import CALL, NAME, NEW, OBJECT, CheckerState
from analysis.estree import (
    _is_built_from_strings,
    _is_stringish,
    fold_number,
    fold_string,
    member_key,
)
from analysis.nodejs import (
    _BYTES_PER_ELEMENT,
    _NOT_FUNCTIONS,
    BUILTINS,
    DECODERS,
    GLOBAL_NAMES,
    LARGE_BYTES,
    LARGE_ELEMENTS,
    MUTATORS,
    PROPERTY_READERS,
    PROTO_GETTERS,
    ROOTS,
    SINKS,
    TIMERS,
)


class AccessRules(CheckerState):
    """Member access, calls and constructions, module specifiers."""

    def _member(self, node: Any) -> None:
        obj = node.object
        oid = id(obj)
        refs = self.refs
        if oid in refs:
            self.roles[oid] = OBJECT
        prop = node.property
        if node.computed:
            key = fold_string(prop, 8)
            self.sink_slots.append(prop)
        else:
            key = prop.name if prop.type == "Identifier" else None
            if id(prop) in refs:
                self.roles[id(prop)] = NAME
        ot = obj.type
        if ot == "Identifier":
            base = obj.name if obj.name in ROOTS else None
        elif ot == "MemberExpression":
            base = self.paths.get(oid)
        elif ot == "ThisExpression":
            base = "this"
        else:
            base = None
        if key == "constructor":
            self.constructor_reads.append(node)
            if (base is not None and base not in _NOT_FUNCTIONS and base != "this"
                    and not base.endswith(".prototype")):
                # Built-ins and their methods are functions: their constructor is Function.
                self.hit("constructor-chain", f"{base}.constructor is the Function constructor",
                         node)
        if key is None:
            if node.computed and base is not None:
                self._computed_access(node, base)
            return
        if base is None or base == "this" or len(base) > 120:
            return
        path = key if base in GLOBAL_NAMES else base + "." + key
        self.paths[id(node)] = path
        self._check_path(path, node)

    def _computed_access(self, node: Any, base: str) -> None:
        if base in GLOBAL_NAMES or base in ("process", "module", "require"):
            self.hit("computed-global-access",
                     f"{base}[...] is indexed with a key computed at run time", node)
        elif base == "this" and _is_built_from_strings(node.property):
            self.hit("computed-this-access", "this[...] is indexed with a key assembled from strings",
                     node)

    def _call(self, node: Any) -> None:
        callee = node.callee
        if callee.type == "ChainExpression":
            callee = callee.expression
        self._role(callee, CALL)
        name = self._path_of(callee)
        args = node.arguments
        if name is None:
            if callee.type == "MemberExpression":
                self._method_call(node, callee, args)
            return
        if name in ("require", "module.require"):
            self._require(node, args, "require()")
        elif name in TIMERS:
            if args:
                self.timers.append(node)
        elif name in DECODERS:
            self.decoders.append(node)
        elif name in PROTO_GETTERS:
            self.proto_calls.add(id(node))
        elif name in MUTATORS:
            if args and self._is_builtin_target(args[0]):
                self.hit("prototype-pollution", f"{name}() changes a built-in object or prototype",
                         node)
        elif name in PROPERTY_READERS and len(args) >= 2:
            self._property_read(node, args[0], args[1])
        elif name == "createRequire":
            self.hit("process-internals", "createRequire() makes a require for any module", node)
        elif name in ("Array", "Buffer.alloc", "Buffer.allocUnsafe", "Buffer.allocUnsafeSlow"):
            self._allocation(node, name, args)
        elif name == "Array.from" and args and args[0].type == "ObjectExpression":
            for prop in args[0].properties:
                if prop.type == "Property" and not prop.computed and prop.key.name == "length":
                    self._allocation(node, name, [prop.value])
        if name in SINKS:
            self.sink_slots.extend(args)
        if callee.type == "MemberExpression":
            self._method_call(node, callee, args)

    def _property_read(self, node: Any, target: Any, key_node: Any) -> None:
        """Reflect.get(globalThis, 'eval') and friends: the same as globalThis['eval']."""
        base = self._path_of(target)
        if base is None:
            return
        self._role(target, OBJECT)
        key = fold_string(key_node)
        if key is None:
            if base in GLOBAL_NAMES or base in ("process", "module", "require"):
                self.hit("computed-global-access",
                         f"a key computed at run time is read from {base}", node)
            return
        self._check_path(key if base in GLOBAL_NAMES else f"{base}.{key}", node)

    def _method_call(self, node: Any, callee: Any, args: list[Any]) -> None:
        key = member_key(callee)
        if key is None:
            return
        if key in ("repeat", "padStart", "padEnd") and args:
            count = fold_number(args[0])
            if count is not None and count >= LARGE_ELEMENTS:
                self.hit("large-allocation", f".{key}({count:.0f}) builds a string of "
                         f"{count:,.0f} characters or more", node)
        elif key == "constructor":
            if any(_is_stringish(arg) for arg in args):
                self.hit("constructor-chain", "a .constructor is called with a string: on a "
                         "function value that is the Function constructor", node)
            self.sink_slots.extend(args)
        elif key == "decode":
            self.decoders.append(node)

    def _new(self, node: Any) -> None:
        callee = node.callee
        self._role(callee, NEW)
        name = self._path_of(callee)
        if name is None:
            if callee.type == "MemberExpression" and member_key(callee) == "constructor":
                self.sink_slots.extend(node.arguments)
                if any(_is_stringish(arg) for arg in node.arguments):
                    self.hit("constructor-chain", "new x.constructor(...) with a string: on a "
                             "function value that is the Function constructor", node)
            return
        if name in _BYTES_PER_ELEMENT or name == "Array":
            self._allocation(node, name, node.arguments)
        elif name in ("require", "module.require"):
            self._require(node, node.arguments, "new require()")
        if name == "Function":
            self.sink_slots.extend(node.arguments)

    def _allocation(self, node: Any, name: str, args: list[Any]) -> None:
        if len(args) != 1:
            return
        size = fold_number(args[0])
        if size is None:
            return
        per = _BYTES_PER_ELEMENT.get(name)
        if per is None:
            if size >= LARGE_ELEMENTS:
                self.hit("large-allocation", f"{name}({size:,.0f}) allocates {size:,.0f} elements",
                         node)
        elif size * per >= LARGE_BYTES:
            self.hit("large-allocation", f"{name}({size:,.0f}) allocates "
                     f"{size * per / 1048576:,.0f} MiB", node)

    def _is_builtin_target(self, node: Any) -> bool:
        if node.type == "Identifier":
            return node.name in BUILTINS
        if node.type != "MemberExpression":
            return False
        keys: list[str | None] = []
        cur = node
        for _ in range(12):
            if cur.type != "MemberExpression":
                break
            keys.append(member_key(cur))
            cur = cur.object
        if "__proto__" in keys:
            return True
        root = cur.name if cur.type == "Identifier" else None
        keys.reverse()
        while root in GLOBAL_NAMES and keys and keys[0] is not None:
            root = keys.pop(0)
        return root in BUILTINS and (not keys or "prototype" in keys)

    def _import_expression(self, node: Any) -> None:
        spec = fold_string(node.source)
        if spec is None:
            self.hit("dynamic-require", "import() with a name computed at run time", node)
            self.sink_slots.append(node.source)
        else:
            self._specifier_check(spec, node, "import()")

    def _module_source(self, node: Any) -> None:
        source = node.source
        if source is not None and isinstance(source.value, str):
            kind = "import" if node.type == "ImportDeclaration" else "export ... from"
            self._specifier_check(source.value, node, kind)
