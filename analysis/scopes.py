"""Function scopes and strict mode, as far as the capability taint pass needs them.

A non-arrow function has its own `arguments` and its own `this`; class field initializers and
static blocks have their own `this`. Strict mode (ES modules, classes, a 'use strict' prologue)
decides what a function's own `this` is in a plain call: undefined, or else the global object.
Spans are recorded as the nodes go by and asked about once, after the pass.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Any


class Spans:
    """Nested or disjoint [start, end) spans, asked whether one of them covers an offset."""

    def __init__(self, spans: list[tuple[int, int]]) -> None:
        self.outer: list[tuple[int, int]] = []
        for start, end in sorted(spans):
            if not self.outer or start >= self.outer[-1][1]:
                self.outer.append((start, end))
        self.starts = [start for start, _ in self.outer]

    def covers(self, offset: int) -> bool:
        i = bisect_right(self.starts, offset) - 1
        return i >= 0 and offset < self.outer[i][1]


def use_strict(body: list[Any]) -> bool:
    """True when a body's directive prologue holds 'use strict'."""
    for statement in body:
        directive = getattr(statement, "directive", None)
        if statement.type != "ExpressionStatement" or directive is None:
            return False
        if directive == "use strict":
            return True
    return False


class Scopes:
    """Records function, class and program nodes; `settle()` then answers offset questions."""

    def __init__(self, shift: int) -> None:
        # Nodes before `shift` are the CommonJS wrapper the parser may have added: the module's
        # own scope, not a function in it.
        self.shift = shift
        self.own_this: list[tuple[int, int]] = []
        self.strict: list[tuple[int, int]] = []
        self.arrows: list[Any] = []
        self._functions = Spans([])
        self._strict = Spans([])
        self._params: set[int] = set()

    def function(self, node: Any) -> None:
        """A FunctionDeclaration, FunctionExpression or StaticBlock."""
        body = node.body  # a list for a StaticBlock, which is in a class (strict) anyway
        if not isinstance(body, list) and body.type == "BlockStatement" and use_strict(body.body):
            self.strict_code(node)
        if node._start >= self.shift:
            self.own_this.append((int(node._start), int(node._end)))

    def field_value(self, value: Any) -> None:
        self.own_this.append((int(value._start), int(value._end)))

    def strict_code(self, node: Any) -> None:
        self.strict.append((int(node._start), int(node._end)))

    def program(self, node: Any) -> None:
        if node.sourceType == "module" or use_strict(node.body):
            self.strict_code(node)

    def arrow(self, node: Any) -> None:
        self.arrows.append(node)

    def settle(self) -> None:
        for arrow in self.arrows:
            if arrow.body.type == "BlockStatement" and use_strict(arrow.body.body):
                self.strict_code(arrow)
        self._functions = Spans(self.own_this)
        self._strict = Spans(self.strict)
        self._params = _arrow_params(self.arrows)

    def in_function(self, offset: int) -> bool:
        """Inside a function (or field initializer, static block) with its own `this`."""
        return self._functions.covers(offset)

    def is_strict(self, offset: int) -> bool:
        return self._strict.covers(offset)

    def is_arrow_parameter(self, node: Any) -> bool:
        """`async (module) => …` is first parsed as a call, then as parameters: what looked
        like an argument is a binding."""
        return id(node) in self._params


def _arrow_params(arrows: list[Any]) -> set[int]:
    params: set[int] = set()
    stack = [param for arrow in arrows for param in arrow.params]
    while stack:
        param = stack.pop()
        t = param.type
        if t == "Identifier":
            params.add(id(param))
        elif t == "ObjectPattern":
            stack.extend(p.argument if p.type == "RestElement" else p.value
                         for p in param.properties)
        elif t == "ArrayPattern":
            stack.extend(e for e in param.elements if e is not None)
        elif t == "AssignmentPattern":
            stack.append(param.left)
        elif t == "RestElement":
            stack.append(param.argument)
    return params
