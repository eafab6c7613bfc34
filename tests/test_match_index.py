"""Indexed matching (engine/match/index.py) gives exactly the linear scan's matches.

Generated rule sets mix what the index uses (``==``/``in`` on choices, bands
on numbers and dates) with what it must leave to the full test (``!=``,
``not in``, ``or``, presence tests, contradictory bands), over cases with
absent facts and values on, just inside and just outside every constant.
Also: the bundled-style big policy decides the same through the index as
through the linear function, and a value of an unexpected type falls back
to the scan instead of failing.
"""

from __future__ import annotations

import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ROOT
from engine import Engine
from engine.expressions.codegen import Constants
from engine.match import index, ir
from engine.match.python import _leaf

DAY0 = date(2025, 1, 1)
CHOICES = ("a", "b", "c", "d")


def _cmp(name: str, op: str, value: Any) -> ir.Cmp:
    return ir.Cmp(name, op, value, f"{name} {op} {value}")


leaf = st.one_of(
    st.builds(lambda v: _cmp("e", "==", v), st.sampled_from(CHOICES)),
    st.builds(lambda vs, neg: ir.In("e", tuple(vs), neg, "e in"), st.lists(st.sampled_from(CHOICES), min_size=1,
                                                                             max_size=3, unique=True), st.booleans()),
    st.builds(lambda v: _cmp("e", "!=", v), st.sampled_from(CHOICES)),
    st.builds(lambda v: _cmp("flag", "==", v), st.booleans()),
    st.builds(lambda op, v: _cmp("n", op, v), st.sampled_from(["<", "<=", ">", ">=", "==", "!="]),
              st.integers(0, 40)),
    st.builds(lambda op, v: _cmp("d", op, DAY0 + timedelta(days=v)), st.sampled_from(["<", "<=", ">", ">=", "=="]),
              st.integers(0, 30)),
    st.builds(lambda name, present: ir.Exists(name, present, "has"), st.sampled_from(["e", "n", "d", "flag"]),
              st.booleans()),
)
cond = st.recursive(leaf, lambda inner: st.one_of(
    st.builds(lambda items: ir.All(tuple(items), "and"), st.lists(inner, min_size=1, max_size=4)),
    st.builds(lambda items: ir.Any(tuple(items), "or"), st.lists(inner, min_size=1, max_size=3))), max_leaves=6)
facts = st.fixed_dictionaries({}, optional={
    "e": st.sampled_from((*CHOICES, "z")), "flag": st.booleans(), "n": st.integers(-1, 41),
    "d": st.integers(-1, 31).map(lambda k: DAY0 + timedelta(days=k))})


def _tests(conds: list[ir.Cond]) -> dict[int, Any]:
    consts = Constants()
    source = "".join(f"def t{i}(f):\n    return {_leaf(c, consts)}\n" for i, c in enumerate(conds))
    namespace: dict[str, Any] = {"__builtins__": {}, **consts.values}
    exec(compile(source, "<test>", "exec"), namespace)  # noqa: S102
    return {i: namespace[f"t{i}"] for i in range(len(conds))}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(cond, min_size=index.MIN_RULES, max_size=90), st.lists(facts, min_size=1, max_size=40))
def test_the_index_matches_exactly_what_the_scan_matches(conds: list[ir.Cond], cases: list[dict[str, Any]]) -> None:
    tests = _tests(conds)

    def linear(f: dict[str, Any]) -> list[int]:
        return [i for i in range(len(conds)) if tests[i](f)]

    match = index.matcher(list(enumerate(conds)), tests, linear)
    for f in cases:
        assert match(f) == linear(f), f


def test_a_value_of_an_unexpected_type_falls_back_to_the_scan() -> None:
    conds = [ir.All((_cmp("n", ">=", k), _cmp("n", "<", k + 5)), "band") for k in range(40)]
    tests = _tests(conds)
    calls = []

    def linear(f: dict[str, Any]) -> list[int]:
        calls.append(f)
        return []

    match = index.matcher(list(enumerate(conds)), tests, linear)
    assert match({"n": 7}) == [3, 4, 5, 6, 7] and not calls
    assert match({"n": "seven"}) == [] and calls == [{"n": "seven"}]


def test_a_big_policy_decides_the_same_with_and_without_the_index(tmp_path: Path, monkeypatch: Any) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    import compare  # noqa: PLC0415 - the benchmark's generated policy

    home = compare.clause_policy(compare._band_rules(400), tmp_path)
    cases = compare.cases(1500, seed=11)
    engine = Engine.load(home)
    indexed = [engine.decide(c).to_dict() for c in cases]
    monkeypatch.setattr(index, "MIN_RULES", 10**9)  # every kind on the linear function
    engine = Engine.load(home)
    linear = [engine.decide(c).to_dict() for c in cases]
    assert indexed == linear
    assert sum(1 for d in linear if d["outcome"] != "deny") > 100  # the bands do match cases


def _references(node: index.Node, seen: set[int] | None = None) -> int:
    """Rule references held by the tree (shared subtrees counted once)."""
    seen = set() if seen is None else seen
    if id(node) in seen:
        return 0
    seen.add(id(node))
    below = [*(node.table or {}).values(), *node.regions, *(n for n in (node.other, node.absent) if n)]
    return len(node.rules) + sum(_references(n, seen) for n in below)


def test_overlapping_ranges_keep_the_index_small_and_exact() -> None:
    """Wide overlapping bands would copy every rule into most regions (quadratic); the budget stops it."""
    n = 3000
    conds = [ir.All((_cmp("n", ">=", k), _cmp("n", "<", k + 2000), _cmp("e", "==", CHOICES[k % 4])), "band")
             for k in range(n)]
    root = index.build(list(enumerate(conds)))
    assert _references(root) <= 24 * n + n
    tests = _tests(conds)

    def linear(f: dict[str, Any]) -> list[int]:
        return [i for i in range(n) if tests[i](f)]

    match = index.matcher(list(enumerate(conds)), tests, linear)
    for f in ({"n": 2500, "e": "b"}, {"n": 0, "e": "a"}, {"n": 4999, "e": "d"}, {"e": "c"}, {"n": 1999}):
        assert match(f) == linear(f)
    assert len(index.lookup(root, {"n": 10, "e": "a"})) < n  # it still narrows on the enum


def test_each_node_scores_only_the_fields_most_of_its_rules_test(monkeypatch: Any) -> None:
    """Scoring every field costs rules × fields: 2,000 rules on 2,000 facts took seconds to load."""
    calls: list[str] = []
    real = index._Builder.choice_score

    def counted(self: Any, rules: tuple[int, ...], name: str) -> Any:
        calls.append(name)
        return real(self, rules, name)
    monkeypatch.setattr(index._Builder, "choice_score", counted)
    conds = [_cmp(f"f{i}", "==", True) for i in range(3000)] + [_cmp("e", "==", CHOICES[i % 4]) for i in range(40)]
    index.build(list(enumerate(conds)))
    assert len(calls) <= 16 and "e" in calls  # the field 40 rules test is among them
    tests = _tests(conds)
    match = index.matcher(list(enumerate(conds)), tests, lambda f: [])
    for f in ({"e": "a", "f7": True}, {"e": "d"}, {"f2999": True, "f0": True}):
        assert match(f) == [i for i in range(len(conds)) if tests[i](f)]
