"""Edge cases of the author and embedding workflows (diff, log, replay, batch, lint, test)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from engine import Engine, PolicyError
from engine.diff import generated_cases
from engine.log import DecisionLog, replay
from engine.testing import Coverage, load_tests, run_test

from conftest import POLICIES, needs_rete
from test_authoring import make_policy

REFUND = json.loads(json.dumps({"id": "E-1", "vendor": "mini", "kind": "return", "as_of": "2025-06-01",
                                "facts": {"days_since_delivery": 3, "opened": False, "price": "40.00"}}))


def test_generated_diff_cases_are_distinct(tmp_path: Path) -> None:
    old, new = make_policy(tmp_path / "old"), make_policy(tmp_path / "new", limit=29)
    cases = generated_cases(Engine.load(old), Engine.load(new))
    keys = [json.dumps({k: v for k, v in c.items() if k != "id"}, sort_keys=True) for c in cases]
    assert len(keys) == len(set(keys)) > 0


def test_diff_sees_a_changed_fee(runner: CliRunner, tmp_path: Path) -> None:
    old, new = make_policy(tmp_path / "old"), make_policy(tmp_path / "new")
    for home, fee in ((old, "1.00"), (new, "5.00")):
        p = home / "policy.yaml"
        p.write_text(p.read_text(encoding="utf-8").replace(
            "        amount: price\n        reason: {en: Full refund.}",
            f"        amount: price\n        fees: [{{name: restock, value: money('{fee}')}}]\n"
            "        reason: {en: Full refund.}", 1), encoding="utf-8")
    cases = tmp_path / "c.jsonl"
    cases.write_text(json.dumps(REFUND), encoding="utf-8")
    data = json.loads(runner.invoke(main, ["diff", str(old), str(new), "--cases", str(cases),
                                           "--format", "json"]).output)
    assert data["changed"] == 1
    assert data["groups"][0]["change"] == "fees changed; rule unopened-refund on both sides"
    assert data["groups"][0]["example_changes"][0]["changes"] == {
        "fee restock": {"before": "1.00 USD", "after": "5.00 USD"}}
    assert data["groups"][0]["customer_pays_delta"] == {"USD": "+4.00"}


@needs_rete
def test_reload_never_closes_an_engine_in_use(tmp_path: Path) -> None:
    from engine.service import PolicySet  # noqa: PLC0415
    home = make_policy(tmp_path / "mini", tests=False)
    state = PolicySet(tmp_path, "rete")
    in_flight = state.engine
    assert state.reload(force=True)
    assert state.engine is not in_flight
    assert in_flight.decide(REFUND).outcome == "refund"  # still usable by a request that holds it
    assert home.exists()


def _log_refund(db: Path, home: Path, case: dict) -> Engine:
    engine = Engine.load(home)
    decision = engine.decide(case)
    with_log = DecisionLog(str(db))
    with_log.write(case, decision, engine.policy_by_digest("mini", decision.policy["digest"]), "test")
    with_log.close()
    return engine


def test_log_keeps_the_policy_as_compiled_and_replay_reproduces(tmp_path: Path) -> None:
    home = make_policy(tmp_path / "mini", tests=False)
    engine = Engine.load(home)
    (home / "policy.yaml").write_text("broken: [", encoding="utf-8")  # edited after loading
    case = dict(REFUND, facts=dict(REFUND["facts"], days_since_delivery=Decimal("3.0")))
    decision = engine.decide(case)
    log = DecisionLog(str(tmp_path / "l.db"))
    log.write(case, decision, engine.policy_by_digest("mini", decision.policy["digest"]), "test")
    (result,) = list(replay(log))
    log.close()
    assert result.reproduced and result.error is None
    assert result.record.case["facts"]["days_since_delivery"] == 3  # exact number, not "3.0"


def test_replay_separates_current_failures(tmp_path: Path) -> None:
    home = make_policy(tmp_path / "mini", tests=False)
    _log_refund(tmp_path / "l.db", home, REFUND)
    log = DecisionLog(str(tmp_path / "l.db"), read_only=True)
    (result,) = list(replay(log, Engine.load(POLICIES)))  # the current policies lack "mini"
    log.close()
    assert result.reproduced and result.changed_now
    assert "unknown vendor 'mini'" in (result.current_error or "")


def test_replay_rebuilds_a_source_in_a_subfolder(tmp_path: Path) -> None:
    home = make_policy(tmp_path / "mini", tests=False)
    (home / "texts").mkdir()
    (home / "source.txt").rename(home / "texts" / "source.txt")
    p = home / "policy.yaml"
    p.write_text(p.read_text(encoding="utf-8").replace("source: {file: source.txt}",
                                                       "source: {file: texts/source.txt}"), encoding="utf-8")
    _log_refund(tmp_path / "l.db", home, REFUND)
    log = DecisionLog(str(tmp_path / "l.db"), read_only=True)
    assert [r.reproduced for r in replay(log)] == [True]
    log.close()


def test_batch_bad_bytes_bom_csv_and_extra_cells(runner: CliRunner, tmp_path: Path) -> None:
    good = json.dumps({"vendor": "itellum", "kind": "delivery", "as_of": "2025-01-01",
                       "facts": {"defect_at_delivery": True}}).encode()
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_bytes(good + b"\n" + b'{"id": "\xff"}\n' + good + b"\n")
    data = json.loads(runner.invoke(main, ["batch", str(jsonl), "-o", str(tmp_path / "o.jsonl"),
                                           "--format", "json"]).stdout)
    assert (data["decided"], [i["line"] for i in data["invalid"]]) == (2, [2])
    assert "not UTF-8" in data["invalid"][0]["error"]
    csv_in = tmp_path / "in.csv"
    csv_in.write_text("\ufeffid,vendor,kind,as_of,defect_at_delivery\nA,itellum,delivery,2025-01-01,true\n"
                      "B,itellum,delivery,2025-01-01,true,surplus\n", encoding="utf-8")
    data = json.loads(runner.invoke(main, ["batch", str(csv_in), "-o", str(tmp_path / "o.csv"),
                                           "--format", "json"]).stdout)
    assert data["decided"] == 1 and data["invalid"] == [
        {"line": 3, "error": "the row has 1 more cell(s) than the header"}]


@pytest.mark.parametrize("target", ["same", "missing-dir"], ids=["output-is-input", "unwritable"])
def test_batch_refuses_bad_outputs(runner: CliRunner, tmp_path: Path, target: str) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"vendor": "itellum", "kind": "delivery", "facts": {}}\n', encoding="utf-8")
    output = source if target == "same" else tmp_path / "no" / "out.jsonl"
    result = runner.invoke(main, ["batch", str(source), "-o", str(output)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert source.read_text(encoding="utf-8").startswith('{"vendor"')  # the input is untouched


def test_lint_survives_failing_expressions_and_money_limits(runner: CliRunner, tmp_path: Path) -> None:
    home = make_policy(tmp_path / "mini", tests=False)
    p = home / "policy.yaml"
    text = p.read_text(encoding="utf-8")
    text = text.replace("when: days_since_delivery <= 30 and not opened",
                        "when: price > money('100.00') and not opened")
    text = text.replace("when: days_since_delivery <= 10 and not opened",
                        "when: price / days_since_delivery > 5 and not opened")
    p.write_text(text, encoding="utf-8")
    result = runner.invoke(main, ["lint", str(home), "--format", "json"])
    assert "Traceback" not in result.output
    codes = {(f["code"], f["target"]) for f in json.loads(result.stdout)["findings"]}
    assert ("shadowed_rule", "recent-refund") not in codes  # decides between 5·days and 100.00


def test_lint_without_files_fails(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["lint", str(tmp_path)])
    assert result.exit_code == 1 and "no policy files" in result.output + result.stderr


def test_want_error_fact_is_checked(tmp_path: Path) -> None:
    home = make_policy(tmp_path / "mini")
    (home / "tests" / "errors.yaml").write_text(
        "cases:\n  - note: wrong fact named\n    input: {vendor: mini, kind: return, as_of: '2025-06-01',\n"
        "            facts: {days_since_delivery: 1, opened: 'no', price: '1'}}\n"
        "    want_error_code: case_fact_type\n    want_error_fact: price\n", encoding="utf-8")
    (test,) = load_tests(home / "tests" / "errors.yaml")
    result = run_test(Engine.load(home), test)
    assert result.diffs == [("error fact", "price", "/facts/opened")]


def test_unreadable_test_file_is_a_policy_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"cases: \xff\n")
    with pytest.raises(PolicyError, match="cannot read the test file"):
        load_tests(bad)


def test_rule_coverage_counts_deciding_rules_only(tmp_path: Path) -> None:
    home = make_policy(tmp_path / "mini")
    (home / "tests" / "early.yaml").write_text(
        "cases:\n  - note: day 3 matches both refund rules\n"
        "    input: {vendor: mini, kind: return, as_of: '2025-06-01',\n"
        "            facts: {days_since_delivery: 3, opened: false, price: '1'}}\n"
        "    want_decision: {outcome: refund, reasons: [unopened-refund]}\n", encoding="utf-8")
    engine, cov = Engine.load(home), Coverage()
    (test,) = load_tests(home / "tests" / "early.yaml")
    assert engine.decide(test.input).matched == ("unopened-refund", "recent-refund")
    assert run_test(engine, test, cov).passed
    rules = cov.policies["mini 1"].rules
    assert rules["unopened-refund"] and not rules["recent-refund"]  # matched, but did not decide
