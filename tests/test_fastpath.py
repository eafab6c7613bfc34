"""The generated decide path gives the generic path's Decision, or hands the case over.

``Engine.decide`` sends a plain dict to its kind's generated function
(:mod:`engine.fastpath`) first; whatever that function does not take, the
generic pipeline decides. Here both routes decide the same cases — every
bundled kind's boundary cases, and the same cases bent out of shape (a fact
dropped or nulled, a currency code, a wrong type, an unknown fact, another
language) — and must agree field for field whenever the generated path
answers. The plain cases must mostly be answered by it, or the test would
pass on a path that never runs.
"""

from __future__ import annotations

import random
from datetime import date
from typing import Any

import pytest

from engine import Engine
from engine.factschema import kind_facts
from engine.sample import Sampler

from conftest import POLICIES, needs_rete

BASE = date(2025, 1, 1)


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.load(POLICIES)


def _kinds() -> list[tuple[str, str]]:
    loaded = Engine.load(POLICIES)
    return [(v, k) for v, ps in loaded.vendors.items() for k in ps[-1].kinds]


KINDS = _kinds()


def _generic(engine: Engine, case: dict[str, Any], lang: str) -> Any:
    try:
        return engine._run(case, lang)[0]
    except Exception as err:  # noqa: BLE001 - compared by type: the generated path must not answer
        return type(err).__name__


def _same(engine: Engine, case: dict[str, Any], lang: str = "en") -> bool:
    """Whether the generated path answered; fails the test if its answer differs."""
    fast = engine._decide_fast(case, lang)
    want = _generic(engine, case, lang)
    if fast is None:
        return False
    assert not isinstance(want, str), (case, want, fast)
    assert fast == want, case
    assert fast.to_dict() == want.to_dict(), case
    assert fast.matched == want.matched, case  # not part of equality
    return True


def _bent(case: dict[str, Any], rng: random.Random, names: list[str]) -> dict[str, Any]:
    facts = dict(case["facts"])
    name = rng.choice(names or ["not_a_fact"])
    how = rng.randrange(6)
    if how == 0:
        facts.pop(name, None)
    elif how == 1:
        facts[name] = None
    elif how == 2 and isinstance(facts.get(name), str):
        facts[name] = facts[name] + " EUR"
    elif how == 3:
        facts[name] = rng.choice([1, "x", True, [], {"at_least": 1}, 2.5])
    elif how == 4:
        facts["not_a_fact"] = 1
    else:
        return {**case, "as_of": None if rng.random() < 0.5 else "2025-02-30", "facts": facts}
    return {**case, "facts": facts}


@pytest.mark.parametrize(("vendor", "kind"), KINDS, ids=[f"{v}-{k}" for v, k in KINDS])
def test_the_generated_path_decides_as_the_generic_path(vendor: str, kind: str, engine: Engine) -> None:
    compiled = engine.compiled(vendor, BASE)
    names = kind_facts(compiled, kind)
    cases = Sampler(compiled).cases(kind, names, 300)
    for lang in ("en", compiled.policy.languages[-1]):
        answered = sum(_same(engine, c, lang) for c in cases)
        decided = sum(not isinstance(_generic(engine, c, lang), str) for c in cases)
        # every fact of the kind is given: whatever the generic path decides, the generated one does
        assert answered == decided > 0, (answered, decided)
    rng = random.Random(f"{vendor}/{kind}")
    for case in cases:
        _same(engine, _bent(case, rng, names))


@needs_rete
def test_the_generated_path_decides_as_the_generic_path_on_rete() -> None:
    with Engine.load(POLICIES, matcher="rete") as engine:
        for vendor, kind in KINDS:
            compiled = engine.compiled(vendor, BASE)
            cases = Sampler(compiled).cases(kind, kind_facts(compiled, kind), 60)
            decided = sum(not isinstance(_generic(engine, c, "en"), str) for c in cases)
            assert sum(_same(engine, c) for c in cases) == decided, (vendor, kind)


def test_what_the_generated_path_hands_over(engine: Engine) -> None:
    """Cases outside its ground take the generic path — which decides or reports them."""
    case = {"vendor": "itellum", "kind": "warranty", "as_of": "2025-10-01",
            "facts": {"installed_on": "2025-03-01", "failed_on": "2025-03-05", "damage_cause": "factory"}}
    assert engine._decide_fast(case, "en") is not None
    for other in ({**case, "vendor": "nobody"}, {**case, "kind": "nothing"}, {**case, "extra": 1},
                  {**case, "facts": {**case["facts"], "failed_on": "2025-03-05T10:00:00"}},
                  {**case, "facts": {**case["facts"], "invented": 1}}, {**case, "as_of": "0001-01-01"}):
        assert engine._decide_fast(other, "en") is None, other
