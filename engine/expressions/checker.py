"""Type-check a parsed expression against the declared facts.

The checker refuses unknown names (with a suggestion), ill-typed operators
(a date compared with money...), enum comparisons with values the enum does
not have, and calls outside the whitelist. It records the type of every node
for the code generator and the facts the expression reads.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Mapping

from engine.expressions import syntax as s
from engine.expressions import types as t
from engine.expressions.functions import FUNCTIONS, SPECIAL
from engine.expressions.syntax import ExprError
from engine.expressions.types import Type
from engine.limits import MAX_YEAR, MIN_YEAR, decimal_problem, parse_decimal

_ORDERED = ("integer", "decimal", "money", "date", "datetime", "duration")


@dataclass(slots=True)
class Checked:
    """Result of checking one expression."""

    node: s.Node
    type: Type
    types: dict[int, Type] = field(default_factory=dict)
    reads: set[str] = field(default_factory=set)
    constants: dict[int, object] = field(default_factory=dict)


class _Checker:
    def __init__(self, env: Mapping[str, Type]) -> None:
        self.env = env
        self.scopes: list[Mapping[str, Type]] = []
        self.out = Checked(s.Literal(0, 0, 0), t.BOOL)

    def check(self, node: s.Node) -> Type:
        method = getattr(self, "check_" + type(node).__name__.lower())
        result: Type = method(node)
        self.out.types[id(node)] = result
        return result

    def check_literal(self, node: s.Literal) -> Type:
        v = node.value
        if isinstance(v, bool):
            return t.BOOL
        if isinstance(v, int):
            return t.INTEGER
        return t.STRING if isinstance(v, str) else t.DECIMAL

    def check_name(self, node: s.Name) -> Type:
        for scope in reversed(self.scopes):
            if node.name in scope:
                return scope[node.name]
        if node.name in self.env:
            if self.env[node.name].kind == "error":  # already reported where it is defined
                raise ExprError("cascade", f"{node.name} has an error", node.start)
            self.out.reads.add(node.name)
            return self.env[node.name]
        known = [*self.env, *(k for sc in self.scopes for k in sc)]
        close = difflib.get_close_matches(node.name, known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else "declare it under 'facts' or 'derived'"
        if node.name in FUNCTIONS or node.name in SPECIAL:
            hint = f"{node.name} is a function: call it with ( )"
        raise ExprError("unknown_fact", f"unknown fact {node.name!r}", node.start, hint)

    def check_attr(self, node: s.Attr) -> Type:
        obj = self.check(node.obj)
        rec = obj.item if obj.kind == "list" else obj
        if rec is None or rec.kind != "record":
            raise ExprError("expr_type", f"{obj} has no fields (cannot read .{node.name})", node.start)
        if node.name not in rec.fields:
            raise ExprError("expr_type", f"no field {node.name!r}; fields are: "
                            + ", ".join(rec.fields), node.start)
        ftype = rec.fields[node.name]
        return t.list_of(ftype) if obj.kind == "list" else ftype

    def check_unary(self, node: s.Unary) -> Type:
        operand = self.check(node.operand)
        if node.op == "not":
            self._want(node.operand, operand, "bool", "'not'")
            return t.BOOL
        if operand.kind not in ("integer", "decimal", "money", "duration"):
            raise ExprError("expr_type", f"cannot negate {operand}", node.start)
        return operand

    def check_ifelse(self, node: s.IfElse) -> Type:
        self._want(node.cond, self.check(node.cond), "bool", "'if'")
        a, b = self.check(node.then), self.check(node.other)
        joined = t.unify(a, b)
        if joined is None:
            raise ExprError("expr_type", f"'then' gives {a} but 'else' gives {b}", node.other.start)
        return joined

    def check_where(self, node: s.Where) -> Type:
        items = self.check(node.items)
        if items.kind != "list" or items.item is None or items.item.kind != "record":
            raise ExprError("expr_type", f"'where' filters a list of records, found {items}", node.start)
        self.scopes.append(items.item.fields)
        try:
            self._want(node.cond, self.check(node.cond), "bool", "'where'")
        finally:
            self.scopes.pop()
        return items

    def check_listlit(self, node: s.ListLit) -> Type:
        if not node.items:
            raise ExprError("expr_type", "empty list", node.start)
        out = self.check(node.items[0])
        for item in node.items[1:]:
            joined = t.unify(out, self.check(item))
            if joined is None:
                raise ExprError("expr_type", "list items must have one type", item.start)
            out = joined
        return t.list_of(out)

    def check_binary(self, node: s.Binary) -> Type:
        left, right = self.check(node.left), self.check(node.right)
        if node.op in ("and", "or"):
            self._want(node.left, left, "bool", f"'{node.op}'")
            self._want(node.right, right, "bool", f"'{node.op}'")
            return t.BOOL
        if node.op in ("in", "not in"):
            return self._membership(node, left, right)
        if node.op in ("==", "!=", "<", "<=", ">", ">="):
            return self._compare(node, left, right)
        return self._arithmetic(node, left, right)

    def _want(self, node: s.Node, got: Type, kind: str, where: str) -> None:
        if got.kind != kind:
            raise ExprError("expr_type", f"{where} needs {kind}, found {got}", node.start)

    def _compare(self, node: s.Binary, left: Type, right: Type) -> Type:
        if not t.comparable(left, right):
            raise ExprError("expr_type", f"cannot compare {left} with {right}", node.start,
                            "compare values of one kind (dates with dates, money with money)")
        self._money_with_number(node, left, right)
        if node.op not in ("==", "!=") and (left.kind not in _ORDERED or right.kind not in _ORDERED):
            raise ExprError("expr_type", f"{node.op} needs ordered values, found {left}", node.start)
        self._enum_values(left, node.right)
        self._enum_values(right, node.left)
        return t.BOOL

    def _money_with_number(self, node: s.Binary, left: Type, right: Type) -> None:
        """Money compares with money, or with a number literal (``price > 0``), never a computed number.

        A number computed from facts (a count of days, a percentage) is not
        an amount: ``days_between(a, b) > price`` compares days with money.
        """
        for money_side, number, other in ((left, right, node.right), (right, left, node.left)):
            if money_side.kind == "money" and number.numeric and not _number_literal(other):
                raise ExprError("expr_type", f"cannot compare money with {number} (a computed number is "
                                "not an amount)", node.start,
                                "compare money with money: multiply by a price, or write money('25.00')")

    def _membership(self, node: s.Binary, left: Type, right: Type) -> Type:
        if right.kind != "list" or right.item is None or not t.comparable(left, right.item):
            raise ExprError("expr_type", f"cannot look for {left} in {right}", node.start)
        if isinstance(node.right, s.ListLit):
            for item in node.right.items:
                self._enum_values(left, item)
        return t.BOOL

    def _enum_values(self, typ: Type, other: s.Node) -> None:
        if typ.kind == "enum" and isinstance(other, s.Literal) and other.value not in typ.values:
            raise ExprError("expr_type", f"{other.value!r} is not one of the values "
                            f"{', '.join(typ.values)}", other.start)

    def _arithmetic(self, node: s.Binary, a: Type, b: Type) -> Type:
        kinds = (a.kind, b.kind)
        result = _ARITHMETIC.get((node.op, *kinds))
        if result is None and a.numeric and b.numeric:
            result = t.INTEGER if kinds == ("integer", "integer") and node.op != "/" else t.DECIMAL
        if result is None:
            raise ExprError("expr_type", f"cannot apply {node.op} to {a} and {b}", node.start)
        return result

    def check_call(self, node: s.Call) -> Type:
        if node.func == "has":
            if len(node.args) != 1 or not isinstance(node.args[0], s.Name):
                raise ExprError("expr_type", "has() takes one fact name", node.start)
            self.check(node.args[0])
            return t.BOOL
        if node.func in ("date", "datetime", "money"):
            return self._literal_call(node)
        fn = FUNCTIONS.get(node.func)
        if fn is None:
            allowed = ", ".join(sorted([*FUNCTIONS, *SPECIAL]))
            raise ExprError("expr_syntax", f"unknown function {node.func!r}", node.start,
                            f"allowed functions: {allowed}")
        args = [self.check(a) for a in node.args]
        result = fn.typer(args)
        if isinstance(result, str):
            raise ExprError("expr_type", f"{node.func}() {result}", node.start, fn.signature)
        return result

    def _literal_call(self, node: s.Call) -> Type:
        arg = node.args[0] if len(node.args) == 1 else None
        if node.func == "money":
            return self._money_literal(node, arg)
        if not isinstance(arg, s.Literal) or not isinstance(arg.value, str):
            raise ExprError("expr_type", f"{node.func}() takes one quoted ISO value", node.start)
        try:
            if node.func == "date":
                value: object = date.fromisoformat(arg.value)
            else:
                value = datetime.fromisoformat(arg.value)
                if value.tzinfo is None:  # type: ignore[attr-defined]
                    raise ValueError("a datetime literal needs a UTC offset")
            if not arg.value.isascii() or not MIN_YEAR <= value.year <= MAX_YEAR:  # type: ignore[attr-defined]
                raise ValueError(f"only ASCII digits and the years {MIN_YEAR}-{MAX_YEAR} are supported")
        except ValueError as err:
            raise ExprError("expr_type", f"bad {node.func} literal {arg.value!r}: {err}", arg.start) from err
        self.out.constants[id(node)] = value
        return t.DATE if node.func == "date" else t.DATETIME


    def _money_literal(self, node: s.Call, arg: s.Node | None) -> Type:
        """``money('25.00')`` or ``money(25)``: an amount in the policy's currency."""
        value = arg.value if isinstance(arg, s.Literal) else None
        if isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
            raise ExprError("expr_type", "money() takes one number, e.g. money('25.00')", node.start)
        try:  # bounded like a case's amounts, before anything converts it
            amount = parse_decimal(value) if isinstance(value, str) else Decimal(value)
            problem = decimal_problem(amount)
        except ValueError as err:
            problem = str(err)
        if problem:
            raise ExprError("expr_type", f"bad money literal {value!r}: {problem}", node.start)
        self.out.constants[id(node)] = amount
        return t.MONEY


def _number_literal(node: s.Node) -> bool:
    """``25``, ``12.50`` or ``-1``: a constant the policy states, read in its currency against money."""
    if isinstance(node, s.Unary) and node.op == "-":
        node = node.operand
    return isinstance(node, s.Literal) and isinstance(node.value, (int, Decimal)) \
        and not isinstance(node.value, bool)


_ARITHMETIC: dict[tuple[str, str, str], Type] = {
    ("+", "money", "money"): t.MONEY, ("-", "money", "money"): t.MONEY,
    ("*", "money", "integer"): t.MONEY, ("*", "money", "decimal"): t.MONEY,
    ("*", "integer", "money"): t.MONEY, ("*", "decimal", "money"): t.MONEY,
    ("/", "money", "integer"): t.MONEY, ("/", "money", "decimal"): t.MONEY,
    ("/", "money", "money"): t.DECIMAL,
    ("+", "date", "integer"): t.DATE, ("+", "integer", "date"): t.DATE,
    ("-", "date", "integer"): t.DATE, ("-", "date", "date"): t.INTEGER,
    ("+", "datetime", "duration"): t.DATETIME, ("-", "datetime", "duration"): t.DATETIME,
    ("-", "datetime", "datetime"): t.DURATION,
    ("+", "duration", "duration"): t.DURATION, ("-", "duration", "duration"): t.DURATION,
}


def check(node: s.Node, env: Mapping[str, Type]) -> Checked:
    """Type-check ``node`` in ``env`` (name → type); raise :class:`ExprError`."""
    checker = _Checker(env)
    typ = checker.check(node)
    checker.out.node = node
    checker.out.type = typ
    return checker.out
