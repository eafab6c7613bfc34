"""engine/case.py through Engine.decide on the bundled Itellum policy.

Covers how case facts are checked and coerced before matching: unknown and
misspelled facts (with a hint), wrong types (dates, money as a binary float
or in another currency, bools given as numbers, enum values, list records),
derived facts given as input, explicit nulls, unknown vendors and kinds,
the policy's consistency checks, and the accepted money spellings.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from engine import CaseError, Engine
from engine.case import Case
from engine.model import Money


def warranty(**facts: Any) -> dict[str, Any]:
    """A warranty case: a failure 50 days after installation, not the customer's fault."""
    base: dict[str, Any] = {"installed_on": "2025-01-10", "failed_on": "2025-03-01",
                            "damage_cause": "other"}
    base.update(facts)
    return {"id": "T-1", "vendor": "itellum", "kind": "warranty", "as_of": "2025-03-10",
            "facts": {k: v for k, v in base.items() if v is not ...}}


def refused(engine: Engine, case: dict[str, Any]) -> tuple[Any, ...]:
    with pytest.raises(CaseError) as info:
        engine.decide(case)
    return info.value.diagnostics


# --- accepted cases -----------------------------------------------------------------

def test_baseline_warranty_repair(engine: Engine) -> None:
    d = engine.decide(warranty(shipping_cost="123.45"))
    assert d.outcome == "repair"
    assert d.reasons[0].rule == "warranty-workshop-repair"
    assert d.customer_pays == Money(Decimal("123.45"), "CRC")
    assert d.case_id == "T-1" and d.as_of == date(2025, 3, 10)


@pytest.mark.parametrize(
    "shipping",
    ["123.45", "123.45 CRC", " 123.45 CRC ", {"value": "123.45", "currency": "CRC"},
     {"value": Decimal("123.45"), "currency": "CRC"}, Decimal("123.45")],
    ids=["string", "string-with-currency", "padded", "mapping", "mapping-decimal", "decimal"],
)
def test_money_spellings_accepted(engine: Engine, shipping: Any) -> None:
    d = engine.decide(warranty(shipping_cost=shipping))
    assert d.customer_pays is not None
    assert d.customer_pays.value == Decimal("123.45")
    assert type(d.customer_pays.value) is Decimal
    assert d.customer_pays.to_dict() == {"value": "123.45", "currency": "CRC"}


def test_integer_money_accepted(engine: Engine) -> None:
    d = engine.decide(warranty(shipping_cost=5000))
    assert d.customer_pays is not None
    assert d.customer_pays.to_dict() == {"value": "5000.00", "currency": "CRC"}


def test_native_dates_accepted(engine: Engine) -> None:
    d = engine.decide(warranty(installed_on=date(2025, 1, 10), failed_on=date(2025, 3, 1)))
    assert d.outcome == "repair"


def test_case_object_accepted(engine: Engine) -> None:
    case = Case.from_mapping(warranty(shipping_cost="10"))
    assert engine.decide(case).outcome == "repair"


# --- unknown facts ----------------------------------------------------------------------

def test_misspelled_fact(engine: Engine) -> None:
    case = warranty(shipping_cost=..., shiping_cost="10")
    (d,) = refused(engine, case)
    assert d.code == "unknown_fact"
    assert "'shiping_cost'" in d.message
    assert d.hint == "did you mean 'shipping_cost'?"
    assert d.path == "/facts/shiping_cost"


def test_unrelated_unknown_fact_points_to_listing(engine: Engine) -> None:
    (d,) = refused(engine, warranty(colour="blue"))
    assert d.code == "unknown_fact"
    assert "'colour'" in d.message
    assert d.hint == "`clause facts itellum` lists them"


def test_derived_fact_given_as_input_refused(engine: Engine) -> None:
    (d,) = refused(engine, warranty(days_in_service=3))
    assert d.code == "unknown_fact"
    assert d.message == "fact 'days_in_service' is derived by the itellum policy; do not give it"
    assert d.path == "/facts/days_in_service"


# --- wrong types and values ------------------------------------------------------------------

@pytest.mark.parametrize(
    ("facts", "fact", "fragment"),
    [
        ({"failed_on": "last tuesday"}, "failed_on", "expected a date YYYY-MM-DD"),
        ({"failed_on": "2025-3-1"}, "failed_on", "expected a date YYYY-MM-DD"),
        ({"failed_on": "2025-02-30"}, "failed_on", "day is out of range"),
        ({"failed_on": 20250301}, "failed_on", "expected a date"),
        ({"shipping_cost": 12.5}, "shipping_cost", "binary float"),
        ({"shipping_cost": "100 EUR"}, "shipping_cost", "amounts are in CRC, USD"),
        ({"shipping_cost": {"value": "100", "currency": "SEK"}}, "shipping_cost", "found SEK"),
        ({"shipping_cost": {"value": "100"}}, "shipping_cost", "exactly 'value' and 'currency'"),
        ({"shipping_cost": "abc"}, "shipping_cost", "shipping_cost"),
        ({"shipping_cost": "NaN"}, "shipping_cost", "finite"),
        ({"shipping_cost": "-5"}, "shipping_cost", "below the minimum 0"),
        ({"shipping_cost": True}, "shipping_cost", "expected a number"),
        ({"damage_cause": "act_of_god"}, "damage_cause", "expected one of factory, customer_misuse, other"),
        ({"damage_cause": 1}, "damage_cause", "expected one of"),
    ],
    ids=["date-words", "date-unpadded", "date-impossible", "date-number", "money-float",
         "money-other-currency", "money-mapping-other-currency", "money-mapping-no-currency",
         "money-word", "money-nan", "money-below-minimum", "money-bool", "enum-unknown",
         "enum-number"],
)
def test_wrong_fact_type(engine: Engine, facts: dict[str, Any], fact: str, fragment: str) -> None:
    (d,) = refused(engine, warranty(**facts))
    assert d.code == "case_fact_type"
    assert d.path == f"/facts/{fact}"
    assert d.message.startswith(f"fact {fact}: ")
    assert fragment in d.message


@pytest.mark.parametrize(
    "value", [1, 0, "true", "yes"], ids=["one", "zero", "string-true", "string-yes"],
)
def test_bool_must_be_a_bool(engine: Engine, value: Any) -> None:
    case = {"vendor": "itellum", "kind": "delivery", "as_of": "2025-03-10",
            "facts": {"defect_at_delivery": value}}
    (d,) = refused(engine, case)
    assert d.code == "case_fact_type"
    assert d.path == "/facts/defect_at_delivery"
    assert f"expected true or false, found {value!r}" in d.message


def test_bool_true_accepted(engine: Engine) -> None:
    case = {"vendor": "itellum", "kind": "delivery", "as_of": "2025-03-10",
            "facts": {"defect_at_delivery": True}}
    assert engine.decide(case).outcome == "replace"


def test_every_bad_fact_is_reported_at_once(engine: Engine) -> None:
    diags = refused(engine, warranty(failed_on="soon", damage_cause="fire", shiping_cost="1"))
    assert sorted((d.code, d.path) for d in diags) == [
        ("case_fact_type", "/facts/damage_cause"),
        ("case_fact_type", "/facts/failed_on"),
        ("unknown_fact", "/facts/shiping_cost"),
    ]


# --- list facts ---------------------------------------------------------------------------------

def compensation(events: Any) -> dict[str, Any]:
    return {"vendor": "itellum", "kind": "compensation", "as_of": "2025-03-31",
            "facts": {"service_plan": "postpaid", "monthly_rate": "30000.00",
                      "period_start": "2025-03-01", "period_end": "2025-03-31",
                      "exempt_from_liability": False, "interruptions": events}}


EVENT = {"start": "2025-03-10T10:00:00-06:00", "end": "2025-03-10T12:00:00-06:00",
         "compliance_pct": "0"}


def test_list_fact_accepted(engine: Engine) -> None:
    d = engine.decide(compensation([EVENT]))
    assert d.outcome == "credit"
    # 2 x 30000 x 120 min / (744 h x 60) = 161.29 (half up)
    assert d.amount == Money(Decimal("161.29"), "CRC")


@pytest.mark.parametrize(
    ("events", "path", "fragment"),
    [
        ([{"start": EVENT["start"], "end": EVENT["end"]}], "/facts/interruptions/0",
         "missing field 'compliance_pct'"),
        ([{**EVENT, "cause": "storm"}], "/facts/interruptions/0/cause", "unknown field 'cause'"),
        ([{**EVENT, "compliance_pct": "140"}], "/facts/interruptions/0/compliance_pct",
         "above the maximum 100"),
        ([{**EVENT, "start": "yesterday"}], "/facts/interruptions/0/start", "ISO date-time"),
        ([EVENT, "oops"], "/facts/interruptions/1", "expected a record"),
        ({"start": EVENT["start"]}, "/facts/interruptions", "expected a list of records"),
    ],
    ids=["missing-field", "unknown-field", "field-above-maximum", "field-bad-datetime",
         "item-not-record", "not-a-list"],
)
def test_bad_list_record(engine: Engine, events: Any, path: str, fragment: str) -> None:
    (d,) = refused(engine, compensation(events))
    assert d.code == "case_fact_type"
    assert d.path == path
    assert fragment in d.message


# --- nulls -------------------------------------------------------------------------------------

def test_explicit_null_is_like_absent(engine: Engine) -> None:
    with_null = engine.decide(warranty(shipping_cost=None)).to_dict()
    absent = engine.decide(warranty()).to_dict()
    assert with_null == absent
    assert with_null["outcome"] == "repair"
    assert with_null["customer_pays"] is None
    assert [m["fact"] for m in with_null["missing_facts"]] == ["shipping_cost"]


def test_null_condition_fact_asks_for_it(engine: Engine) -> None:
    d = engine.decide(warranty(damage_cause=None))
    assert d.outcome == "needs_info"
    assert [m.fact for m in d.missing_facts] == ["damage_cause"]


# --- malformed cases -----------------------------------------------------------------------------

def test_unknown_vendor(engine: Engine) -> None:
    (d,) = refused(engine, {**warranty(), "vendor": "acme"})
    assert d.code == "case"
    assert "unknown vendor 'acme'" in d.message and "itellum" in d.message


def test_unknown_kind(engine: Engine) -> None:
    (d,) = refused(engine, {**warranty(), "kind": "warrenty"})
    assert d.code == "case"
    assert "unknown kind 'warrenty'" in d.message and "warranty" in d.message
    assert d.path == "/kind"


def test_policy_not_in_force(engine: Engine) -> None:
    (d,) = refused(engine, {**warranty(), "as_of": "2023-12-31"})
    assert d.code == "case"
    assert "no itellum policy is in force on 2023-12-31" in d.message


@pytest.mark.parametrize(
    ("case", "path"),
    [
        ({"kind": "warranty", "facts": {}}, "/vendor"),
        ({"vendor": "itellum", "facts": {}}, "/kind"),
        ({"vendor": "itellum", "kind": "warranty", "facts": [1]}, "/facts"),
        ({"vendor": "itellum", "kind": "warranty", "facts": {}, "fact": {}}, "/fact"),
        ({"vendor": "itellum", "kind": "warranty", "as_of": "10/03/2025"}, "/as_of"),
    ],
    ids=["no-vendor", "no-kind", "facts-not-mapping", "unknown-case-field", "bad-as-of"],
)
def test_malformed_case(engine: Engine, case: dict[str, Any], path: str) -> None:
    (d,) = refused(engine, case)
    assert (d.code, d.path) == ("case", path)


def test_case_not_a_mapping(engine: Engine) -> None:
    with pytest.raises(CaseError) as info:
        engine.decide(["vendor", "itellum"])  # type: ignore[arg-type]
    assert [d.code for d in info.value.diagnostics] == ["case"]


# --- policy checks --------------------------------------------------------------------------------

def test_check_failed_before_installed(engine: Engine) -> None:
    (d,) = refused(engine, warranty(installed_on="2025-03-01", failed_on="2025-02-28"))
    assert d.code == "case_check"
    assert d.message == ("failed_on is before installed_on; the equipment cannot fail "
                         "before it is installed")
    assert d.hint == "policy check: failed_on >= installed_on"


def test_check_on_list_facts(engine: Engine) -> None:
    reversed_event = {**EVENT, "start": EVENT["end"], "end": EVENT["start"]}
    diags = refused(engine, compensation([reversed_event]))
    assert [d.code for d in diags] == ["case_check"]
    assert diags[0].message == "an interruption ends before it starts"


def test_check_skipped_when_its_facts_are_absent(engine: Engine) -> None:
    d = engine.decide(warranty(installed_on=...))
    assert d.outcome == "needs_info"
    assert "installed_on" in [m.fact for m in d.missing_facts]


def test_same_day_failure_passes_the_check(engine: Engine) -> None:
    d = engine.decide(warranty(installed_on="2025-03-01", failed_on="2025-03-01",
                               damage_cause="factory"))
    assert d.outcome == "replace"


def test_an_amount_written_with_more_than_64_characters_is_refused(engine: Engine) -> None:
    """The fast reader accepted "000…01" (101 characters) as 1 while the checking path refused it."""
    case = {"vendor": "itellum", "kind": "return", "as_of": "2025-03-10",
            "facts": {"equipment_price": "0" * 100 + "1"}}
    (diag,) = [d for d in refused(engine, case) if d.path == "/facts/equipment_price"]
    assert "equipment_price" in diag.message and "number" in diag.message, diag.message


@pytest.mark.parametrize(("case_id", "found"), [("a\x00b", "U+0000 at position 2"), ("tab\there", "U+0009 at position 4"),
                                                ("é\x85", "U+0085 at position 2"), ("x\x7f", "U+007F at position 2")])
def test_a_case_id_with_control_characters_is_refused_on_the_id(case_id: str, found: str) -> None:
    """Review: a NUL in the id reached the log, where PostgreSQL refused it (a 500 over HTTP)."""
    engine = Engine.load()
    case = {"id": case_id, "vendor": "itellum", "kind": "delivery", "as_of": "2025-02-14",
            "facts": {"defect_at_delivery": True}}
    with pytest.raises(CaseError) as caught:
        engine.decide(case)
    diag = caught.value.diagnostics[0]
    assert diag.path == "/id" and "control characters" in diag.message and found in diag.message
    assert engine.decide({**case, "id": "ok é-1"}).case_id == "ok é-1"
