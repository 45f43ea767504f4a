"""esprima, driven for speed and safety: one parse, every node collected, limits enforced.

The parser is pure Python and recursive. We run it without location objects (nodes keep their
code point offsets in `_start`/`_end`, which is all the analyzer needs), with the cyclic garbage
collector paused (the parse allocates hundreds of thousands of acyclic objects and the collector
would otherwise rescan them over and over), with recursion headroom for the depth the pre-scan
allowed, and with a deadline checked as nodes are finished. The parser hands every node it
finishes to us, so the rules need no second walk over the tree.
"""

from __future__ import annotations

import gc
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from time import perf_counter
from typing import Any

from esprima.error_handler import Error as EsprimaError
from esprima.parser import Parser
from esprima.validation import _validate_parsed_program

ECMA_VERSION = 2026
# Enough for bracket nesting at the default depth limit and for long else-if chains; pure
# Python recursion does not use the C stack on 3.11, and this was measured safe on an 8 MiB
# thread stack.
RECURSION_LIMIT = 20_000
# How many finished nodes between two looks at the clock.
_CLOCK_EVERY = 0x7FF

# Node wraps a CommonJS module in a function, so a top-level `return` is legal there.
_CJS_PREFIX = "(function(){"
_CJS_SUFFIX = "\n})"
_LINE_PREFIX = re.compile(r"^Line \d+: ")


class BudgetExceeded(Exception):
    """The deadline passed while parsing or checking."""


class SyntaxProblem(Exception):
    """The source does not parse; `index` is the code point offset esprima reported."""

    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.message = message
        self.index = index


class NestingProblem(Exception):
    """The parser ran out of recursion; `index` is how far it got."""

    def __init__(self, index: int) -> None:
        super().__init__("nesting too deep")
        self.index = index


@dataclass(slots=True)
class Parsed:
    """A parsed program: the tree, every node esprima finished (children before parents), and
    `shift`, the number of characters a wrapper added before the source (0 unless wrapped)."""

    program: Any
    nodes: list[Any]
    module: bool
    shift: int = 0

    @property
    def body(self) -> list[Any]:
        """The module's top-level statements (inside the CommonJS wrapper when there is one)."""
        if not self.shift:
            return list(self.program.body)
        return list(self.program.body[0].expression.body.body)


def _reached(parser: Parser | None) -> int:
    """Where the parser was: the start of its lookahead token, else the scanner's offset."""
    if parser is None:
        return 0
    start = getattr(parser.lookahead, "start", None)
    return int(start if isinstance(start, int) else parser.scanner.index or 0)


class _CollectingParser(Parser):  # type: ignore[misc]
    """esprima's parser, keeping every finished node and watching the clock."""

    def __init__(self, code: str, options: dict[str, Any], deadline: float) -> None:
        self.gsf_nodes: list[Any] = []
        self.gsf_deadline = deadline
        super().__init__(code, options)
        # What the public facade sets: positions are plain offsets for this private tree.
        self._ownedByFacade = True

    def finalize(self, marker: Any, node: Any) -> Any:
        # The facade's finalize minus location objects and delegates (neither is configured).
        node._start = marker.index
        node._end = self.lastMarker.index
        node._line = marker.line
        node._column = marker.column
        nodes = self.gsf_nodes
        nodes.append(node)
        if not len(nodes) & _CLOCK_EVERY and perf_counter() > self.gsf_deadline:
            raise BudgetExceeded
        return node


_gc_lock = threading.Lock()
_gc_holders = 0
_gc_was_enabled = True
_recursion_lock = threading.Lock()
_recursion_holders = 0
_recursion_saved = 0


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic collector (process-wide, counted, so concurrent parses nest)."""
    global _gc_holders, _gc_was_enabled
    with _gc_lock:
        _gc_holders += 1
        if _gc_holders == 1:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
    try:
        yield
    finally:
        with _gc_lock:
            _gc_holders -= 1
            if _gc_holders == 0 and _gc_was_enabled:
                gc.enable()


@contextmanager
def _recursion_headroom() -> Iterator[None]:
    global _recursion_holders, _recursion_saved
    with _recursion_lock:
        _recursion_holders += 1
        if _recursion_holders == 1:
            _recursion_saved = sys.getrecursionlimit()
            if _recursion_saved < RECURSION_LIMIT:
                sys.setrecursionlimit(RECURSION_LIMIT)
    try:
        yield
    finally:
        with _recursion_lock:
            _recursion_holders -= 1
            if _recursion_holders == 0 and _recursion_saved < RECURSION_LIMIT:
                sys.setrecursionlimit(_recursion_saved)


@contextmanager
def parsing_environment() -> Iterator[None]:
    """The process settings a parse (and the walk over its nodes) runs under."""
    with _gc_paused(), _recursion_headroom():
        yield


def parse(text: str, *, module: bool, deadline: float) -> Parsed:
    """Parse `text` as an ES module or as a CommonJS script (call inside parsing_environment).

    Raises SyntaxProblem, NestingProblem or BudgetExceeded.
    """
    try:
        return _parse_once(text, module=module, deadline=deadline, shift=0)
    except SyntaxProblem as problem:
        if module:
            raise
        # Node runs CommonJS as a function body, where a top-level `return` and `new.target` are
        # legal: parse it that way too. The hashbang is only legal at offset 0, so it becomes a
        # line comment of the same length.
        body = "//" + text[2:] if text.startswith("#!") else text
        shift = len(_CJS_PREFIX)
        wrapped_text = _CJS_PREFIX + body + _CJS_SUFFIX
        try:
            parsed = _parse_once(wrapped_text, module=False, deadline=deadline, shift=shift)
        except SyntaxProblem as wrapped:
            # The error that got further is the real one: the wrapper only removes errors.
            if wrapped.index - shift > problem.index:
                raise SyntaxProblem(wrapped.message, wrapped.index - shift) from None
            raise problem from None
        if not _wrapper_intact(parsed.program, len(wrapped_text)):
            # The source closed the wrapper itself (`}/{`, `}); x(); (function(){`): Node
            # compiles the body as a function body, where that is a syntax error.
            raise problem from None
        return parsed


def _wrapper_intact(program: Any, length: int) -> bool:
    """True when the wrapped parse is one function expression spanning the whole text."""
    body = program.body
    if len(body) != 1 or body[0].type != "ExpressionStatement":
        return False
    function = body[0].expression
    return bool(function.type == "FunctionExpression" and function._start == 1
                and function._end == length - 1)


def _parse_once(text: str, *, module: bool, deadline: float, shift: int) -> Parsed:
    if perf_counter() > deadline:
        raise BudgetExceeded
    options = {"positionEncoding": "scalar"}
    parser: _CollectingParser | None = None
    try:
        parser = _CollectingParser(text, options, deadline)
        program = parser.parseModule() if module else parser.parseScript()

        def report(message: str, node: Any) -> None:
            index = getattr(node, "_protoErrorStart", None)
            if index is None:
                index = getattr(node, "_start", None) or 0
            raise SyntaxProblem(message, int(index))

        _validate_parsed_program(program, report, ECMA_VERSION, text)
    except EsprimaError as err:
        message = _LINE_PREFIX.sub("", str(err.message or err))
        index = err.index if isinstance(err.index, int) else 0
        raise SyntaxProblem(message, index) from None
    except RecursionError:
        raise NestingProblem(_reached(parser)) from None
    except (SyntaxProblem, BudgetExceeded, MemoryError):
        raise
    except Exception:  # noqa: BLE001
        # esprima asserts (or indexes past the end) on a few malformed inputs instead of raising
        # its own error, e.g. an empty `${}` in a template. The input is what is wrong.
        raise SyntaxProblem("Invalid or unexpected token", _reached(parser)) from None
    return Parsed(program=program, nodes=parser.gsf_nodes, module=module, shift=shift)
