"""The decide path's fast readers accept and build exactly what the checking path does.

``Case.from_mapping`` reads a plain dict through ``_quick`` and falls back to
the checking path for anything else; each compiled policy converts facts
with per-fact readers (``fact_readers``) before the checking ``_Coercer``.
These properties compare both routes on generated input — well-formed and
not — so a fast path can never accept what the checks refuse, or build a
different value.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from engine import CaseError, Engine
from engine.case import _SLOW, Case, _fast, _quick


class _Dict(dict):  # type: ignore[type-arg]
    """A dict that is not exactly ``dict``: always takes the checking path."""


text = st.one_of(st.sampled_from(["itellum", "warranty", "", "ü", "\ud800", "2025-03-01", "2025-02-30",
                                  "0900-01-01", "2025-3-1", " 2025-03-01"]), st.text(max_size=6))
scalar = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), text,
                   st.decimals(allow_nan=False, places=2, min_value=-10**6, max_value=10**6),
                   st.just(date(2025, 3, 1)))
odd_facts = st.one_of(st.none(), st.lists(scalar, max_size=1),
                      st.dictionaries(st.one_of(text, st.integers(0, 3)), scalar, max_size=3))
VALID = {"vendor": "itellum", "kind": "warranty", "id": "A-1", "as_of": "2025-03-01", "facts": {"units": 1}}
KEYS = [*VALID, "$schema", "other"]


def _envelope(changed: dict[str, Any], dropped: set[str]) -> dict[str, Any]:
    """A well-formed case with a field or two changed or left out."""
    return {k: v for k, v in {**VALID, **changed}.items() if k not in dropped}


envelope = st.builds(_envelope, st.dictionaries(st.sampled_from(KEYS), st.one_of(scalar, odd_facts), max_size=2),
                     st.sets(st.sampled_from(KEYS), max_size=1))


def example_each(changes: list[dict[str, Any]]) -> Any:
    """Hypothesis examples: the well-formed case with each of ``changes`` applied (always run)."""
    def wrap(test: Any) -> Any:
        for change in changes:
            test = example(_envelope(change, set()))(test)
        return test
    return wrap


def _fields(case: Case) -> tuple[Any, ...]:
    return case.vendor, case.kind, dict(case.facts), case.id, case.as_of


BOUNDARIES = [{"vendor": "\ud800"}, {"kind": "\ud800"}, {"vendor": ""}, {"kind": 3}, {"vendor": "ü"},
              {"as_of": "0900-01-01"}, {"as_of": "3000-01-01"}, {"as_of": "2025-02-30"}, {"as_of": "2025-3-1"},
              {"as_of": date(2025, 3, 1)}, {"as_of": "２０２５-03-01"}, {"id": True}, {"id": Decimal("1e5")},
              {"id": "\ud800"}, {"id": 7}, {"facts": {"\ud800": 1}}, {"facts": {1: 1}}, {"facts": None},
              {"facts": []}, {"$schema": "x"}, {"other": 1}]


@settings(max_examples=400, deadline=None)
@given(envelope)
@example_each(BOUNDARIES)
def test_a_dict_case_is_read_as_the_checking_path_reads_it(data: dict[str, Any]) -> None:
    try:
        slow = _fields(Case.from_mapping(_Dict(data)))
    except CaseError:
        slow = None
    quick = _quick(Case, data, None)
    if quick is not None:  # the quick route only ever takes what the checks accept, unchanged
        assert slow is not None and _fields(quick) == slow
    try:
        both = _fields(Case.from_mapping(data))
    except CaseError:
        both = None
    assert both == slow


@pytest.mark.parametrize("vendor", ["itellum", "intpho", "ippbx-store", "did-provider", "voip-provider"])
def test_the_compiled_fact_readers_convert_as_the_generic_reader(vendor: str, engine: Engine) -> None:
    policy = engine.compiled(vendor).policy
    readers = engine.compiled(vendor).readers
    raws: list[Any] = [True, False, 0, 1, -3, 10**13, "1", "12.50", "12.50 CRC", " 12.5", "1_0", "1e3", "1e99",
                       "NaN", "-0.001", "١٢", "2025-03-01", "2025-02-30", "1899-12-31", "2025-03-01T10:00:00Z",
                       "", "x", None, [], {}, Decimal("1.005"), Decimal("1e20"), Decimal("NaN"), 2.5,
                       *(v for d in policy.facts.values() for v in d.type.values)]
    for name, decl in policy.facts.items():
        for raw in raws:
            fast = _fast(decl, raw)
            got = readers[name](raw)
            assert (got is _SLOW) == (fast is _SLOW), (name, raw)
            if got is not _SLOW:
                assert got == fast and type(got) is type(fast), (name, raw)
