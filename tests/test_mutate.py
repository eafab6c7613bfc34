"""Mutation testing of policy tests: which mutants exist, which survive, equivalence marks, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from engine.errors import PolicyError
from engine.expressions import syntax
from engine.mutate import edits, mutate_dir
from engine.testing import find_test_files, load_tests

from conftest import POLICIES

POLICY = """\
clause: 1
vendor: tiny
name: Tiny Shop
version: "1"
effective_from: "2024-01-01"
currency: USD
country: US
timezone: America/New_York
languages: [en]
rounding: half_up
source: {file: source.txt}
facts:
  days: {type: integer, meaning: Days since delivery}
  opened: {type: bool, meaning: The box was opened}
  price: {type: money, meaning: Price paid}
kinds:
  return:
    title: Returns
    combine: first_match
    otherwise: {outcome: deny, reason: {en: Not returnable.}}
    rules:
      - id: full-refund
        clause: Unopened items may be returned within 30 days.
        when: days <= 30 and not opened
        outcome: refund
        amount: price
        reason: {en: Full refund.}
"""

TEST = """\
cases:
{cases}
"""

CASE = """\
  - note: {note}
    input: {{vendor: tiny, kind: return, as_of: "2024-03-01", facts: {{days: {days}, opened: {opened}, price: "10.00"}}}}
    want_decision: {{outcome: {outcome}}}
"""


def mutated(text: str) -> list[str]:
    return [text[:e.start] + e.replacement + text[e.end:] for e in edits(text, syntax.parse(text))]


def test_every_operator_and_literal_is_mutated_once() -> None:
    assert sorted(mutated("a < 8 and b >= c")) == sorted([
        "a < 8 or b >= c", "b >= c", "a < 8",          # and -> or, drop each operand
        "a <= 8 and b >= c", "a < 9 and b >= c",      # boundary, literal + 1
        "a < 8 and b > c"])


def test_operators_written_without_spaces() -> None:
    assert sorted(mutated("a<8 and b!=c")) == sorted([
        "a<8 or b!=c", "b!=c", "a<8", "a<=8 and b!=c", "a<9 and b!=c", "a<8 and b==c"])


def test_decimal_and_date_literals() -> None:
    assert mutated("x * 0.5") == ["x * 1.5"]
    assert mutated("d > date('2024-03-01')") == [
        "d >= date('2024-03-01')", "d > date('2024-02-29')", "d > date('2024-03-02')"]


@pytest.mark.parametrize(("text", "want"), [
    # An inner 'and' turned into 'or' keeps its tree: (a or b) and c, not a or (b and c).
    ("a and b and c", "(a or b) and c"),
    ("a and b or c", "a or b or c"),
    ("not (a and b)", "not (a or b)"),
], ids=["inner-and", "and-under-or", "under-not"])
def test_and_or_swaps_keep_the_tree(text: str, want: str) -> None:
    assert want in mutated(text)
    inner = syntax.parse(want)
    assert isinstance(inner, (syntax.Binary, syntax.Unary))


def test_dropping_operands_of_a_chain_and_of_a_parenthesized_chain() -> None:
    out = mutated("x or (a and b and c)")
    assert {"x or (b and c)", "x or (a and c)", "x or (a and b)"} <= set(out)
    assert "x or (a and b) and c" not in out  # chains are flattened, not nested pairs


def make(tmp_path: Path, cases: list[tuple[str, int, str, str]], extra: str = "") -> Path:
    home = tmp_path / "tiny"
    (home / "tests").mkdir(parents=True)
    (home / "source.txt").write_text("Unopened items may be returned within 30 days.\n")
    (home / "policy.yaml").write_text(POLICY + extra)
    body = "".join(CASE.format(note=n, days=d, opened=o, outcome=w) for n, d, o, w in cases)
    (home / "tests" / "t.yaml").write_text(TEST.format(cases=body.rstrip("\n")))
    return home


def run(home: Path) -> list:
    tests = [t for f in find_test_files(home) for t in load_tests(f)]
    return mutate_dir(home, tests)


WEAK = [("inside", 5, "false", "refund"), ("late", 40, "false", "deny")]
STRONG = [*WEAK, ("day 30", 30, "false", "refund"), ("day 31", 31, "false", "deny"),
          ("opened", 5, "true", "deny")]


def test_weak_tests_let_boundary_mutants_survive(tmp_path: Path) -> None:
    (report,) = run(make(tmp_path, WEAK))
    survivors = {r.mutant.label: r.mutant.location for r in report.results if r.status == "survived"}
    assert set(survivors) == {
        "days <= 30 -> days < 30", "days <= 30 -> days <= 31",
        "days <= 30 and not opened -> days <= 30"}
    loc = survivors["days <= 30 -> days < 30"]
    assert (loc.line, loc.column) == (24, 20)  # the '<=' in 'when: days <= 30 and not opened'
    assert report.count("killed") == 2 and report.score == 40.0


def test_boundary_tests_kill_every_mutant(tmp_path: Path) -> None:
    (report,) = run(make(tmp_path, STRONG))
    assert report.count("survived") == 0 and report.score == 100.0
    assert {r.mutant.operator for r in report.results} == {"relational", "logical", "literal", "drop_operand"}


def test_equivalence_marks_exclude_mutants_and_unused_marks_are_reported(tmp_path: Path) -> None:
    extra = """mutation:
  equivalent:
    - at: full-refund
      mutant: "days <= 30   ->  days < 30"
      reason: whitespace in the mark does not matter
    - at: full-refund
      mutant: "days <= 30 -> days <= 99"
      reason: no such mutant
"""
    (report,) = run(make(tmp_path, WEAK, extra))
    equivalent = [r for r in report.results if r.status == "equivalent"]
    assert [(r.mutant.label, r.detail) for r in equivalent] == [
        ("days <= 30 -> days < 30", "whitespace in the mark does not matter")]
    assert report.unused == [("full-refund", "days <= 30 -> days <= 99", "no such mutant")]
    assert report.count("survived") == 2


def test_a_failing_suite_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as err:
        run(make(tmp_path, [("wrong", 5, "false", "deny")]))
    assert err.value.diagnostics[0].code == "mutation"
    assert "fails on the unmutated policy" in err.value.diagnostics[0].message


def test_cli_skips_mutants_while_tests_fail(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["test", str(make(tmp_path, [("wrong", 5, "false", "deny")])), "--mutate"])
    assert result.exit_code == 1
    assert "mutation testing skipped: the tests must pass first" in result.output
    assert "1 failed" in result.output


def test_cli_reports_survivors_and_fails_below_the_minimum(runner: CliRunner, tmp_path: Path) -> None:
    home = make(tmp_path, WEAK)
    result = runner.invoke(main, ["test", str(home), "--mutate", "--min-mutation-score", "60"])
    assert result.exit_code == 1, result.output
    assert f"{home / 'policy.yaml'}:24:20: survived [full-refund] days <= 30 -> days < 30" in result.output
    assert "mutation score 40.0% is below --min-mutation-score 60.0%" in result.output
    ok = runner.invoke(main, ["test", str(home), "--mutate", "--min-mutation-score", "40"])
    assert ok.exit_code == 0, ok.output


def test_cli_json_carries_every_mutant(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["test", str(make(tmp_path, STRONG)), "--mutate", "--format", "json"])
    assert result.exit_code == 0, result.output
    mutation = json.loads(result.stdout)["mutation"]
    assert mutation["score"] == 100.0
    (policy,) = mutation["policies"]
    assert policy["killed"] == 5 and policy["survived"] == 0
    assert {m["status"] for m in policy["mutants"]} == {"killed"}


def test_cli_without_mutate_has_no_mutation_report(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["test", str(make(tmp_path, STRONG)), "--format", "json"])
    assert "mutation" not in json.loads(result.stdout)


@pytest.mark.parametrize("vendor", sorted(p.name for p in POLICIES.iterdir() if (p / "tests").is_dir()))
def test_bundled_policies_kill_95_percent_of_their_mutants(vendor: str) -> None:
    reports = run(POLICIES / vendor)
    for report in reports:
        survivors = [f"{r.mutant.location.line}:{r.mutant.location.column} {r.mutant.label}"
                     for r in report.results if r.status == "survived"]
        assert report.score >= 95.0, survivors
        assert report.unused == []
