"""A question only when it matters: interval reasoning, bounded facts, questions (issue 8.2)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from engine import Engine
from engine import intervals as iv
from engine.errors import CaseError, PolicyError
from engine.loader import load_policy

from conftest import POLICIES

OK_RETURN = {"sent_to_miami": True, "has_ra": True, "ra_issued_on": "2025-03-01",
             "approved_for_return": True, "freight": "prepaid", "original_carton": True,
             "original_packing_materials": True, "ra_on_label": True, "carton_written_on": False}


def _return(engine: Engine, lang: str = "en", **facts: Any) -> dict[str, Any]:
    case = {"vendor": "intpho", "kind": "return", "as_of": "2025-03-25", "facts": {**OK_RETURN, **facts}}
    return engine.decide(case, lang=lang).to_dict()


# --- intervals -------------------------------------------------------------------

D = date


def test_compare_spans_exact_at_the_ends() -> None:
    week = iv.Span(D(2025, 3, 1), D(2025, 3, 7))
    assert iv.compare(week, "<=", iv.point(D(2025, 3, 7))) == iv.TRUE
    assert iv.compare(week, "<", iv.point(D(2025, 3, 7))) == iv.UNKNOWN
    assert iv.compare(week, "<", iv.point(D(2025, 3, 8))) == iv.TRUE
    assert iv.compare(week, ">", iv.point(D(2025, 3, 7))) == iv.FALSE
    assert iv.compare(week, "==", iv.point(D(2025, 3, 8))) == iv.FALSE
    assert iv.compare(week, "!=", iv.point(D(2025, 2, 28))) == iv.TRUE
    assert iv.compare(iv.point(5), "==", iv.point(5)) == iv.TRUE


def test_open_ends_of_dense_spans() -> None:
    above = iv.Span(Decimal(10), Decimal(20), lo_open=True)
    assert iv.compare(above, ">", iv.point(Decimal(10))) == iv.TRUE
    assert iv.compare(iv.Span(Decimal(10), Decimal(20)), ">", iv.point(Decimal(10))) == iv.UNKNOWN


def test_discrete_spans_close_their_open_ends() -> None:
    assert iv.normal(iv.Span(1, 5, True, True)) == iv.Span(2, 4)
    assert iv.normal(iv.Span(D(2025, 1, 1), D(2025, 1, 2), False, True)).point


def test_choices() -> None:
    both = iv.domain("bool")
    assert iv.compare(both, "==", iv.point(True)) == iv.UNKNOWN
    assert iv.compare(iv.point(False), "!=", iv.point(True)) == iv.TRUE
    enum = iv.Choice(frozenset({"a", "b"}))
    assert iv.member(enum, ("a", "b", "c"), False) == iv.TRUE
    assert iv.member(enum, ("c",), True) == iv.TRUE
    assert iv.member(enum, ("a",), False) == iv.UNKNOWN


def test_arithmetic_is_sound() -> None:
    days = iv.subtract(iv.Span(D(2025, 3, 10), D(2025, 3, 20)), iv.point(D(2025, 3, 1)))
    assert days == iv.Span(9, 19)
    later = iv.add(iv.Span(D(2025, 3, 1), D(2025, 3, 3)), iv.point(14))
    assert later == iv.Span(D(2025, 3, 15), D(2025, 3, 17))
    product = iv.corners(lambda a, b: a * b, iv.Span(Decimal(-2), Decimal(3)), iv.point(Decimal(2)))
    assert product == iv.Span(Decimal(-4), Decimal(6))
    assert iv.divide(iv.point(Decimal(1)), iv.Span(Decimal(-1), Decimal(1)), lambda a, b: a / b) is iv.TOP
    assert iv.absolute(iv.Span(-3, 2)) == iv.Span(0, 3)


def test_cut_and_bisect() -> None:
    parts = iv.cut(iv.Span(D(2025, 3, 1), D(2025, 3, 31)), D(2025, 3, 15))
    assert parts == [iv.Span(D(2025, 3, 1), D(2025, 3, 14)), iv.Span(D(2025, 3, 15), D(2025, 3, 15)),
                     iv.Span(D(2025, 3, 16), D(2025, 3, 31))]
    assert iv.cut(iv.Span(1, 10), Decimal("4.5")) == [iv.Span(1, 10)]  # no off-by-one on integers
    low, high = iv.bisect(iv.Span(1, 10))
    assert (low, high) == (iv.Span(1, 5), iv.Span(6, 10))
    assert iv.bisect(iv.Span(3, 3)) is None


def test_meet_and_join() -> None:
    assert iv.is_empty(iv.meet(iv.Span(1, 3), iv.Span(4, 6)))
    assert iv.meet(iv.Span(1, 5), iv.Span(3, 9)) == iv.Span(3, 5)
    assert iv.join(iv.Span(1, 2), iv.Span(5, 6)) == iv.Span(1, 6)


# --- the example and bounded facts -----------------------------------------

def test_arrival_within_the_ra_settles_the_expiry_rule(any_engine: Engine) -> None:
    """Shipped on or before arrival, arrival within the RA: only the RA-issue question remains."""
    d = _return(any_engine, arrived_on="2025-03-12")
    assert d["outcome"] == "needs_info"
    [missing] = d["missing_facts"]
    assert missing["fact"] == "shipped_back_on"
    assert missing["range"] == {"at_most": "2025-02-28"}  # shipped before the RA was issued?
    assert [r["rule"] for r in d["reasons"]] == ["return-no-ra"]


def test_arrival_known_and_shipped_after_the_ra_decides(any_engine: Engine) -> None:
    d = _return(any_engine, arrived_on="2025-03-12", shipped_back_on={"at_least": "2025-03-01"})
    assert (d["outcome"], d["missing_facts"]) == ("approve", [])


def test_arrival_before_the_ra_was_issued_decides_without_the_ship_date(any_engine: Engine) -> None:
    d = _return(any_engine, arrived_on="2025-02-27")
    assert (d["outcome"], d["missing_facts"]) == ("deny", [])
    assert [r["rule"] for r in d["reasons"]] == ["return-no-ra"]


def test_ship_date_bound_asks_the_deciding_range(any_engine: Engine) -> None:
    d = _return(any_engine, shipped_back_on={"at_least": "2025-03-02"})
    assert d["outcome"] == "needs_info"
    assert d["missing_facts"] == [{
        "fact": "shipped_back_on", "why": "could change the outcome: rule return-ra-expired",
        "question": "On what day did you hand the product to the carrier to send it back to intpho?",
        "range": {"at_most": "2025-03-15"}}]


def test_question_in_the_requested_language(engine: Engine) -> None:
    d = _return(engine, lang="es", shipped_back_on={"at_least": "2025-03-02"})
    assert d["missing_facts"][0]["question"].startswith("¿Qué día entregó")


def test_question_falls_back_to_the_meaning(engine: Engine) -> None:
    d = engine.decide({"vendor": "intpho", "kind": "return_inspection", "as_of": "2025-03-25",
                       "facts": {"remedy_requested": "same_model", "all_materials_included": True,
                                 "units": 1, "unit_price": "10.00"}}).to_dict()
    decl = engine.policy("intpho").facts["inspection_result"]
    assert not decl.question
    assert {"fact": "inspection_result", "question": decl.meaning}.items() <= d["missing_facts"][0].items()


def test_irrelevant_missing_fact_is_not_asked(any_engine: Engine) -> None:
    """Not approved for return: every ship date gives the same refusal."""
    d = _return(any_engine, approved_for_return=False)
    assert (d["outcome"], d["missing_facts"]) == ("deny", [])
    assert [r["rule"] for r in d["reasons"]] == ["return-not-approved"]


def test_enum_one_of_decides_when_all_values_agree(any_engine: Engine) -> None:
    """A month in service, within warranty: factory and other causes are both repaired."""
    facts: dict[str, Any] = {"installed_on": "2025-03-01", "failed_on": "2025-04-05"}
    case = {"vendor": "itellum", "kind": "warranty", "as_of": "2025-10-01", "facts": facts}
    assert any_engine.decide(case).outcome == "needs_info"
    facts["damage_cause"] = {"one_of": ["factory", "other"]}
    bounded = any_engine.decide(case).to_dict()
    facts["damage_cause"] = "factory"
    known = any_engine.decide(case).to_dict()
    assert bounded["outcome"] != "needs_info" and bounded == known
    facts["damage_cause"] = {"one_of": ["factory", "customer_misuse"]}
    d = any_engine.decide(case).to_dict()
    assert d["outcome"] == "needs_info"
    assert d["missing_facts"][0]["range"] == {"one_of": ["customer_misuse"]} or \
        d["missing_facts"][0]["range"] == {"one_of": ["factory"]}


def test_amount_depending_on_a_missing_fact_is_needed(any_engine: Engine) -> None:
    case = {"vendor": "intpho", "kind": "cancellation", "as_of": "2025-03-25",
            "facts": {"order_total": {"at_least": "10.00", "at_most": "20.00"}}}
    d = any_engine.decide(case).to_dict()
    assert d["outcome"] == "needs_info"
    assert [m["fact"] for m in d["missing_facts"]] == ["order_shipped"]
    case["facts"]["order_shipped"] = True
    assert any_engine.decide(case).outcome == "deny"  # the amount does not matter for a refusal
    case["facts"]["order_shipped"] = False
    d = any_engine.decide(case).to_dict()
    assert d["outcome"] == "needs_info" and [m["fact"] for m in d["missing_facts"]] == ["order_total"]


def test_every_fact_a_fee_needs_is_asked_at_once(any_engine: Engine) -> None:
    """units * max(25, 15% of unit_price): both missing, both asked — not one per round trip."""
    case: dict[str, Any] = {"vendor": "intpho", "kind": "return_inspection", "as_of": "2025-02-01",
                            "facts": {"inspection_result": "non_defective"}}
    d = any_engine.decide(case).to_dict()
    assert sorted(m["fact"] for m in d["missing_facts"]) == ["unit_price", "units"]
    case["facts"]["units"] = 3
    d = any_engine.decide(case).to_dict()
    assert [m["fact"] for m in d["missing_facts"]] == ["unit_price"]
    case["facts"]["unit_price"] = "100.00"
    d = any_engine.decide(case).to_dict()
    assert d["missing_facts"] == [] and d["fees"][0]["value"] == "75.00"  # 3 x max(25, 15.00)


ITELLUM_EVENT = [{"start": "2025-05-11T00:01:00+00:00", "end": "2025-05-11T00:30:00+00:00",
                  "compliance_pct": "25"}]


@pytest.mark.parametrize(("recharge", "outcome", "asked"), [
    ("9.99", "credit", []),                   # 29 min of a period of at least 5 months: 0.00 whatever its start
    ("500000", "needs_info", ["period_start"]),  # a large recharge: the start changes the amount
])
def test_amount_rounding_alike_for_every_value_is_decided(any_engine: Engine, recharge: str, outcome: str,
                                                         asked: list[str]) -> None:
    """The check "every interruption lies within the period" bounds a missing period_start."""
    facts = {"service_plan": "prepaid", "monthly_rate": "9.99", "last_recharge": recharge,
             "period_end": "2025-10-28", "interruptions": ITELLUM_EVENT, "exempt_from_liability": False}
    d = any_engine.decide({"vendor": "itellum", "kind": "compensation", "as_of": "2025-05-20",
                           "facts": facts}).to_dict()
    assert (d["outcome"], [m["fact"] for m in d["missing_facts"]]) == (outcome, asked)
    if outcome == "credit":
        assert d["amount"] == {"value": "0.00", "currency": "CRC"}


def test_a_list_fact_an_undecided_rule_reads_is_asked(any_engine: Engine) -> None:
    """Interruption minutes come from a list: with no interruptions given, the list is needed."""
    facts = {"service_plan": "postpaid", "monthly_rate": "1", "period_end": "2025-03-03",
             "exempt_from_liability": False}
    d = any_engine.decide({"vendor": "itellum", "kind": "compensation", "as_of": "2026-03-07",
                           "facts": facts}).to_dict()
    assert (d["outcome"], [m["fact"] for m in d["missing_facts"]]) == ("needs_info", ["interruptions"])


def test_a_step_both_answers_ask_for_is_not_a_question(any_engine: Engine) -> None:
    """ippbx exchange, photos not sent: contacted or not, the answer is needs_info; only the dates
    (late or not) and the defect change the decision — and the window's threshold is found
    (Indonesian working days), not given up on."""
    facts = {"requested_on": "2025-03-16", "sealed_neatly": False, "used": False, "dirty": True,
             "damaged_after_receipt": True, "photos_sent": False, "received_packaging": "bubble_wrap",
             "replacement_in_stock": True, "purchase_price": "100000"}
    d = any_engine.decide({"vendor": "ippbx-store", "kind": "exchange", "as_of": "2025-02-20",
                           "facts": facts}).to_dict()
    assert d["outcome"] == "needs_info"
    assert sorted(m["fact"] for m in d["missing_facts"]) == ["defective_on_receipt", "received_on"]


# --- case errors -------------------------------------------------------------------

@pytest.mark.parametrize(("facts", "needle"), [
    ({"arrived_on": "2025-03-12", "shipped_back_on": {"at_least": "2025-03-13"}},
     "facts shipped_back_on and arrived_on contradict each other"),
    ({"arrived_on": "2025-03-12", "shipped_back_on": "2025-03-13"},
     "facts shipped_back_on and arrived_on contradict each other"),
    ({"shipped_back_on": {"at_least": "2025-03-13", "at_most": "2025-03-01"}}, "no value fits"),
    ({"has_ra": {"at_most": True}}, "at_least/at_most need an orderable type"),
    ({"shipped_back_on": {"one_of": ["2025-03-01"]}}, "one_of gives the possible values"),
    ({"freight": {"one_of": ["prepaid", "air"]}}, "expected one of prepaid, collect"),
    ({"freight": {"one_of": []}}, "non-empty list"),
    ({"shipped_back_on": {"at_most": "March"}}, "expected a date"),
])
def test_bad_bounds_are_case_errors(engine: Engine, facts: dict[str, Any], needle: str) -> None:
    with pytest.raises(CaseError) as err:
        _return(engine, **facts)
    messages = [d.message for d in err.value.diagnostics]
    assert any(needle in m for m in messages), messages
    assert all(d.path.startswith("/facts") for d in err.value.diagnostics)


def test_check_relations_narrow_and_contradict(engine: Engine) -> None:
    """ippbx-store's check ``requested_on >= received_on`` bounds a missing request day."""
    case = {"vendor": "ippbx-store", "kind": "exchange", "as_of": "2025-03-25",
            "facts": {"received_on": "2025-03-10", "requested_on": {"at_most": "2025-03-01"}}}
    with pytest.raises(CaseError) as err:
        engine.decide(case)
    assert "requested_on and received_on" in err.value.diagnostics[0].message


# --- policy side -------------------------------------------------------------------

def _policy_with(tmp_path: Path, fact_extra: str) -> Path:
    src = (POLICIES / "intpho" / "policy.yaml").read_text(encoding="utf-8")
    anchor = "    at_most: arrived_on\n"
    (tmp_path / "source.txt").write_text((POLICIES / "intpho" / "source.txt").read_text(encoding="utf-8"),
                                         encoding="utf-8")
    path = tmp_path / "policy.yaml"
    path.write_text(src.replace(anchor, fact_extra), encoding="utf-8")
    return path


@pytest.mark.parametrize(("extra", "needle"), [
    ("    at_most: nowhere\n", "'nowhere', which is not a declared fact"),
    ("    at_most: has_ra\n", "a bound must have the fact's type"),
    ("    at_least: shipped_back_on\n", "cannot be bounded by itself"),
])
def test_policy_bound_errors_are_located(tmp_path: Path, extra: str, needle: str) -> None:
    with pytest.raises(PolicyError) as err:
        load_policy(_policy_with(tmp_path, extra))
    [diag] = err.value.diagnostics
    assert needle in diag.message and diag.location is not None and diag.location.line > 1
    assert diag.path.startswith("/facts/shipped_back_on/")


def test_bound_on_a_bool_fact_is_refused(tmp_path: Path) -> None:
    path = _policy_with(tmp_path, "    at_most: arrived_on\n")
    text = path.read_text(encoding="utf-8").replace(
        "  has_ra:\n    type: bool\n", "  has_ra:\n    type: bool\n    at_most: order_shipped\n")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert "needs an orderable fact" in err.value.diagnostics[0].message


# --- every surface -----------------------------------------------------------------

def test_cli_accepts_bounded_facts(runner: Any, tmp_path: Path) -> None:
    from cli import main  # noqa: PLC0415

    case = {"vendor": "intpho", "kind": "return", "as_of": "2025-03-25",
            "facts": {**OK_RETURN, "shipped_back_on": {"at_least": "2025-03-02"}}}
    path = tmp_path / "case.json"
    path.write_text(json.dumps(case), encoding="utf-8")
    result = runner.invoke(main, ["decide", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["missing_facts"][0]["range"] == {"at_most": "2025-03-15"}
    text = runner.invoke(main, ["decide", str(path)])
    assert "what decides: is it at most 2025-03-15?" in text.output


def test_facts_schema_accepts_bounds(engine: Engine) -> None:
    from jsonschema import Draft202012Validator  # noqa: PLC0415

    from engine.factschema import facts_schema  # noqa: PLC0415

    validator = Draft202012Validator(facts_schema(engine.policy("intpho")))
    assert validator.is_valid({"shipped_back_on": {"at_most": "2025-03-10"}, "freight": {"one_of": ["prepaid"]}})
    assert not validator.is_valid({"shipped_back_on": {"before": "2025-03-10"}})
    assert not validator.is_valid({"freight": {"at_most": "prepaid"}})


def test_a_missing_moment_read_by_a_business_day_deadline_leaves_the_deadline_unknown(tmp_path: Path) -> None:
    """A date-time fact reaching a business-day function is searched within the calendar's years
    as moments, not dates (found by the policy fuzzer: comparing a datetime with a date crashed)."""
    home = tmp_path / "policies"
    (home / "tinyco").mkdir(parents=True)
    (home / "tinyco" / "source.txt").write_text("Paid orders are refunded within 5 business days.\n")
    (home / "tinyco" / "policy.yaml").write_text("""\
clause: 1
vendor: tinyco
name: Tiny Co
version: "1"
effective_from: "2020-01-01"
currency: USD
country: US
timezone: America/New_York
languages: [en]
rounding: half_up
source: {file: source.txt}
facts:
  paid: {type: bool, meaning: the order was paid}
  paid_at: {type: datetime, meaning: when the order was paid}
derived:
  refund_by: {expr: "add_business_days(date_of(paid_at), 5)", meaning: last day of the refund}
kinds:
  refund:
    title: Refunds
    combine: first_match
    otherwise: {outcome: deny, reason: {en: Not paid.}}
    rules:
      - id: paid
        clause: Paid orders are refunded within 5 business days.
        when: paid
        outcome: refund
        deadlines:
          - name: refund_by
            date: refund_by
            text: {en: Last day of the refund.}
        reason: {en: Paid orders are refunded.}
""")
    engine = Engine.load(home)
    case = {"vendor": "tinyco", "kind": "refund", "as_of": "2025-03-03", "facts": {"paid": True}}
    decision = engine.decide(case).to_dict()
    assert decision["outcome"] == "refund"
    assert [(d["name"], d["date"], d["status"]) for d in decision["deadlines"]] == [("refund_by", None, "unknown")]
    case["facts"]["paid_at"] = "2025-02-28T15:00:00-05:00"  # a Friday: 5 business days later
    known = engine.decide(case).to_dict()["deadlines"][0]
    assert (known["date"], known["status"]) == ("2025-03-07", "open")
