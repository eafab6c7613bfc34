"""Evaluate conditions and expressions over sets of fact values (abstract interpretation).

:class:`Evaluator` answers "is this rule's condition true for *every* value
the missing facts may still take, false for every one, or does it depend?"
It reads known facts (and the derived facts already computed from them) as
single values, and missing or bounded facts as their domains
(:mod:`engine.intervals`); derived facts and condition fields that depend on
a missing fact are evaluated from their syntax trees.

Only constructs whose abstract meaning is proven sound are evaluated:
arithmetic, comparisons, boolean logic, ``if``, membership, and the date
and number functions that are monotone in each argument. Anything else
(list filters, sums, ``coalesce``...) is :data:`~engine.intervals.TOP`,
which keeps a condition unknown, so the fact it reads stays needed.
"""

from __future__ import annotations

import operator
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from engine import intervals as iv
from engine import money
from engine.expressions import syntax as s
from engine.expressions.functions import add_months, div
from engine.match import ir

if TYPE_CHECKING:
    from engine.compiler import CompiledPolicy

_CMP = ("==", "!=", "<", "<=", ">", ">=")


class Evaluator:
    """Abstract values of fields under one assignment of domains to missing facts."""

    def __init__(self, compiled: CompiledPolicy, facts: dict[str, Any],
                 domains: dict[str, iv.Abstract]) -> None:
        self.compiled = compiled
        self.policy = compiled.policy
        self.facts = facts
        self.domains = domains
        self.memo: dict[str, iv.Abstract] = {}

    # --- fields ------------------------------------------------------------------
    def field(self, name: str) -> iv.Abstract:
        """A fact, derived fact or synthetic condition field, as an abstract value."""
        if name in self.facts:
            return iv.point(self.facts[name])
        if name in self.memo:
            return self.memo[name]
        self.memo[name] = iv.TOP  # a cycle (impossible after checking) reads as unknown
        if name in self.domains:
            value = self.domains[name]
        elif name in self.policy.derived:
            value = self.node(self.policy.derived[name].expr.checked.node)
        elif name in self.compiled.synthetics:
            value = self.node(self.compiled.synthetics[name].node)
        elif name in self.policy.facts:
            decl = self.policy.facts[name]
            value = iv.domain(decl.type.kind, decl.type.values, decl.minimum, decl.maximum)
        else:
            value = iv.TOP
        self.memo[name] = value
        return value

    # --- conditions (the IR) ------------------------------------------------------
    def cond(self, cond: ir.Cond) -> str:
        """Kleene three-valued value of a rule condition over every possible completion."""
        if isinstance(cond, (ir.All, ir.Any)):
            values = [self.cond(c) for c in cond.items]
            stop, go = (iv.FALSE, iv.TRUE) if isinstance(cond, ir.All) else (iv.TRUE, iv.FALSE)
            return stop if stop in values else iv.UNKNOWN if iv.UNKNOWN in values else go
        return self.leaf(cond)

    def leaf(self, leaf: ir.Leaf) -> str:
        if isinstance(leaf, ir.Exists) or leaf.field in self.facts:
            return ir.leaf_value(leaf, self.facts)
        value = self.field(leaf.field)
        if isinstance(leaf, ir.In):
            return iv.member(value, leaf.values, leaf.negated)
        return iv.compare(value, leaf.op, iv.point(leaf.value))

    # --- expressions ----------------------------------------------------------------
    def node(self, node: s.Node) -> iv.Abstract:
        try:
            method = getattr(self, "n_" + type(node).__name__.lower(), None)
            return method(node) if method else iv.TOP
        except (ArithmeticError, OverflowError, ValueError, TypeError, KeyError):
            return iv.TOP  # no proof: the value may be anything

    def n_literal(self, node: s.Literal) -> iv.Abstract:
        return iv.point(node.value)

    def n_name(self, node: s.Name) -> iv.Abstract:
        return self.field(node.name)

    def n_unary(self, node: s.Unary) -> iv.Abstract:
        value = self.node(node.operand)
        if node.op == "not":
            return iv.of_truth({iv.TRUE: iv.FALSE, iv.FALSE: iv.TRUE}.get(iv.truth(value), iv.UNKNOWN))
        return iv.negate(value)

    def n_ifelse(self, node: s.IfElse) -> iv.Abstract:
        test = iv.truth(self.node(node.cond))
        if test == iv.TRUE:
            return self.node(node.then)
        if test == iv.FALSE:
            return self.node(node.other)
        return iv.join(self.node(node.then), self.node(node.other))

    def n_binary(self, node: s.Binary) -> iv.Abstract:
        op = node.op
        if op in ("and", "or"):
            left, right = iv.truth(self.node(node.left)), iv.truth(self.node(node.right))
            stop, go = (iv.FALSE, iv.TRUE) if op == "and" else (iv.TRUE, iv.FALSE)
            both = (left, right)
            return iv.of_truth(stop if stop in both else iv.UNKNOWN if iv.UNKNOWN in both else go)
        if op in ("in", "not in"):
            if not isinstance(node.right, s.ListLit):
                return iv.TOP
            items = [iv.single(self.node(i)) for i in node.right.items]
            if not all(ok for ok, _ in items):
                return iv.TOP
            return iv.of_truth(iv.member(self.node(node.left), tuple(v for _, v in items), op == "not in"))
        left, right = self.node(node.left), self.node(node.right)
        if op in _CMP:
            return iv.of_truth(iv.compare(left, op, right))
        if op == "+":
            return iv.add(left, right)
        if op == "-":
            return iv.subtract(left, right)
        if op == "*":
            return iv.corners(operator.mul, left, right)
        if op == "/":
            return iv.divide(left, right, div)
        return iv.TOP

    def n_call(self, node: s.Call) -> iv.Abstract:
        func, args = node.func, node.args
        if func == "has" and isinstance(args[0], s.Name):
            return iv.point(args[0].name in self.facts)
        if func in ("date", "money"):
            return self._constant(func, args[0])
        values = [self.node(a) for a in args]
        cal = self.compiled.calendar
        monotone = {
            "add_days": (iv.plus, (1, 1)), "add_months": (add_months, (1, 1)),
            "add_business_days": (cal.add_business_days, (1, 1)),
            "business_days_between": (cal.business_days_between, (-1, 1)),
            "date_of": (cal.date_of, (1,)), "minutes": (_minutes, (1,)),
        }
        if func in monotone:
            fn, signs = monotone[func]
            return iv.monotone(fn, values, signs)
        if func == "days_between":
            return iv.subtract(values[1], values[0])
        if func in ("min", "max") and len(values) > 1:
            return iv.extreme(min if func == "min" else max, values)
        if func == "abs":
            return iv.absolute(values[0])
        if func == "round":
            return self._round(node, values)
        if func == "pro_rata":
            return iv.divide(iv.corners(operator.mul, values[0], values[1]), values[2], div)
        return iv.TOP

    def _constant(self, func: str, arg: s.Node) -> iv.Abstract:
        if not isinstance(arg, s.Literal):
            return iv.TOP
        if func == "date":
            return iv.point(date.fromisoformat(str(arg.value)))
        return iv.point(Decimal(str(arg.value)))

    def _round(self, node: s.Call, values: list[iv.Abstract]) -> iv.Abstract:
        """``round`` is monotone: round the ends (with the policy's mode)."""
        policy = self.policy
        places_ok, places = (True, 0) if len(values) == 1 else iv.single(values[1])
        if not places_ok or not isinstance(places, int):
            return iv.TOP
        if len(values) == 1 and _reads_money(self, node.args[0]):
            quantum = self.compiled.quantum
        else:
            quantum = Decimal(1).scaleb(-places)
        return iv.monotone(lambda v: money.round_to(Decimal(v), quantum, policy.rounding),
                           values[:1], (1,))


def _minutes(duration: Any) -> int:
    from engine.expressions.functions import minutes  # noqa: PLC0415 - keep the import list short
    return minutes(duration)


def _reads_money(ev: Evaluator, node: s.Node) -> bool:
    """Whether ``round(x)`` rounds money (to the currency's unit) rather than a number.

    The type checker recorded each node's type in the ``Checked`` of the
    expression it belongs to; an unknown node is not rounded (TOP upstream).
    """
    policy = ev.policy
    checked = [d.expr.checked for d in policy.derived.values()]
    checked += [e.checked for k in policy.kinds.values() for r in k.rules for e in (r.when, *r.results())]
    for c in checked:
        typ = c.types.get(id(node))
        if typ is not None:
            return typ.kind == "money"
    raise KeyError("untyped node")
