"""The generated decide path: one function per kind for the usual case.

Most cases an engine sees are plain: a dict from JSON, well-formed values,
every fact the rules' conditions read. For those the generic pipeline
(:meth:`engine.engine.Engine._run`) does work the case does not need: it
builds a :class:`~engine.case.Case`, looks for bounds and currency codes,
prepares the missing-facts analysis. Here, at load time, each kind gets one
function generated for it that does only that kind's work — read the given
facts with converters compiled once per fact, the policy's relations and
checks if it has any, the kind's derived facts if it has any, match, pick
the winner, its money rounded once, its texts, the kind's deadlines if it
declares any — and builds the same Decision.

Whenever a case leaves that ground — a value the converters do not take at
once, a condition fact missing, a currency code, a bound, any error — the
function returns None and the generic path decides (and reports). So the
generic path stays the reference: tests/test_fastpath.py checks that both
give the same Decision on every bundled policy and on generated cases.
"""

from __future__ import annotations

import operator
import re
from dataclasses import fields
from decimal import Decimal, localcontext
from typing import TYPE_CHECKING, Any, Callable

from engine import deadlines as deadline_rules
from engine.case import SLOW
from engine.compiler import derive_nothing
from engine.currency import CURRENCY_FACT
from engine.decide import _granted, _text, fill, render
from engine.money import CONTEXT, round_to
from engine.model import ActionItem, Decision, Fee, Money, Reason

if TYPE_CHECKING:
    from engine.compiler import CompiledKind, CompiledPolicy, CompiledRule

Fast = Callable[[dict[str, Any], "str | None", Any, str], "Decision | None"]


def _builder(cls: type) -> Callable[..., Any]:
    """A constructor of the frozen dataclass ``cls`` from its field values in declaration order.

    It sets the slots directly, one straight-line call each, instead of the
    dataclass ``__init__``'s per-field ``object.__setattr__`` (half the cost
    of building a Decision). The fields and their order are the class's own.
    """
    names = [f.name for f in fields(cls)]
    namespace: dict[str, Any] = {"new": object.__new__, "cls": cls,
                                 **{f"set_{i}": getattr(cls, n).__set__ for i, n in enumerate(names)}}
    args = ", ".join(f"v{i}" for i in range(len(names)))
    body = "".join(f"    set_{i}(o, v{i})\n" for i in range(len(names)))
    exec(f"def build({args}):\n    o = new(cls)\n{body}    return o\n", namespace)  # noqa: S102 - our text only
    return namespace["build"]  # type: ignore[no-any-return]


new_decision = _builder(Decision)
new_money = _builder(Money)


def build(compiled: CompiledPolicy, matcher: Any) -> dict[str, Fast]:
    """The generated decide function of every kind of ``compiled``, matching with ``matcher``."""
    return {name: _kind_function(compiled, kind, matcher.kind_function(name)) for name, kind in compiled.kinds.items()}


def _money_facts(compiled: CompiledPolicy) -> frozenset[str]:
    """Facts that hold money, directly or in a list's records (they decide the currency)."""
    return frozenset(n for n, d in compiled.policy.facts.items() if d.type.kind == "money" or (
        d.type.kind == "list" and any(f.type.kind == "money" for f in d.fields.values())))


# The function's source: a line marked "# [step]" is kept only when the kind has that step.
# The condition facts are tested once as_of and the currency are in (a condition may read them).
# Arithmetic runs in the engine's decimal context, as on the generic path; reading, matching and
# the texts do none, so they run outside it.
_SOURCE = """\
def decide(raw, case_id, as_of, lang):
    f = {}
    for name, v in raw.items():
        read = READERS.get(name)
        if read is None:
            return None
        if v is not None:
            if read is BOOL:
                if v.__class__ is not bool:
                    return None
            elif read.__class__ is frozenset:
                if v.__class__ is not str or v not in read:
                    return None
            else:
                v = read(v)
                if v is SLOW:
                    return None
            f[name] = v
    if not MONEY.isdisjoint(f):                                          # [plain amounts refused]
        return None                                                      # [plain amounts refused]
    if not RELATIONS_HOLD(f):                                            # [relations]
        return None                                                      # [relations]
    f['as_of'] = as_of
    f[CURRENCY_FACT] = CURRENCY
    if not CONDITION_FACTS <= f.keys():
        return None
    missed = {}
    with localcontext(CONTEXT):                                          # [checks or derived]
        run_checks(COMPILED, f)                                          # [checks]
        DERIVE(f, missed)                                                # [derived]
    m = MATCH(f)
    with localcontext(CONTEXT):                                          # [deadlines]
        declared = DECLARED(f, missed, as_of, lang)                      # [deadlines]
    declared = ()                                                        # [no deadlines]
    if not m:
        return OTHERWISE(case_id, as_of, lang, f, declared)
    return GRANT[m[0] if len(m) == 1 else min(m, key=RANK)](f, missed, case_id, as_of, lang, declared, m)
"""


_STEP = re.compile(r"\s+# \[([a-z ]+)\]$")


def _readers(compiled: CompiledPolicy) -> dict[str, Any]:
    """Per fact, how the generated loop reads it: BOOL, an enum's values (tested inline), else
    the fact's compiled reader (:func:`engine.case.fact_readers`)."""
    out: dict[str, Any] = {}
    for name, decl in compiled.policy.facts.items():
        kind = decl.type.kind
        out[name] = _BOOL if kind == "bool" else frozenset(decl.type.values) if kind == "enum" \
            else compiled.readers[name]
    return out


_BOOL = object()
_COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq}


def _relations_hold(compiled: CompiledPolicy) -> Callable[[dict[str, Any]], bool]:
    """Whether plain facts keep the policy's declared relations (``at_most: other_fact``...).

    What :func:`engine.bounds.check` decides for a case without bounds: a
    relation that comes from a check is left to the check; one between two
    given facts compares their values. False sends the case to the generic
    path, which reports the contradiction; values that do not compare raise
    TypeError, which does the same.
    """
    tests = tuple((r.left, r.right, _COMPARE[r.op]) for r in compiled.relations if not r.from_check)

    def hold(f: dict[str, Any]) -> bool:
        for left, right, op in tests:
            if left in f and right in f and not op(f[left], f[right]):
                return False
        return True
    return hold


def _kind_function(compiled: CompiledPolicy, kind: CompiledKind, match: Callable[..., list[int]]) -> Fast:
    """Generate the kind's function from ``_SOURCE``, keeping only the steps the kind needs."""
    from engine.engine import run_checks  # noqa: PLC0415 - the engine imports this module

    policy = compiled.policy
    money = _money_facts(compiled)
    keep = {"plain amounts refused": bool(money) and not policy.currencies,
            "relations": any(not r.from_check for r in compiled.relations), "checks": bool(compiled.checks),
            "derived": kind.derive is not derive_nothing, "deadlines": bool(kind.deadlines),
            "no deadlines": not kind.deadlines}
    keep["checks or derived"] = keep["checks"] or keep["derived"]
    lines = []
    for line in _SOURCE.splitlines():
        step = _STEP.search(line)  # a line marked "# [step]" is kept only when the kind has the step
        if step is None or keep[step.group(1)]:
            lines.append(line[:step.start()] if step else line)
    rank = {r.rule.index: i for i, r in enumerate(kind.ranked)}
    ids = tuple(r.rule.id for r in kind.rules)  # rule ids by index, for ``matched``
    namespace: dict[str, Any] = {
        "READERS": _readers(compiled), "BOOL": _BOOL, "SLOW": SLOW, "CONDITION_FACTS": kind.condition_facts, "MONEY": money,
        "RELATIONS_HOLD": _relations_hold(compiled),
        "CURRENCY_FACT": CURRENCY_FACT, "CURRENCY": policy.currency, "localcontext": localcontext,
        "CONTEXT": CONTEXT, "run_checks": run_checks, "COMPILED": compiled, "DERIVE": kind.derive,
        "MATCH": match, "DECLARED": _declared(compiled, kind),
        "OTHERWISE": _otherwise(compiled, kind), "RANK": rank.__getitem__,
        "GRANT": {r.rule.index: _grant(compiled, kind, r, ids) for r in kind.rules}}
    exec(compile("\n".join(lines) + "\n", f"<clause-decide:{policy.vendor}:{kind.kind.name}>", "exec"),
         namespace)  # noqa: S102 - the fixed source above; policy values live in the namespace only
    return namespace["decide"]  # type: ignore[no-any-return]


def _declared(compiled: CompiledPolicy, kind: CompiledKind) -> Callable[..., tuple[Any, ...]]:
    def declared(f: dict[str, Any], missed: dict[str, str], as_of: Any, lang: str) -> list[Any]:
        return deadline_rules.declared(kind, f, missed, as_of,
                                       lambda texts: render(_text(texts, lang), f, {}, compiled))
    return declared  # type: ignore[return-value]


def _otherwise(compiled: CompiledPolicy, kind: CompiledKind) -> Callable[..., Decision]:
    """The decision when no rule applies (its reason prepared per language when it has no placeholder)."""
    policy, k = compiled.policy, kind.kind
    rule_id, texts = f"{k.name}:otherwise", k.otherwise_reason
    ready = {lang: Reason(rule_id, None, policy.source_file, _text(texts, lang))
             for lang in texts if "{" not in _text(texts, lang)}

    def otherwise(case_id: str | None, as_of: Any, lang: str, f: dict[str, Any], declared: Any) -> Decision:
        key = lang if lang in texts else "en"  # what engine.decide._text falls back to
        reason = ready.get(key)
        if reason is None:
            reason = Reason(rule_id, None, policy.source_file, render(_text(texts, key), f, {}, compiled))
        return new_decision(case_id, policy.vendor, k.name, as_of, k.otherwise_outcome, None, None, (),
                            tuple(declared), (), (), (reason,), compiled.meta, (), ())
    return otherwise


def _grant(compiled: CompiledPolicy, kind: CompiledKind, crule: CompiledRule,
           ids: tuple[str, ...]) -> Callable[..., Decision]:
    """The decision when ``crule`` wins: its amounts, fees and texts, specialised to what it has.

    A rule with deadlines or alternatives, an amount that needs a missing
    fact, or any failure goes through :func:`engine.decide._granted` (the
    generic builder, which also reports the failure).
    """
    rule, policy = crule.rule, compiled.policy
    vendor, name, meta, outcome = policy.vendor, kind.kind.name, compiled.meta, rule.outcome
    q, mode, currency = compiled.quantum, policy.rounding, policy.currency  # the policy's currency's unit
    amount_fn, pays_fn, fee_fns = crule.amount, crule.customer_pays, crule.fees
    derive = None if crule.derive is derive_nothing else crule.derive
    by_lang = dict(crule.texts)
    alone = (rule.id,)  # matched, when this rule is the only match
    # Decimal arithmetic happens in the engine's context; an amount that only names a value does none.
    arithmetic = derive is not None or any(
        e is not None and not e.text.strip().isidentifier()
        for e in (rule.amount, rule.customer_pays, *(e for _, _, e in fee_fns)))

    def generic(f: dict[str, Any], missed: dict[str, str], case_id: str | None, as_of: Any, lang: str,
                declared: Any, m: list[int]) -> Decision:
        common = {"case_id": case_id, "vendor": vendor, "kind": name, "as_of": as_of, "policy": meta,
                  "matched": tuple(map(ids.__getitem__, m))}
        with localcontext(CONTEXT):
            return _granted(compiled, crule, f, missed, lang, common, list(declared), bounds={})

    if crule.deadlines or crule.alternatives:
        return generic

    def money(fn: Any, f: dict[str, Any]) -> Money | None:
        return None if fn is None else new_money(round_to(Decimal(fn(f)), q, mode), currency)

    def values(f: dict[str, Any], missed: dict[str, str]) -> tuple[Any, Any, tuple[Fee, ...]]:
        if derive is not None:
            derive(f, missed)
        fees = tuple(Fee(n, money(fn, f), rule.id) for n, fn, _ in fee_fns) if fee_fns else ()  # type: ignore[arg-type]
        return money(amount_fn, f), money(pays_fn, f), fees

    def grant(f: dict[str, Any], missed: dict[str, str], case_id: str | None, as_of: Any, lang: str,
              declared: Any, m: list[int]) -> Decision:
        try:
            if arithmetic:
                with localcontext(CONTEXT):
                    amount, pays, fees = values(f, missed)
            else:
                amount, pays, fees = values(f, missed)
        except Exception:  # noqa: BLE001 - a missing fact or a failure: the generic builder says which
            return generic(f, missed, case_id, as_of, lang, declared, m)
        texts = by_lang.get(lang) or by_lang["en"]
        actions, reason = texts.actions, texts.reason
        if actions is None or reason is None:
            extra = {"amount": amount, "customer_pays": pays}
            if actions is None:
                actions = tuple(ActionItem(party, fill(parts, f, extra, compiled), rule.id)
                                for party, parts in texts.action_parts)
            if reason is None:
                reason = Reason(rule.id, rule.clause, policy.source_file, fill(texts.reason_parts, f, extra, compiled))
        return new_decision(case_id, vendor, name, as_of, outcome, amount, pays, fees, tuple(declared), actions,
                            (), (reason,), meta, alone if len(m) == 1 else tuple(map(ids.__getitem__, m)), ())
    return grant
