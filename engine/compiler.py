"""Compile a checked Policy once into functions that decide many cases.

All expressions of a policy (derived facts, synthetic condition fields,
result amounts and dates, checks) become functions of one generated module,
built by :mod:`engine.expressions.codegen` from checked syntax trees only.
Each kind gets a ``derive`` function that computes exactly the derived and
synthetic fields its rules need, in dependency order, and a condition tree
in the IR for the matching back end.
"""

from __future__ import annotations

import linecache
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Mapping

from engine import money
from engine.bounds import Relation, relations
from engine.calendar import Calendar
from engine.case import fact_readers
from engine.currency import CURRENCY_FACT
from engine.errors import Diagnostic, EvaluationError, PolicyError
from engine.expressions.checker import check
from engine.expressions.codegen import Constants, generate
from engine.expressions.functions import RUNTIME, EvalFailure
from engine.expressions.syntax import names
from engine.loader import PLACEHOLDER, RESERVED, placeholders
from engine.match import ir
from engine.model import ActionItem, Reason

if TYPE_CHECKING:
    from engine.model import AlternativeDecl, DeadlineDecl, Expr, Kind, Policy, Rule

Fn = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class CompiledRule:
    rule: Rule
    cond: ir.Cond
    derive: Fn                               # fields only this rule's results need
    texts: Mapping[str, RuleTexts]           # lang -> the rule's texts, split for fast rendering
    amount: Fn | None
    customer_pays: Fn | None
    fees: tuple[tuple[str, Fn, Expr], ...]
    deadlines: tuple[tuple[str, Fn, Expr], ...]
    alternatives: tuple[tuple[AlternativeDecl, Fn | None, Fn | None], ...] = ()


@dataclass(frozen=True, slots=True)
class CompiledDeadline:
    """A kind's declared deadline: the fields it needs, its date and its condition."""

    decl: DeadlineDecl
    derive_when: Fn                          # fields the condition needs (derived first)
    derive: Fn                               # fields the date and text need, once it applies
    date: Fn
    when: Fn | None


@dataclass(frozen=True, slots=True)
class CompiledKind:
    kind: Kind
    rules: tuple[CompiledRule, ...]          # file order (index = rule.index)
    ranked: tuple[CompiledRule, ...]         # decision order
    derive: Fn
    condition_facts: frozenset[str]          # declared facts the conditions read
    deadlines: tuple[CompiledDeadline, ...] = ()


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    policy: Policy
    calendar: Calendar
    kinds: Mapping[str, CompiledKind]
    checks: tuple[tuple[frozenset[str], Fn, Fn, str, Expr], ...]  # (facts, derive, test, message, expr)
    synthetics: Mapping[str, ir.Synthetic]
    depends: Mapping[str, frozenset[str]]    # field -> declared facts it needs
    field_types: Mapping[str, Any]           # field -> Type, for back ends
    meta: Mapping[str, str]                  # the decision's "policy" member
    money_fields: frozenset[str]             # facts and derived facts holding money
    quantum: Decimal                         # the currency's minor unit
    relations: tuple[Relation, ...]          # the policy's relations between facts (engine.bounds)
    readers: Mapping[str, Fn]                # fact -> its well-formed-value converter (engine.case)

    def needs(self, fields: list[str], present: dict[str, Any],
              missed: Mapping[str, str] | None = None) -> list[str]:
        """Declared facts absent from ``present`` that ``fields`` depend on.

        ``missed`` (from the derive step) says which name each absent derived
        field actually stumbled on, so that a fact on a branch not taken
        (``if prepaid then last_recharge else monthly_rate``) is not asked for.
        """
        out: list[str] = []
        for field_name in fields:
            name, seen = field_name, set()
            while missed and name in missed and name not in seen:
                seen.add(name)
                name = missed[name]
            for fact in sorted(self.depends.get(name, {name})):
                if fact not in present and fact not in out:
                    out.append(fact)
        return out


class _Module:
    """Accumulates generated functions, then compiles them in one go."""

    def __init__(self, policy: Policy, calendar: Calendar) -> None:
        self.consts = Constants()
        self.lines: list[str] = []
        self.count = 0
        default = policy.currency
        rounding = policy.rounding

        def round_money(f: dict[str, Any], v: Any, places: int | None = None) -> Decimal:
            """Round to the case's currency's minor unit (or to ``places``)."""
            exp = money.quantum(f.get(CURRENCY_FACT, default)) if places is None \
                else Decimal(1).scaleb(-places)
            return money.round_to(Decimal(v), exp, rounding)

        def fail(name: str, err: Exception) -> None:
            loc = policy.derived[name].expr.location if name in policy.derived else None
            what = name if name in policy.derived else "a condition"
            raise EvaluationError([Diagnostic("evaluation", f"computing {what}: {_reason(err)}", loc)])

        self.namespace: dict[str, Any] = {
            "__builtins__": {}, **RUNTIME, "_cal": calendar, "_EvalFailure": EvalFailure,
            "KeyError": KeyError, "ArithmeticError": ArithmeticError, "ValueError": ValueError,
            "OverflowError": OverflowError,
            "_fail": fail, "_nothing": derive_nothing,
            "_round_money": round_money,
            "_round_decimal": lambda v, places=0: money.round_to(
                Decimal(v), Decimal(1).scaleb(-places), rounding),
        }

    def function(self, source: str) -> str:
        name = f"_e{self.count}"
        self.count += 1
        self.lines.append(f"def {name}(f):\n    return {source}\n")
        return name

    def derive(self, steps: list[tuple[str, str]]) -> str:
        if not steps:
            return "_nothing"  # one shared function, so the decide path can skip the call
        name = f"_derive{self.count}"
        self.count += 1
        # A field already derived for this case (by a declared deadline, say) is not
        # computed again: derived fields are pure functions of the case's facts.
        body = "".join(
            f"    if {field!r} not in f:\n"
            f"      try:\n        f[{field!r}] = {src}\n      except KeyError as err:\n"
            f"        missed[{field!r}] = err.args[0]\n"
            f"      except (_EvalFailure, ArithmeticError, ValueError, OverflowError) as err:\n"
            f"        _fail({field!r}, err)\n"
            for field, src in steps)
        self.lines.append(f"def {name}(f, missed):\n{body}")
        return name

    def build(self, filename: str) -> dict[str, Any]:
        source = "\n".join(self.lines)
        self.namespace.update(self.consts.values)
        # Register the generated text so tracebacks of engine bugs show it.
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        try:
            code = compile(source, filename, "exec")
        except (SyntaxError, RecursionError, MemoryError) as err:
            raise PolicyError([Diagnostic("limit", f"the policy is too large or nested to compile: {err}")]) from err
        exec(code, self.namespace)  # noqa: S102 - our codegen only
        return self.namespace


def derive_nothing(f: dict[str, Any], missed: dict[str, str]) -> None:
    """The derive step of a kind, rule or check that needs no derived field."""


def _reason(err: Exception) -> str:
    """A readable reason for an arithmetic failure on a case's values."""
    if isinstance(err, (ArithmeticError, OverflowError)):
        return f"the result is out of range ({type(err).__name__})"
    return str(err) or type(err).__name__


def _expr_fn(module: _Module, expr: Expr | None) -> str | None:
    return module.function(generate(expr.checked, module.consts)) if expr else None


def compile_policy(policy: Policy) -> CompiledPolicy:
    """Compile ``policy``: generated functions, per-kind derive steps and IR."""
    calendar = Calendar(policy.country, policy.timezone, policy.subdivision)
    module = _Module(policy, calendar)
    env = {**RESERVED, **{k: f.type for k, f in policy.facts.items()},
           **{k: d.expr.type for k, d in policy.derived.items()}}
    lowering = ir.Lowering()
    fields = set(env)
    conds = {(k, r.index): ir.lower(r.when.checked, r.when.text, lowering, fields)
             for k, kind in policy.kinds.items() for r in kind.rules}
    depends = _dependencies(policy, lowering)
    derived_src = {n: generate(d.expr.checked, module.consts) for n, d in policy.derived.items()}
    synth_checked = {n: check(s.node, env) for n, s in lowering.synthetics.items()}
    synth_src = {n: generate(c, module.consts) for n, c in synth_checked.items()}
    known = set(env)
    reads = {**{n: set(d.expr.reads) for n, d in policy.derived.items()},
             **{n: names(syn.node) & known for n, syn in lowering.synthetics.items()}}

    def derive(fields: set[str]) -> str:
        order = [n for n in (*policy.derived, *lowering.synthetics) if n in fields]
        return module.derive([(n, derived_src.get(n) or synth_src[n]) for n in order])

    pending: dict[str, Any] = {}
    for name, kind in policy.kinds.items():
        # Conditions need their fields for every case; a rule's results are
        # derived only when that rule decides (so an unused amount never fails).
        cond_fields = _closure({leaf.field for r in kind.rules
                                for leaf in ir.leaves(conds[(name, r.index)])}, reads)
        pending[name] = (derive(cond_fields), [
            (r, conds[(name, r.index)], derive(_closure(_result_reads(r), reads) - cond_fields),
             _expr_fn(module, r.amount), _expr_fn(module, r.customer_pays),
             [(n, _expr_fn(module, e), e) for n, e in r.fees],
             [(n, _expr_fn(module, e), e) for n, e in r.deadlines],
             [(a, _expr_fn(module, a.amount), _expr_fn(module, a.customer_pays))
              for a in r.alternatives]) for r in kind.rules],
            [(d, derive(_closure(set(d.when.reads) if d.when else set(), reads) - cond_fields),
              derive(_closure(_deadline_reads(d), reads) - cond_fields), _expr_fn(module, d.date),
              _expr_fn(module, d.when)) for d in kind.deadlines])
    checks = [(derive(_closure(set(c.expr.reads), reads)), _expr_fn(module, c.expr), c.message, c.expr)
              for c in policy.checks]
    ns = module.build(f"<clause:{policy.vendor}:{policy.version}>")
    kinds = {name: _compiled_kind(policy.kinds[name], ns, derive, rules, depends, policy.languages,
                                  policy.source_file, deadlines)
             for name, (derive, rules, deadlines) in pending.items()}
    field_types = {**env, **{n: c.type for n, c in synth_checked.items()}}
    return CompiledPolicy(
        policy=policy, calendar=calendar, kinds=MappingProxyType(kinds),
        checks=tuple((_facts_of(e.reads, depends), ns[d], ns[fn], msg, e)
                     for d, fn, msg, e in checks if fn),
        synthetics=MappingProxyType(lowering.synthetics), depends=MappingProxyType(depends),
        field_types=MappingProxyType(field_types),
        meta=MappingProxyType({"vendor": policy.vendor, "version": policy.version,
                               "effective_from": policy.effective_from.isoformat(),
                               "digest": policy.digest}),
        quantum=money.quantum(policy.currency),
        money_fields=frozenset(n for n, typ in env.items() if typ.kind == "money"),
        relations=tuple(relations(policy)), readers=MappingProxyType(fact_readers(policy)))


@dataclass(frozen=True, slots=True)
class RuleTexts:
    """A rule's action and reason texts in one language, prepared at compile time.

    A text is a tuple alternating literal parts and placeholder names (odd
    positions); texts without placeholders are ready-made objects.
    """

    actions: tuple[ActionItem, ...] | None          # ready when no action has a placeholder
    action_parts: tuple[tuple[str, tuple[str, ...]], ...]   # (party, parts)
    reason: Reason | None                           # ready when the reason has no placeholder
    reason_parts: tuple[str, ...]


def _parts(text: str) -> tuple[str, ...]:
    return tuple(PLACEHOLDER.split(text))


def _rule_texts(rule: Rule, languages: tuple[str, ...], source: str) -> Mapping[str, RuleTexts]:
    out = {}
    for lang in languages:
        actions = [(a.party, a.text.get(lang) or a.text["en"]) for a in rule.actions]
        reason = rule.reason.get(lang) or rule.reason["en"]
        static = not any(PLACEHOLDER.search(t) for _, t in actions)
        out[lang] = RuleTexts(
            actions=tuple(ActionItem(p, t, rule.id) for p, t in actions) if static else None,
            action_parts=tuple((p, _parts(t)) for p, t in actions),
            reason=None if PLACEHOLDER.search(reason) else Reason(rule.id, rule.clause, source, reason),
            reason_parts=_parts(reason))
    return MappingProxyType(out)


def _compiled_kind(kind: Kind, ns: dict[str, Any], derive: str, rules: list[Any],
                   depends: Mapping[str, frozenset[str]], languages: tuple[str, ...],
                   source: str, declared: list[Any]) -> CompiledKind:
    def fn(name: str | None) -> Fn | None:
        return ns[name] if name else None

    compiled = tuple(CompiledRule(
        rule=r, cond=cond, derive=ns[rderive], texts=_rule_texts(r, languages, source),
        amount=fn(a), customer_pays=fn(c),
        fees=tuple((n, ns[f], e) for n, f, e in fees),
        deadlines=tuple((n, ns[f], e) for n, f, e in deadlines),
        alternatives=tuple((alt, fn(am), fn(cp)) for alt, am, cp in alternatives))
        for r, cond, rderive, a, c, fees, deadlines, alternatives in rules)
    by_id = {c.rule.id: c for c in compiled}
    facts = frozenset(f for c in compiled for leaf in ir.leaves(c.cond)
                      for f in depends.get(leaf.field, {leaf.field}))
    deadlines = tuple(CompiledDeadline(d, ns[dw], ns[dv], ns[day], fn(when))
                      for d, dw, dv, day, when in declared)
    return CompiledKind(kind, compiled, tuple(by_id[r.id] for r in kind.ranked()), ns[derive], facts,
                        deadlines)


def _facts_of(fields: frozenset[str], depends: Mapping[str, frozenset[str]]) -> frozenset[str]:
    """Declared facts that ``fields`` (facts or derived) are computed from."""
    return frozenset().union(*(depends.get(n, frozenset({n})) for n in fields))


def _result_reads(rule: Rule) -> set[str]:
    """Fields a rule's results and texts read."""
    used = placeholders(rule)
    for e in rule.results():
        used.update(e.reads)
    return used


def _deadline_reads(decl: DeadlineDecl) -> set[str]:
    """Fields a declared deadline's date and texts read."""
    return {n for text in decl.text.values() for n in PLACEHOLDER.findall(text)} | set(decl.date.reads)


def _closure(fields: set[str], reads: Mapping[str, set[str]]) -> set[str]:
    """``fields`` plus every derived or synthetic field they depend on."""
    used = set(fields)
    stack = list(used)
    while stack:
        for dep in reads.get(stack.pop(), set()) - used:
            used.add(dep)
            stack.append(dep)
    return used


def _dependencies(policy: Policy, lowering: ir.Lowering) -> dict[str, frozenset[str]]:
    """For every derived and synthetic field, the declared facts it needs."""
    out: dict[str, frozenset[str]] = {name: frozenset({name}) for name in policy.facts}
    for name, d in policy.derived.items():  # already in dependency order
        out[name] = frozenset().union(*(out.get(r, frozenset()) for r in d.expr.reads))
    known = set(policy.facts) | set(policy.derived)
    for name, syn in lowering.synthetics.items():
        out[name] = frozenset().union(*(out[r] for r in names(syn.node) & known))
    return out
