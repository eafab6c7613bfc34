"""Property: a fact is asked for only when it matters, and never ignored when it does.

Over every bundled kind, on boundary-biased generated cases with facts
left out at random:

- whenever a fact is reported missing, two values of it (within its declared
  type and consistent with the case's other facts) give different
  decisions — outcome, amounts, deadlines, or what is still missing;
- removing a fact from a decided case turns it into ``needs_info`` only if
  some other value of that fact changes the decision.

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

from engine import Engine, EngineError
from engine.factschema import kind_facts
from engine.sample import Sampler, _plain

from conftest import POLICIES

EXAMPLES = int(os.environ.get("CLAUSE_PROPERTY_EXAMPLES", "10"))
BASE = date(2025, 1, 1)
ENGINE = Engine.load(POLICIES)
# Kinds where the witness search below fails on a generated case of the
# default (derandomized) profile. The one examined (ippbx-store exchange:
# received_on, requested_on and contacted_customer_service all missing) is a
# weakness of the search — random fills of two related dates rarely land
# inside the 7-working-day window where the contact rule's deadline shows —
# not an over-reported fact; intpho return_inspection is not yet examined.
# Strict: when the search finds the witnesses, the mark must go.
OPEN = {("intpho", "return_inspection"), ("ippbx-store", "exchange")}
KINDS = [pytest.param(vendor, kind, marks=pytest.mark.xfail(reason="witness search incomplete", strict=True))
         if (vendor, kind) in OPEN else (vendor, kind)
         for vendor, versions in ENGINE.vendors.items() for kind in versions[-1].kinds]
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
    if kind == "list":  # records: a few generated lists, the empty one first
        rng = random.Random(name)
        out += [[], *(sampler.value(rng, name, decl, date.fromisoformat(case["as_of"])) for _ in range(8))]
    seen: list[Any] = []
    for value in map(_plain, out):
        if value not in seen:
            seen.append(value)
    return seen[:240]


def _witness(engine: Engine, sampler: Sampler, case: dict[str, Any], name: str,
             others: list[str], hint: dict[str, Any] | None, rng: random.Random) -> bool:
    """Two values of ``name`` deciding differently, the other missing facts left out or filled."""
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
                               for v in values if v != value), (name, case)
        # Every fact reported missing has two values that decide differently.
        facts = {n: v for n, v in case["facts"].items() if rng.random() > drop}
        partial_case = {**case, "facts": facts}
        try:
            decision = ENGINE.decide(partial_case).to_dict()
        except EngineError:
            return
        missing = [m["fact"] for m in decision["missing_facts"]]
        for m in decision["missing_facts"]:
            others = [o for o in missing if o != m["fact"]]
            assert _witness(ENGINE, sampler, partial_case, m["fact"], others, m["range"], rng), \
                (m, partial_case)

    check()
