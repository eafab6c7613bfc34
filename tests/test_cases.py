"""Every bundled policy's own tests (policies/<vendor>/tests/*.yaml), one pytest item each.

They run under both matching back ends through engine.testing.run_test —
the same code as ``clause test`` — so CI catches any policy regression.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import Engine
from engine.testing import PolicyTest, load_tests, run_test

from conftest import POLICIES

FILES = sorted(POLICIES.glob("*/tests/*.yaml"))
TESTS = [(path, t) for path in FILES for t in load_tests(path)]


def _id(path: Path, test: PolicyTest) -> str:
    return f"{path.parent.parent.name}: {test.name}"


def test_every_vendor_has_tests() -> None:
    vendors = {p.parent.name for p in POLICIES.glob("*/policy*.yaml")}
    tested = {p.parent.parent.name for p in POLICIES.glob("*/tests/*.yaml")}
    assert vendors <= tested


@pytest.mark.parametrize(("path", "test"), TESTS, ids=[_id(p, t) for p, t in TESTS])
def test_policy_case(path: Path, test: PolicyTest, any_engine: Engine) -> None:
    result = run_test(any_engine, test)
    assert result.error is None, result.error
    assert result.diffs == [], "\n".join(f"{f}: expected {e!r}, got {a!r}" for f, e, a in result.diffs)


def test_reasons_quote_the_source(engine: Engine) -> None:
    """Every reason's clause is found (whitespace-normalized) in its vendor's source text."""
    for _, test in TESTS:
        if test.want_error_code:
            continue
        decision = engine.decide(test.input)
        policy = engine.policy(decision.vendor, decision.as_of)
        for reason in decision.reasons:
            if reason.clause:
                assert " ".join(reason.clause.split()) in " ".join(policy.source_text.split())


def test_every_rule_decides_some_test() -> None:
    """Every rule of every bundled policy decides at least one test case."""
    outcomes = {r.id: r.outcome for versions in Engine.load(POLICIES).vendors.values()
                for p in versions for k in p.kinds.values() for r in k.rules}
    # needs_info decides when the rule says so (a step the customer can still take)
    decided = {r for _, t in TESTS if t.want.get("outcome") is not None
               for r in t.want.get("reasons", [])
               if t.want["outcome"] != "needs_info" or outcomes.get(r) == "needs_info"}
    rules = set(outcomes)
    assert rules - decided == set()
