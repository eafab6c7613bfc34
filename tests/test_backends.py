"""The two matching back ends agree, and the Rete one is hardened (docs/design.md §3-4).

A property test generates thousands of cases per kind of every bundled
policy from the facts' declared types (with facts left out at random, and
dates and amounts near the rules' boundaries) and checks that the python
and rete back ends give the same matches and the same decision.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import Engine, EngineError, MatcherUnavailable
from engine.factschema import kind_facts
from engine.match import rete
from engine.sample import Sampler

from conftest import POLICIES, RETE_REASON, needs_rete

BASE = date(2025, 1, 1)
DAY_OFFSETS = [0, 1, 6, 7, 8, 9, 30, 180, 181, 182, 183, 184, 365]


def _decimal() -> st.SearchStrategy[Decimal]:
    return st.one_of(
        st.sampled_from([Decimal(0), Decimal(40), Decimal("40.00"), Decimal("40.01"), Decimal("39.99"),
                         Decimal(100)]),
        st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False, allow_infinity=False))


def _date() -> st.SearchStrategy[date]:
    return st.one_of(st.sampled_from(DAY_OFFSETS), st.integers(-10, 400)).map(
        lambda n: BASE + timedelta(days=n))


def _datetime() -> st.SearchStrategy[datetime]:
    return st.integers(0, 60 * 24 * 28).map(
        lambda m: datetime(2025, 1, 1, tzinfo=timezone(timedelta(hours=-6))) + timedelta(minutes=m))


def _value(decl: Any) -> st.SearchStrategy[Any]:
    kind = decl.type.kind
    if kind == "bool":
        return st.booleans()
    if kind == "integer":
        return st.integers(-5, 1000)
    if kind in ("decimal", "money"):
        return _decimal()
    if kind == "date":
        return _date()
    if kind == "datetime":
        return _datetime()
    if kind == "enum":
        return st.sampled_from(decl.type.values)
    if kind == "string":
        return st.text(max_size=5)
    if kind == "list":
        record = st.fixed_dictionaries({k: _value(f) for k, f in decl.fields.items()})
        return st.lists(record, max_size=3)
    raise AssertionError(kind)


def facts_for(policy: Any) -> st.SearchStrategy[dict[str, Any]]:
    """Facts of ``policy``: all of them, or each one present or left out."""
    values = {n: _value(d) for n, d in policy.facts.items()}
    return st.one_of(st.fixed_dictionaries(values), st.fixed_dictionaries({}, optional=values))


def _run(engine: Engine, case: dict[str, Any]) -> Any:
    try:
        return engine.decide(case).to_dict()
    except EngineError as err:
        return ("error", [d.code for d in err.diagnostics])


@pytest.fixture(scope="module")
def engines() -> tuple[Engine, Engine]:
    py = Engine.load(POLICIES)
    rt = Engine.load(POLICIES, matcher="rete")
    yield py, rt
    rt.close()


KINDS = [(vendor, kind) for vendor, versions in Engine.load(POLICIES).vendors.items()
         for kind in versions[-1].kinds]


@needs_rete
@pytest.mark.parametrize(("vendor", "kind"), KINDS, ids=[f"{v}-{k}" for v, k in KINDS])
def test_back_ends_agree(vendor: str, kind: str, engines: tuple[Engine, Engine]) -> None:
    py, rt = engines
    policy = py.policy(vendor, BASE)

    @settings(max_examples=2000, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(facts_for(policy))
    def check(facts: dict[str, Any]) -> None:
        case = {"vendor": vendor, "kind": kind, "as_of": "2025-06-01", "facts": facts}
        result = _run(py, case)
        assert result == _run(rt, case)
        seen.add(result[0] if isinstance(result, tuple) else result["outcome"])

    seen: set[str] = set()
    check()
    # The generated cases reach real decisions, not only needs_info or errors.
    assert seen - {"needs_info", "error"}, seen


@needs_rete
@pytest.mark.parametrize(("vendor", "kind"), KINDS, ids=[f"{v}-{k}" for v, k in KINDS])
def test_back_ends_agree_on_boundary_cases(vendor: str, kind: str, engines: tuple[Engine, Engine]) -> None:
    """The same comparison on lint's boundary-biased cases, where most rules decide."""
    py, rt = engines
    compiled = py.compiled(vendor, BASE)
    decided = set()
    for case in Sampler(compiled).cases(kind, kind_facts(compiled, kind), 1500):
        result = _run(py, case)
        assert result == _run(rt, case), case
        if isinstance(result, dict):
            decided.add(result["reasons"][0]["rule"])
    rules = {r.rule.id for r in compiled.kinds[kind].rules}
    assert len(decided & rules) >= max(1, len(rules) // 2), (decided, rules)


@needs_rete
def test_matches_identical_on_boundaries(engines: tuple[Engine, Engine]) -> None:
    """Day 7/8 and the 6-month edge give the same matched rules on both back ends."""
    py, rt = engines
    for failed in ("2025-03-08", "2025-03-09", "2025-09-01", "2025-09-02"):
        case = {"vendor": "itellum", "kind": "warranty", "as_of": "2025-10-01",
                "facts": {"installed_on": "2025-03-01", "failed_on": failed, "damage_cause": "factory"}}
        assert py.decide(case).matched == rt.decide(case).matched != ()


def test_scaled_projection_keeps_order_exact() -> None:
    """Decimals with more places than the constants land strictly between them."""
    scale = 2
    assert rete._scaled(Decimal("40.00"), scale) == rete._scaled(Decimal(40), scale) == 8000
    assert rete._scaled(Decimal("40.001"), scale) == 8001  # strictly between 40.00 and 40.01
    assert rete._scaled(Decimal("40.01"), scale) == 8002
    assert rete._scaled(Decimal("-0.001"), scale) == -1   # between -0.01 and 0
    assert rete._scaled(Decimal(10) ** 30, scale) == rete.MAX_SAFE  # clamped, order kept
    assert rete._scaled(Decimal("100.000000000000000000000000000000001"), scale) == 20001  # no rounding


def test_projected_field_names_are_collision_free() -> None:
    names = rete._field_names([f"fact_{i}" for i in range(300)])
    hashes = [rete.fnv1a_32(n) for n in names.values()]
    reserved = {rete.fnv1a_32(r) for r in rete._RESERVED}
    assert len(set(hashes)) == 300 and not reserved & set(hashes)


def test_fnv1a_matches_reference_vectors() -> None:
    assert rete.fnv1a_32("") == 0x811C9DC5
    assert rete.fnv1a_32("a") == 0xE40C292C
    assert rete.fnv1a_32("foobar") == 0xBF9CF968


@needs_rete
def test_many_cases_reuse_one_state() -> None:
    """More cases than durable_rules' 1024 live-sid limit: the one sid is always freed."""
    eng = Engine.load(POLICIES, matcher="rete")
    case = {"vendor": "itellum", "kind": "delivery", "as_of": "2025-01-01",
            "facts": {"defect_at_delivery": True}}
    outcomes = {eng.decide(case).outcome for _ in range(3000)}
    eng.close()
    assert outcomes == {"replace"}


@pytest.mark.skipif(RETE_REASON is None, reason="durable_rules imports here")
def test_rete_unavailable_is_reported_cleanly() -> None:
    with pytest.raises(MatcherUnavailable) as info:
        Engine.load(POLICIES, matcher="rete")
    assert info.value.diagnostics[0].code == "matcher_unavailable"


def test_rete_unavailable_when_the_core_does_not_import(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on Python 3.13, where durable_rules builds but fails to import."""
    import sys  # noqa: PLC0415
    monkeypatch.setitem(sys.modules, "durable_rules_engine", None)
    with pytest.raises(MatcherUnavailable) as info:
        Engine.load(POLICIES, matcher="rete")
    diag = info.value.diagnostics[0]
    assert diag.code == "matcher_unavailable"
    assert "--matcher python" in (diag.hint or "")
    assert Engine.load(POLICIES).decide({"vendor": "itellum", "kind": "delivery", "as_of": "2025-01-01",
                                         "facts": {"defect_at_delivery": True}}).outcome == "replace"
