"""Property: a fact is asked for only when it matters, and never ignored when it does.

Over every bundled kind, on boundary-biased generated cases with facts
left out at random:

- whenever a fact is reported missing, two values of it (within its declared
  type and consistent with the case's other facts) give different
  decisions — outcome, amounts, deadlines, or what is still missing —
  unless the engine itself reports the fact unproven (an undecided region
  of its search, :func:`_unproven`);
- removing a fact from a decided case turns it into ``needs_info`` only if
  some other value of that fact changes the decision;
- a fact left out and never asked for is ignored rightly: answering only the
  questions asked (with the full case's values) gives the full case's
  decision, and no value of it changes the outcome.

Witness values come from the lint sampler's boundary candidates, the case's
own dates, and the ``range`` the engine reports — each one checked by
deciding the completed case, so the engine's own analysis is never trusted.
The default profile is bounded (CLAUSE_PROPERTY_EXAMPLES raises it).
"""

from __future__ import annotations

import itertools
import os
import random
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from engine import Engine, EngineError, relevance
from engine.factschema import kind_facts
from engine.sample import Sampler, _plain

from conftest import POLICIES

EXAMPLES = int(os.environ.get("CLAUSE_PROPERTY_EXAMPLES", "10"))
BASE = date(2025, 1, 1)
ENGINE = Engine.load(POLICIES)
KINDS = [(vendor, kind) for vendor, versions in ENGINE.vendors.items() for kind in versions[-1].kinds]
IDS = [f"{v}-{k}" for v, versions in ENGINE.vendors.items() for k in versions[-1].kinds]


def _key(d: dict[str, Any]) -> tuple[Any, ...]:
    """What a decision decides: outcome, money, deadlines and what it still needs."""
    money = [tuple(sorted(m.items())) if m else None for m in (d["amount"], d["customer_pays"])]
    return (d["outcome"], *money,
            tuple((f["name"], f["value"]) for f in d["fees"]),
            tuple((x["name"], x["date"]) for x in d["deadlines"]),
            tuple(sorted(m["fact"] for m in d["missing_facts"])))


def _decide(engine: Engine, case: dict[str, Any]) -> tuple[Any, ...] | None:
    try:
        return _key(engine.decide(case).to_dict())
    except EngineError:
        return None  # a value the case's other facts rule out


def _unproven(engine: Engine, case: dict[str, Any]) -> set[str]:
    """Facts the engine asks for without a proof either way: an undecided region of the search.

    E.g. ``days_between(installed_on, failed_on) < 8`` with both dates
    missing: intervals cannot relate two unknowns, so both stay needed even
    where every completion happens to decide alike (never a guess). Only
    such facts may lack a witness; every other fact asked for must have one.
    """
    seen: list[relevance.Analysis] = []
    real = relevance.analyse

    def spy(*args: Any, **kwargs: Any) -> relevance.Analysis:
        seen.append(real(*args, **kwargs))
        return seen[-1]

    relevance.analyse = spy  # type: ignore[assignment]
    try:
        engine.decide(case)
    except EngineError:
        pass
    finally:
        relevance.analyse = real  # type: ignore[assignment]
    return {name for a in seen for box in a.boxes for name in box.stuck}


def _candidates(sampler: Sampler, engine: Engine, case: dict[str, Any], name: str,
                hint: dict[str, Any] | None) -> list[Any]:
    decl = sampler.compiled.policy.facts[name]
    kind = decl.type.kind
    out: list[Any] = []
    if hint:
        for key, value in hint.items():
            if key == "one_of":
                out += value
            elif kind == "date":
                day = date.fromisoformat(value)
                out += [day, day + timedelta(days=1), day - timedelta(days=1)]
            elif kind in ("decimal", "money", "integer"):
                step = 1 if kind == "integer" else Decimal("0.01")
                num = int(value) if kind == "integer" else Decimal(value)
                out += [num, num + step, num - step]
    if kind == "date":
        days = [date.fromisoformat(v) for v in (*case["facts"].values(), case["as_of"])
                if isinstance(v, str) and len(v) == 10 and v[4] == "-"]
        offsets = sorted({0, 1, 8, 35, 200, *sampler.offsets})
        out += [d + timedelta(days=k) for k in offsets for d in days]
        out += [d - timedelta(days=k) for k in offsets for d in days]
    if kind == "datetime":  # moments around the case's own (a duration between two of them)
        moments = [datetime.fromisoformat(v) for v in case["facts"].values()
                   if isinstance(v, str) and len(v) > 19 and v[10] == "T"]
        out += [m + timedelta(minutes=k) for m in moments for k in (-1440, -60, -1, 0, 1, 60, 1440)]
    out += sampler.candidates(name, decl)
    if kind == "list":  # records dated around each of the case's own days (and as_of), [] first
        rng = random.Random(name)
        bases = sorted({date.fromisoformat(v) for v in (*case["facts"].values(), case["as_of"])
                        if isinstance(v, str) and len(v) == 10 and v[4] == "-"})
        out += [[], *(sampler.value(rng, name, decl, base) for base in bases for _ in range(12))]
    seen: list[Any] = []
    for value in map(_plain, out):
        if value not in seen:
            seen.append(value)
    return seen[:240]


def _guided(engine: Engine, sampler: Sampler, case: dict[str, Any], name: str,
            others: list[str], rng: random.Random, tries: int = 3) -> bool:
    """Fill the other missing facts one by one, each with a value that keeps ``name`` asked for.

    The engine's answers only steer the search (which completions to try);
    the verdict is the two concrete completions differing only in ``name``.
    """
    for _ in range(tries):
        order = list(others)
        rng.shuffle(order)
        facts = dict(case["facts"])
        for other in order:
            values = _candidates(sampler, engine, {**case, "facts": facts}, other, None)
            rng.shuffle(values)
            for value in values[:60]:
                key = _decide(engine, {**case, "facts": {**facts, other: value}})
                if key is not None and name in key[-1]:
                    facts[other] = value
                    break
        filled = {**case, "facts": facts}
        try:
            hint = next((m["range"] for m in engine.decide(filled).to_dict()["missing_facts"]
                         if m["fact"] == name), None)
        except EngineError:
            continue
        seen = set()
        for value in _candidates(sampler, engine, filled, name, hint):
            key = _decide(engine, {**filled, "facts": {**facts, name: value}})
            if key is not None:
                seen.add(key)
            if len(seen) > 1:
                return True
    return False


def _witness(engine: Engine, sampler: Sampler, case: dict[str, Any], name: str,
             others: list[str], hint: dict[str, Any] | None, rng: random.Random) -> bool:
    """Two values of ``name`` deciding differently, the other missing facts left out or filled."""
    if others and _guided(engine, sampler, case, name, others, rng):
        return True
    fills: list[dict[str, Any]] = [{}]
    choices = {o: _candidates(sampler, engine, case, o, None) for o in others}
    finite = [o for o in others if sampler.compiled.policy.facts[o].type.kind in ("bool", "enum")]
    # As many combinations as the search can afford for this fact's candidates, in random order.
    budget = max(8, 4000 // max(1, len(_candidates(sampler, engine, case, name, hint))))
    combos = list(itertools.islice(itertools.product(*(choices[o] for o in finite)), 4096))
    rng.shuffle(combos)
    combos = combos[:budget]
    for combo in combos if finite else []:  # every yes/no and enum combination of the others
        fills.append({**{o: rng.choice(choices[o]) for o in others}, **dict(zip(finite, combo))})
    for _ in range(8 if others else 0):
        fills.append({o: rng.choice(choices[o]) for o in others})
    for fill in fills:
        # Candidates around the filled values too (a threshold between two missing dates).
        filled = {**case, "facts": {**case["facts"], **fill}}
        values = _candidates(sampler, engine, filled, name, hint)
        seen = set()
        for value in values:
            key = _decide(engine, {**case, "facts": {**case["facts"], **fill, name: value}})
            if key is not None:
                seen.add(key)
            if len(seen) > 1:
                return True
    return False


def _settled(d: dict[str, Any]) -> tuple[Any, ...]:
    """What a decision settles: outcome, money, and the deadlines whose date it knows."""
    return (d["outcome"], d["amount"], d["customer_pays"], [(f["name"], f["value"]) for f in d["fees"]],
            {x["name"]: x["date"] for x in d["deadlines"] if x["date"] is not None})


def _assert_unasked_facts_ignored(case: dict[str, Any], facts: dict[str, Any], decision: dict[str, Any]) -> None:
    """A fact left out and never asked for does not matter: answering only what is asked
    (with the full case's values) reaches the full case's decision — no fact was ignored."""
    full = ENGINE.decide(case).to_dict()
    for _ in range(len(case["facts"]) + 1):
        asked = [m["fact"] for m in decision["missing_facts"]]
        if not asked:
            break
        if any(a not in case["facts"] or a in facts for a in asked):
            return  # the full case lacks it too (or a bound): nothing to compare
        facts = {**facts, **{a: case["facts"][a] for a in asked}}
        decision = ENGINE.decide({**case, "facts": facts}).to_dict()
    got, want = _settled(decision), _settled(full)
    assert got[:4] == want[:4] and all(want[4].get(n) == day for n, day in got[4].items()), \
        (sorted(set(case["facts"]) - set(facts)), case, decision)


def _assert_unasked_facts_cannot_matter(sampler: Sampler, case: dict[str, Any], facts: dict[str, Any],
                                        decision: dict[str, Any]) -> None:
    """A fact left out and not asked for has no value that changes the outcome, the other
    left-out facts taking the full case's values: every fact the outcome hinges on is asked
    at once. (Facts only an amount or a deadline reads may come in a later round, once the
    rule that decides is known; a deadline's facts are never asked — its status is unknown.)"""
    asked = {m["fact"] for m in decision["missing_facts"]}
    for name in sorted(set(case["facts"]) - set(facts) - asked):
        rest = {**case["facts"]}
        seen = {_settled_key(ENGINE, {**case, "facts": {**rest, name: v}})
                for v in _candidates(sampler, ENGINE, case, name, None)[:60]} - {None}
        assert len(seen) <= 1 or name in _unproven(ENGINE, {**case, "facts": facts}), \
            (name, sorted(set(case["facts"]) - set(facts)), case)


def _settled_key(engine: Engine, case: dict[str, Any]) -> Any:
    try:
        d = engine.decide(case).to_dict()
    except EngineError:
        return None
    return d["outcome"]


@pytest.mark.slow
@pytest.mark.parametrize(("vendor", "kind"), KINDS, ids=IDS)
def test_missing_facts_matter_and_others_are_not_asked(vendor: str, kind: str) -> None:
    compiled = ENGINE.compiled(vendor, BASE)
    sampler = Sampler(compiled)
    pool = sampler.cases(kind, kind_facts(compiled, kind), 200, salt="relevance")

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, phases=[Phase.generate],
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.large_base_example])
    @given(st.sampled_from(pool), st.randoms(use_true_random=False), st.floats(0.1, 0.7))
    def check(case: dict[str, Any], rng: random.Random, drop: float) -> None:
        full = _decide(ENGINE, case)
        if full is None:
            return
        # Removing a fact turns a decision into needs_info only if the fact can change it.
        if full[0] != "needs_info":
            for name in case["facts"]:
                partial = dict(case["facts"])
                value = partial.pop(name)
                d = _decide(ENGINE, {**case, "facts": partial})
                if d is not None and d[0] == "needs_info":
                    values = _candidates(sampler, ENGINE, case, name, None)
                    assert any(_decide(ENGINE, {**case, "facts": {**partial, name: v}}) not in (None, full)
                               for v in values if v != value) \
                        or name in _unproven(ENGINE, {**case, "facts": partial}), (name, case)
        # Every fact reported missing has two values that decide differently.
        facts = {n: v for n, v in case["facts"].items() if rng.random() > drop}
        partial_case = {**case, "facts": facts}
        try:
            decision = ENGINE.decide(partial_case).to_dict()
        except EngineError:
            return
        _assert_unasked_facts_ignored(case, facts, decision)
        _assert_unasked_facts_cannot_matter(sampler, case, facts, decision)
        missing = [m["fact"] for m in decision["missing_facts"]]
        for m in decision["missing_facts"]:
            others = [o for o in missing if o != m["fact"]]
            assert _witness(ENGINE, sampler, partial_case, m["fact"], others, m["range"], rng) \
                or m["fact"] in _unproven(ENGINE, partial_case), \
                (m, partial_case)

    check()
