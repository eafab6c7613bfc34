"""Regressions from the review: hostile or extreme input never crashes, and both back ends agree."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from engine import CaseError, Engine, PolicyError
from engine._yaml import parse_yaml
from engine.loader import load_policy

from conftest import MATCHERS, POLICIES

ACME = """\
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
  price: {type: money, meaning: price}
  n: {type: integer, meaning: n}
  r: {type: decimal, meaning: r}
  at: {type: datetime, meaning: at}
  calls: {type: list, meaning: calls, fields: {dur: {type: duration, meaning: length}}}
kinds:
  k:
    title: K
    combine: first_match
    otherwise: {outcome: deny, reason: {en: no}}
    rules:
      - {id: big, clause: Refunds apply., when: "price > money('100')", outcome: refund, amount: price,
         reason: {en: "big {price}"}}
      - {id: nbig, clause: Refunds apply., when: n > 2251799, outcome: approve, reason: {en: n}}
      - {id: rr, clause: Refunds apply., when: r > 0.5, outcome: credit, reason: {en: r}}
      - {id: tt, clause: Refunds apply., when: "at > datetime('2025-01-01T00:00:00.5+00:00')",
         outcome: repair, reason: {en: t}}
      - {id: long-calls, clause: Refunds apply., when: minutes(sum(calls.dur)) > 5, outcome: cancel,
         reason: {en: calls}}
"""


@pytest.fixture()
def acme(tmp_path: Path) -> Path:
    (tmp_path / "source.txt").write_text("Refunds apply. Big ones too.\n", encoding="utf-8")
    (tmp_path / "policy.yaml").write_text(ACME, encoding="utf-8")
    return tmp_path


NEUTRAL = {"price": "1", "n": 0, "r": "0", "at": "2024-01-01T00:00:00+00:00", "calls": []}


def _case(**facts: object) -> dict:
    return {"vendor": "acme", "kind": "k", "as_of": "2025-06-01", "facts": {**NEUTRAL, **facts}}


@pytest.mark.parametrize("matcher", MATCHERS)
@pytest.mark.parametrize(("facts", "outcome"), [
    ({"price": "100.000000000001"}, "refund"),
    ({"r": "0.500000000001"}, "credit"),
    ({"n": 2251800}, "approve"),
    ({"at": "2025-01-01T00:00:00.7+00:00"}, "repair"),
    ({"at": "2025-01-01T00:00:00.3+00:00"}, "deny"),
    ({"calls": []}, "deny"),
    ({"calls": [{"dur": "PT6M"}]}, "cancel"),
], ids=["long-decimal-money", "long-decimal", "integer", "sub-second-after", "sub-second-before",
        "empty-duration-sum", "duration-sum"])
def test_back_ends_agree_on_edge_values(acme: Path, matcher: str, facts: dict, outcome: str) -> None:
    with Engine.load(acme, matcher=matcher) as engine:
        assert engine.decide(_case(**facts)).outcome == outcome


@pytest.mark.parametrize(("facts", "fragment"), [
    ({"price": "1e40"}, "out of range"),
    ({"price": "0.0000000000001"}, "more than 12 decimal places"),
    ({"n": 10**20}, "out of range"),
    ({"at": "9999-12-01T00:00:00+00:00"}, "outside the supported years"),
], ids=["huge-money", "too-many-places", "huge-integer", "far-year"])
def test_extreme_values_are_input_errors(acme: Path, facts: dict, fragment: str) -> None:
    with pytest.raises(CaseError) as info:
        Engine.load(acme).decide(_case(**facts))
    (diag,) = info.value.diagnostics
    assert diag.code == "case_fact_type" and fragment in diag.message


def test_far_dates_in_bundled_policies_are_input_errors(engine: Engine) -> None:
    with pytest.raises(CaseError, match="outside the supported years"):
        engine.decide({"vendor": "itellum", "kind": "warranty", "as_of": "2025-01-01",
                       "facts": {"installed_on": "9999-12-01", "failed_on": "9999-12-02"}})


def test_placeholders_round_like_the_amount(acme: Path) -> None:
    decision = Engine.load(acme).decide(_case(price="100.125"))
    assert str(decision.amount) == "100.13 USD"
    assert decision.reasons[0].text == "big 100.13 USD"


class TestDaylightSaving:
    """Rome changes clocks on 2025-03-30 (02:00 → 03:00) and 2025-10-26 (03:00 → 02:00)."""

    BASE = {"vendor": "did-provider", "kind": "refund", "as_of": "2025-04-02", "facts": {
        "refund_of": "service_disruption", "disruption_caused_by_vendor": True, "disruption_proven": True,
        "fraud": False, "period_start": "2025-03-01", "period_end": "2025-03-31", "period_fee": "31.00"}}

    def decide(self, engine: Engine, start: str, end: str) -> object:
        case = dict(self.BASE, facts=dict(self.BASE["facts"], disruption_start=start, disruption_end=end))
        return engine.decide(case)

    def test_local_times_count_real_minutes(self, engine: Engine) -> None:
        local = self.decide(engine, "2025-03-30T01:00:00", "2025-03-30T04:00:00")
        offset = self.decide(engine, "2025-03-30T01:00:00+01:00", "2025-03-30T04:00:00+02:00")
        assert local.amount == offset.amount and str(local.amount) == "0.08 EUR"  # 120 minutes, not 180
        assert "120 minute(s)" in local.reasons[0].text

    @pytest.mark.parametrize(("start", "fragment"), [
        ("2025-03-30T02:30:00", "does not exist in Europe/Rome"),
        ("2025-10-26T02:30:00", "happens twice in Europe/Rome"),
    ], ids=["skipped-hour", "repeated-hour"])
    def test_ambiguous_local_times_are_refused(self, engine: Engine, start: str, fragment: str) -> None:
        with pytest.raises(CaseError) as info:
            self.decide(engine, start, "2025-10-26T04:00:00+01:00")
        assert fragment in info.value.diagnostics[0].message


def test_deep_expressions_are_refused_at_their_location(runner: CliRunner, acme: Path) -> None:
    path = acme / "policy.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "when: n > 2251799", "when: " + " + ".join(["n"] * 400) + " > 5"), encoding="utf-8")
    result = runner.invoke(main, ["validate", str(acme)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "expr_syntax: expression nested deeper than" in result.output


def test_a_name_with_a_trailing_newline_is_refused(acme: Path) -> None:
    path = acme / "policy.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace('\n  k:\n', '\n  "k\\n":\n'), encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert "is not a valid name" in info.value.diagnostics[0].message


@pytest.mark.parametrize(("text", "fragment"), [
    ("vendor: itellum\x01\n", "invalid YAML"),
    ("x: &a [*a]\n", "recursive alias"),
    ("a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
     "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
     "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\n", "too many aliases"),
    ("[" * 5000 + "]" * 5000, "invalid YAML"),
], ids=["control-character", "recursive-alias", "billion-laughs", "deep-nesting"])
def test_hostile_yaml_is_a_clean_error(text: str, fragment: str) -> None:
    start = time.monotonic()
    doc, problems = parse_yaml(text, "case.yaml")
    assert doc is None and problems[0].code == "yaml_syntax" and fragment in problems[0].message
    assert time.monotonic() - start < 10  # a guard against a hang, not a benchmark


def test_non_text_fact_names_are_a_case_error(runner: CliRunner) -> None:
    result = runner.invoke(main, ["decide", "-"], input="vendor: itellum\nkind: warranty\nfacts: {1: true}\n")
    assert result.exit_code == 1 and "fact names are text, found 1" in result.output + result.stderr


def test_unknown_vendor_points_at_the_case_line(runner: CliRunner, tmp_path: Path) -> None:
    case = tmp_path / "case.yaml"
    case.write_text("kind: warranty\nvendor: nope\nfacts: {}\n", encoding="utf-8")
    result = runner.invoke(main, ["decide", str(case)])
    assert result.exit_code == 1
    assert f"{case}:2:9: case: unknown vendor 'nope'" in result.stderr


def test_default_as_of_is_today_in_the_vendors_time_zone() -> None:
    from datetime import datetime  # noqa: PLC0415
    from zoneinfo import ZoneInfo  # noqa: PLC0415
    engine = Engine.load(POLICIES)
    jakarta = datetime.now(ZoneInfo("Asia/Jakarta")).date()
    assert engine._default_as_of("ippbx-store") == jakarta  # noqa: SLF001
