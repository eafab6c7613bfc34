"""The condition IR both back ends execute.

A rule's ``when`` becomes a tree of :class:`All`, :class:`Any` and leaves that
compare one field with constants. Negation is pushed down to the leaves
(De Morgan; ``<`` becomes ``>=``), so neither back end needs ``not``.

A leaf on a field the case lacks is false in both back ends, which is exactly
"definitely true" under three-valued logic for a formula in negation normal
form; :func:`evaluate3` gives the three-valued answer for explanations and
``missing_facts``.

Anything that is not "field op constant" becomes a *synthetic* field that the
derive step computes in Python before matching: ``days_between(a, b) < 8``
becomes ``__v0 < 8`` with ``__v0 = days_between(a, b)``; a comparison of two
expressions becomes ``__p0 == true``. Membership lists longer than
:data:`MAX_IN_VALUES` become synthetic predicates too (durable_rules hangs on
wide nodes, docs/design.md §4.7).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any as AnyType
from typing import Union

from engine.expressions import syntax as s
from engine.expressions.checker import Checked

MAX_IN_VALUES = 64
NEGATE = {"==": "!=", "!=": "==", "<": ">=", ">=": "<", ">": "<=", "<=": ">"}
FLIP = {"==": "==", "!=": "!=", "<": ">", ">": "<", "<=": ">=", ">=": "<="}


@dataclass(frozen=True, slots=True)
class Cmp:
    field: str
    op: str
    value: AnyType
    text: str


@dataclass(frozen=True, slots=True)
class In:
    field: str
    values: tuple[AnyType, ...]
    negated: bool
    text: str


@dataclass(frozen=True, slots=True)
class Exists:
    field: str
    present: bool
    text: str


@dataclass(frozen=True, slots=True)
class All:
    items: tuple[Cond, ...]
    text: str


@dataclass(frozen=True, slots=True)
class Any:
    items: tuple[Cond, ...]
    text: str


Cond = Union[Cmp, In, Exists, All, Any]
Leaf = Union[Cmp, In, Exists]


@dataclass(frozen=True, slots=True)
class Synthetic:
    """A field computed in Python before matching, from an expression node."""

    name: str
    node: s.Node
    text: str


@dataclass(slots=True)
class Lowering:
    """Shared state while lowering the conditions of one policy."""

    synthetics: dict[str, Synthetic] = field(default_factory=dict)
    _by_text: dict[str, str] = field(default_factory=dict)

    def synthetic(self, node: s.Node, text: str, prefix: str) -> str:
        key = f"{prefix}:{text}"
        if key not in self._by_text:
            name = f"__{prefix}{len(self._by_text)}"
            self._by_text[key] = name
            self.synthetics[name] = Synthetic(name, node, text)
        return self._by_text[key]


def negate(cond: Cond) -> Cond:
    """The negation of ``cond``, still in negation normal form."""
    return _negate(cond)


def _negate(cond: Cond) -> Cond:
    text = f"not ({cond.text})"
    if isinstance(cond, All):
        return Any(tuple(_negate(c) for c in cond.items), text)
    if isinstance(cond, Any):
        return All(tuple(_negate(c) for c in cond.items), text)
    if isinstance(cond, Cmp):
        return Cmp(cond.field, NEGATE[cond.op], cond.value, text)
    if isinstance(cond, In):
        return In(cond.field, cond.values, not cond.negated, text)
    return Exists(cond.field, not cond.present, text)


class _Lower:
    def __init__(self, checked: Checked, source: str, lowering: Lowering, fields: set[str]) -> None:
        self.checked = checked
        self.source = source
        self.lowering = lowering
        self.fields = fields  # names usable directly as fields (facts and derived)

    def text(self, node: s.Node) -> str:
        return self.source[node.start:node.end]

    def kind(self, node: s.Node) -> str:
        return self.checked.types[id(node)].kind

    def lower(self, node: s.Node) -> Cond:
        text = self.text(node)
        if isinstance(node, s.Binary) and node.op in ("and", "or"):
            cls = All if node.op == "and" else Any
            items: list[Cond] = []
            for side in (node.left, node.right):
                part = self.lower(side)
                # flatten a and (b and c) into one All
                items.extend(part.items if isinstance(part, cls) else (part,))
            return cls(tuple(items), text)
        if isinstance(node, s.Unary) and node.op == "not":
            return replace(_negate(self.lower(node.operand)), text=text)
        if isinstance(node, s.Literal) and isinstance(node.value, bool):
            return All((), text) if node.value else Any((), text)
        if isinstance(node, s.Call) and node.func == "has" and isinstance(node.args[0], s.Name):
            return Exists(node.args[0].name, True, text)
        if isinstance(node, s.Binary) and node.op in FLIP:
            return self.compare(node, text)
        if isinstance(node, s.Binary) and node.op in ("in", "not in"):
            return self.membership(node, text)
        return Cmp(self.field(node, "p"), "==", True, text)

    def field(self, node: s.Node, prefix: str) -> str:
        if isinstance(node, s.Name) and node.name in self.fields:
            return node.name
        return self.lowering.synthetic(node, self.text(node), prefix)

    def constant(self, node: s.Node) -> tuple[bool, AnyType]:
        if isinstance(node, s.Literal):
            return True, node.value
        if isinstance(node, s.Call) and id(node) in self.checked.constants:
            return True, self.checked.constants[id(node)]
        if isinstance(node, s.Unary) and node.op == "-" and isinstance(node.operand, s.Literal):
            return True, -node.operand.value  # type: ignore[operator]
        return False, None

    def compare(self, node: s.Binary, text: str) -> Cond:
        left_const, lvalue = self.constant(node.left)
        right_const, rvalue = self.constant(node.right)
        if right_const and not left_const:
            return Cmp(self.field(node.left, "v"), node.op, rvalue, text)
        if left_const and not right_const:
            return Cmp(self.field(node.right, "v"), FLIP[node.op], lvalue, text)
        return Cmp(self.field(node, "p"), "==", True, text)

    def membership(self, node: s.Binary, text: str) -> Cond:
        negated = node.op == "not in"
        if isinstance(node.right, s.ListLit) and len(node.right.items) <= MAX_IN_VALUES:
            consts = [self.constant(i) for i in node.right.items]
            if all(ok for ok, _ in consts):
                return In(self.field(node.left, "v"), tuple(v for _, v in consts), negated, text)
        pred = Cmp(self.field(node, "p"), "==", True, text)
        return pred


def lower(checked: Checked, source: str, lowering: Lowering, fields: set[str]) -> Cond:
    """Lower a checked boolean expression to the IR (negation normal form)."""
    return _Lower(checked, source, lowering, fields).lower(checked.node)


def leaves(cond: Cond) -> list[Leaf]:
    if isinstance(cond, (All, Any)):
        return [leaf for c in cond.items for leaf in leaves(c)]
    return [cond]


# --- three-valued evaluation (explanations and missing facts) ---------------

TRUE, FALSE, UNKNOWN = "true", "false", "unknown"

_OPS = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}


def leaf_value(leaf: Leaf, facts: dict[str, AnyType]) -> str:
    if isinstance(leaf, Exists):
        return TRUE if (leaf.field in facts) == leaf.present else FALSE
    if leaf.field not in facts:
        return UNKNOWN
    value = facts[leaf.field]
    if isinstance(leaf, In):
        return TRUE if (value in leaf.values) != leaf.negated else FALSE
    return TRUE if _OPS[leaf.op](value, leaf.value) else FALSE


def evaluate3(cond: Cond, facts: dict[str, AnyType]) -> str:
    """Kleene three-valued value of ``cond``: a leaf on an absent field is unknown."""
    if isinstance(cond, All):
        values = [evaluate3(c, facts) for c in cond.items]
        return FALSE if FALSE in values else UNKNOWN if UNKNOWN in values else TRUE
    if isinstance(cond, Any):
        values = [evaluate3(c, facts) for c in cond.items]
        return TRUE if TRUE in values else UNKNOWN if UNKNOWN in values else FALSE
    return leaf_value(cond, facts)


def first_failure(cond: Cond, facts: dict[str, AnyType]) -> Cond | None:
    """The first sub-condition that makes ``cond`` false, for explanations."""
    if evaluate3(cond, facts) != FALSE:
        return None
    if isinstance(cond, All):
        for c in cond.items:
            if evaluate3(c, facts) == FALSE:
                return first_failure(c, facts)
    return cond


def unknown_fields(cond: Cond, facts: dict[str, AnyType]) -> list[str]:
    """Absent fields of the leaves that keep ``cond`` unknown, in order."""
    if evaluate3(cond, facts) != UNKNOWN:
        return []
    if isinstance(cond, (All, Any)):
        out: list[str] = []
        for c in cond.items:
            for name in unknown_fields(c, facts):
                if name not in out:
                    out.append(name)
        return out
    return [cond.field]
