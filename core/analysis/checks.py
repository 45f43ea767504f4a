"""The security and resource rules, applied in one pass over the nodes esprima finished.

Nodes arrive children first. A rule that needs to know how a child is used (called, indexed,
declared) learns it from the parent, which comes later: references to the few names that matter
(eval, Function, require, process, globalThis, global) are collected with the role their parent
gives them and judged after the pass. Everything here is iterative or depth-bounded, so a deep
tree cannot exhaust the recursion limit, and the clock is checked as the pass goes.

Names are treated as the globals they usually are: a local variable called `process` is still
checked as `process` (shadowing is rare in game code, and ignoring it would be an easy bypass).
"""

from __future__ import annotations

import posixpath
import re
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import pairwise
from time import perf_counter
from typing import Any

from core.analysis.parsing import BudgetExceeded

# --- what the rules know about Node.js ------------------------------------------------------------

HOST_MODULES = frozenset({
    "child_process", "cluster", "worker_threads", "vm", "v8", "inspector", "fs", "net", "dgram",
    "http", "https", "http2", "tls", "dns", "os", "module", "process", "repl", "wasi",
    "trace_events", "sqlite", "test",
    # A net.Socket through tty.ReadStream's prototype; the runtime's own requests and sockets
    # through diagnostics_channel subscriptions and async_hooks resources.
    "tty", "diagnostics_channel", "async_hooks",
    "_http_agent", "_http_client", "_http_common", "_http_incoming", "_http_outgoing",
    "_http_server", "_tls_common", "_tls_wrap",
})

# Member paths (globalThis./global. stripped) and what reaching them means.
PATH_RULES: dict[str, tuple[str, str]] = {
    "process.binding": ("process-internals", "process.binding() reaches Node's native bindings"),
    "process._linkedBinding": ("process-internals",
                               "process._linkedBinding() reaches Node's native bindings"),
    "process.dlopen": ("process-internals", "process.dlopen() loads native code"),
    "process.getBuiltinModule": ("process-internals",
                                 "process.getBuiltinModule() loads any Node.js module"),
    "process.mainModule": ("process-internals",
                           "process.mainModule reaches the runtime's own module and its require"),
    "process.report": ("process-internals", "process.report writes diagnostic files"),
    "module.constructor": ("process-internals",
                           "module.constructor is Node's module loader (it can load anything)"),
    "module._load": ("process-internals", "module._load is Node's module loader"),
    "module._compile": ("process-internals", "module._compile compiles a string as a module"),
    "require.cache": ("process-internals", "require.cache lets code replace loaded modules"),
    "require.main": ("process-internals", "require.main reaches the runtime's entry module"),
    "require.extensions": ("process-internals", "require.extensions changes how modules load"),
    "process.env": ("process-env", "process.env exposes the server's environment and its secrets"),
    "process.loadEnvFile": ("process-env", "process.loadEnvFile() reads files into the environment"),
    "require.call": ("require-alias", "require is called through .call"),
    "require.apply": ("require-alias", "require is called through .apply"),
    "require.bind": ("require-alias", "require is bound to another name with .bind"),
    "Function.call": ("function-constructor", "Function.call builds a function from a string"),
    "Function.apply": ("function-constructor", "Function.apply builds a function from a string"),
    "Function.bind": ("function-constructor", "Function.bind hands out the Function constructor"),
    "Function.constructor": ("constructor-chain", "Function.constructor is the Function constructor"),
    "Function.prototype.constructor": ("constructor-chain",
                                       "Function.prototype.constructor is the Function constructor"),
}
for _name in ("exit", "reallyExit", "abort", "kill", "chdir", "setuid", "setgid", "seteuid",
              "setegid", "setgroups", "initgroups", "umask"):
    PATH_RULES["process." + _name] = ("process-control",
                                      f"process.{_name}() acts on the server process itself")

BUILTINS = frozenset({
    "Object", "Function", "Array", "String", "Number", "Boolean", "Symbol", "BigInt", "Math", "JSON",
    "Reflect", "Promise", "RegExp", "Date", "Error", "EvalError", "RangeError", "ReferenceError",
    "SyntaxError", "TypeError", "URIError", "AggregateError", "Map", "Set", "WeakMap", "WeakSet",
    "WeakRef", "FinalizationRegistry", "ArrayBuffer", "SharedArrayBuffer", "DataView", "Int8Array",
    "Uint8Array", "Uint8ClampedArray", "Int16Array", "Uint16Array", "Int32Array", "Uint32Array",
    "Float32Array", "Float64Array", "BigInt64Array", "BigUint64Array", "Proxy", "Intl", "Atomics",
    "Buffer", "URL", "URLSearchParams", "TextEncoder", "TextDecoder", "setTimeout", "setInterval",
    "setImmediate", "clearTimeout", "clearInterval", "clearImmediate", "queueMicrotask",
    "structuredClone", "atob", "btoa", "WebAssembly",
})
GLOBAL_NAMES = frozenset({"globalThis", "global"})
# Roots that are plain objects, not functions: their .constructor is Object, not Function.
_NOT_FUNCTIONS = frozenset({"Math", "JSON", "Reflect", "Intl", "Atomics", "WebAssembly",
                            "globalThis", "global", "process", "module", "exports"})
# Calls that read a property by name, like a computed member access.
PROPERTY_READERS = frozenset({"Reflect.get", "Reflect.has", "Reflect.getOwnPropertyDescriptor",
                              "Object.getOwnPropertyDescriptor"})
# Names whose references are judged by how they are used.
WATCHED = frozenset({"eval", "Function", "require", "process", "globalThis", "global"})
# Roots whose member paths are tracked.
ROOTS = BUILTINS | WATCHED | {"module", "exports", "unescape", "decodeURIComponent", "decodeURI",
                              "createRequire"}

TIMERS = frozenset({"setTimeout", "setInterval", "setImmediate"})
DECODERS = frozenset({"String.fromCharCode", "String.fromCodePoint", "atob", "unescape",
                      "decodeURIComponent", "decodeURI", "Buffer.from"})
PROTO_GETTERS = frozenset({"Object.getPrototypeOf", "Reflect.getPrototypeOf"})
MUTATORS = frozenset({"Object.defineProperty", "Object.defineProperties", "Object.setPrototypeOf",
                      "Object.assign", "Reflect.defineProperty", "Reflect.set",
                      "Reflect.setPrototypeOf", "Reflect.deleteProperty"})
# Calls whose arguments run or name code: a decoded string there is an evasion.
SINKS = frozenset({"eval", "Function", "require", "module.require", "setTimeout", "setInterval",
                   "setImmediate", "Reflect.get", "Reflect.apply", "Reflect.construct"})

LARGE_ELEMENTS = 10_000_000
LARGE_BYTES = 64 * 1024 * 1024
_BYTES_PER_ELEMENT = {
    "Int8Array": 1, "Uint8Array": 1, "Uint8ClampedArray": 1, "Int16Array": 2, "Uint16Array": 2,
    "Int32Array": 4, "Uint32Array": 4, "Float32Array": 4, "Float64Array": 8, "BigInt64Array": 8,
    "BigUint64Array": 8, "ArrayBuffer": 1, "SharedArrayBuffer": 1, "Buffer": 1,
    "Buffer.alloc": 1, "Buffer.allocUnsafe": 1, "Buffer.allocUnsafeSlow": 1,
}

FUNCTION_TYPES = frozenset({"FunctionExpression", "ArrowFunctionExpression", "FunctionDeclaration"})
_LOOP_TYPES = frozenset({"WhileStatement", "DoWhileStatement", "ForStatement", "ForInStatement",
                         "ForOfStatement"})
_BREAKABLE = _LOOP_TYPES | {"SwitchStatement"}
_SCOPE_TYPES = FUNCTION_TYPES | {"ClassDeclaration", "ClassExpression"}

_ESCAPE = re.compile(r"\\(?:x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|u\{[0-9a-fA-F]+\}|[0-7]{1,3})")
_BASE64 = re.compile(r"(?:data:[\w/+.-]*;base64,)?[A-Za-z0-9+/_-]{256,}={0,2}")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2}){128,}")

# Roles a parent gives a watched reference.
VALUE, CALL, NEW, OBJECT, NAME, TYPEOF, COMPARE = range(7)

# Child fields per node type, for the few bounded sub-walks (loop bodies, patterns).
CHILD_KEYS: dict[str, tuple[str, ...]] = {
    "Program": ("body",), "BlockStatement": ("body",), "StaticBlock": ("body",),
    "ExpressionStatement": ("expression",), "IfStatement": ("test", "consequent", "alternate"),
    "LabeledStatement": ("body",), "BreakStatement": (), "ContinueStatement": (),
    "WithStatement": ("object", "body"), "SwitchStatement": ("discriminant", "cases"),
    "SwitchCase": ("test", "consequent"), "ReturnStatement": ("argument",),
    "ThrowStatement": ("argument",), "TryStatement": ("block", "handler", "finalizer"),
    "CatchClause": ("param", "body"), "WhileStatement": ("test", "body"),
    "DoWhileStatement": ("body", "test"), "ForStatement": ("init", "test", "update", "body"),
    "ForInStatement": ("left", "right", "body"), "ForOfStatement": ("left", "right", "body"),
    "FunctionDeclaration": ("id", "params", "body"), "FunctionExpression": ("id", "params", "body"),
    "ArrowFunctionExpression": ("params", "body"), "VariableDeclaration": ("declarations",),
    "VariableDeclarator": ("id", "init"), "ClassDeclaration": ("id", "superClass", "body"),
    "ClassExpression": ("id", "superClass", "body"), "ClassBody": ("body",),
    "MethodDefinition": ("key", "value"), "PropertyDefinition": ("key", "value"),
    "FieldDefinition": ("key", "value"), "ArrayExpression": ("elements",),
    "ObjectExpression": ("properties",), "Property": ("key", "value"),
    "UnaryExpression": ("argument",), "UpdateExpression": ("argument",),
    "BinaryExpression": ("left", "right"), "LogicalExpression": ("left", "right"),
    "AssignmentExpression": ("left", "right"), "MemberExpression": ("object", "property"),
    "ConditionalExpression": ("test", "consequent", "alternate"),
    "CallExpression": ("callee", "arguments"), "NewExpression": ("callee", "arguments"),
    "SequenceExpression": ("expressions",), "YieldExpression": ("argument",),
    "AwaitExpression": ("argument",), "TemplateLiteral": ("quasis", "expressions"),
    "TaggedTemplateExpression": ("tag", "quasi"), "ObjectPattern": ("properties",),
    "ArrayPattern": ("elements",), "RestElement": ("argument",),
    "AssignmentPattern": ("left", "right"), "SpreadElement": ("argument",),
    "ChainExpression": ("expression",), "ImportExpression": ("source", "options"),
    "Identifier": (), "PrivateIdentifier": (), "Literal": (), "ThisExpression": (), "Super": (),
    "TemplateElement": (), "EmptyStatement": (), "DebuggerStatement": (), "MetaProperty": (),
}


def children(node: Any) -> Iterable[Any]:
    """The child nodes of `node` (unknown node types: every node-valued attribute)."""
    keys = CHILD_KEYS.get(node.type)
    if keys is None:
        keys = tuple(k for k in vars(node) if not k.startswith("_") and k != "type")
    for key in keys:
        value = getattr(node, key, None)
        if value is None:
            continue
        if isinstance(value, list):
            for item in value:
                if item is not None and hasattr(item, "type"):
                    yield item
        elif hasattr(value, "type") and isinstance(getattr(value, "type", None), str):
            yield value


# --- constant folding (bounded) -------------------------------------------------------------------


def fold_string(node: Any, budget: int = 32) -> str | None:
    """The string an expression always evaluates to, for literals, '+' of them, templates without
    substitutions and ['a', 'b'].join(''); None otherwise. At most `budget` nodes are looked at."""
    left = [budget]
    return _fold_string(node, left)


def _fold_string(node: Any, left: list[int]) -> str | None:
    left[0] -= 1
    if left[0] < 0 or node is None:
        return None
    t = node.type
    if t == "Literal":
        value = node.value
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return None
    if t == "TemplateLiteral":
        if node.expressions:
            return None
        cooked = node.quasis[0].value.cooked if node.quasis else ""
        return cooked if isinstance(cooked, str) else None
    if t == "BinaryExpression" and node.operator == "+":
        a = _fold_string(node.left, left)
        if a is None:
            return None
        b = _fold_string(node.right, left)
        if b is None or len(a) + len(b) > 4096:
            return None
        return a + b
    if t == "CallExpression" and not node.arguments[1:]:
        callee = node.callee
        if (callee.type == "MemberExpression" and not callee.computed
                and callee.property.name == "join" and callee.object.type == "ArrayExpression"):
            sep = "," if not node.arguments else _fold_string(node.arguments[0], left)
            if sep is None:
                return None
            parts = []
            for element in callee.object.elements:
                part = _fold_string(element, left)
                if part is None:
                    return None
                parts.append(part)
            return sep.join(parts)
    return None


def fold_number(node: Any, budget: int = 16) -> float | None:
    """The number a literal arithmetic expression evaluates to (bounded), else None."""
    left = [budget]
    return _fold_number(node, left)


def _fold_number(node: Any, left: list[int]) -> float | None:
    left[0] -= 1
    if left[0] < 0 or node is None:
        return None
    t = node.type
    if t == "Literal":
        value = node.value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        return None
    if t == "UnaryExpression" and node.operator in ("-", "+"):
        inner = _fold_number(node.argument, left)
        return None if inner is None else (-inner if node.operator == "-" else inner)
    if t == "BinaryExpression" and node.operator in ("+", "-", "*", "/", "**", "<<", "%"):
        a = _fold_number(node.left, left)
        b = _fold_number(node.right, left) if a is not None else None
        if a is None or b is None:
            return None
        op = node.operator
        try:
            if op == "+":
                return a + b
            if op == "-":
                return a - b
            if op == "*":
                return a * b
            if op == "/":
                return a / b if b else None
            if op == "%":
                return a % b if b else None
            if op == "**":
                return float(a ** b) if abs(b) < 4096 else None
            return float((int(a) << (int(b) & 31)) & 0xFFFFFFFF)
        except (OverflowError, ValueError, ZeroDivisionError):
            return float("inf")
    return None


def member_key(node: Any) -> str | None:
    """The property name of a member expression when it is known without running the code."""
    if node.computed:
        return fold_string(node.property, 8)
    prop = node.property
    return prop.name if prop.type == "Identifier" else None


def _is_truthy_constant(node: Any) -> bool:
    if node is None:
        return False
    if node.type == "Literal":
        value = node.value
        return bool(value) if isinstance(value, (bool, int, float, str)) else False
    if node.type == "UnaryExpression" and node.operator == "!":
        arg = node.argument
        if arg.type == "Literal":
            return not arg.value and isinstance(arg.value, (bool, int, float, str, type(None)))
        if arg.type == "UnaryExpression" and arg.operator == "!":
            return _is_truthy_constant(arg.argument)
    return False


def _is_stringish(node: Any, depth: int = 6) -> bool:
    """True for expressions that produce a string: literals, templates, '+' with a string side."""
    if node is None or depth <= 0:
        return False
    t = node.type
    if t == "Literal":
        return isinstance(node.value, str)
    if t == "TemplateLiteral":
        return True
    if t == "BinaryExpression" and node.operator == "+":
        return _is_stringish(node.left, depth - 1) or _is_stringish(node.right, depth - 1)
    return False


def _is_built_from_strings(node: Any) -> bool:
    t = node.type
    if t == "TemplateLiteral":
        return bool(node.expressions)
    if t == "BinaryExpression":
        return bool(node.operator == "+" and (_is_stringish(node.left)
                                              or _is_stringish(node.right)))
    return bool(t == "CallExpression")


# --- the pass ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class Hit:
    """A rule that fired, with code point offsets into the parsed text."""

    rule: str
    message: str
    start: int
    end: int


class Checker:
    """One pass over the finished nodes; `run()` returns the hits."""

    def __init__(self, nodes: list[Any], deadline: float, shift: int = 0) -> None:
        self.nodes = nodes
        self.deadline = deadline
        # Nodes before this offset belong to the CommonJS wrapper, not to the module.
        self.shift = shift
        self.hits: list[Hit] = []
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

    # -- driver --

    def run(self) -> list[Hit]:
        handlers: dict[str, Callable[[Any], None]] = {
            "MemberExpression": self._member,
            "CallExpression": self._call,
            "NewExpression": self._new,
            "ImportExpression": self._import_expression,
            "ImportDeclaration": self._module_source,
            "ExportAllDeclaration": self._module_source,
            "ExportNamedDeclaration": self._module_source,
            "Literal": self._literal,
            "TemplateElement": self._template_element,
            "Property": self._property,
            "MethodDefinition": self._class_member,
            "PropertyDefinition": self._class_member,
            "FieldDefinition": self._class_member,
            "VariableDeclarator": self._declarator,
            "AssignmentExpression": self._assignment,
            "UpdateExpression": self._update,
            "UnaryExpression": self._unary,
            "BinaryExpression": self._binary,
            "LogicalExpression": self._binary,
            "WithStatement": self._with,
            "WhileStatement": self._loop,
            "DoWhileStatement": self._loop,
            "ForStatement": self._loop,
            "FunctionDeclaration": self._function,
            "FunctionExpression": self._function,
            "ArrowFunctionExpression": self._function,
            "CatchClause": self._catch,
            "ForInStatement": self._for_in_of,
            "ForOfStatement": self._for_in_of,
            "LabeledStatement": self._labelled,
            "BreakStatement": self._labelled,
            "ContinueStatement": self._labelled,
            "ImportSpecifier": self._specifier,
            "ImportDefaultSpecifier": self._specifier,
            "ImportNamespaceSpecifier": self._specifier,
            "ClassDeclaration": self._class,
            "ClassExpression": self._class,
        }
        refs = self.refs
        get = handlers.get
        nodes = self.nodes
        for chunk in range(0, len(nodes), 4096):
            if perf_counter() > self.deadline:
                raise BudgetExceeded
            for node in nodes[chunk:chunk + 4096]:
                t = node.type
                if t == "Identifier":
                    # A third of all nodes: handled inline, only the watched names are kept.
                    name = node.name
                    if name in WATCHED:
                        refs[id(node)] = (node, name)
                    continue
                handler = get(t)
                if handler is not None:
                    handler(node)
        self._judge_references()
        self._judge_constructor_reads()
        self._judge_timers()
        self._judge_loops()
        self._judge_decoded()
        return self.hits

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

    # -- member access --

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

    def _check_path(self, path: str, node: Any) -> None:
        if path in WATCHED:
            self.refs[id(node)] = (node, path)
        elif path == "module.require":
            self.refs[id(node)] = (node, "require")
        else:
            rule = PATH_RULES.get(path)
            if rule is not None:
                self.hit(rule[0], rule[1], node)

    def _computed_access(self, node: Any, base: str) -> None:
        if base in GLOBAL_NAMES or base in ("process", "module", "require"):
            self.hit("computed-global-access",
                     f"{base}[...] is indexed with a key computed at run time", node)
        elif base == "this" and _is_built_from_strings(node.property):
            self.hit("computed-this-access", "this[...] is indexed with a key assembled from strings",
                     node)

    # -- calls --

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

    # -- literals --

    def _literal(self, node: Any) -> None:
        raw = node.raw
        if type(raw) is str and len(raw) >= 64 and type(node.value) is str:
            self._blob(raw, node.value, node)

    def _template_element(self, node: Any) -> None:
        raw = node.value.raw if node.value is not None else None
        if isinstance(raw, str) and len(raw) >= 64:
            cooked = node.value.cooked
            self._blob(raw, cooked if isinstance(cooked, str) else raw, node)

    def _blob(self, raw: str, value: str, node: Any) -> None:
        if raw.count("\\") >= 32:
            escapes = len(_ESCAPE.findall(raw))
            if escapes >= 32 and escapes * 4 >= len(raw) // 2:
                self.hit("encoded-blob", f"a string of {escapes} escape sequences", node)
                return
        if len(value) >= 256 and " " not in value:
            if _HEX.fullmatch(value):
                self.hit("encoded-blob", f"a hex-encoded string of {len(value)} characters", node)
            elif _BASE64.fullmatch(value):
                self.hit("encoded-blob", f"a base64-encoded string of {len(value)} characters",
                         node)

    # -- declarations and patterns --

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

    def _loop(self, node: Any) -> None:
        if node.type == "ForStatement":
            if node.test is None or _is_truthy_constant(node.test):
                self.loops.append(node)
        elif _is_truthy_constant(node.test):
            self.loops.append(node)

    # -- judgements after the pass --

    def _judge_references(self) -> None:
        roles = self.roles
        for nid, (node, name) in self.refs.items():
            role = roles.get(nid, VALUE)
            if role in (NAME, TYPEOF):
                continue
            if name == "eval":
                if role == CALL:
                    self.hit("eval", "eval() runs a string as code", node)
                elif role == OBJECT:
                    self.hit("eval", "eval is used through one of its properties", node)
                elif role != COMPARE:
                    self.hit("eval", "eval is referenced as a value (an indirect eval)", node)
            elif name == "Function":
                if role in (CALL, NEW):
                    self.hit("function-constructor", "Function(...) builds a function from a string",
                             node)
                elif role == VALUE:
                    self.hit("function-constructor",
                             "the Function constructor is passed around as a value", node)
            elif name == "require":
                if role == VALUE:
                    self.hit("require-alias", "require is used as a value, not called", node)
            elif name == "process":
                if role in (VALUE, CALL, NEW):
                    self.hit("process-alias", "process is used as a value", node)
            elif role in (VALUE, CALL, NEW):
                self.hit("global-alias", f"{name} is used as a value", node)

    def _judge_constructor_reads(self) -> None:
        for node in self.constructor_reads:
            obj = node.object
            if obj.type == "ChainExpression":
                obj = obj.expression
            t = obj.type
            if t == "MemberExpression" and member_key(obj) == "constructor":
                self.hit("constructor-chain", ".constructor.constructor is the Function constructor",
                         node)
            elif t in FUNCTION_TYPES or t == "ClassExpression":
                self.hit("constructor-chain", "the .constructor of a function is the Function "
                         "constructor", node)
            elif t == "CallExpression" and id(obj) in self.proto_calls:
                arg = obj.arguments[0] if obj.arguments else None
                if arg is not None and (arg.type in FUNCTION_TYPES or (
                        arg.type == "Identifier" and arg.name in self.fn_declared)):
                    self.hit("constructor-chain", "the prototype of a function has the (async/"
                             "generator) Function constructor", node)
            elif t == "Identifier" and obj.name in self.fn_declared:
                self.hit("constructor-chain", f"{obj.name}.constructor is the Function constructor",
                         node)

    def _judge_timers(self) -> None:
        for node in self.timers:
            first = node.arguments[0]
            if _is_stringish(first) or (first.type == "Identifier"
                                        and first.name in self.string_consts):
                self.hit("string-timer", "a timer is given a string, which runs as code", node)

    def _judge_loops(self) -> None:
        for loop in self.loops:
            if self._loop_exits(loop):
                continue
            kind = {"ForStatement": "for (;;)", "WhileStatement": "while (true)",
                    "DoWhileStatement": "do ... while (true)"}[loop.type]
            where = self._enclosing_function(loop)
            place = f"in {where}" if where else "at the top level of the module"
            self.hit("infinite-loop", f"{kind} {place} has no break, return, throw, await or "
                     "yield: it never ends and freezes the room", loop)

    def _loop_exits(self, loop: Any) -> bool:
        """True when something in the loop body can leave the loop or suspend the function."""
        # Stack entries: (node, inside a nested loop/switch, labels declared inside the loop).
        stack: list[tuple[Any, bool, frozenset[str]]] = [(loop.body, False, frozenset())]
        if loop.type == "ForStatement":
            stack.extend((part, False, frozenset()) for part in (loop.test, loop.update) if part)
        budget = 200_000
        while stack:
            budget -= 1
            if budget < 0:
                return True  # too big to judge: give it the benefit of the doubt
            node, nested, labels = stack.pop()
            t = node.type
            if t in ("ReturnStatement", "ThrowStatement", "YieldExpression", "AwaitExpression"):
                return True
            if t == "BreakStatement":
                if node.label is None:
                    if not nested:
                        return True
                elif node.label.name not in labels:
                    return True
                continue
            if t == "ContinueStatement":
                if node.label is not None and node.label.name not in labels:
                    return True
                continue
            if t in _SCOPE_TYPES:
                continue
            if t == "ForOfStatement" and node.allowAwait:
                return True
            child_nested = nested or t in _BREAKABLE
            child_labels = labels | {node.label.name} if t == "LabeledStatement" else labels
            for child in children(node):
                stack.append((child, child_nested, child_labels))
        return False

    def _enclosing_function(self, node: Any) -> str | None:
        best: Any = None
        for fn in self.functions:
            if fn._start < self.shift:
                continue
            if fn._start <= node._start and node._end <= fn._end and (
                    best is None or fn._start >= best._start):
                best = fn
        if best is None:
            return None
        return self.fn_names.get(id(best)) or "a function"

    def _judge_decoded(self) -> None:
        if not self.decoders:
            return
        starts = sorted(int(d._start) for d in self.decoders)
        tainted: set[str] = set()
        if starts:
            for name, init in self.assigned_inits:
                if _contains_start(starts, init):
                    tainted.add(name)
        seen: set[int] = set()
        for slot in self.sink_slots:
            if slot is None or id(slot) in seen:
                continue
            seen.add(id(slot))
            if (starts and _contains_start(starts, slot)) or (tainted and _mentions(slot, tainted)):
                self.hit("decoded-string-exec", "a decoded string is used to name code or a "
                         "property", slot)


def _contains_start(starts: list[int], node: Any) -> bool:
    s, e = int(node._start), int(node._end)
    i = bisect_left(starts, s)
    return i < len(starts) and starts[i] < e


def _mentions(node: Any, names: set[str]) -> bool:
    stack = [node]
    budget = 64
    while stack and budget:
        budget -= 1
        cur = stack.pop()
        if cur.type == "Identifier":
            if cur.name in names:
                return True
            continue
        if cur.type in FUNCTION_TYPES:
            continue
        stack.extend(children(cur))
    return False


def check(nodes: list[Any], deadline: float, shift: int = 0) -> list[Hit]:
    """Apply every code rule to the finished nodes of one parse."""
    return Checker(nodes, deadline, shift).run()
