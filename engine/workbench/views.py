"""What the workbench page shows, as JSON: a policy's outline, an explanation
with the vendor's text beside it, a kind as a decision table, the source map
and the rules' test coverage.

Everything here reads loaded policies; nothing writes. The page renders these
documents with ``textContent`` only, so policy text is never parsed as HTML.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.expressions.syntax import names
from engine.factschema import facts_schema, kind_facts
from engine.match import ir
from engine.testing import Coverage, find_test_files, load_tests, run_test
from engine.trace import MIN_PARTIAL_WORDS, is_deciding, normalize, sentences

if TYPE_CHECKING:
    from engine.compiler import CompiledPolicy
    from engine.engine import Engine
    from engine.model import Policy


def latest(engine: Engine, vendor: str) -> CompiledPolicy:
    """The newest loaded version of ``vendor`` (KeyError when unknown)."""
    versions = engine.vendors[vendor]
    newest = versions[-1]
    return engine.compiled(vendor, newest.effective_from)


def outline(engine: Engine, vendor: str) -> dict[str, Any]:
    """Vendor, version, currency, languages and each kind's facts, for the form."""
    compiled = latest(engine, vendor)
    p = compiled.policy
    kinds = {name: {"title": ck.kind.title, "facts": kind_facts(compiled, name)}
             for name, ck in compiled.kinds.items()}
    facts = {n: {"meaning": f.meaning, "type": f.type.kind, "clause": f.clause,
                 "minimum": _plain(f.minimum), "maximum": _plain(f.maximum)}
             for n, f in p.facts.items()}
    return {"vendor": p.vendor, "name": p.name, "version": p.version, "currency": p.currency,
            "languages": list(p.languages), "timezone": p.timezone, "kinds": kinds, "facts": facts,
            "schema": facts_schema(p), "source_file": p.source_file}


def _plain(value: Any) -> Any:
    return None if value is None else str(value)


def clause_span(source: str, clause: str | None) -> list[int] | None:
    """[start, end) of ``clause`` in ``source``, whitespace-insensitive; None if absent."""
    words = (clause or "").split()
    if not words:
        return None
    found = re.search(r"\s+".join(map(re.escape, words)), source)
    return [found.start(), found.end()] if found else None


def explanation(engine: Engine, case: Any, lang: str) -> dict[str, Any]:
    """The decision, every rule's step, and where each reason's clause sits in the source."""
    decision, steps = engine.explain(case, lang=lang)
    policy = engine.policy_by_digest(decision.vendor, decision.policy["digest"])
    kind = policy.kinds[decision.kind]
    rules = {r.id: r for r in kind.rules}
    source = policy.source_text
    out_steps = []
    for s in steps:
        rule = rules[s.rule]
        out_steps.append({**s.to_dict(), "clause": rule.clause, "span": clause_span(source, rule.clause)})
    reasons = [{"rule": r.rule, "clause": r.clause, "span": clause_span(source, r.clause)}
               for r in decision.reasons]
    return {"decision": decision.to_dict(), "steps": out_steps, "reasons": reasons,
            "source": {"file": policy.source_file, "text": source}}


def _quotes(policy: Policy) -> list[dict[str, Any]]:
    """Everything that quotes the source: rules, fact definitions, out_of_scope entries."""
    out = [{"type": "rule", "name": r.id, "kind": k.name, "clause": r.clause}
           for k in policy.kinds.values() for r in k.rules]
    out += [{"type": "fact", "name": f.name, "clause": f.clause} for f in policy.facts.values() if f.clause]
    out += [{"type": "fact", "name": d.name, "clause": d.clause} for d in policy.derived.values() if d.clause]
    out += [{"type": "out_of_scope", "name": "out_of_scope", "clause": o.clause, "reason": o.reason}
            for o in policy.out_of_scope]
    return out


def _covers(sentence: str, quote: str) -> bool:
    """The rule of :mod:`engine.trace`: the quote holds the sentence, or a 3+ word part of it."""
    return sentence in quote or (quote in sentence and len(quote.split()) >= MIN_PARTIAL_WORDS)


def source_map(policy: Policy) -> dict[str, Any]:
    """Every sentence of the source with what covers it (rule, fact, out_of_scope) or nothing."""
    quotes = [dict(q, norm=normalize(q["clause"])) for q in _quotes(policy)]
    text = policy.source_text
    out = []
    for s in sentences(text):
        covers = [{k: v for k, v in q.items() if k != "norm"} for q in quotes if _covers(s.text, q["norm"])]
        order = ("rule", "fact", "out_of_scope")
        cover = next((t for t in order if any(c["type"] == t for c in covers)), "none")
        out.append({"start": s.offset, "end": _end(text, s), "text": s.text, "cover": cover,
                    "deciding": is_deciding(s.text), "by": covers})
    return {"file": policy.source_file, "text": text, "sentences": out}


def _end(text: str, s: Any) -> int:
    """Where a sentence ends in the raw text (its normalized words matched in place)."""
    span = clause_span(text[s.offset:], s.text)
    return s.offset + span[1] if span else s.offset + len(s.text)


def _column(compiled: CompiledPolicy, leaf: ir.Cond) -> str:
    field = leaf.field  # type: ignore[union-attr]
    syn = compiled.synthetics.get(field)
    return ", ".join(sorted(names(syn.node))) if syn else field


def decision_table(compiled: CompiledPolicy, kind: str) -> dict[str, Any]:
    """One row per rule in decision order; a column per fact (or facts) its conditions read."""
    ck = compiled.kinds[kind]
    columns: list[str] = []
    rows = []
    for rank, cr in enumerate(ck.ranked, 1):
        rule = cr.rule
        cells: dict[str, list[str]] = {}
        for leaf in ir.leaves(cr.cond):
            col = _column(compiled, leaf)
            if col not in columns:
                columns.append(col)
            cells.setdefault(col, []).append(leaf.text)
        rows.append({"rank": rank, "rule": rule.id, "outcome": rule.outcome, "when": rule.when.text,
                     "plain_and": isinstance(cr.cond, ir.All) or not isinstance(cr.cond, ir.Any),
                     "cells": cells, "override": rule.override, "priority": rule.priority,
                     "amount": rule.amount.text if rule.amount else None,
                     "customer_pays": rule.customer_pays.text if rule.customer_pays else None,
                     "fees": {n: e.text for n, e in rule.fees},
                     "deadlines": {n: e.text for n, e in rule.deadlines},
                     "clause": rule.clause, "location": str(rule.location)})
    return {"kind": kind, "title": ck.kind.title, "combine": ck.kind.combine,
            "otherwise": ck.kind.otherwise_outcome, "columns": columns, "rows": rows}


def coverage(engine: Engine, compiled: CompiledPolicy) -> dict[str, Any]:
    """The rules and branches the policy's own tests (``<policy dir>/tests``) exercise."""
    policy = compiled.policy
    files = find_test_files(Path(policy.file).parent) if policy.file else []
    cov = Coverage()
    mine = cov.add_policy(compiled)
    failed = total = 0
    for file in files:
        for test in load_tests(file):
            total += 1
            failed += not run_test(engine, test, cov).passed
    branches = {bid: {"condition": text, "seen": sorted(seen & {ir.TRUE, ir.FALSE})}
                for bid, (text, seen) in mine.branches.items()}
    rc, rt, bc, bt = cov.totals(mine)
    return {"rules": dict(mine.rules), "branches": branches,
            "totals": {"rules": [rc, rt], "branches": [bc, bt]}, "tests": total, "failed": failed}
