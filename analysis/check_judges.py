"""The judgements after the pass: watched references by role, constructor reads, timers with
string code, loops that never exit, decoded strings that reach a sink."""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

from analysis.check_state import CALL, COMPARE, NAME, NEW, OBJECT, TYPEOF, VALUE, CheckerState
from analysis.estree import _is_stringish, _is_truthy_constant, children, member_key
from analysis.nodejs import _BREAKABLE, _SCOPE_TYPES, FUNCTION_TYPES


class JudgeRules(CheckerState):
    """Loops are collected in the pass; everything else here runs once after it."""

    def _loop(self, node: Any) -> None:
        if node.type == "ForStatement":
            if node.test is None or _is_truthy_constant(node.test):
                self.loops.append(node)
        elif _is_truthy_constant(node.test):
            self.loops.append(node)

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
