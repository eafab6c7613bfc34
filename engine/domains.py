"""What an absent fact may still be, in one case: domains, relations, stand-in values.

The relevance search (:mod:`engine.relevance`) and the result evaluation
(:mod:`engine.decide`) both start from the same picture of a case's missing
facts: each one's declared domain, narrowed by the case's bounds, by the
policy's relations between facts, by what a known list implies through a
``count(L where ...) == 0`` check, and — for dates that reach a business-day
function — by the years the vendor's holiday calendar knows. Here too: the
one (rounded) value an expression has over those domains, and a stand-in
value per fact for looking past the first missing name of an expression.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from engine import bounds as bd
from engine import intervals as iv
from engine import money
from engine.abstract import Evaluator
from engine.currency import CURRENCY_FACT
from engine.expressions import syntax as s

if TYPE_CHECKING:
    from engine.compiler import CompiledPolicy


def case_domains(compiled: CompiledPolicy, facts: dict[str, Any],
             bounds: dict[str, iv.Abstract]) -> tuple[list[bd.Relation], dict[str, iv.Abstract]]:
    """The relations that hold for this case and the absent facts' domains narrowed by them."""
    relations = list(compiled.relations) + _record_relations(compiled, facts)
    start = bd.initial_domains(compiled.policy, facts, bounds)
    for name in _calendar_facts(compiled) & start.keys():
        if isinstance(start[name], iv.Span) and isinstance(start[name].lo, date):
            start[name] = iv.meet(start[name], _calendar_years(compiled, start[name].lo))
    return relations, bd.propagate(start, facts, relations) or start


def _calendar_years(compiled: CompiledPolicy, like: date) -> iv.Span:
    """The years the holiday calendar knows, as dates or (a day wider: any zone's local day) as moments."""
    cal = compiled.calendar
    if isinstance(like, datetime):
        return iv.Span(datetime(cal.first_year, 1, 1, tzinfo=timezone.utc) - timedelta(days=1),
                       datetime(cal.last_year, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc) + timedelta(days=1))
    return iv.Span(date(cal.first_year, 1, 1), date(cal.last_year, 12, 31))


_BUSINESS = frozenset({"add_business_days", "business_days_between"})


def _calendar_facts(compiled: CompiledPolicy) -> set[str]:
    """Facts that reach a business-day function: outside the calendar's years no decision exists.

    A completion there is refused (an evaluation error), so the search need
    not look at it — and splitting its unknown region day by day would spend
    the whole budget before reaching the days that matter.
    """
    out: set[str] = set()
    nodes = [(n, d.expr.checked.node) for n, d in compiled.policy.derived.items()]
    nodes += [(n, syn.node) for n, syn in compiled.synthetics.items()]
    for name, node in nodes:
        if _calls(node, _BUSINESS):
            out |= compiled.depends.get(name, frozenset())
    return out


def _calls(node: Any, names: frozenset[str]) -> bool:
    if isinstance(node, s.Call) and node.func in names:
        return True
    if isinstance(node, s.Node):
        return any(_calls(getattr(node, f), names) for f in node.__slots__ if f not in ("start", "end"))
    if isinstance(node, tuple):
        return any(_calls(x, names) for x in node)
    return False


_NOT = {"<": ">=", "<=": ">", ">": "<=", ">=": "<"}


def _record_relations(compiled: CompiledPolicy, facts: dict[str, Any]) -> list[bd.Relation]:
    """Bounds a known list puts on an absent fact through a check ``count(L where ...) == 0``.

    E.g. ``count(interruptions where date_of(start) < period_start) == 0``
    with the interruptions known: ``period_start`` is on or before every
    interruption's day. Each disjunct ``value op fact`` of the filter must be
    false for every record; the record's side is evaluated on the record
    (and known facts), and kept only when it is one value.
    """
    out: list[bd.Relation] = []
    for chk in compiled.policy.checks:
        where = _none_where(chk.expr.checked.node)
        if where is None or not isinstance(where.items, s.Name):
            continue
        records = facts.get(where.items.name)
        if not isinstance(records, list) or len(records) > 500:
            continue
        for part in _disjuncts(where.cond):
            if not (isinstance(part, s.Binary) and part.op in _NOT):
                continue
            for fact, other, op in ((part.left, part.right, part.op), (part.right, part.left, bd.SWAP[part.op])):
                if isinstance(fact, s.Name) and fact.name in compiled.policy.facts and fact.name not in facts:
                    for record in records:
                        ok, value = iv.single(Evaluator(compiled, {**facts, **record}, {}).node(other))
                        if ok and not isinstance(value, (bool, str)):
                            out.append(bd.Relation(fact.name, _NOT[op], None, value, from_check=True))
    return out


def _none_where(node: s.Node) -> s.Where | None:
    """The filter of a check ``count(L where P) == 0`` (no record may match P), else None."""
    if not (isinstance(node, s.Binary) and node.op == "==" and isinstance(node.right, s.Literal)
            and not isinstance(node.right.value, bool) and node.right.value == 0
            and isinstance(node.left, s.Call) and node.left.func == "count"
            and len(node.left.args) == 1 and isinstance(node.left.args[0], s.Where)):
        return None
    return node.left.args[0]


def _disjuncts(node: s.Node) -> list[s.Node]:
    if isinstance(node, s.Binary) and node.op == "or":
        return _disjuncts(node.left) + _disjuncts(node.right)
    return [node]


def point_value(compiled: CompiledPolicy, facts: dict[str, Any], bounds: dict[str, iv.Abstract],
                node: s.Node, rounded: bool = False) -> tuple[bool, Any]:
    """``(True, v)`` when an expression reading missing facts has the one value ``v`` for all of them.

    E.g. ``if all_included then money(0) else missing_cost`` with a missing
    cost of 0: the amount is 0 whether or not everything was included. With
    ``rounded`` (money), a range of values that all round to one amount is
    that amount (rounding is monotone: both ends rounding alike is enough).
    """
    _, domains = case_domains(compiled, facts, bounds)
    value = Evaluator(compiled, facts, domains).node(node)
    return rounded_single(value, compiled, facts) if rounded else iv.single(value)


def rounded_single(value: iv.Abstract, compiled: CompiledPolicy, facts: dict[str, Any]) -> tuple[bool, Any]:
    """The one amount every value of ``value`` rounds to (the case's currency, the policy's mode), if any."""
    quantum = money.quantum(facts.get(CURRENCY_FACT, compiled.policy.currency))
    ok, one = iv.single(value)
    if ok:
        return True, money.round_to(Decimal(one), quantum, compiled.policy.rounding)
    if isinstance(value, iv.Span) and isinstance(value.lo, (int, Decimal)) and not isinstance(value.lo, bool):
        try:
            lo, hi = (money.round_to(Decimal(x), quantum, compiled.policy.rounding) for x in (value.lo, value.hi))
        except ArithmeticError:
            return False, None
        if lo == hi:
            return True, lo
    return False, None


def probe_values(compiled: CompiledPolicy, facts: dict[str, Any], bounds: dict[str, iv.Abstract],
                 names: list[str], near: Any) -> dict[str, Any]:
    """One possible value for each of ``names`` (absent facts), or fewer when a domain gives none.

    Used to look past the first missing fact of a result expression: with
    a value standing in for it, the next fact the expression reads shows
    (``units * max(25, 15% of unit_price)`` needs both, not just the first).
    A date prefers ``near`` (the case's as_of), a number 0 or its lower end.
    """
    _, domains = case_domains(compiled, facts, bounds)
    out: dict[str, Any] = {}
    for name in names:
        value = _inside(domains.get(name, iv.TOP), near)
        if value is not None:
            out[name] = value
    return out


def _inside(dom: iv.Abstract, near: Any) -> Any:
    if isinstance(dom, iv.Choice):
        return min(dom.values, key=repr) if dom.values else None
    if not isinstance(dom, iv.Span) or dom.empty:
        return None
    for guess in (near, 0, Decimal(0), 1):
        if type(guess) is type(dom.lo) and not iv.is_empty(iv.meet(dom, iv.point(guess))):
            return guess
    if not dom.lo_open:
        return dom.lo
    return None if dom.hi_open else dom.hi


__all__ = ["case_domains", "point_value", "probe_values", "rounded_single"]
