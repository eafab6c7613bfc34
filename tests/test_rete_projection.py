"""The rete back end's generated projection writes exactly what the reference projection means.

The reference is the field-by-field path the generated function replaced:
each value through :func:`engine.match.projection.projector` (built on
:func:`~engine.match.projection.scaled`, the exact order-preserving integer
map) into a dict, then ``json.dumps``. The generated function takes fast
paths (ints within the safe range, Decimals through integer ratios, moments
and durations through integer microseconds, enum texts encoded once), so it
is compared on the values where those paths could go wrong: both sides of
every clamp, negative values, more places than the scale, microseconds.
These tests need no C core.
"""

from __future__ import annotations

import json
import random
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from engine.expressions import types as T
from engine.match import projection as P
from engine.match.projection import MAX_SAFE

UTC = timezone.utc
EDGE_INTS = [0, 1, -1, 2, 7, -7, 10**6, MAX_SAFE // 2 - 1, MAX_SAFE // 2, MAX_SAFE // 2 + 1, -(MAX_SAFE // 2) + 1,
             -(MAX_SAFE // 2), -(MAX_SAFE // 2) - 1, MAX_SAFE - 1, MAX_SAFE, MAX_SAFE + 1, -MAX_SAFE, -MAX_SAFE - 1,
             10**17, -(10**17), 10**40, -(10**40), 2**52 // 10**6, 2**52 // 10**6 + 1, 4503599627, -4503599628]
EDGE_DECIMALS = [Decimal(s) for s in (
    "0", "-0", "0.00", "40", "40.00", "40.001", "40.009", "40.01", "-0.001", "-0.01", "-40.005", "39.999999",
    "0.5", "-0.5", "1E+2", "1.5E+3", "123456789.123456789", "-123456789.123456789", "4503599627370495.5",
    "4503599627370496", "-4503599627370496.25", "9007199254740992", "9.9E+16", "1E+17", "-1E+17", "1E+300",
    "-1E+300", "1E-19", "-1E-19", "1E-21", "-1E-21", "1E-300", "100.000000000000000000000000000000001",
    "0.000001", "-0.0000015", "Infinity", "-Infinity")]
MOMENTS = [datetime(1970, 1, 1, tzinfo=UTC), datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
           datetime(2025, 3, 8, 12, 0, 0, 1, tzinfo=UTC), datetime(2025, 3, 8, 12, 0, 0, 500000, tzinfo=UTC),
           datetime(2025, 3, 8, 6, 0, 0, 999999, tzinfo=timezone(timedelta(hours=-6))),
           datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
           datetime(1900, 6, 1, 0, 0, 0, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30)))]
DURATIONS = [timedelta(0), timedelta(microseconds=1), timedelta(microseconds=-1), timedelta(days=7),
             timedelta(days=-7, microseconds=3), timedelta(seconds=1, microseconds=500000),
             timedelta(days=999999999, hours=23, minutes=59, seconds=59, microseconds=999999),
             timedelta(days=-999999999), timedelta(hours=-1, microseconds=-250001)]
DATES = [date(1, 1, 1), date(1970, 1, 1), date(2025, 2, 28), date(9999, 12, 31)]
STRINGS = ["", "gold", "é", "a\"b", "back\\slash", "line\nbreak", "\u2028", "\x00", "\ud800", "日本", "f0"]
SCALES = [0, 1, 2, 3, 6, 9]
STATUS = T.enum(("gold", "silver", "a\"b", "é"))


def reference(fields: list[tuple[str, str, T.Type, int]], facts: dict[str, Any]) -> str:
    """The projection as it was: a dict of projected values, dumped."""
    fact: dict[str, Any] = {"sid": "0", "k": 1}
    for name, short, typ, scale in fields:
        if name in facts:
            fact[short] = P.projector(typ, scale)(facts[name])
    return json.dumps(fact, ensure_ascii=False, separators=(",", ":"))


def same(fields: list[tuple[str, str, T.Type, int]], facts: dict[str, Any]) -> None:
    got = P.compile_projection(fields, "test")(facts)
    assert got == reference(fields, facts), facts


def _values(kind: str) -> list[Any]:
    if kind == "integer":
        return [*EDGE_INTS, True, False]
    if kind in ("decimal", "money"):
        return [*EDGE_DECIMALS, *EDGE_INTS]
    return {"date": DATES, "datetime": MOMENTS, "duration": DURATIONS, "bool": [True, False, 0, 1, "", "x"],
            "string": STRINGS, "enum": ["gold", "silver", "a\"b", "é", "other", "\ud800"]}[kind]


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("typ", [T.INTEGER, T.DECIMAL, T.MONEY, T.DATE, T.DATETIME, T.DURATION, T.BOOL,
                                 T.STRING, STATUS], ids=str)
def test_each_boundary_value_projects_as_the_reference(typ: T.Type, scale: int) -> None:
    for value in _values(typ.kind):
        same([("x", "f0", typ, scale)], {"x": value})


def test_absent_facts_are_left_out_and_the_order_is_the_fields() -> None:
    fields = [("b", "f0", T.BOOL, 0), ("n", "f1", T.INTEGER, 0), ("s", "f2", STATUS, 0),
              ("m", "f3", T.DATETIME, 6), ("d", "f4", T.DECIMAL, 2)]
    full = {"b": True, "n": -3, "s": "gold", "m": MOMENTS[2], "d": Decimal("40.005")}
    for keep in range(2 ** len(fields)):
        facts = {name: full[name] for i, (name, *_) in enumerate(fields) if keep >> i & 1}
        same(fields, facts)
    assert P.compile_projection(fields, "test")({}) == '{"sid":"0","k":1}'


def test_random_decimals_and_ints_against_the_reference() -> None:
    rng = random.Random(11)
    fields = [(f"x{s}", f"f{s}", T.DECIMAL, s) for s in SCALES]
    project = P.compile_projection(fields, "test")
    for _ in range(5000):
        digits = rng.choice([1, 3, 8, 16, 17, 20, 30])
        value: Any = Decimal(rng.randrange(-10**digits, 10**digits)).scaleb(-rng.randrange(0, 12))
        if rng.random() < 0.3:
            value = int(value)
        facts = {name: value for name, *_ in fields}
        assert project(facts) == reference(fields, facts), value


def test_order_is_kept_around_the_constants() -> None:
    """Values just below, at and just above a constant keep their order after projection."""
    for scale, constant in [(2, Decimal("40.01")), (0, Decimal(7)), (3, Decimal("-0.125"))]:
        at = P.scaled(constant, scale)
        assert at % 2 == 0
        for delta in (Decimal("1e-9"), Decimal(10) ** -scale / 2):
            below = P.scaled_decimal(constant - delta, scale, 10**scale)
            above = P.scaled_decimal(constant + delta, scale, 10**scale)
            assert below < at < above and below % 2 == above % 2 == 1


def test_policy_names_never_reach_the_source() -> None:
    """A fact name that is Python code is only ever a hoisted string."""
    name = "x'] or __import__('os').system('false') or f['"
    project = P.compile_projection([(name, "f0", T.STRING, 0)], "evil\nlabel")
    assert project({name: "v"}) == '{"sid":"0","k":1,"f0":"v"}'
