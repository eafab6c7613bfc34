"""Currencies: every ISO 4217 code, rounding to its minor unit, one currency per case."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from engine import CaseError, Engine, PolicyError
from engine import currency as cur

from conftest import FIXED_TODAY

POLICY = """\
clause: 1
vendor: shop
name: Shop
version: "1"
effective_from: "2020-01-01"
{currency}
country: US
timezone: America/New_York
languages: [en]
rounding: half_up
source: {{file: source.txt}}
facts:
  price: {{type: money, meaning: price}}
  fee: {{type: money, meaning: fee}}
  parts: {{type: list, meaning: parts, fields: {{cost: {{type: money, meaning: cost}}}}}}
kinds:
  refund:
    title: Refund
    combine: first_match
    otherwise: {{outcome: deny, reason: {{en: no}}}}
    rules:
      - id: third
        clause: A third of the price is refunded.
        when: "true"
        outcome: partial_refund
        amount: {amount}
        reason: {{en: "A third: {{amount}}"}}
"""


def shop(tmp_path: Path, currency: str = "currencies: any", amount: str = "price / 3") -> Engine:
    (tmp_path / "source.txt").write_text("A third of the price is refunded.\n", encoding="utf-8")
    (tmp_path / "policy.yaml").write_text(POLICY.format(currency=currency, amount=amount), encoding="utf-8")
    return Engine.load(tmp_path, today=lambda: FIXED_TODAY)


def refund(engine: Engine, **facts: Any) -> Any:
    return engine.decide({"vendor": "shop", "kind": "refund", "facts": facts})


@pytest.mark.parametrize(("price", "value", "code"), [
    ("100.00 SEK", "33.33", "SEK"), ("100 JPY", "33", "JPY"), ("100 KWD", "33.333", "KWD"),
    ("100 INR", "33.33", "INR"), ("100 CLF", "33.3333", "CLF"), ("2 JPY", "1", "JPY"),
])
def test_any_iso_4217_currency_rounds_to_its_minor_unit(tmp_path: Path, price: str, value: str,
                                                         code: str) -> None:
    d = refund(shop(tmp_path), price=price).to_dict()
    assert d["amount"] == {"value": value, "currency": code}
    assert d["reasons"][0]["text"] == f"A third: {value} {code}"


def test_minor_units_are_iso_not_cldr() -> None:
    # CLDR (babel) says 0 for IDR/HUF/COP; ISO 4217 says 2.
    assert [cur.minor_units(c) for c in ("IDR", "HUF", "COP", "JPY", "KWD", "USD")] == [2, 2, 2, 0, 3, 2]
    assert cur.quantum("BHD") == Decimal("0.001")
    assert not cur.known("XAU") and not cur.known("ZZZ") and not cur.known("usd")


def test_mapping_form_and_plain_amounts_take_the_case_currency(tmp_path: Path) -> None:
    engine = shop(tmp_path, amount="(price + fee) / 3")
    d = refund(engine, price={"value": "10", "currency": "NOK"}, fee="2").to_dict()
    assert d["amount"] == {"value": "4.00", "currency": "NOK"}


def test_two_currencies_are_a_case_error_naming_both_facts(tmp_path: Path) -> None:
    with pytest.raises(CaseError) as info:
        refund(shop(tmp_path), price="10 EUR", parts=[{"cost": "3 USD"}])
    (d,) = info.value.diagnostics
    assert d.code == "case_currency" and d.path == "/facts/parts/0/cost"
    assert "parts.0.cost is in USD but fact price is in EUR" in d.message


def test_plain_amount_needs_a_currency_where_any_is_accepted(tmp_path: Path) -> None:
    with pytest.raises(CaseError) as info:
        refund(shop(tmp_path), price="10")
    assert info.value.diagnostics[0].path == "/facts/price"
    assert "give the currency" in info.value.diagnostics[0].message


def test_listed_currencies_default_to_the_first_and_refuse_others(tmp_path: Path) -> None:
    engine = shop(tmp_path, "currencies: [SEK, NOK]")
    assert refund(engine, price="9").amount.currency == "SEK"
    assert refund(engine, price="9 NOK").amount.currency == "NOK"
    with pytest.raises(CaseError) as info:
        refund(engine, price="9 DKK")
    assert "amounts are in SEK, NOK for this vendor, found DKK" in info.value.diagnostics[0].message
    with pytest.raises(CaseError, match="not an ISO 4217"):
        refund(engine, price="9 ABC")


def test_named_currency_ties_literals_and_refuses_others(tmp_path: Path) -> None:
    engine = shop(tmp_path, "currency: JPY", "max(price / 3, money('500'))")
    assert refund(engine, price="900").to_dict()["amount"] == {"value": "500", "currency": "JPY"}
    with pytest.raises(CaseError, match="amounts are in JPY"):
        refund(engine, price="900 USD")


def test_money_literal_needs_a_named_currency(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as info:
        shop(tmp_path, "currencies: [USD, EUR]", "max(price / 3, money('5'))")
    (d,) = info.value.diagnostics
    assert d.code == "money_literal" and d.location.line > 1
    shop(tmp_path, "currencies: [USD, EUR]", "max(price / 3, money(0))")  # zero is in every currency


@pytest.mark.parametrize(("line", "fragment"), [
    ("currencies: [USD, XYZ]", "unknown currency 'XYZ'"),
    ("currency: XAU", "unknown currency 'XAU'"),
])
def test_unknown_policy_currency(tmp_path: Path, line: str, fragment: str) -> None:
    with pytest.raises(PolicyError, match=fragment):
        shop(tmp_path, line)


def test_currency_and_currencies_are_exclusive(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as info:
        shop(tmp_path, "currency: USD\ncurrencies: [USD]")
    assert info.value.diagnostics[0].code == "schema"


def test_bundled_policies_decide_in_the_case_currency(engine: Engine) -> None:
    case = {"vendor": "itellum", "kind": "return", "as_of": "2025-04-01", "facts": {
        "install_impossible_report": True, "ticket_opened": True, "equipment_undamaged": True,
        "original_packaging": True, "all_accessories": True, "equipment_price": "150.00 USD",
        "first_monthly_fee": "25.50 USD", "equipment_returned_on": "2025-04-01"}}
    assert engine.decide(case).to_dict()["amount"] == {"value": "175.50", "currency": "USD"}


@pytest.mark.parametrize(("value", "mode", "shown"), [
    ("-0.001", "half_up", "0.00"), ("-0.004", "half_even", "0.00"), ("-0.0049", "down", "0.00"),
    ("-0.005", "half_up", "-0.01"), ("0.001", "up", "0.01"), ("-0.001", "up", "-0.01"),
])
def test_rounding_never_gives_a_negative_zero(value: str, mode: str, shown: str) -> None:
    """A tiny negative result rounds to "0.00", never "-0.00" (shown to customers and compared)."""
    from engine import money  # noqa: PLC0415

    assert str(money.round_to(Decimal(value), Decimal("0.01"), mode)) == shown
