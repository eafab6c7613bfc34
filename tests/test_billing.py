"""Billing periods and prepaid terms: the unused part by days and by whole cycles."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from engine import CaseError, Engine
from engine import billing as b
from engine.money import CONTEXT

D = date


@pytest.mark.parametrize(("start", "end", "on", "days"), [
    (D(2025, 1, 1), D(2025, 1, 31), D(2025, 1, 10), 21),
    (D(2025, 1, 1), D(2025, 1, 31), D(2025, 1, 31), 0),     # the last day: nothing unused
    (D(2025, 1, 1), D(2025, 1, 31), D(2024, 12, 20), 31),   # before the period: all unused
    (D(2025, 1, 1), D(2025, 1, 31), D(2025, 3, 1), 0),
])
def test_unused_days(start: date, end: date, on: date, days: int) -> None:
    assert b.unused_days(start, end, on) == days


def test_pro_rata_days_is_exact_and_unrounded() -> None:
    assert b.pro_rata_days(Decimal("29.99"), D(2025, 3, 1), D(2025, 3, 31), D(2025, 3, 10)) \
        == CONTEXT.divide(Decimal("629.79"), Decimal(31))  # 29.99 x 21 / 31 to 34 digits


@pytest.mark.parametrize(("start", "end", "months", "n"), [
    (D(2025, 1, 1), D(2025, 12, 31), 1, 12), (D(2025, 1, 1), D(2025, 12, 30), 1, 11),
    (D(2025, 1, 31), D(2026, 1, 30), 1, 12),   # month ends clamp (Jan 31 -> Feb 28 -> Mar 31...)
    (D(2025, 1, 1), D(2026, 12, 31), 3, 8), (D(2025, 1, 1), D(2025, 6, 30), 12, 0),
])
def test_cycles_between(start: date, end: date, months: int, n: int) -> None:
    assert b.cycles_between(start, end, months) == n


@pytest.mark.parametrize(("on", "unused"), [
    (D(2024, 12, 31), 12), (D(2025, 1, 1), 11), (D(2025, 3, 15), 9), (D(2025, 3, 31), 9),
    (D(2025, 4, 1), 8), (D(2025, 12, 31), 0), (D(2026, 2, 1), 0),
])
def test_unused_cycles_count_the_whole_cycles_after_the_current_one(on: date, unused: int) -> None:
    assert b.unused_cycles(D(2025, 1, 1), D(2025, 12, 31), on, 1) == unused


def test_pro_rata_cycles() -> None:
    assert b.pro_rata_cycles(Decimal("120.00"), D(2025, 1, 1), D(2025, 12, 31), D(2025, 3, 15), 1) \
        == Decimal("90")
    with pytest.raises(ValueError, match="shorter than one cycle"):
        b.pro_rata_cycles(Decimal(1), D(2025, 1, 1), D(2025, 1, 20), D(2025, 1, 2), 1)
    with pytest.raises(ValueError, match="ends .* before it starts"):
        b.cycles_between(D(2025, 2, 1), D(2025, 1, 1), 1)
    with pytest.raises(ValueError, match="1 to 120 months"):
        b.cycles_between(D(2025, 1, 1), D(2025, 12, 31), 0)


TERM = {"violation": "none", "cancelled_by": "customer", "requested_via": "account_portal",
        "billing": "prepaid", "cycle_start": "2025-03-01", "cycle_end": "2025-03-31", "cycle_fee": "10.00",
        "cycle_months": 1, "term_start": "2025-01-01", "term_end": "2025-12-31", "term_fee": "120.00",
        "cancel_requested_on": "2025-03-15"}


def test_prepaid_year_in_the_voip_policy_on_both_back_ends(any_engine: Engine) -> None:
    d = any_engine.decide({"vendor": "voip-provider", "kind": "cancellation", "as_of": "2025-03-15",
                           "facts": TERM}).to_dict()
    assert (d["outcome"], d["amount"]) == ("partial_refund", {"value": "90.00", "currency": "USD"})
    assert "9 of its 12 billing cycles" in d["reasons"][0]["text"]


def test_a_term_without_a_whole_cycle_left_refunds_nothing(engine: Engine) -> None:
    facts = {**TERM, "cycle_months": 12, "term_end": "2025-06-30"}  # no whole yearly cycle in it
    d = engine.decide({"vendor": "voip-provider", "kind": "cancellation", "as_of": "2025-03-15",
                       "facts": facts})
    assert (d.outcome, d.amount, d.reasons[0].rule) == ("cancel", None, "cancel-end-of-cycle")


def test_a_cycle_length_outside_its_bounds_is_refused_as_input(engine: Engine) -> None:
    facts = {**TERM, "cycle_months": 0}  # below the declared minimum of 1
    with pytest.raises(CaseError):
        engine.decide({"vendor": "voip-provider", "kind": "cancellation", "as_of": "2025-03-15",
                       "facts": facts})
