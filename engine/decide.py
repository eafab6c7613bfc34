"""From matched rules to a Decision: combination, missing facts, amounts, reasons.

Combination (per kind, see :meth:`engine.model.Kind.ranked`): rules are
ranked — overriding rules (``override: true``, e.g. a fraud denial) first,
then by priority or file order — and the highest-ranked matching rule
decides. A rule ranked above the winner whose condition is *unknown*
because facts are missing blocks the decision: the outcome is
``needs_info`` and ``missing_facts`` names what to ask for — but only the
facts some value of which would change the decision (:mod:`engine.relevance`
proves the others cannot). Nothing missing is ever treated as false.

Money results are rounded once, to the currency's minor unit, with the
policy's declared rounding mode.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from engine import deadlines as deadline_rules
from engine import domains, money, relevance
from engine.currency import CURRENCY_FACT
from engine.errors import Diagnostic, EvaluationError
from engine.expressions.functions import EvalFailure
from engine.loader import PLACEHOLDER
from engine.match import ir
from engine.money import CONTEXT
from engine.model import ActionItem, Alternative, Deadline, Decision, Fee, MissingFact, Money, Reason

if TYPE_CHECKING:
    from engine.compiler import CompiledKind, CompiledPolicy, CompiledRule
    from engine.model import Expr



def select(kind: CompiledKind, matched: list[int], facts: dict[str, Any],
           compiled: CompiledPolicy, missed: dict[str, str]) -> tuple[CompiledRule | None, list[CompiledRule], list[str]]:
    """The deciding rule, the rules blocking it (unknown), and the facts they need."""
    hit = set(matched)
    winner = next((r for r in kind.ranked if r.rule.index in hit), None)
    if kind.condition_facts <= facts.keys():
        return winner, [], []  # every fact the conditions read is known: nothing can block
    blockers = []
    for rule in kind.ranked:
        if rule is winner:
            break
        if ir.evaluate3(rule.cond, facts) == ir.UNKNOWN:
            blockers.append(rule)
    missing = compiled.needs([f for r in blockers for f in ir.unknown_fields(r.cond, facts)],
                             facts, missed)
    return winner, blockers, missing


class _Result:
    """Evaluates a winning rule's result expressions, tracking missing facts."""

    __slots__ = ("as_of", "bounds", "compiled", "currency", "facts", "lang", "missed", "missing", "proven",
                 "quantum", "rule")

    def __init__(self, compiled: CompiledPolicy, rule: CompiledRule, facts: dict[str, Any],
                 missed: dict[str, str], lang: str = "en", proven: dict[Any, Any] | None = None,
                 bounds: dict[str, Any] | None = None, as_of: date | None = None) -> None:
        self.compiled = compiled
        self.as_of = as_of
        self.bounds = bounds or {}
        self.lang = lang
        self.proven = proven or {}  # result values proven for every value of the missing facts
        self.missed = missed
        self.rule = rule
        self.facts = facts
        self.currency = facts.get(CURRENCY_FACT, compiled.policy.currency)
        self.quantum = money.quantum(self.currency)
        self.missing: list[MissingFact] = []

    def value(self, fn: Any, expr: Expr, what: str, name: str = "", rounded: bool = False) -> Any:
        try:
            return fn(self.facts)
        except KeyError as err:
            key = (what, name) if name else what
            if key in self.proven:
                return self.proven[key]
            ok, value = domains.point_value(self.compiled, self.facts, self.bounds, expr.checked.node, rounded)
            if ok:  # the same for every value of the missing facts
                return value
            label = f"{what} {name!r}" if name else what
            asked = {m.fact for m in self.missing}
            for fact in self.needed(fn, err.args[0]):
                if fact not in asked:
                    self.missing.append(missing_fact(self.compiled, fact, f"needed for {label} (rule "
                                                     f"{self.rule.rule.id})", self.lang))
            return None
        except (EvalFailure, ArithmeticError, ValueError, OverflowError) as err:
            label = f"{what} {name!r}" if name else what
            reason = str(err) if isinstance(err, EvalFailure) else f"the result is out of range ({type(err).__name__})"
            raise EvaluationError([Diagnostic(
                "evaluation", f"{label} of rule {self.rule.rule.id}: {reason}", expr.location)]) from err

    def needed(self, fn: Any, key: str, rounds: int = 8) -> list[str]:
        """Every absent fact the expression reads on its way to a value, not only the first.

        Python stops at the first missing name; a stand-in value for it
        (:func:`engine.domains.probe_values`) lets the expression go on to
        the next one, until it evaluates (or fails otherwise).
        """
        needed = self.compiled.needs([key], self.facts, self.missed)
        for _ in range(rounds):
            stand_in = domains.probe_values(self.compiled, self.facts, self.bounds, needed, self.as_of)
            if len(stand_in) < len(needed):
                break
            trial, missed = {**self.facts, **stand_in}, {}
            try:
                self.rule.derive(trial, missed)
                fn(trial)
            except KeyError as err:
                more = [f for f in self.compiled.needs([err.args[0]], trial, missed) if f not in needed]
                if not more:
                    break
                needed += more
                continue
            except Exception:  # noqa: BLE001 - a stand-in off the expression's domain: stop looking
                break
            break
        return needed

    def money(self, fn: Any, expr: Expr | None, what: str, name: str = "") -> Money | None:
        if fn is None or expr is None:
            return None
        value = self.value(fn, expr, what, name, rounded=True)
        if value is None:
            return None
        policy = self.compiled.policy
        try:
            return Money(money.round_to(Decimal(value), self.quantum, policy.rounding), self.currency)
        except ArithmeticError as err:
            raise EvaluationError([Diagnostic(
                "evaluation", f"{what} of rule {self.rule.rule.id} is out of range: {value}",
                expr.location)]) from err


def _format(value: Any, currency: str) -> str:
    """A value as a reason shows it: dates ISO, booleans yes/no, numbers as given."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):  # not str(): that reads the caller's context (capitals: 1e+3)
        return CONTEXT.to_sci_string(value)
    return str(value)


def render(text: str, facts: dict[str, Any], extra: dict[str, Any], compiled: CompiledPolicy) -> str:
    """Fill ``{name}`` placeholders with fact, derived or result values (money with its currency)."""
    return text if "{" not in text else fill(tuple(PLACEHOLDER.split(text)), facts, extra, compiled)


def fill(parts: tuple[str, ...], facts: dict[str, Any], extra: dict[str, Any],
         compiled: CompiledPolicy) -> str:
    """Join a prepared text: literal parts, with placeholder names at odd positions.

    Money (results, and facts or derived facts of type money) is rounded
    with the policy's mode and shown with its currency, like the amounts.
    """
    out = list(parts)
    policy = compiled.policy
    currency = facts.get(CURRENCY_FACT, policy.currency)
    for i in range(1, len(out), 2):
        name = out[i]
        value = extra.get(name)
        if value is None:
            value = facts.get(name)
        if value is None:
            out[i] = "?"
        elif type(value) is Decimal and name in compiled.money_fields:
            out[i] = f"{money.round_to(value, money.quantum(currency), policy.rounding):f} {currency}"
        else:
            out[i] = _format(value, currency)
    return "".join(out)


def _text(texts: Any, lang: str) -> str:
    return str(texts.get(lang) or texts["en"])


def missing_fact(compiled: CompiledPolicy, fact: str, why: str, lang: str,
                 decides: Any = None) -> MissingFact:
    """A missing fact with the question to ask, in ``lang`` (else English, else its meaning)."""
    decl = compiled.policy.facts.get(fact)
    question = None
    if decl is not None:
        question = decl.question.get(lang) or decl.question.get("en") or decl.meaning
    return MissingFact(fact, why, question, decides)


def decide(compiled: CompiledPolicy, kind_name: str, facts: dict[str, Any], matched: list[int],
           missed: dict[str, str], *, case_id: str | None, as_of: date, lang: str,
           bounds: dict[str, Any] | None = None) -> Decision:
    """Build the Decision for a case whose facts are derived and matched."""
    policy = compiled.policy
    kind = compiled.kinds[kind_name]
    winner, blockers, missing = select(kind, matched, facts, compiled, missed)
    source = policy.source_file
    common = {"case_id": case_id, "vendor": policy.vendor, "kind": kind_name, "as_of": as_of,
              "policy": compiled.meta, "matched": tuple(kind.rules[i].rule.id for i in matched)}
    declared = deadline_rules.declared(
        kind, facts, missed, as_of,
        lambda texts: render(_text(texts, lang), facts, {}, compiled)) if kind.deadlines else []
    empty: dict[str, Any] = {"amount": None, "customer_pays": None, "fees": (),
                             "deadlines": tuple(declared), "actions": ()}
    if blockers:
        # Would any value of the missing facts change the decision? (engine.relevance)
        analysis = relevance.analyse(compiled, kind, facts, bounds or {})
        if analysis.settled:
            return _settled(compiled, kind, analysis, facts, missed, lang, common, bounds or {},
                            declared)
        if analysis.relevant:
            blockers = [r for r in kind.ranked if r in blockers and r in analysis.winners()] or blockers
            missing = list(analysis.relevant)
        reasons = tuple(Reason(r.rule.id, r.rule.clause, source,
                               _needs_text(r, compiled.needs(ir.unknown_fields(r.cond, facts), facts,
                                                             missed), lang))
                        for r in blockers)
        why = "could change the outcome: rule " + ", ".join(r.rule.id for r in blockers)
        return Decision(outcome="needs_info", **empty, reasons=reasons,
                        missing_facts=tuple(missing_fact(compiled, f, why, lang, analysis.ranges.get(f))
                                            for f in missing), **common)
    if winner is None:
        text = render(_text(kind.kind.otherwise_reason, lang), facts, {}, compiled)
        return Decision(outcome=kind.kind.otherwise_outcome, **empty, missing_facts=(),
                        reasons=(Reason(f"{kind_name}:otherwise", None, source, text),), **common)
    return _granted(compiled, winner, facts, missed, lang, common, declared, bounds=bounds)


_NEEDS = {
    "en": "Rule {rule} ({outcome}) may apply; it needs: {facts}.",
    "es": "La regla {rule} ({outcome}) podría aplicarse; faltan: {facts}.",
    "it": "La regola {rule} ({outcome}) potrebbe applicarsi; mancano: {facts}.",
    "id": "Aturan {rule} ({outcome}) mungkin berlaku; data yang kurang: {facts}.",
}


def _needs_text(rule: CompiledRule, own: list[str], lang: str) -> str:
    """Engine-written reason for ``needs_info`` (policies write every other reason)."""
    template = _NEEDS.get(lang, _NEEDS["en"])
    return template.format(rule=rule.rule.id, outcome=rule.rule.outcome, facts=", ".join(own))


def _settled(compiled: CompiledPolicy, kind: CompiledKind, analysis: relevance.Analysis,
             facts: dict[str, Any], missed: dict[str, str], lang: str, common: dict[str, Any],
             bounds: dict[str, Any], declared: list[Deadline]) -> Decision:
    """The decision every value of the missing facts leads to.

    When several rules give that same decision in different regions, each
    one's reason is given (in decision order): together they cover every case.
    """
    rank = {id(r): i for i, r in enumerate(kind.ranked)}
    winners = sorted(analysis.winners(), key=lambda w: rank[id(w)] if w is not None else len(rank))
    if analysis.always:  # a rule that applies whatever the missing facts are: its reason holds
        winners = [analysis.always[-1]]
    shown = {n: bounds_text(v) for n, v in bounds.items()}
    decisions = []
    for rule in winners:
        if rule is None:
            text = render(_text(kind.kind.otherwise_reason, lang), facts, shown, compiled)
            reason = Reason(f"{kind.kind.name}:otherwise", None, compiled.policy.source_file, text)
            decisions.append(Decision(outcome=kind.kind.otherwise_outcome, amount=None, customer_pays=None,
                                      fees=(), deadlines=tuple(declared), actions=(),
                                      missing_facts=(), reasons=(reason,), **common))
        else:
            proven = next(b.proven for b in analysis.boxes if b.winner is rule)
            decisions.append(_granted(compiled, rule, facts, missed, lang, common, declared,
                                               proven, bounds))
    first = decisions[0]
    if len(decisions) == 1:
        return first
    actions = tuple(dict.fromkeys(a for d in decisions for a in d.actions))
    return replace(first, reasons=tuple(r for d in decisions for r in d.reasons), actions=actions)


def bounds_text(value: Any) -> str:
    from engine.bounds import describe  # noqa: PLC0415 - decide stays importable alone
    return describe(value)


def _granted(compiled: CompiledPolicy, winner: CompiledRule, facts: dict[str, Any],
             missed: dict[str, str], lang: str, common: dict[str, Any],
             declared: list[Deadline], proven: dict[Any, Any] | None = None,
             bounds: dict[str, Any] | None = None) -> Decision:
    rule = winner.rule
    policy = compiled.policy
    winner.derive(facts, missed)
    res = _Result(compiled, winner, facts, missed, lang, proven, bounds, common["as_of"])
    shown = {n: bounds_text(v) for n, v in (bounds or {}).items()}
    amount = res.money(winner.amount, rule.amount, "amount")
    if rule.amount is not None and amount is None:
        # Without the amount the vendor owes, no decision can be made.
        return Decision(outcome="needs_info", amount=None, customer_pays=None, fees=(),
                        deadlines=tuple(declared),
                        actions=(), missing_facts=tuple(res.missing),
                        reasons=(Reason(rule.id, rule.clause, policy.source_file,
                                        _needs_text(winner, [m.fact for m in res.missing], lang)),),
                        **common)
    customer_pays = res.money(winner.customer_pays, rule.customer_pays, "customer_pays")
    fees = tuple(Fee(name, m, rule.id) for name, fn, expr in winner.fees
                 if (m := res.money(fn, expr, "fee", name)) is not None) if winner.fees else ()
    texts = winner.texts.get(lang) or winner.texts["en"]
    extra = {**shown, "amount": amount, "customer_pays": customer_pays}
    deadlines = deadline_rules.merge(declared, tuple(  # a date not computable yet: status unknown
        Deadline(name, d := res.value(fn, expr, "deadline", name), rule.id,
                 deadline_rules.status(d, common["as_of"]),
                 deadline_rules.rule_text(name, rule.deadline_texts, compiled.kinds[rule.kind],
                                          lambda t: render(_text(t, lang), facts, extra, compiled)))
        for name, fn, expr in winner.deadlines)) if winner.deadlines else tuple(declared)
    alternatives = tuple(_alternative(res, alt, am, cp, facts, lang, compiled)
                         for alt, am, cp in winner.alternatives)
    actions = texts.actions if texts.actions is not None else tuple(
        ActionItem(party, fill(parts, facts, extra, compiled), rule.id) for party, parts in texts.action_parts)
    reason = texts.reason or Reason(rule.id, rule.clause, policy.source_file,
                                    fill(texts.reason_parts, facts, extra, compiled))
    return Decision(outcome=rule.outcome, amount=amount, customer_pays=customer_pays, fees=fees,
                    deadlines=deadlines, actions=actions, missing_facts=tuple(res.missing),
                    reasons=(reason,), alternatives=alternatives, **common)


def _alternative(res: _Result, alt: Any, amount_fn: Any, pays_fn: Any, facts: dict[str, Any],
                 lang: str, compiled: CompiledPolicy) -> Alternative:
    """One thing the customer may do or buy instead of the claim, with its money.

    A price the case cannot compute yet is null: it never makes the claim's
    answer wait (its facts are not added to ``missing_facts``).
    """
    asked = len(res.missing)
    amount = res.money(amount_fn, alt.amount, "alternative amount")
    pays = res.money(pays_fn, alt.customer_pays, "alternative customer_pays")
    del res.missing[asked:]
    text = render(_text(alt.text, lang), facts, {"amount": amount, "customer_pays": pays}, compiled)
    return Alternative(alt.outcome, amount, pays, text, res.rule.rule.id)
