"""Fuzz target 2: generated policies through load, validate, compile and decide (on both back ends).

A policy either loads, or fails with diagnostics that name the file (and,
for anything inside it, a line): never another exception. A loaded policy
decides generated cases on the Python back end and, where it runs, on Rete
with identical results.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from agreement import agree, outcome_of
from fuzzing import counted, examples
from hypothesis import given
from hypothesis import strategies as st
from policygen import policy_doc
from strategies import typed_case

from engine import Engine, MatcherUnavailable
from engine.errors import EngineError
from tests_root import POLICIES

pytestmark = pytest.mark.fuzz
try:
    Engine.load(POLICIES / "intpho", matcher="rete").close()
    RETE = True
except MatcherUnavailable:
    RETE = False


def load(root: Path, matcher: str = "python") -> Engine | None:
    try:
        return Engine.load(root, matcher=matcher)
    except EngineError as err:
        assert err.diagnostics
        for d in err.diagnostics:
            assert d.code and d.message, d
            assert d.location is not None and d.location.file, f"an unlocated policy error: {d}"
            if d.code not in ("file", "limit"):
                assert d.location.line, f"a policy error without a line: {d}"
        return None


@given(doc=policy_doc(), data=st.data())
@examples(20, 1500)
def test_generated_policies_load_or_locate_their_errors(doc: tuple[str, str], data: st.DataObject) -> None:
    counted("policies")
    text, source = doc
    with tempfile.TemporaryDirectory(prefix="clause-fuzz-") as tmp:
        home = Path(tmp) / "fuzzco"
        home.mkdir()
        (home / "policy.yaml").write_text(text, encoding="utf-8")
        (home / "source.txt").write_text(source, encoding="utf-8")
        python = load(Path(tmp))
        if python is None:
            return
        rete = load(Path(tmp), "rete") if RETE and data.draw(st.integers(0, 2)) == 0 else None
        try:
            for case in data.draw(st.lists(typed_case(python), min_size=1, max_size=6)):
                counted("policy-cases")
                if rete is None:
                    outcome_of(python, case)
                else:
                    counted("agreement")
                    agree(python, rete, case)
        finally:
            python.close()
            if rete is not None:
                rete.close()
