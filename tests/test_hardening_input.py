"""Issue 9, hostile cases: nothing a case sends can stall, crash or silently change a value.

Items 4 (bounded numbers), 5 (lone surrogates), 6 (durations, infinities),
8 (YAML 1.1 integers), 9 (duplicate JSON keys), 10 (``has`` inside
``where``), 11 (calendars past their data) and 16 (Unicode digits, the
``0x10`` message, Rete's OR matches), on both back ends.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from hardening_policy import case, write_policy

from cli import main
from conftest import MATCHERS, POLICIES
from engine import CaseError, Engine, EvaluationError
from engine import jsonread
from engine.calendar import Calendar


@pytest.fixture(scope="module", params=MATCHERS)
def hard(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    eng = Engine.load(write_policy(tmp_path_factory.mktemp("acme")), matcher=request.param)
    yield eng
    eng.close()


def refused(engine: Engine, data: dict) -> CaseError:
    with pytest.raises(CaseError) as info:
        engine.decide(data)
    json.dumps([d.to_dict() for d in info.value.diagnostics]).encode("utf-8")  # every message is valid text
    return info.value


# --- item 4: numbers are bounded before anything converts them ---------------------------

@pytest.mark.parametrize(("facts", "fact", "fragment"), [
    ({"n": Decimal("1e300000")}, "n", "out of range"),          # int(Decimal) would take seconds
    ({"n": Decimal("-1e1000000")}, "n", "out of range"),
    ({"n": Decimal("Infinity")}, "n", "whole number"),           # a YAML !!float Infinity
    ({"r": "1e300000"}, "r", "out of range"),
    ({"price": Decimal("1e-300000")}, "price", "decimal places"),
    ({"price": "1e99999999"}, "price", "out of range"),
    ({"price": "1" * 65}, "price", "decimal number"),            # at most 64 characters as text
    ({"calls": [{"dur": "P1000000000D"}]}, "calls", "out of range"),
    ({"calls": [{"dur": "PT99999999999999999999H"}]}, "calls", "duration"),
    ({"calls": [{"dur": "PT1H١M"}]}, "calls", "duration"),
])
def test_huge_and_odd_numbers_are_case_errors(hard: Engine, facts: dict, fact: str, fragment: str) -> None:
    err = refused(hard, case(**facts))
    (d,) = err.diagnostics
    assert d.code == "case_fact_type" and d.path.startswith(f"/facts/{fact}")
    assert fragment in d.message


def test_the_largest_accepted_duration_still_decides(hard: Engine) -> None:
    assert hard.decide(case(calls=[{"dur": "P400000D"}])).outcome == "cancel"


@pytest.mark.parametrize("as_of", ["3000-01-01", "1899-12-31", "9999-12-31"])
def test_as_of_is_bounded(hard: Engine, as_of: str) -> None:
    err = refused(hard, {**case(), "as_of": as_of})
    assert err.diagnostics[0].path == "/as_of" and "supported years" in err.diagnostics[0].message


# --- item 5: lone surrogates are case errors, never a 500 or a traceback ------------------

@pytest.mark.parametrize(("data", "code", "path", "fragment"), [
    ({**case(), "id": "\ud800"}, "case", "/id", "surrogate"),
    (case(**{"\udfff": 1}), "case", "/facts/\\udfff", "surrogate"),
    ({**case(), "vendor": "acme\ud800"}, "case", "/vendor", "surrogate"),
    ({**case(), "$schema": "\ud800"}, "case", "/$schema", "surrogate"),
    (case(note="a\ud800b"), "case_fact_type", "/facts/note", "surrogate"),
    (case(calls=[{"dur": "\ud800"}]), "case_fact_type", "/facts/calls/0/dur", "'\\ud800'"),
    (case(calls=[{"dur": "PT1M", "\ud800": 1}]), "case_fact_type", "/facts/calls/0/\\ud800", "unknown field"),
])
def test_lone_surrogates_are_case_errors(hard: Engine, data: dict, code: str, path: str, fragment: str) -> None:
    (d,) = refused(hard, data).diagnostics
    assert d.code == code and d.path == path and fragment in d.message


def test_a_surrogate_line_does_not_stop_clause_batch(tmp_path: Path, runner: CliRunner) -> None:
    home = write_policy(tmp_path / "acme")
    good = json.dumps(case())
    (tmp_path / "in.jsonl").write_text(good + "\n" + json.dumps({**case(), "id": "\ud800"}) + "\n" + good + "\n",
                                       encoding="utf-8")
    result = runner.invoke(main, ["batch", str(tmp_path / "in.jsonl"), "-o", str(tmp_path / "out.jsonl"),
                                  "--policies", str(home)])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and "surrogate" in result.output
    assert len((tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()) == 2


# --- item 6 (cases): infinities in a YAML case --------------------------------------------

@pytest.mark.parametrize("value", ["!!float Infinity", "!!float .inf", ".nan", "!!float -Infinity"])
def test_yaml_infinities_are_located_case_errors(tmp_path: Path, runner: CliRunner, value: str) -> None:
    home = write_policy(tmp_path / "acme")
    (tmp_path / "c.yaml").write_text(f"vendor: acme\nkind: k\nas_of: 2025-06-01\nfacts:\n  n: {value}\n",
                                     encoding="utf-8")
    result = runner.invoke(main, ["decide", str(tmp_path / "c.yaml"), "--policies", str(home)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "c.yaml:5:6: case_fact_type: fact n:" in result.output


# --- item 8: YAML 1.1 integer forms ------------------------------------------------------------

@pytest.mark.parametrize(("value", "fragment"), [
    ("010", "octal"), ("012", "octal"), ("-07", "octal"), ("1:30", "base-60"), ("1:30.5", "base-60"),
    ("0x10", "hexadecimal"), ("0b101", "binary"),
])
def test_yaml_11_integer_forms_are_refused_where_written(tmp_path: Path, runner: CliRunner, value: str,
                                                         fragment: str) -> None:
    home = write_policy(tmp_path / "acme")
    (tmp_path / "c.yaml").write_text(f"vendor: acme\nkind: k\nas_of: 2025-06-01\nfacts:\n  n: {value}\n",
                                     encoding="utf-8")
    result = runner.invoke(main, ["decide", str(tmp_path / "c.yaml"), "--policies", str(home)])
    assert result.exit_code == 1, result.output
    assert "c.yaml:5:6: yaml_syntax:" in result.output and fragment in result.output


def test_json_leading_zero_is_refused_by_the_cli(tmp_path: Path, runner: CliRunner) -> None:
    home = write_policy(tmp_path / "acme")
    (tmp_path / "c.json").write_text('{"vendor":"acme","kind":"k","as_of":"2025-06-01","facts":{"n":010}}',
                                     encoding="utf-8")
    result = runner.invoke(main, ["decide", str(tmp_path / "c.json"), "--policies", str(home)])
    assert result.exit_code == 1 and "c.json:1:63: yaml_syntax:" in result.output


@pytest.mark.parametrize(("value", "outcome"), [("2_251_800", "approve"), ("2251800", "approve"), ("0", "deny")])
def test_plain_integers_still_read(tmp_path: Path, runner: CliRunner, value: str, outcome: str) -> None:
    home = write_policy(tmp_path / "acme")
    facts = "".join(f"  {k}: {json.dumps(v)}\n" for k, v in case()["facts"].items() if k != "n")
    (tmp_path / "c.yaml").write_text(f"vendor: acme\nkind: k\nas_of: 2025-06-01\nfacts:\n  n: {value}\n{facts}",
                                     encoding="utf-8")
    result = runner.invoke(main, ["decide", str(tmp_path / "c.yaml"), "--policies", str(home),
                                  "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["outcome"] == outcome


# --- item 9: duplicate JSON keys ----------------------------------------------------------------

@pytest.mark.parametrize(("text", "fragment"), [
    ('{"a": 1, "a": 2}', "duplicate key 'a'"),
    ('{"facts": {"x": true, "y": 1, "x": false}}', "duplicate key 'x'"),
    ('{"n": NaN}', "NaN is not a JSON number"),
    ('{"n": -Infinity}', "-Infinity is not a JSON number"),
    ('{"n": 010}', "line 1"),
    ('[' * 100_000, "nested too deeply"),
])
def test_strict_json(text: str, fragment: str) -> None:
    with pytest.raises(jsonread.JSONInputError) as info:
        jsonread.loads(text)
    assert fragment in str(info.value)


def test_a_huge_integer_is_refused_by_the_fact_not_the_whole_document() -> None:
    """Past int()'s 4300 digits a number stays a Decimal: one bad case no longer sinks a batch body."""
    huge = "9" * 5000
    assert jsonread.loads('[{"n": ' + huge + '}, {"n": 1}]') == [{"n": Decimal(huge)}, {"n": 1}]
    case = jsonread.loads('{"vendor": "intpho", "kind": "return_inspection", "as_of": "2025-03-01", '
                          '"facts": {"units": ' + huge + '}}')
    with pytest.raises(CaseError) as info:
        Engine.load(POLICIES).decide(case)
    (diag,) = info.value.diagnostics
    assert diag.code == "case_fact_type" and "units" in diag.message
    assert "(5000 characters)" in diag.message and len(diag.message) < 200  # no echo of the whole number


def test_strict_json_keeps_numbers_exact() -> None:
    assert jsonread.loads('{"a": 0.1, "b": 1e300000, "c": 7}') == {"a": Decimal("0.1"), "b": Decimal("1e300000"),
                                                                     "c": 7}


def test_clause_batch_refuses_duplicate_keys(tmp_path: Path, runner: CliRunner) -> None:
    line = ('{"vendor":"itellum","kind":"delivery","as_of":"2025-02-14",'
            '"facts":{"defect_at_delivery":true,"defect_at_delivery":false}}')
    (tmp_path / "in.jsonl").write_text(line + "\n", encoding="utf-8")
    result = runner.invoke(main, ["batch", str(tmp_path / "in.jsonl"), "-o", str(tmp_path / "out.jsonl")])
    assert "duplicate key 'defect_at_delivery'" in result.output
    assert (tmp_path / "out.jsonl").read_text(encoding="utf-8") == ""


# --- item 10: has() inside where tests the record -------------------------------------------

@pytest.mark.parametrize(("calls", "outcome"), [([{"dur": "PT1M"}], "credit"), ([], "deny"),
                                                ([{"dur": "PT1M"}, {"dur": "PT2M"}], "deny")])
def test_has_inside_where_tests_the_record(hard: Engine, calls: list, outcome: str) -> None:
    assert hard.decide(case("h", calls=calls)).outcome == outcome


# --- item 11: calendars past their data -----------------------------------------------------

def test_calendar_knows_its_years() -> None:
    cal = Calendar("ID", "Asia/Jakarta")
    assert (cal.first_year, cal.last_year) == (1946, 2100)
    assert cal.add_business_days(__import__("datetime").date(2100, 12, 20), 3).year == 2100


@pytest.mark.parametrize("matcher", MATCHERS)
@pytest.mark.parametrize("day", ["2100-12-27", "2101-03-01"])
def test_business_days_past_the_calendar_are_refused(matcher: str, day: str) -> None:
    data = {"vendor": "ippbx-store", "kind": "exchange", "as_of": day,
            "facts": {"received_on": day, "requested_on": day, "defective_on_receipt": True}}
    with Engine.load(POLICIES, matcher=matcher) as engine, pytest.raises(EvaluationError) as info:
        engine.decide(data)
    (d,) = info.value.diagnostics
    assert "exchange_limit_on" in d.message and "holiday calendar covers 1946-2100" in d.message
    assert d.location is not None and d.location.line > 0


# --- item 16: Unicode digits, readable messages, one match per rule --------------------------

@pytest.mark.parametrize("value", ["١٢٣", "１２", "0x10", "1_000", "12,50"])
def test_money_text_is_ascii_decimal(hard: Engine, value: str) -> None:
    (d,) = refused(hard, case(price=value)).diagnostics
    assert d.message == f"fact price: expected a decimal number like \"12.50\", found {value!r}"
    assert "ConversionSyntax" not in d.message


def test_unicode_digit_integers_from_csv_are_not_read(tmp_path: Path, runner: CliRunner) -> None:
    home = write_policy(tmp_path / "acme")
    (tmp_path / "in.csv").write_text("id,vendor,kind,as_of,n\nA,acme,k,2025-06-01,٣\n", encoding="utf-8")
    result = runner.invoke(main, ["batch", str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.jsonl"),
                                  "--policies", str(home)])
    assert "expected a whole number, found '٣'" in result.output


def test_or_conditions_match_once(hard: Engine) -> None:
    decision = hard.decide(case("h", note="or", n=6, r="0.6"))
    assert decision.matched == ("either",)


def test_round_with_places_on_money(hard: Engine) -> None:
    assert hard.decide(case("h", price="100.004")).outcome == "deny"
    decision = hard.decide(case("h", price="100.005"))
    assert decision.outcome == "refund" and decision.to_dict()["amount"]["value"] == "100.01"


@pytest.mark.parametrize("value", [Decimal("1e300000"), Decimal("2.0"), 1.5, True, [1], {"a": 1}])
def test_an_id_is_a_string_or_a_whole_number(hard: Engine, value: object) -> None:
    (d,) = refused(hard, {**case(), "id": value}).diagnostics
    assert d.path == "/id" and "string or a whole number" in d.message


@pytest.mark.parametrize("value", ["CASE-1", 7, 10**30])
def test_string_and_integer_ids_are_echoed(hard: Engine, value: object) -> None:
    assert hard.decide({**case(), "id": value}).case_id == str(value)
