"""``exact_json`` (the logged case and decision text) writes, byte for byte, what the first walk wrote.

The walk was rewritten for speed (a logged service request paid ~100 µs in
``json.dumps`` calls, one per value): the reference below is the first
version, kept here to compare generated values against.
"""

from __future__ import annotations

import enum
import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import EngineError
from engine.log import LogError, exact_json


def _reference_exact(value: Any, ascii_only: bool) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k), ensure_ascii=ascii_only)}: {_reference_exact(v, ascii_only)}"
                               for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_reference_exact(v, ascii_only) for v in value) + "]"
    if isinstance(value, Decimal):
        return str(value) if value.is_finite() else json.dumps(str(value))
    if isinstance(value, (date, datetime)):
        return json.dumps(value.isoformat())
    if value is None or isinstance(value, (bool, int, float, str)):
        return json.dumps(value, ensure_ascii=ascii_only)
    return json.dumps(str(value), ensure_ascii=ascii_only)


def reference(value: Any) -> str:
    try:
        text = _reference_exact(value, False)
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return _reference_exact(value, True)


class Colour(enum.IntEnum):
    RED = 1


class Text(str):
    pass


class Mapping(dict):  # type: ignore[type-arg]
    pass


class Odd:
    def __str__(self) -> str:
        return "odd \u00e9"


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.text(), st.text(alphabet=st.characters(blacklist_categories=())),  # lone surrogates included
    st.decimals(allow_nan=True, allow_infinity=True), st.dates(), st.datetimes(),
    st.sampled_from([Colour.RED, Text("sub \u00e9"), Odd(), Decimal("-0.0"), Decimal("1.50"), 2.0, -0.0]))
keys = st.one_of(st.text(), st.sampled_from([1, 2.5, True, None, Text("k")]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.lists(inner, max_size=3).map(tuple),
    st.dictionaries(keys, inner, max_size=4), st.dictionaries(st.text(), inner, max_size=3).map(Mapping)),
    max_leaves=20)


@settings(max_examples=400, deadline=None)
@given(values)
def test_the_fast_walk_writes_what_the_first_one_wrote(value: Any) -> None:
    assert exact_json(value) == reference(value)


def test_a_decided_case_and_its_decision_are_written_as_before(engine: Any) -> None:
    from engine import jsonread  # noqa: PLC0415

    case = jsonread.loads('{"id": 7, "vendor": "itellum", "kind": "delivery", "as_of": "2025-02-14", '
                          '"facts": {"defect_at_delivery": true}}')
    decision = engine.decide(case).to_dict()
    case["facts"]["price"] = jsonread.loads("2.50")  # a Decimal keeps its digits
    assert exact_json(case) == reference(case) and '"price": 2.50' in exact_json(case)
    assert exact_json(decision) == reference(decision) == json.dumps(decision, ensure_ascii=False)


def test_too_deep_or_too_long_is_a_log_error() -> None:
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(LogError):
        exact_json(deep)
    with pytest.raises(LogError):
        exact_json({"n": int("9" * 4000) * 10 ** 400})


def _floats(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_floats(v) for v in value.values())
    if isinstance(value, list):
        return any(_floats(v) for v in value)
    return isinstance(value, float)


def _read_back(text: str) -> Any:
    return json.loads(text, parse_float=Decimal)


def test_decision_json_is_the_answer_the_service_sends_for_every_decision_dict(engine: Any) -> None:
    """The log stores a decision as the service answers it (compact JSON, byte for byte), written by
    orjson; it reads back to what exact_json's text reads back to."""
    from engine.httpio import json_bytes  # noqa: PLC0415
    from engine.log import decision_json  # noqa: PLC0415

    from test_service import read_case  # noqa: PLC0415

    from conftest import POLICIES  # noqa: PLC0415

    seen = 0
    for path in sorted(POLICIES.glob("*/cases/*.yaml")):
        try:
            decision = engine.decide(read_case(path)).to_dict()
        except EngineError:  # a case file that expects an error
            continue
        assert not _floats(decision)  # what lets orjson write it (a non-finite float would be null)
        text = decision_json(decision)
        assert text.encode("utf-8") == json_bytes(decision)
        assert text == json.dumps(decision, ensure_ascii=False, separators=(",", ":"))
        assert _read_back(text) == _read_back(exact_json(decision)) == decision
        seen += 1
    assert seen > 10


def test_decision_json_hands_what_orjson_refuses_to_the_walk() -> None:
    """A Decimal, a date, a lone surrogate, a non-str key, an integer beyond 64 bits: orjson refuses
    them, and the walk writes them as it writes a case."""
    from engine.log import decision_json  # noqa: PLC0415

    odd = {"a": Decimal("1.50"), "b": [date(2025, 1, 2), "\ud800"], "c": {"d": 1.5, "e": None}}
    assert decision_json(odd) == exact_json(odd) == reference(odd)
    assert decision_json({"x": "\ud800 \u00e9"}) == reference({"x": "\ud800 \u00e9"})
    for value in ({True: 1}, {"n": 2 ** 64}, {"n": -(2 ** 63) - 1}):
        assert decision_json(value) == exact_json(value)


finite = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
              st.text(), st.text(alphabet=st.characters(blacklist_categories=())), st.decimals(allow_nan=False),
              st.dates()),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(), inner, max_size=4)),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(finite)
def test_decision_json_reads_back_the_same_value(value: Any) -> None:
    """What any JSON-shaped value (finite numbers) reads back to; a non-finite float — which no
    decision holds — orjson would write as null."""
    from engine.log import decision_json  # noqa: PLC0415

    back = json.loads(decision_json({"d": value}), parse_float=Decimal)["d"]
    assert back == json.loads(exact_json(value), parse_float=Decimal)
