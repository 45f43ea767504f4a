"""What the code rules know about Node.js: its host modules, the member paths that reach the
server process, the builtins, the sinks that run strings as code, and the sizes that exhaust memory."""

from __future__ import annotations

import re

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
