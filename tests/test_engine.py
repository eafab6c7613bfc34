"""The Engine API: contracts of the decision JSON, isolation, threads, versions."""

from __future__ import annotations

import json
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest

from engine import CaseError, Engine, PolicyError
from engine.factschema import facts_schema
from engine.schemas import load_schema

from conftest import MATCHERS, POLICIES, ROOT

REFUND_CASE = {"id": "C-1", "vendor": "itellum", "kind": "return", "as_of": "2025-04-01", "facts": {
    "install_impossible_report": True, "ticket_opened": True, "equipment_undamaged": True,
    "original_packaging": True, "all_accessories": True, "equipment_price": "150000.00",
    "first_monthly_fee": "25000.50", "equipment_returned_on": "2025-04-01"}}


def test_decision_json_matches_the_contract(engine: Engine) -> None:
    data = engine.decide(REFUND_CASE).to_dict()
    jsonschema.validate(data, load_schema("decision.schema.json"))
    assert data["amount"] == {"value": "175000.50", "currency": "CRC"}
    assert data["deadlines"] == [{"name": "refund_due", "date": "2025-05-05", "status": "open",
                                  "text": "Last day for the refund transfer (20 Costa Rican business days "
                                          "after the equipment is returned).", "rule": None}]
    assert data["policy"]["version"] == "2024.1" and len(data["policy"]["digest"]) == 64
    assert json.loads(json.dumps(data)) == data  # plain JSON types only


def test_decision_python_api(engine: Engine) -> None:
    decision = engine.decide(REFUND_CASE)
    assert decision.outcome == "refund"
    assert decision.amount is not None and decision.amount.value == Decimal("175000.50")
    assert isinstance(decision.amount.value, Decimal)
    assert decision.case_id == "C-1" and decision.as_of == date(2025, 4, 1)


def test_as_of_defaults_to_today() -> None:
    eng = Engine.load(POLICIES, today=lambda: date(2025, 7, 4))
    case = {k: v for k, v in REFUND_CASE.items() if k != "as_of"}
    assert eng.decide(case).as_of == date(2025, 7, 4)


def test_policy_digest_changes_with_the_policy(itellum_copy: Path) -> None:
    before = Engine.load(itellum_copy).policy("itellum", date(2025, 1, 1)).digest
    path = itellum_copy / "policy.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    after = Engine.load(itellum_copy).policy("itellum", date(2025, 1, 1)).digest
    assert before != after


def test_two_engines_with_different_policies_side_by_side(itellum_copy: Path) -> None:
    path = itellum_copy / "policy.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("amount: equipment_price + first_monthly_fee",
                                 "amount: equipment_price"), encoding="utf-8")
    edited = Engine.load(itellum_copy)
    bundled = Engine.load(POLICIES)
    assert edited.decide(REFUND_CASE).amount.value == Decimal("150000.00")
    assert bundled.decide(REFUND_CASE).amount.value == Decimal("175000.50")
    assert edited.decide(REFUND_CASE).amount.value == Decimal("150000.00")


@pytest.mark.parametrize("matcher", MATCHERS)
def test_threads_give_the_single_threaded_answers(matcher: str) -> None:
    eng = Engine.load(POLICIES, matcher=matcher)
    cases = []
    for day in range(1, 200):
        facts = {"installed_on": "2025-01-01", "failed_on": date.fromordinal(
            date(2025, 1, 1).toordinal() + day).isoformat(),
            "damage_cause": ("factory", "customer_misuse", "other")[day % 3],
            "shipping_cost": "1000", "repair_cost": "2000"}
        cases.append({"vendor": "itellum", "kind": "warranty", "as_of": "2025-12-31", "facts": facts})
    expected = [eng.decide(c).to_dict() for c in cases]
    barrier = threading.Barrier(8)

    def work(_: int) -> list[dict]:
        barrier.wait()
        return [eng.decide(c).to_dict() for c in cases]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, range(8)))
    eng.close()
    assert all(r == expected for r in results)
    assert {e["outcome"] for e in expected} == {"replace", "repair", "deny"}


def test_unknown_vendor_and_kind(engine: Engine) -> None:
    with pytest.raises(CaseError, match="unknown vendor 'acme'"):
        engine.decide({**REFUND_CASE, "vendor": "acme"})
    with pytest.raises(CaseError, match="unknown kind 'refunds'"):
        engine.decide({**REFUND_CASE, "kind": "refunds"})


def test_no_policy_in_force_before_effective_from(engine: Engine) -> None:
    with pytest.raises(CaseError, match="no itellum policy is in force on 2023-12-31"):
        engine.decide({**REFUND_CASE, "as_of": "2023-12-31"})


def test_load_reports_every_broken_file(tmp_path: Path) -> None:
    for name in ("a", "b"):
        shutil.copytree(POLICIES / "itellum", tmp_path / name)
        p = tmp_path / name / "policy.yaml"
        p.write_text(p.read_text(encoding="utf-8").replace("rounding: half_up", "rounding: nope"),
                     encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        Engine.load(tmp_path)
    assert sorted(Path(d.location.file).parent.name for d in info.value.diagnostics) == ["a", "b"]


def test_published_facts_schema_is_current() -> None:
    eng = Engine.load(POLICIES)
    for vendor, versions in eng.vendors.items():
        published = json.loads((ROOT / "schemas" / "facts" / f"{vendor}.json").read_text(encoding="utf-8"))
        assert published == facts_schema(versions[-1]), f"regenerate with: clause facts {vendor} --schema"


def test_facts_schema_accepts_the_example_cases() -> None:
    schema = json.loads((ROOT / "schemas" / "facts" / "itellum.json").read_text(encoding="utf-8"))
    jsonschema.validate(REFUND_CASE["facts"], schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"instaled_on": "2025-01-01"}, schema)


def test_bundled_example_cases_decide(engine: Engine) -> None:
    from cli import read_case  # noqa: PLC0415
    paths = sorted((POLICIES / "itellum" / "cases").glob("*.*"))
    outcomes = {p.name: engine.decide(read_case(str(p), "text")[0]).outcome for p in paths}
    assert outcomes == {"compensation-february.yaml": "credit", "delivery-defect.json": "replace",
                        "return-refund.yaml": "refund", "warranty-day-8.yaml": "repair",
                        "warranty-expired.yaml": "deny"}
