"""ESTree helpers for the code rules: a node's children, and bounded constant folding (the string
or number an expression always evaluates to, a member expression's key)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

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
        return arithmetic(node.operator, a, b)
    return None


def _int32(value: float) -> int:
    """JavaScript's ToInt32."""
    if not math.isfinite(value):
        return 0
    n = int(value) & 0xFFFFFFFF
    return n - (1 << 32) if n >= 1 << 31 else n


def arithmetic(op: str, a: float, b: float) -> float | None:
    """`a op b` as JavaScript computes it on numbers (None where it cannot be told; inf on overflow)."""
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
            return math.fmod(a, b) if b else None
        if op == "**":
            return float(a ** b) if abs(b) < 4096 and not (a < 0 and b != int(b)) else None
        if op in ("|", "&", "^", "<<", ">>"):
            x, y = _int32(a), _int32(b)
            if op == "|":
                return float(x | y)
            if op == "&":
                return float(x & y)
            if op == "^":
                return float(x ^ y)
            return float(_int32(x << (y & 31)) if op == "<<" else x >> (y & 31))
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
