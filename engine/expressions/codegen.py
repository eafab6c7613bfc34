"""Turn a checked syntax tree into a Python expression string.

The output is built only from our own node types, operator tokens we chose,
helper names from :data:`engine.expressions.functions.RUNTIME`, constants
hoisted into the namespace, and ``repr`` of validated strings. Fact values
are read as ``f['name']``: a missing fact raises ``KeyError``, which the
callers turn into "unknown" (never into a silent default).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from engine.expressions import syntax as s
from engine.expressions.checker import Checked

_CALLS = {
    "days_between": "_days_between", "add_days": "_add_days", "add_months": "_add_months",
    "add_business_days": "_cal.add_business_days",
    "business_days_between": "_cal.business_days_between", "date_of": "_cal.date_of",
    "minutes": "_minutes", "interval_minutes": "_interval_minutes", "sum": "_sum",
    "count": "_len", "pro_rata": "_pro_rata", "abs": "_abs",
    "unused_days": "_unused_days", "pro_rata_days": "_pro_rata_days",
    "cycles_between": "_cycles_between", "unused_cycles": "_unused_cycles",
    "pro_rata_cycles": "_pro_rata_cycles",
}


@dataclass(slots=True)
class Constants:
    """Values hoisted out of generated code into its namespace."""

    values: dict[str, Any] = field(default_factory=dict)
    _index: dict[tuple[type, Any], str] = field(default_factory=dict)

    def name(self, value: Any) -> str:
        key = (type(value), value)
        if key not in self._index:
            self._index[key] = f"_k{len(self._index)}"
            self.values[self._index[key]] = value
        return self._index[key]


class _Gen:
    def __init__(self, checked: Checked, consts: Constants) -> None:
        self.checked = checked
        self.consts = consts
        self.scopes: list[str] = []  # comprehension variables, innermost last
        self.scope_fields: list[frozenset[str]] = []

    def gen(self, node: s.Node) -> str:
        return str(getattr(self, "gen_" + type(node).__name__.lower())(node))

    def kind(self, node: s.Node) -> str:
        return self.checked.types[id(node)].kind

    def gen_literal(self, node: s.Literal) -> str:
        v = node.value
        if isinstance(v, bool) or isinstance(v, int):
            return repr(v)
        if isinstance(v, Decimal):
            return self.consts.name(v)
        return repr(str(v))

    def holder(self, name: str) -> str:
        """The dict ``name`` is read from: the innermost ``where`` record having it, else the facts."""
        for var, fields in zip(reversed(self.scopes), reversed(self.scope_fields), strict=True):
            if name in fields:
                return var
        return "f"

    def gen_name(self, node: s.Name) -> str:
        return f"{self.holder(node.name)}[{node.name!r}]"

    def gen_attr(self, node: s.Attr) -> str:
        obj = self.gen(node.obj)
        if self.kind(node.obj) == "list":
            return f"[_x[{node.name!r}] for _x in {obj}]"
        return f"{obj}[{node.name!r}]"

    def gen_unary(self, node: s.Unary) -> str:
        op = "not " if node.op == "not" else "-"
        return f"({op}{self.gen(node.operand)})"

    def gen_ifelse(self, node: s.IfElse) -> str:
        return f"({self.gen(node.then)} if {self.gen(node.cond)} else {self.gen(node.other)})"

    def gen_where(self, node: s.Where) -> str:
        var = f"_r{len(self.scopes)}"
        items = self.gen(node.items)
        item_type = self.checked.types[id(node.items)].item
        self.scopes.append(var)
        self.scope_fields.append(frozenset(item_type.fields if item_type else ()))
        try:
            cond = self.gen(node.cond)
        finally:
            self.scopes.pop()
            self.scope_fields.pop()
        return f"[{var} for {var} in {items} if {cond}]"

    def gen_listlit(self, node: s.ListLit) -> str:
        return "[" + ", ".join(self.gen(i) for i in node.items) + "]"

    def gen_binary(self, node: s.Binary) -> str:
        a, b = self.gen(node.left), self.gen(node.right)
        kinds = (self.kind(node.left), self.kind(node.right))
        if node.op in ("in", "not in") and isinstance(node.right, s.ListLit):
            b = "(" + "".join(self.gen(i) + ", " for i in node.right.items) + ")"
        if node.op == "/":
            return f"_div({a}, {b})"
        if node.op == "+" and "date" in kinds:
            return f"_add_days({a}, {b})" if kinds[0] == "date" else f"_add_days({b}, {a})"
        if node.op == "-" and kinds == ("date", "integer"):
            return f"_add_days({a}, -({b}))"
        if node.op == "-" and kinds == ("date", "date"):
            return f"_days_between({b}, {a})"
        return f"({a} {node.op} {b})"

    def gen_call(self, node: s.Call) -> str:
        if node.func == "has":
            arg = node.args[0]
            assert isinstance(arg, s.Name)
            return f"({arg.name!r} in {self.holder(arg.name)})"
        if node.func in ("date", "datetime", "money"):
            return self.consts.name(self.checked.constants[id(node)])
        args = [self.gen(a) for a in node.args]
        if node.func in ("min", "max"):
            return f"_extreme(_{node.func}, {', '.join(args)})"
        if node.func == "coalesce":
            return "_coalesce(" + ", ".join(f"lambda: {a}" for a in args) + ")"
        if node.func == "sum":  # an empty list sums to a zero of the item type
            item = self.checked.types[id(node.args[0])].item
            zero = {"duration": self.consts.name(timedelta(0)), "integer": "0"}.get(
                item.kind if item else "", self.consts.name(Decimal(0)))
            return f"_sum({args[0]}, {zero})"
        if node.func == "round":
            if self.kind(node.args[0]) == "money":  # to the case's currency: it is in ``f``
                return f"_round_money(f, {', '.join(args)})"
            return f"_round_decimal({', '.join(args)})"
        return f"{_CALLS[node.func]}({', '.join(args)})"


def generate(checked: Checked, consts: Constants) -> str:
    """Python source of one expression over the fact dict ``f``."""
    return _Gen(checked, consts).gen(checked.node)
