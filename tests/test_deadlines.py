"""Deadlines: every time limit a kind declares is reported on every outcome, with its status."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from engine import Engine, PolicyError
from engine.schemas import load_schema
from engine.testing import find_test_files, load_tests
from engine.trace import check_trace

from conftest import POLICIES

RA = {"vendor": "intpho", "kind": "return_authorization", "facts": {"ra_issued_on": "2025-03-01"}}


def deadlines(engine: Engine, case: dict[str, Any], **extra: Any) -> list[dict[str, Any]]:
    return engine.decide({**case, **extra}).to_dict()["deadlines"]


@pytest.mark.parametrize(("as_of", "outcome", "status"), [
    ("2025-03-01", "approve", "open"), ("2025-03-15", "approve", "open"),  # the last day is open
    ("2025-03-16", "deny", "passed"),
])
def test_status_is_open_through_the_date_and_passed_after(any_engine: Engine, as_of: str, outcome: str,
                                                           status: str) -> None:
    d = any_engine.decide({**RA, "as_of": as_of}).to_dict()
    assert d["outcome"] == outcome
    assert d["deadlines"] == [{"name": "ra_expires", "date": "2025-03-15", "status": status,
                               "text": "Last day the Return Authorization (RA) number is good for "
                                       "(products returned after it are refused).", "rule": None}]
    jsonschema.validate(d, load_schema("decision.schema.json"))


def test_missing_inputs_give_unknown_without_asking_for_them(engine: Engine) -> None:
    # The exchange limit needs received_on; a refund claim is decided without it.
    d = engine.decide({"vendor": "ippbx-store", "kind": "refund", "as_of": "2025-05-20", "facts": {},
                       }, lang="id").to_dict()
    assert d["outcome"] == "deny" and d["missing_facts"] == []
    assert d["deadlines"][0] | {"text": ""} == {"name": "exchange_limit", "date": None,
                                                "status": "unknown", "text": "", "rule": None}
    assert d["deadlines"][0]["text"].startswith("Hari terakhir")  # in the requested language
    jsonschema.validate(d, load_schema("decision.schema.json"))


def test_needs_info_reports_the_dates_already_known(engine: Engine) -> None:
    d = engine.decide({"vendor": "itellum", "kind": "warranty", "as_of": "2025-03-05",
                       "facts": {"installed_on": "2025-03-01"}}).to_dict()
    assert d["outcome"] == "needs_info"
    assert [(x["name"], x["date"], x["status"]) for x in d["deadlines"]] == [
        ("immediate_replacement_until", "2025-03-08", "open"), ("warranty_ends", "2025-09-01", "open")]


def test_a_rule_deadline_replaces_the_declared_one_of_its_name(engine: Engine) -> None:
    facts = {"violation": "none", "cancelled_by": "customer", "requested_via": "account_portal",
             "billing": "prepaid", "cycle_start": "2025-04-01", "cycle_end": "2025-04-30",
             "cycle_fee": "30.00", "cancel_requested_on": "2025-04-10"}
    case = {"vendor": "voip-provider", "kind": "cancellation", "as_of": "2025-04-10", "facts": facts}
    (only,) = deadlines(engine, case)
    assert (only["date"], only["rule"]) == ("2025-04-10", "cancel-prepaid-unused-refund")
    (declared,) = deadlines(engine, case, facts={**facts, "billing": "postpaid"})
    assert (declared["date"], declared["rule"]) == ("2025-04-30", None)
    assert deadlines(engine, case, facts={**facts, "cancelled_by": "provider"}) == []  # `when` false


def test_a_when_that_is_false_skips_the_date_and_its_derivation(engine: Engine) -> None:
    # interruption_on is min() of no events: it must not even be computed.
    d = engine.decide({"vendor": "itellum", "kind": "compensation", "as_of": "2025-05-02", "facts": {
        "service_plan": "postpaid", "monthly_rate": "45000", "period_start": "2025-04-01",
        "period_end": "2025-04-30", "exempt_from_liability": False, "interruptions": []}})
    assert d.outcome == "deny" and d.deadlines == ()


def _asserted() -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The `deadlines` each bundled policy test expects, by (vendor, kind)."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for path in find_test_files(POLICIES):
        for test in load_tests(path):
            if "deadlines" in test.want:
                out[(test.input["vendor"], test.input["kind"])].append(test.want["deadlines"])
    return out


def test_every_bundled_kind_has_a_policy_test_asserting_its_deadlines(engine: Engine) -> None:
    asserted = _asserted()
    for vendor, versions in engine.vendors.items():
        for kind in versions[-1].kinds.values():
            wants = asserted.get((vendor, kind.name))
            assert wants, f"no policy test of {vendor}/{kind.name} asserts its deadlines"
            for declared in kind.deadlines:
                statuses = {w[declared.name]["status"] for w in wants
                            if isinstance(w.get(declared.name), dict) and "status" in w[declared.name]}
                assert statuses, (f"no policy test of {vendor}/{kind.name} asserts the status of "
                                  f"deadline {declared.name}")


def test_declared_deadline_clause_must_quote_the_source(itellum_copy: Path) -> None:
    path = itellum_copy / "policy.yaml"
    text = path.read_text(encoding="utf-8")
    # The declared deadline's clause (8 spaces in, under `deadlines:`), wherever fmt put it among its keys.
    quote = "\n        clause: Our satellite equipment is guaranteed for 6 months.\n"
    assert text.count(quote) == 1
    path.write_text(text.replace(quote, quote.replace("6 months", "7 months")), encoding="utf-8")
    from engine.loader import load_policy  # noqa: PLC0415
    problems = check_trace(load_policy(path))
    (d,) = [p for p in problems if p.code == "clause_not_in_source"]
    assert "deadline warranty_ends of kind warranty" in d.message
    assert d.location is not None and d.location.line > 1


def test_duplicate_declared_deadline_is_a_policy_error(itellum_copy: Path) -> None:
    path = itellum_copy / "policy.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("      - name: warranty_ends\n", "      - name: immediate_replacement_until\n"),
                    encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        Engine.load(itellum_copy)
    assert any("declares deadline 'immediate_replacement_until' twice" in d.message
               for d in info.value.diagnostics)
