"""Fuzz target 4: the Python and Rete back ends decide every case identically (bundled policies).

Generated policies are also decided on both back ends in test_fuzz_policies.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from agreement import agree
from fuzzing import counted, examples
from hypothesis import given
from hypothesis import strategies as st
from strategies import cases, typed_case

from engine import Engine, MatcherUnavailable
from tests_root import POLICIES

pytestmark = pytest.mark.fuzz
PYTHON = Engine.load(POLICIES)
try:
    RETE: Engine | None = Engine.load(POLICIES, matcher="rete")
except MatcherUnavailable:  # durable-rules missing, or Python 3.13+
    RETE = None
needs_rete = pytest.mark.skipif(RETE is None, reason="the rete back end is unavailable here")


@needs_rete
@given(many=st.lists(typed_case(PYTHON), min_size=5, max_size=20))
@examples(5, 2000)
def test_back_ends_agree_on_typed_cases(many: list[Any]) -> None:
    counted("agreement", len(many))
    for case in many:
        agree(PYTHON, RETE, case)  # type: ignore[arg-type]


@needs_rete
@given(many=st.lists(cases(PYTHON), min_size=5, max_size=20))
@examples(3, 500)
def test_back_ends_agree_on_any_case(many: list[Any]) -> None:
    counted("agreement", len(many))
    for case in many:
        agree(PYTHON, RETE, case)  # type: ignore[arg-type]
