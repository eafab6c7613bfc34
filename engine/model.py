"""Immutable data passed between the pipeline stages: policies and decisions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Mapping

from engine.money import format_amount

if TYPE_CHECKING:
    from engine.expressions.checker import Checked
    from engine.expressions.types import Type
    from engine.location import SourceLocation

EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class FactDecl:
    """A fact the policy reads from cases (or a field of a list fact's records)."""

    name: str
    type: Type
    meaning: str
    location: SourceLocation
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    fields: Mapping[str, FactDecl] = field(default_factory=lambda: EMPTY)
    example: Any = None
    clause: str | None = None            # the source sentence defining it, if any
    clause_location: SourceLocation | None = None
    question: Mapping[str, str] = field(default_factory=lambda: EMPTY)  # lang -> what to ask
    at_most: str | None = None           # another fact this one never exceeds
    at_least: str | None = None          # another fact this one is never below


@dataclass(frozen=True, slots=True)
class Expr:
    """A checked expression with the place it was written."""

    text: str
    location: SourceLocation
    checked: Checked
    path: str

    @property
    def type(self) -> Type:
        return self.checked.type

    @property
    def reads(self) -> frozenset[str]:
        return frozenset(self.checked.reads)


@dataclass(frozen=True, slots=True)
class Derived:
    name: str
    expr: Expr
    meaning: str
    interpretation: str | None = None
    clause: str | None = None            # the source sentence defining it, if any
    clause_location: SourceLocation | None = None


@dataclass(frozen=True, slots=True)
class Check:
    expr: Expr
    message: str


@dataclass(frozen=True, slots=True)
class Action:
    party: str
    text: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class DeadlineDecl:
    """A time limit a kind's text sets, reported on every decision of the kind."""

    name: str
    date: Expr
    text: Mapping[str, str]
    clause: str
    location: SourceLocation
    clause_location: SourceLocation | None = None
    when: Expr | None = None             # the deadline concerns only cases where this holds


@dataclass(frozen=True, slots=True)
class AlternativeDecl:
    """What the customer may still do or buy instead of the claim (docs/design.md §2.4)."""

    outcome: str
    text: Mapping[str, str]
    amount: Expr | None = None
    customer_pays: Expr | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule: the clause it encodes, when it applies and what it decides."""

    id: str
    kind: str
    index: int
    clause: str
    when: Expr
    outcome: str
    reason: Mapping[str, str]
    location: SourceLocation
    interpretation: str | None = None
    clause_location: SourceLocation | None = None
    override: bool = False
    priority: int = 0
    amount: Expr | None = None
    customer_pays: Expr | None = None
    fees: tuple[tuple[str, Expr], ...] = ()
    deadlines: tuple[tuple[str, Expr], ...] = ()
    actions: tuple[Action, ...] = ()
    deadline_texts: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: EMPTY)  # name -> texts
    alternatives: tuple[AlternativeDecl, ...] = ()

    def results(self) -> list[Expr]:
        """The expressions of what the rule decides: amount, customer_pays, fees, deadlines, alternatives."""
        return [e for e in (self.amount, self.customer_pays, *(e for _, e in self.fees),
                            *(e for _, e in self.deadlines),
                            *(e for a in self.alternatives for e in (a.amount, a.customer_pays)))
                if e is not None]

    def texts(self) -> list[str]:
        """Every reason, action, deadline and alternative text, in every language."""
        return [*self.reason.values(), *(t for a in self.actions for t in a.text.values()),
                *(t for d in self.deadline_texts.values() for t in d.values()),
                *(t for a in self.alternatives for t in a.text.values())]


@dataclass(frozen=True, slots=True)
class Kind:
    """One kind of decision of a vendor and how its rules combine."""

    name: str
    title: str
    combine: str
    otherwise_outcome: str
    otherwise_reason: Mapping[str, str]
    rules: tuple[Rule, ...]
    location: SourceLocation | None = None
    deadlines: tuple[DeadlineDecl, ...] = ()   # reported on every decision of the kind

    def ranked(self) -> tuple[Rule, ...]:
        """Rules in decision order: overrides first, then priority or file order."""
        if self.combine == "priority":
            return tuple(sorted(self.rules, key=lambda r: (not r.override, -r.priority, r.index)))
        return tuple(sorted(self.rules, key=lambda r: (not r.override, r.index)))


@dataclass(frozen=True, slots=True)
class Policy:
    """One version of one vendor's terms, loaded and checked."""

    vendor: str
    name: str
    version: str
    effective_from: date
    effective_until: date | None
    currency: str                # the named currency, or the default of those accepted
    country: str
    subdivision: str | None
    timezone: str
    languages: tuple[str, ...]
    rounding: str
    file: str
    source_file: str
    source_text: str
    digest: str
    facts: Mapping[str, FactDecl]
    derived: Mapping[str, Derived]
    checks: tuple[Check, ...]
    kinds: Mapping[str, Kind]
    out_of_scope: tuple[OutOfScope, ...] = ()
    source_path: str = ""                            # source_file resolved
    version_by: str | None = None                    # date fact that picks the version
    suppress: tuple[tuple[str, str, str], ...] = ()  # lint (code, target, reason)
    location: SourceLocation | None = None           # the policy file's first line
    text: str = ""                                   # the policy file as loaded (the log keeps it)
    equivalent: tuple[tuple[str, str, str], ...] = ()  # mutation (at, mutant, reason)
    currencies: tuple[str, ...] = ()                 # accepted currencies; () = any ISO 4217
    currency_named: bool = True                      # the source text names `currency`


@dataclass(frozen=True, slots=True)
class OutOfScope:
    """A deciding sentence of the source deliberately not encoded, and why."""

    clause: str
    reason: str
    location: SourceLocation


# --- decisions --------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Money:
    value: Decimal
    currency: str

    def to_dict(self) -> dict[str, str]:
        return {"value": format_amount(self.value, self.currency), "currency": self.currency}

    def __str__(self) -> str:
        return f"{format_amount(self.value, self.currency)} {self.currency}"


@dataclass(frozen=True, slots=True)
class Fee:
    name: str
    amount: Money
    rule: str


@dataclass(frozen=True, slots=True)
class Deadline:
    """A time limit for this case: ``status`` open (on or after as_of), passed, or unknown."""

    name: str
    date: date | None
    rule: str | None                     # None: declared by the kind
    status: str = "open"
    text: str = ""


@dataclass(frozen=True, slots=True)
class Alternative:
    outcome: str
    amount: Money | None
    customer_pays: Money | None
    text: str
    rule: str


@dataclass(frozen=True, slots=True)
class ActionItem:
    party: str
    text: str
    rule: str


@dataclass(frozen=True, slots=True)
class MissingFact:
    fact: str
    why: str
    question: str | None = None
    range: Mapping[str, Any] | None = None  # the bound that would decide (a bounded fact)


@dataclass(frozen=True, slots=True)
class Reason:
    rule: str
    clause: str | None
    source: str | None
    text: str


@dataclass(frozen=True, slots=True)
class Decision:
    """What the vendor owes the customer for one case, and why (docs/design.md §2.3)."""

    case_id: str | None
    vendor: str
    kind: str
    as_of: date
    outcome: str
    amount: Money | None
    customer_pays: Money | None
    fees: tuple[Fee, ...]
    deadlines: tuple[Deadline, ...]
    actions: tuple[ActionItem, ...]
    missing_facts: tuple[MissingFact, ...]
    reasons: tuple[Reason, ...]
    policy: Mapping[str, str]
    matched: tuple[str, ...] = field(default=(), compare=False)
    alternatives: tuple[Alternative, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON form of ``schemas/decision.schema.json``.

        Written for speed (a service sends one per request): empty members
        are built without a comprehension, money without a second lookup.
        """
        amount, pays = self.amount, self.customer_pays
        fees, deadlines, alternatives, actions, missing = (
            self.fees, self.deadlines, self.alternatives, self.actions, self.missing_facts)
        return {
            "case_id": self.case_id,
            "vendor": self.vendor,
            "kind": self.kind,
            "as_of": self.as_of.isoformat(),
            "outcome": self.outcome,
            "amount": None if amount is None else amount.to_dict(),
            "customer_pays": None if pays is None else pays.to_dict(),
            "fees": [{"name": f.name, **f.amount.to_dict(), "rule": f.rule} for f in fees] if fees else [],
            "deadlines": [{"name": d.name, "date": d.date.isoformat() if d.date else None,
                           "status": d.status, "text": d.text, "rule": d.rule}
                          for d in deadlines] if deadlines else [],
            "alternatives": [{"outcome": a.outcome,
                              "amount": a.amount.to_dict() if a.amount else None,
                              "customer_pays": a.customer_pays.to_dict() if a.customer_pays else None,
                              "text": a.text, "rule": a.rule} for a in alternatives] if alternatives else [],
            "actions": [{"party": a.party, "text": a.text, "rule": a.rule} for a in actions] if actions else [],
            "missing_facts": [{"fact": m.fact, "why": m.why, "question": m.question,
                               "range": dict(m.range) if m.range is not None else None}
                              for m in missing] if missing else [],
            "reasons": [{"rule": r.rule, "clause": r.clause, "source": r.source, "text": r.text}
                        for r in self.reasons],
            "policy": dict(self.policy),
        }
