"""The severity policy: one table of every rule the analyzer can report.

docs/analysis.md renders this table for people; a test keeps the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.contracts import Severity

BLOCK = Severity.BLOCK
WARN = Severity.WARN
INFO = Severity.INFO


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule id with its default severity, a one-line title and the fix hint shown with it.

    `allowable` is False for the rules an admin allow list can never downgrade: a file that
    does not parse or breaks an input limit cannot be analyzed, so nothing vouches for it.
    """

    id: str
    severity: Severity
    category: str
    title: str
    hint: str
    allowable: bool = True


_RULES: tuple[Rule, ...] = (
    # --- input and syntax: never allowable ------------------------------------------------
    Rule("syntax-error", BLOCK, "input", "The file does not parse as JavaScript that Node.js 20 runs",
         "Fix the syntax; `node --check game.js` shows the same error.", allowable=False),
    Rule("input-too-large", BLOCK, "input", "The file is larger than the upload limit",
         "Split data out of the module or ask the admin to raise the limit.", allowable=False),
    Rule("not-utf8", BLOCK, "input", "The file is not UTF-8 text",
         "Save the file as UTF-8 (without a UTF-16 byte order mark).", allowable=False),
    Rule("nul-byte", BLOCK, "input", "The file contains a NUL byte",
         "Remove the NUL byte; binary data does not belong in a game module.", allowable=False),
    Rule("too-deep", BLOCK, "input", "Brackets or expressions are nested deeper than the limit",
         "Flatten the nesting (early returns, helper functions, data outside the code).",
         allowable=False),
    Rule("time-budget", BLOCK, "input", "Analysis did not finish within its time budget",
         "Make the file smaller or simpler, or ask the admin to raise the time budget.",
         allowable=False),
    Rule("internal-error", BLOCK, "input", "The analyzer failed on this file",
         "Report the file to the platform team; nothing in it is known to be wrong.",
         allowable=False),
    Rule("findings-truncated", INFO, "input", "Further findings of a rule were not listed",
         "Fix the listed findings and analyze again to see the rest.", allowable=False),
    # --- process and host access -----------------------------------------------------------
    Rule("host-module", BLOCK, "host", "Loads a Node.js module that reaches the host",
         "Game code talks to players only through `room`; drop the import, the runtime "
         "provides what a game needs."),
    Rule("process-internals", BLOCK, "host",
         "Reaches Node.js internals (process.binding, mainModule, createRequire, require.cache)",
         "Remove it: a game module has no use for the loader or native bindings."),
    Rule("process-env", BLOCK, "host", "Reads the process environment",
         "The environment holds platform secrets; pass settings through the room or constants."),
    Rule("process-control", BLOCK, "host", "Exits, kills or re-identifies the process",
         "Throw an Error from the hook instead; the runtime answers it and keeps the room up."),
    Rule("process-alias", BLOCK, "host", "`process` is passed around or stored under another name",
         "Use no `process` at all; the runtime exposes what a game needs on `room`."),
    Rule("capability-escape", BLOCK, "host",
         "A module-scope capability (module, require, exports, arguments, process, globalThis, "
         "this) is used outside its safe forms",
         "Use only module.exports = ..., exports.x = ..., require('name') and the plain process "
         "members (nextTick, hrtime, ...); never store, pass, return or index these values."),
    Rule("network-egress", WARN, "host", "fetch() or new WebSocket() to a host outside the game",
         "Games talk to players through `room`; the container blocks outbound traffic anyway."),
    # --- code from strings -------------------------------------------------------------------
    Rule("eval", BLOCK, "code-from-string", "eval() runs a string as code",
         "Parse data with JSON.parse and dispatch on it with an object of functions."),
    Rule("function-constructor", BLOCK, "code-from-string",
         "The Function constructor builds code from a string",
         "Write the function in the module; look handlers up in an object instead."),
    Rule("string-timer", BLOCK, "code-from-string",
         "setTimeout/setInterval with a string runs it as code",
         "Pass a function: setTimeout(() => tick(room), 100)."),
    Rule("constructor-chain", BLOCK, "code-from-string",
         "A .constructor chain reaches the Function constructor",
         "Do not reach constructors through values; name the class you mean."),
    # --- evasion signals ---------------------------------------------------------------------
    Rule("dynamic-require", BLOCK, "evasion", "require() or import() of a name computed at run time",
         "Load modules by a literal name so the analyzer can see what is loaded."),
    Rule("require-alias", BLOCK, "evasion", "require is stored or passed under another name",
         "Call require('name') directly with a literal name."),
    Rule("computed-global-access", BLOCK, "evasion",
         "globalThis/global/process/module/require indexed with a key computed at run time",
         "Use the property by name; a computed key hides which global is used."),
    Rule("computed-this-access", WARN, "evasion", "`this` indexed with a key assembled from strings",
         "Look handlers up in an explicit object: handlers[type](...)."),
    Rule("global-alias", BLOCK, "evasion", "globalThis/global stored or passed under another name",
         "Use globals by name; an alias hides which global is used."),
    Rule("decoded-string-exec", BLOCK, "evasion",
         "A decoded string (fromCharCode, atob, base64 Buffer) names code or a property",
         "Write names as plain literals; decoding names at run time is an evasion pattern."),
    Rule("encoded-blob", WARN, "evasion", "A long escaped or encoded string literal",
         "Keep data readable (JSON, plain text) or load assets outside the module."),
    Rule("with-statement", BLOCK, "evasion", "A with statement hides which names are used",
         "Use the object's properties explicitly."),
    Rule("prototype-pollution", BLOCK, "evasion", "Changes a built-in object or prototype (__proto__)",
         "Use your own classes, Object.create(null) or Map instead of patching built-ins."),
    Rule("local-module", WARN, "evasion", "Loads a file or a URL that is not part of the upload",
         "A game is one file: put the code in the module itself."),
    # --- resource abuse ----------------------------------------------------------------------
    Rule("infinite-loop", BLOCK, "resources",
         "A loop with a constant true condition has no break, return, throw, await or yield",
         "Give the loop an exit, or do the work per tick (tickRate + onTick)."),
    Rule("large-allocation", WARN, "resources", "A very large array, buffer or string from a literal size",
         "Allocate what the game needs; the container has a small memory limit."),
    # --- room state ----------------------------------------------------------------------------
    Rule("state-unassigned", WARN, "state",
         "A hook writes into a room.state object that no code ever assigns",
         "room.state starts as {}: create the nested object first, e.g. room.state.players = {} "
         "in onCreate."),
    # --- the game module contract ------------------------------------------------------------
    Rule("contract-exports", BLOCK, "contract",
         "The module does not export an object with onJoin or onMessage",
         "Export the hooks: module.exports = { onJoin(room, player) {}, onMessage(room, player, "
         "type, data) {} } (ES module: export default { ... })."),
    Rule("contract-hook-type", BLOCK, "contract", "A hook is exported as something other than a function",
         "Hooks (onCreate, onJoin, onMessage, onLeave, onTick, onDispose, onDrop, onReconnect, onRestore, "
         "onMigrate, view) must be functions."),
    Rule("contract-max-players", BLOCK, "contract", "maxPlayers is not an integer from 1 to 100000",
         "Export maxPlayers as a whole number, e.g. maxPlayers: 8."),
    Rule("contract-max-rooms", BLOCK, "contract", "maxRooms is not an integer from 1 to 10000",
         "Export maxRooms as a whole number of rooms per server, e.g. maxRooms: 50."),
    Rule("contract-empty-room-seconds", BLOCK, "contract", "emptyRoomSeconds is not a number from 0 to 3600",
         "Export emptyRoomSeconds as the seconds an empty room stays before onDispose, e.g. emptyRoomSeconds: 30."),
    Rule("contract-tick-rate", BLOCK, "contract", "tickRate is not an integer from 0 to 60",
         "Export tickRate as ticks per second (0 = no onTick), e.g. tickRate: 20."),
    Rule("contract-tick", WARN, "contract", "tickRate and onTick do not go together",
         "Export both a tickRate above 0 and onTick, or neither."),
    Rule("contract-unknown-hook", WARN, "contract", "An exported name looks like a misspelt hook",
         "The runtime calls onCreate, onJoin, onMessage, onLeave, onTick, onDispose, onDrop, onReconnect, "
         "onRestore, onMigrate and view only."),
    Rule("contract-unverified", WARN, "contract", "The exports could not be checked statically",
         "Export an object literal (or a const bound to one) so the contract can be checked "
         "before deployment; the runtime still checks it at start."),
)

RULES: dict[str, Rule] = {rule.id: rule for rule in _RULES}
"""The policy table: rule id -> Rule (default severity, title, hint). Ordered by category."""

FIXED_RULES: frozenset[str] = frozenset(rule.id for rule in _RULES if not rule.allowable)
"""Rules that no allow list downgrades (syntax and input limits)."""


def invalid_allow_rules(rule_ids: list[str] | tuple[str, ...]) -> list[str]:
    """The entries of an allow list that are unknown rule ids or rules that cannot be allowed.

    The API answers 422 with these; `analyze` itself ignores them.
    """
    return [rid for rid in rule_ids if rid not in RULES or rid in FIXED_RULES]
