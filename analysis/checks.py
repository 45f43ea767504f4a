"""The security and resource rules, applied in one pass over the nodes esprima finished.

Nodes arrive children first. A rule that needs to know how a child is used (called, indexed,
declared) learns it from the parent, which comes later: references to the few names that matter
(eval, Function, require, process, globalThis, global) are collected with the role their parent
gives them and judged after the pass. Everything here is iterative or depth-bounded, so a deep
tree cannot exhaust the recursion limit, and the clock is checked as the pass goes.

Names are treated as the globals they usually are: a local variable called `process` is still
checked as `process` (shadowing is rare in game code, and ignoring it would be an easy bypass).

The rule families are mixins over one shared state (`analysis/check_state.py`):
`analysis/check_access.py`, `check_bindings.py`, `check_literals.py` and `check_judges.py`; what
they know about Node.js is in `analysis/nodejs.py`, the ESTree helpers in `analysis/estree.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter
from typing import Any

from analysis.check_access import AccessRules
from analysis.check_bindings import BindingRules
from analysis.check_judges import JudgeRules
from analysis.check_literals import LiteralRules
from analysis.check_state import Hit, ModuleImport
from analysis.estree import fold_string
from analysis.nodejs import FUNCTION_TYPES, WATCHED
from analysis.parsing import BudgetExceeded

__all__ = ["FUNCTION_TYPES", "Checker", "Hit", "ModuleImport", "check", "fold_string"]


class Checker(AccessRules, BindingRules, LiteralRules, JudgeRules):
    """One pass over the finished nodes; `run()` returns the hits."""

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


def check(nodes: list[Any], deadline: float, shift: int = 0,
          imports: list[ModuleImport] | None = None) -> list[Hit]:
    """Apply every code rule to the finished nodes of one parse; `imports`, when given, receives
    every module the code names by a literal (for a project's import graph)."""
    checker = Checker(nodes, deadline, shift)
    hits = checker.run()
    if imports is not None:
        imports.extend(checker.imports)
    return hits

