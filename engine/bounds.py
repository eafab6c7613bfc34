"""Partial knowledge: bounded facts in cases, and bounds between facts in policies.

A case may give a fact as a bound instead of a value (docs/design.md §2.4)::

    shipped_back_on: {at_most: "2025-04-10"}          # on or before
    refund_total:    {at_least: "10.00", at_most: "20.00"}
    freight:         {one_of: [prepaid, collect]}     # enums

A policy may declare that one fact is at most / at least another of the
same orderable type (``shipped_back_on: {type: date, at_most: arrived_on}``),
and its ``checks`` of the form ``fact op fact`` or ``fact op constant`` say
the same. These relations narrow what a missing fact could be
(:func:`propagate`), so :mod:`engine.relevance` does not ask a question the
case already answers. A bound or relation that leaves no possible value is a
case error naming the facts involved: a contradiction is never decided on.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Mapping

from engine import intervals as iv
from engine.case import Case, _Coercer, _diag
from engine.errors import CaseError, Diagnostic
from engine.expressions import syntax as s

if TYPE_CHECKING:
    from engine._yaml import Document
    from engine.model import FactDecl, Policy

KEYS = ("at_least", "at_most", "one_of")
_ORDER = {"at_most": "<=", "at_least": ">="}
_OPS = ("<", "<=", ">", ">=", "==")
SWAP = _SWAP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "=="}
_WORDS = {"<": "before/below", "<=": "at most", ">": "after/above", ">=": "at least", "==": "equal to"}


@dataclass(frozen=True, slots=True)
class Relation:
    """``left op right`` between two facts (``right``), or a fact and a constant (``value``)."""

    left: str
    op: str
    right: str | None
    value: Any = None
    from_check: bool = False


_PLAIN = (str, bool, int, Decimal, list)  # values that are never bounds


def is_bound(raw: Any) -> bool:
    """Whether a case value is a bound (``{"at_most": ...}``...) rather than a value."""
    if isinstance(raw, _PLAIN):  # the usual values: skip the slow ABC check
        return False
    return isinstance(raw, Mapping) and bool(raw) and all(k in KEYS for k in raw)


def json_value(value: Any) -> Any:
    """A bound end in the fact's JSON form (dates ISO, amounts as decimal strings)."""
    if isinstance(value, (date, timedelta)) and not isinstance(value, bool):
        return value.isoformat() if isinstance(value, date) else _duration(value)
    if isinstance(value, Decimal):
        return str(value)
    return value


def _duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    return f"P{value.days}DT{seconds % 86400}S" if value.days else f"PT{seconds}S"


def describe(value: iv.Abstract) -> str:
    """A domain for people: ``at most 2025-03-17``, ``one of a, b``.

    An end at the limit of what the type allows (year 2999, a trillion) is
    not a real bound and is left out.
    """
    if isinstance(value, iv.Choice):
        return "one of " + ", ".join(sorted(str(json_value(v)) for v in value.values))
    if not isinstance(value, iv.Span):
        return "any value"
    if value.point:
        return str(json_value(value.lo))
    lo, hi = _is_limit(value.lo), _is_limit(value.hi)
    if lo and hi:
        return "any value"
    if lo:
        return f"at most {json_value(value.hi)}"
    if hi:
        return f"at least {json_value(value.lo)}"
    return f"between {json_value(value.lo)} and {json_value(value.hi)}"


def _is_limit(value: Any) -> bool:
    for kind in iv.ORDERABLE:
        full = iv.domain(kind)
        try:
            if isinstance(full, iv.Span) and type(full.lo) is type(value) and value in (full.lo, full.hi):
                return True
        except TypeError:
            continue
    return False


# --- the case side ----------------------------------------------------------------

def split_case(case: Case, policy: Policy) -> tuple[Case, dict[str, iv.Abstract]]:
    """The case without its bounded facts, and those facts' domains.

    Raises:
        CaseError: a bound on a type that has no order (or ``one_of`` on a
            non-enum), a bound value of the wrong type, or an empty range.
    """
    for value in case.facts.values():
        if value is not None and not isinstance(value, _PLAIN):
            break
    else:
        return case, {}  # the usual case: plain values only, none of them a bound
    raws = {n: v for n, v in case.facts.items() if is_bound(v) and n in policy.facts}
    if not raws:
        return case, {}
    coercer = _Coercer(policy, case.document)
    out = {name: _bound(coercer, policy.facts[name], raw, case.document) for name, raw in raws.items()}
    if coercer.problems:
        raise CaseError(coercer.problems)
    plain = {n: v for n, v in case.facts.items() if n not in raws}
    return replace(case, facts=MappingProxyType(plain)), out  # type: ignore[misc]


def _bound(coercer: _Coercer, decl: FactDecl, raw: Mapping[str, Any], doc: Document | None) -> iv.Abstract:
    name, kind = decl.name, decl.type.kind
    full = iv.domain(kind, decl.type.values)
    if "one_of" in raw:
        if len(raw) > 1 or kind not in iv.FINITE:
            coercer.bad((name,), f"fact {name}: one_of gives the possible values of an enum or bool "
                        f"fact and stands alone; {name} is {kind}" + (" — use at_least/at_most"
                                                                      if kind in iv.ORDERABLE else ""))
            return full
        values = raw["one_of"]
        if not isinstance(values, list) or not values:
            coercer.bad((name, "one_of"), f"fact {name}: one_of needs a non-empty list of values")
            return full
        got = {coercer.value(decl, v, (name, "one_of", i)) for i, v in enumerate(values)}
        return iv.Choice(frozenset(got - {None}))
    if kind not in iv.ORDERABLE:
        coercer.bad((name,), f"fact {name}: at_least/at_most need an orderable type (number, money, "
                    f"date, date-time, duration); {name} is {kind}"
                    + (" — use one_of" if kind in iv.FINITE else ""))
        return full
    ends = {k: coercer.value(decl, raw[k], (name, k)) for k in ("at_least", "at_most") if k in raw}
    if None in ends.values():
        return full
    span = iv.meet(iv.domain(kind, decl.type.values, decl.minimum, decl.maximum),
                   iv.Span(ends.get("at_least", full.lo), ends.get("at_most", full.hi)))  # type: ignore[union-attr]
    if iv.is_empty(span) and len(ends) == 2:
        coercer.bad((name,), f"fact {name}: at_least {json_value(ends['at_least'])} is after/above "
                    f"at_most {json_value(ends['at_most'])}: no value fits")
    return span


def check(policy: Policy, facts: dict[str, Any], bounds: dict[str, iv.Abstract],
          document: Document | None, rels: tuple[Relation, ...] | None = None) -> None:
    """Refuse a case whose values and bounds contradict the policy's relations.

    Relations that come from ``checks`` are not re-checked between two plain
    values (the check itself reports those).

    Raises:
        CaseError: naming both facts of each contradicted relation.
    """
    rels = tuple(relations(policy)) if rels is None else rels  # compiled once: CompiledPolicy.relations
    problems: list[Diagnostic] = []
    for rel in rels:
        left = _known(rel.left, facts, bounds)
        right = iv.point(rel.value) if rel.right is None else _known(rel.right, facts, bounds)
        if left is None or right is None:
            continue
        if rel.from_check and rel.left in facts and (rel.right is None or rel.right in facts):
            continue
        if iv.compare(left, rel.op, right) == iv.FALSE:
            other = rel.right or json_value(rel.value)
            where = rel.left if rel.left in bounds or rel.right is None else rel.right
            problems.append(_diag(document, ("facts", where), "case_fact_bound",
                                  f"facts {rel.left} and {other} contradict each other: {rel.left} "
                                  f"({describe(left)}) must be {_WORDS[rel.op]} {other} ({describe(right)})"))
    if not problems and bounds and propagate(initial_domains(policy, facts, bounds), facts,
                                             list(rels)) is None:
        names = sorted({n for r in rels for n in (r.left, r.right) if n and n in bounds})
        problems.append(_diag(document, ("facts",), "case_fact_bound",
                              "the bounds of " + ", ".join(names) + " leave no possible value "
                              "together with the policy's relations between facts"))
    if problems:
        raise CaseError(problems)


def _known(name: str, facts: dict[str, Any], bounds: dict[str, iv.Abstract]) -> iv.Abstract | None:
    if name in facts:
        return iv.point(facts[name])
    return bounds.get(name)


# --- the policy side --------------------------------------------------------------

def relations(policy: Policy) -> list[Relation]:
    """Every relation between facts the policy states: fact bounds, then simple checks."""
    out = [Relation(name, _ORDER[key], getattr(decl, key))
           for name, decl in policy.facts.items() for key in ("at_most", "at_least")
           if getattr(decl, key, None)]
    for chk in policy.checks:
        out += _from_check(chk.expr.checked.node, chk.expr.checked.constants, policy)
    return out


def _from_check(node: s.Node, constants: Mapping[int, Any], policy: Policy) -> list[Relation]:
    """``a op b`` (and conjunctions of them) over declared facts and constants."""
    if isinstance(node, s.Binary) and node.op == "and":
        return _from_check(node.left, constants, policy) + _from_check(node.right, constants, policy)
    if not (isinstance(node, s.Binary) and node.op in _OPS):
        return []
    sides = []
    for side in (node.left, node.right):
        if isinstance(side, s.Name) and side.name in policy.facts:
            sides.append(("fact", side.name))
        elif isinstance(side, s.Literal) and not isinstance(side.value, (bool, str)):
            sides.append(("value", side.value))
        elif isinstance(side, s.Call) and id(side) in constants:
            sides.append(("value", constants[id(side)]))
        else:
            return []
    (lk, left), (rk, right) = sides
    if lk == "fact" and rk == "fact":
        return [Relation(left, node.op, right, from_check=True)]
    if lk == "fact":
        return [Relation(left, node.op, None, right, from_check=True)]
    if rk == "fact":
        return [Relation(right, _SWAP[node.op], None, left, from_check=True)]
    return []


def initial_domains(policy: Policy, facts: dict[str, Any], bounds: dict[str, iv.Abstract]) -> dict[str, iv.Abstract]:
    """What each absent declared fact could be: its type's values, narrowed by the case's bound."""
    out = {}
    for name, decl in policy.facts.items():
        if name in facts or decl.type.kind in ("list", "string"):
            continue
        dom = iv.domain(decl.type.kind, decl.type.values, decl.minimum, decl.maximum)
        out[name] = iv.meet(dom, bounds[name]) if name in bounds else dom
    return out


def propagate(domains: dict[str, iv.Abstract], facts: dict[str, Any],
              rels: list[Relation]) -> dict[str, iv.Abstract] | None:
    """Narrow the domains until every relation holds at their ends; None when one becomes empty."""
    doms = dict(domains)
    for _ in range(len(rels) + 1):
        changed = False
        for rel in rels:
            left = iv.point(facts[rel.left]) if rel.left in facts else doms.get(rel.left)
            if rel.right is None:
                right = iv.point(rel.value)
            else:
                right = iv.point(facts[rel.right]) if rel.right in facts else doms.get(rel.right)
            if not (isinstance(left, iv.Span) and isinstance(right, iv.Span)):
                continue
            new_left, new_right = _tighten(left, rel.op, right)
            for name, old, new in ((rel.left, left, new_left), (rel.right, right, new_right)):
                if name in doms and new != old:
                    if iv.is_empty(new):
                        return None
                    doms[name] = new
                    changed = True
        if not changed:
            break
    return doms


def _tighten(a: iv.Span, op: str, b: iv.Span) -> tuple[iv.Abstract, iv.Abstract]:
    """``a`` and ``b`` narrowed so that ``a op b`` can hold at their ends."""
    if op in (">", ">="):
        new_b, new_a = _tighten(b, _SWAP[op], a)
        return new_a, new_b
    strict = op == "<"
    try:
        new_a = iv.meet(a, iv.normal(iv.Span(a.lo, b.hi, a.lo_open, b.hi_open or strict)))
        new_b = iv.meet(b, iv.normal(iv.Span(a.lo, b.hi, a.lo_open or strict, b.hi_open)))
    except TypeError:
        return a, b
    if op == "==":
        new_a = new_b = iv.meet(new_a, new_b)
    return new_a, new_b


def fact_relation_errors(facts: Mapping[str, FactDecl]) -> list[tuple[str, str, str]]:
    """Problems with ``at_most``/``at_least`` between declared facts: (fact, key, message).

    The other fact must be declared, be another fact, and have the same
    orderable type (a date bounded by a date, money by money...).
    """
    out = []
    for name, decl in facts.items():
        for key in ("at_most", "at_least"):
            other = getattr(decl, key)
            if other is None:
                continue
            kind = decl.type.kind
            if kind not in iv.ORDERABLE:
                out.append((name, key, f"{key} needs an orderable fact (number, money, date, date-time, "
                                       f"duration); {name} is {kind}"))
            elif other == name:
                out.append((name, key, f"{name} cannot be bounded by itself"))
            elif other not in facts:
                out.append((name, key, f"{key} names {other!r}, which is not a declared fact"))
            elif facts[other].type.kind != kind:
                out.append((name, key, f"{key} names {other} ({facts[other].type.kind}), but {name} is "
                                       f"{kind}: a bound must have the fact's type"))
    return out


def missing_line(item: Mapping[str, Any]) -> str:
    """A ``missing_facts`` entry for people: the fact, the question, and the range that decides."""
    rng = item.get("range")
    decides = ""
    if rng:
        parts = [f"{'at least' if k == 'at_least' else 'at most'} {v}"
                 for k, v in rng.items() if k != "one_of"]
        if "one_of" in rng:
            parts.append("one of " + ", ".join(map(str, rng["one_of"])))
        decides = f" — what decides: is it {' and '.join(parts)}?"
    return f"{item['fact']}: {item.get('question') or item['why']}{decides} ({item['why']})"
