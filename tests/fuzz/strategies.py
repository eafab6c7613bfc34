"""Hypothesis strategies for the fuzzers: JSON junk, typed fact values, cases, and policies.

Every input class of the issue 9 red-team pass is generated here — lone
surrogates, huge exponents and digit counts, years past the holiday
calendars, overflowing durations, non-scalar ids — beside the ordinary
values, so a regression in any of their guards is found by the fuzzers.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from engine import Engine
from engine.model import FactDecl, Policy

# Text includes lone surrogates ("Cs", which Hypothesis leaves out by default): JSON can carry
# them as \ud800 escapes, and every path must refuse them cleanly.
TEXT = st.one_of(st.text(max_size=12), st.text(st.characters(exclude_categories=()), max_size=12))
NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)

# Numbers within the engine's bounds, and now and then far beyond them: huge exponents
# (1e300000 once stalled a decision for seconds), thousands of digits, tiny magnitudes.
HUGE = st.sampled_from([Decimal("1e300000"), Decimal("-1e1000000"), Decimal("1e-999999"), Decimal("9" * 5000),
                        Decimal("1e5000"), Decimal("-0.0"), Decimal("2.0"), 10 ** 4000, -(10 ** 400)])
INTS = st.one_of(st.integers(min_value=-(10 ** 18), max_value=10 ** 18), st.integers().filter(lambda i: i != 0))
DECIMALS = st.one_of(
    st.builds(lambda m, e: Decimal(m).scaleb(e), st.integers(-(10 ** 12), 10 ** 12), st.integers(-12, 3)),
    st.builds(lambda m, e: Decimal(m).scaleb(e), st.integers(-(10 ** 40), 10 ** 40), st.integers(-400, 400)))
NUMBERS = st.one_of(INTS, DECIMALS, DECIMALS, HUGE)

SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
JSON = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(TEXT, inner, max_size=4)), max_leaves=12)

DAYS = st.dates(min_value=date(1990, 1, 1), max_value=date(2090, 12, 31))
# Far dates too: past the holiday calendars' data (about 2100, Indonesia from 1946) and the
# supported years, where a business-day count must be refused, never silently wrong.
FAR_DAYS = st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31))
DATE_TEXT = st.one_of(DAYS.map(date.isoformat), DAYS.map(date.isoformat), FAR_DAYS.map(date.isoformat),
                      st.sampled_from(["2025-02-30", "2025-13-01", "25-01-01", "2025-1-1", "", "yesterday",
                                       "2025-01-01T", "2102-12-25", "2999-12-31", "1900-01-01", "1945-08-17"]))
DATETIME_TEXT = st.one_of(
    st.builds(lambda d, h, m, z: f"{d.isoformat()}T{h:02d}:{m:02d}:00{z}", DAYS, st.integers(0, 23),
              st.integers(0, 59), st.sampled_from(["Z", "+00:00", "-06:00", "+05:30", ""])),
    st.sampled_from(["2025-01-01T25:00:00Z", "2025-01-01 10:00", "T10:00"]))
DURATION_TEXT = st.one_of(
    st.builds(lambda d, h, m: f"P{d}DT{h}H{m}M", st.integers(0, 400), st.integers(0, 48), st.integers(0, 120)),
    st.builds(lambda h: f"PT{h}H", st.integers(0, 10000)),
    st.builds(lambda d: f"P{d}D", st.integers(0, 10 ** 30)),  # beyond the timedelta limit too
    st.sampled_from(["P", "PT", "1 hour", "P-1D", "PT1.5H", "P1Y", "P1000000000D", "PT99999999999999999999H"]))
MONEY_TEXT = st.one_of(DECIMALS.map(lambda d: f"{d:f}"), st.sampled_from(["12.345", "1,00", "$5", "", "-0"]))


def typed_value(decl: FactDecl, depth: int = 0) -> st.SearchStrategy[Any]:
    """Mostly well-typed values for a fact (within and beyond its bounds), sometimes junk."""
    kind = decl.type.kind
    good: st.SearchStrategy[Any]
    if kind == "bool":
        good = st.booleans()
    elif kind == "integer":
        good = st.one_of(st.integers(-5, 500), INTS)
    elif kind in ("decimal", "money"):
        good = st.one_of(MONEY_TEXT, DECIMALS, st.integers(-10, 10 ** 6))
    elif kind == "date":
        good = DATE_TEXT
    elif kind == "datetime":
        good = DATETIME_TEXT
    elif kind == "duration":
        good = DURATION_TEXT
    elif kind == "enum":
        good = st.sampled_from(list(decl.type.values or ["x"]))
    elif kind == "list" and depth == 0:
        good = st.lists(st.fixed_dictionaries({}, optional={
            name: typed_value(field, 1) for name, field in decl.fields.items()}), max_size=4)
    else:
        good = TEXT
    return st.one_of(good, good, good, SCALARS)


def vendor_kinds(engine: Engine) -> list[tuple[str, str]]:
    return sorted({(v, k) for v, versions in engine.vendors.items() for p in versions for k in p.kinds})


_FACTS: dict[str, st.SearchStrategy[dict[str, Any]]] = {}


def facts_for(policy: Policy) -> st.SearchStrategy[dict[str, Any]]:
    """Some of the policy's facts with typed values, plus now and then an undeclared one (built once)."""
    if policy.digest not in _FACTS:  # the digest names the content: same facts, same strategy
        _FACTS[policy.digest] = _facts_for(policy)
    return _FACTS[policy.digest]


def _facts_for(policy: Policy) -> st.SearchStrategy[dict[str, Any]]:
    declared = st.fixed_dictionaries({}, optional={n: typed_value(d) for n, d in policy.facts.items()})
    extra = st.dictionaries(NAMES, SCALARS, max_size=2)
    return st.one_of(declared, declared, declared, st.builds(lambda a, b: {**b, **a}, declared, extra))


@st.composite
def typed_case(draw: st.DrawFn, engine: Engine) -> dict[str, Any]:
    """A case for one of the engine's vendors and kinds (sometimes with a wrong field)."""
    vendor, kind = draw(st.sampled_from(vendor_kinds(engine)))
    policy = engine.vendors[vendor][-1]
    case: dict[str, Any] = {"vendor": vendor, "kind": kind, "facts": draw(facts_for(policy))}
    if draw(st.booleans()):
        case["as_of"] = draw(st.one_of(st.dates(min_value=policy.effective_from, max_value=date(2090, 12, 31))
                                       .map(date.isoformat), DATE_TEXT))
    if draw(st.booleans()):
        # Any JSON as an id: 1e5000, -0.0, lone surrogates and lists must be refused or echoed exactly.
        case["id"] = draw(st.one_of(TEXT, st.integers(-1000, 10 ** 9), st.none(), NUMBERS, JSON))
    if draw(st.integers(0, 9)) == 0:
        case[draw(st.sampled_from(["vendor", "kind", "facts", "as_of", "extra"]))] = draw(JSON)
    return case


def cases(engine: Engine) -> st.SearchStrategy[Any]:
    """Typed cases mostly, arbitrary JSON sometimes."""
    return st.one_of(typed_case(engine), typed_case(engine), typed_case(engine), JSON)


def as_json_text(value: Any) -> str:
    """JSON text with Decimals written as numbers (exact digits)."""
    from engine.log import exact_json  # noqa: PLC0415
    return exact_json(value)
