"""Edges of the generated decide path found by review: each failed before its fix.

- texts: a decimal shown in a reason must not follow the caller's decimal
  context (``capitals``), on either route;
- amounts as text: the quick reading of short digit strings must keep the
  engine's range (below 10**12) exactly as every other spelling does.
"""

from __future__ import annotations

import decimal
from decimal import Decimal
from pathlib import Path

import pytest

from engine import Engine
from engine.errors import CaseError

POLICY = """\
clause: 1
vendor: acme
name: Acme
version: "1"
effective_from: "2020-01-01"
currency: USD
country: US
timezone: America/New_York
languages: [en]
rounding: half_up
source: {file: source.txt}
facts:
  ratio: {type: decimal, meaning: a ratio}
  price: {type: money, meaning: price}
  flag: {type: bool, meaning: flag}
kinds:
  ret:
    title: Returns
    combine: first_match
    otherwise: {outcome: deny, reason: {en: "no refund at ratio {ratio}"}}
    rules:
      - id: r1
        clause: Refunds apply.
        when: ratio > 1 and flag
        outcome: refund
        amount: price
        reason: {en: "refund at ratio {ratio}"}
"""


@pytest.fixture()
def engine(tmp_path: Path) -> Engine:
    home = tmp_path / "acme"
    home.mkdir()
    (home / "source.txt").write_text("Refunds apply.\n", encoding="utf-8")
    (home / "policy.yaml").write_text(POLICY, encoding="utf-8")
    return Engine.load(home)


def _case(**facts: object) -> dict:
    return {"vendor": "acme", "kind": "ret", "as_of": "2025-01-01", "facts": facts}


@pytest.mark.parametrize("flag", [True, False], ids=["rule-reason", "otherwise-reason"])
def test_fast_path_texts_do_not_depend_on_the_callers_decimal_context(engine: Engine, flag: bool) -> None:
    """The generated path fills texts outside engine.money.CONTEXT: str(Decimal) would follow
    the caller's ``capitals`` ('1e+3' instead of '1E+3')."""
    case = _case(ratio="1e3", price="10", flag=flag)
    want = engine._run(case, "en")[0]  # generic: texts rendered inside CONTEXT
    with decimal.localcontext() as ctx:
        ctx.capitals = 0
        fast = engine._decide_fast(case, "en")
        decided = engine.decide(case)
    assert fast is not None  # the generated path answers this plain case
    assert fast.reasons == want.reasons
    assert decided == want and decided.to_dict() == want.to_dict()


@pytest.mark.parametrize("text", ["1000000000000", "9999999999999"])
def test_a_thirteen_digit_amount_written_as_text_is_range_checked(engine: Engine, text: str) -> None:
    """Amounts must be below 10**12 (engine.limits), whether given as an int, a Decimal, or
    text with or without a point (the quick branch of _decimal_text once took 13 digits)."""
    for refused in (Decimal(text), int(text), text + ".0"):
        with pytest.raises(CaseError, match="out of range"):
            engine.decide(_case(ratio="2", price=refused, flag=True))
    with pytest.raises(CaseError, match="out of range"):
        engine.decide(_case(ratio="2", price=text, flag=True))
    with pytest.raises(CaseError, match="out of range"):
        engine.decide(_case(ratio=text, price="1", flag=True))


def test_a_huge_whole_number_id_is_refused_by_name(engine: Engine) -> None:
    """str() of an int over 4,300 digits raises ValueError: such an id is a CaseError on the id."""
    with pytest.raises(CaseError, match="id is too large"):
        engine.decide({**_case(ratio="2", price="1", flag=True), "id": 10**5000})
    assert engine.decide({**_case(ratio="2", price="1", flag=True), "id": 10**20}).case_id == str(10**20)


def test_a_contradicted_relation_is_left_to_the_generic_path() -> None:
    """intpho: shipped_back_on is at_most arrived_on. The generated path answers a case that keeps
    the relation and hands over one that breaks it, which the generic path refuses by name."""
    from datetime import date, timedelta  # noqa: PLC0415

    from engine.factschema import kind_facts  # noqa: PLC0415
    from engine.sample import Sampler  # noqa: PLC0415

    engine = Engine.load()
    compiled = engine.compiled("intpho", date(2025, 1, 1))
    answered = handed = 0
    for case in Sampler(compiled).cases("return", kind_facts(compiled, "return"), 200):
        shipped = date.fromisoformat(case["facts"]["shipped_back_on"])
        for days, keeps in ((0, True), (-1, False)):
            arrived = (shipped + timedelta(days)).isoformat()
            bent = {**case, "facts": {**case["facts"], "arrived_on": arrived}}
            fast = engine._decide_fast(bent, "en")
            if keeps:
                answered += fast is not None
            else:
                assert fast is None, bent
                with pytest.raises(CaseError, match="shipped_back_on"):
                    engine.decide(bent)
                handed += 1
    assert answered > 50 and handed == 200, (answered, handed)
