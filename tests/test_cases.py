"""Data-driven decision cases (tests/cases/<vendor>/*.yaml) under both back ends.

Each file validates against schemas/test-case.schema.json; each case's
``note`` is its pytest id. Only the fields a case lists are compared.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine import CaseError, Engine
from engine._yaml import parse_yaml
from engine.case import Case
from engine.schemas import check

from conftest import ROOT

CASE_DIR = ROOT / "tests" / "cases"


def _load(path: Path) -> list[dict[str, Any]]:
    doc, problems = parse_yaml(path.read_text(encoding="utf-8"), str(path))
    assert doc is not None and not problems, problems
    schema_problems = check(doc, "test-case.schema.json")
    assert not schema_problems, [d.render() for d in schema_problems]
    return [dict(case, _doc=doc, _index=i) for i, case in enumerate(doc.data["cases"])]


CASES = [case for path in sorted(CASE_DIR.glob("*/*.yaml")) for case in _load(path)]


def _actual(decision: Any) -> dict[str, Any]:
    d = decision.to_dict()
    return {
        "outcome": d["outcome"],
        "amount": d["amount"]["value"] if d["amount"] else None,
        "customer_pays": d["customer_pays"]["value"] if d["customer_pays"] else None,
        "fees": {f["name"]: f["value"] for f in d["fees"]},
        "deadlines": {x["name"]: x["date"] for x in d["deadlines"]},
        "missing_facts": [m["fact"] for m in d["missing_facts"]],
        "reasons": [r["rule"] for r in d["reasons"]],
    }


def test_case_files_exist() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=[c["note"] for c in CASES])
def test_decision(case: dict[str, Any], any_engine: Engine) -> None:
    parsed = Case.from_mapping(case["input"])
    if "want_error_code" in case:
        with pytest.raises(CaseError) as info:
            any_engine.decide(parsed)
        assert [d.code for d in info.value.diagnostics] == [case["want_error_code"]]
        return
    decision = any_engine.decide(parsed, lang=case.get("lang", "en"))
    want = dict(case["want_decision"])
    contains = want.pop("reason_contains", None)
    actual = _actual(decision)
    assert {k: actual[k] for k in want} == want
    if contains:
        assert contains in decision.reasons[0].text
    for reason in decision.reasons:  # every reason quotes its clause from the source text
        if reason.clause:
            policy = any_engine.policy(decision.vendor, decision.as_of)
            assert " ".join(reason.clause.split()) in " ".join(policy.source_text.split())


def test_every_rule_is_exercised() -> None:
    """Every rule of every bundled policy decides at least one case here."""
    engine = Engine.load(ROOT / "policies")
    decided = {r for c in CASES if "want_decision" in c
               for r in c["want_decision"].get("reasons", [])
               if c["want_decision"].get("outcome") != "needs_info"}
    rules = {r.id for versions in engine.vendors.values() for p in versions
             for k in p.kinds.values() for r in k.rules}
    assert rules - decided == set()
