"""The policy author's workflow: clause test (with coverage), clause lint, clause diff, versions."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from engine import CaseError, Engine

from conftest import POLICIES

MINI = """\
clause: 1
vendor: mini
name: Mini Shop
version: "{version}"
effective_from: "{start}"
{until}currency: USD
country: US
timezone: America/New_York
languages: [en]
rounding: half_up
source: {{file: source.txt}}
facts:
  days_since_delivery: {{type: integer, meaning: Days from delivery to the request}}
  opened: {{type: bool, meaning: The customer opened the box}}
  price: {{type: money, meaning: Price paid}}
  color: {{type: string, meaning: Never read by any rule}}
kinds:
  return:
    title: Returns
    combine: priority
    otherwise: {{outcome: deny, reason: {{en: Not returnable.}}}}
    rules:
      - id: unopened-refund
        priority: 10
        clause: Unopened items may be returned within 30 days for a full refund.
        when: days_since_delivery <= {limit} and not opened
        outcome: refund
        amount: price
        reason: {{en: Full refund.}}
      - id: recent-refund
        priority: 5
        clause: Unopened items may be returned within 30 days for a full refund.
        when: days_since_delivery <= 10 and not opened
        outcome: refund
        amount: price
        reason: {{en: Full refund (shadowed).}}
      - id: opened-credit
        clause: Opened items get store credit.
        when: opened and days_since_delivery <= 30
        outcome: credit
        amount: price * 0.5
        reason: {{en: Half as credit.}}
      - id: opened-deny
        clause: Opened items get store credit.
        when: opened and days_since_delivery >= 20
        outcome: deny
        reason: {{en: Overlapping denial.}}
"""
SOURCE = "Unopened items may be returned within 30 days for a full refund. Opened items get store credit.\n"
TESTS = """\
cases:
  - note: day 30 unopened is refunded
    input: {vendor: mini, kind: return, as_of: "2025-06-01",
            facts: {days_since_delivery: 30, opened: false, price: "40.00"}}
    want_decision: {outcome: refund, amount: "40.00", reasons: [unopened-refund]}
  - note: day 31 is too late
    input: {vendor: mini, kind: return, as_of: "2025-06-01",
            facts: {days_since_delivery: 31, opened: false, price: "40.00"}}
    want_decision: {outcome: deny, amount: null}
"""


def make_policy(root: Path, *, version: str = "1", start: str = "2025-01-01", until: str | None = None,
                limit: int = 30, name: str = "policy.yaml", tests: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "source.txt").write_text(SOURCE, encoding="utf-8")
    until_line = f'effective_until: "{until}"\n' if until else ""
    (root / name).write_text(MINI.format(version=version, start=start, until=until_line, limit=limit),
                             encoding="utf-8")
    if tests:
        (root / "tests").mkdir(exist_ok=True)
        (root / "tests" / "return.yaml").write_text(TESTS, encoding="utf-8")
    return root


# --- clause test --------------------------------------------------------------

def test_bundled_policy_tests_pass_with_full_rule_coverage(runner: CliRunner) -> None:
    result = runner.invoke(main, ["test", "--min-coverage", "100"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1].endswith(" passed, 0 failed")
    assert "  total: rules " in result.output and "(100.0%), branches" in result.output


def test_a_broken_rule_fails_field_by_field(runner: CliRunner, tmp_path: Path) -> None:
    home = make_policy(tmp_path / "mini", limit=29)  # "within 30 days" broken to 29
    result = runner.invoke(main, ["test", str(home)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert f"{home / 'tests' / 'return.yaml'}:2: FAIL day 30 unopened is refunded" in lines
    assert '    outcome: expected "refund", got "credit"' not in lines  # opened is false: no credit
    assert '    outcome: expected "refund", got "deny"' in lines
    assert '    amount: expected "40.00", got null' in lines
    assert lines[-1] == "1 passed, 1 failed"


def test_coverage_names_what_is_not_exercised(runner: CliRunner, tmp_path: Path) -> None:
    home = make_policy(tmp_path / "mini")
    result = runner.invoke(main, ["test", str(home), "--min-coverage", "80"])
    assert result.exit_code == 1  # 1 of 4 rules exercised
    assert "  mini 1: rules 1/4 (25.0%)" in result.output
    assert "    rule opened-credit is not exercised" in result.output
    assert "rule coverage 25.0% is below --min-coverage 80.0%" in result.output


def test_test_json_output(runner: CliRunner, tmp_path: Path) -> None:
    home = make_policy(tmp_path / "mini", limit=29)
    data = json.loads(runner.invoke(main, ["test", str(home), "--format", "json"]).output)
    assert (data["passed"], data["failed"]) == (1, 1)
    failing = next(r for r in data["results"] if not r["passed"])
    assert {"field": "outcome", "expected": "refund", "actual": "deny"} in failing["diffs"]


# --- clause lint --------------------------------------------------------------

def test_lint_reports_each_problem_once_at_its_line(runner: CliRunner, tmp_path: Path) -> None:
    home = make_policy(tmp_path / "mini", tests=False)
    text = (home / "policy.yaml").read_text(encoding="utf-8")
    line_of = {key: text[:text.index(key)].count("\n") + 1 for key in (
        "color:", "- id: recent-refund", "- id: opened-deny", "  return:")}
    result = runner.invoke(main, ["lint", str(home), "--format", "json"])
    assert result.exit_code == 1  # the shadowed rule is an error
    found = sorted((f["code"], f["target"], f["line"]) for f in json.loads(result.stdout)["findings"])
    assert found == sorted([
        ("unused_fact", "color", line_of["color:"]),
        ("shadowed_rule", "recent-refund", line_of["- id: recent-refund"]),
        ("overlap", "opened-deny", line_of["- id: opened-deny"]),
        ("gap", "return", line_of["  return:"]),
    ])


def test_lint_reports_an_undeclared_fact(runner: CliRunner, tmp_path: Path) -> None:
    home = make_policy(tmp_path / "mini", tests=False)
    path = home / "policy.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("when: opened and days_since_delivery <= 30",
                                                             "when: opened and days_since_delvery <= 30"),
                    encoding="utf-8")
    data = json.loads(runner.invoke(main, ["lint", str(home), "--format", "json"]).output)
    assert [(f["code"], f["severity"]) for f in data["findings"]] == [("unknown_fact", "error")]


def test_suppressions_are_honoured_and_checked(runner: CliRunner, tmp_path: Path) -> None:
    home = make_policy(tmp_path / "mini", tests=False)
    path = home / "policy.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("kinds:\n", (
        "lint:\n  suppress:\n"
        "    - {code: unused_fact, target: color, reason: kept for reports}\n"
        "    - {code: gap, target: nothing, reason: stale}\nkinds:\n"), 1), encoding="utf-8")
    data = json.loads(runner.invoke(main, ["lint", str(home), "--format", "json"]).output)
    codes = [f["code"] for f in data["findings"]]
    assert "unused_fact" not in codes and "unused_suppression" in codes and data["suppressed"] == 1


def test_bundled_policies_lint_clean(runner: CliRunner) -> None:
    result = runner.invoke(main, ["lint", "--format", "json"])
    data = json.loads(result.stdout)
    assert result.exit_code == 0 and data["findings"] == [], data["findings"]


# --- versions -----------------------------------------------------------------

def test_versions_are_picked_by_as_of_and_reported(tmp_path: Path) -> None:
    home = make_policy(tmp_path / "mini", version="1", until="2025-06-30", tests=False)
    make_policy(home, version="2", start="2025-07-01", limit=14, name="policy-2.yaml", tests=False)
    engine = Engine.load(home)
    case = {"vendor": "mini", "kind": "return", "facts": {"days_since_delivery": 20, "opened": False,
                                                          "price": "10"}}
    june = engine.decide({**case, "as_of": "2025-06-30"})
    july = engine.decide({**case, "as_of": "2025-07-01"})
    assert (june.outcome, june.policy["version"]) == ("refund", "1")
    assert (july.outcome, july.policy["version"]) == ("deny", "2")
    with pytest.raises(CaseError, match="no mini policy is in force on 2024-12-31"):
        engine.decide({**case, "as_of": "2024-12-31"})


def test_version_by_a_date_fact(tmp_path: Path) -> None:
    home = make_policy(tmp_path / "mini", version="1", until="2025-06-30", tests=False)
    make_policy(home, version="2", start="2025-07-01", limit=14, name="policy-2.yaml", tests=False)
    for name in ("policy.yaml", "policy-2.yaml"):
        p = home / name
        p.write_text(p.read_text(encoding="utf-8").replace(
            "facts:\n", "version_by: ordered_on\nfacts:\n  ordered_on: {type: date, meaning: Order date}\n", 1),
            encoding="utf-8")
    engine = Engine.load(home)
    case = {"vendor": "mini", "kind": "return", "as_of": "2025-08-01",
            "facts": {"ordered_on": "2025-06-15", "days_since_delivery": 20, "opened": False, "price": "10"}}
    assert engine.decide(case).policy["version"] == "1"  # ordered under version 1 terms
    # A Python caller's datetime picks its day's version (it compared a datetime with a date);
    # as a value of the date fact it is then refused by name.
    moment = {**case, "facts": {**case["facts"], "ordered_on": datetime(2025, 6, 15, 10, 0)}}
    with pytest.raises(CaseError, match="ordered_on"):
        engine.decide(moment)


@pytest.mark.parametrize(("until", "start", "code"), [
    ("2025-07-15", "2025-07-01", "version_overlap"),
    ("2025-06-20", "2025-07-01", "version_gap"),
], ids=["overlap", "gap"])
def test_lint_checks_version_validity(runner: CliRunner, tmp_path: Path, until: str, start: str,
                                      code: str) -> None:
    home = make_policy(tmp_path / "mini", version="1", until=until, tests=False)
    make_policy(home, version="2", start=start, name="policy-2.yaml", tests=False)
    data = json.loads(runner.invoke(main, ["lint", str(home), "--format", "json"]).output)
    assert code in [f["code"] for f in data["findings"]]


# --- clause diff --------------------------------------------------------------

def test_diff_lists_exactly_the_affected_cases_and_money(runner: CliRunner, tmp_path: Path) -> None:
    old = make_policy(tmp_path / "old")
    new = make_policy(tmp_path / "new", limit=29)
    cases = tmp_path / "cases.jsonl"
    rows = [{"id": f"c{d}", "vendor": "mini", "kind": "return", "as_of": "2025-06-01",
             "facts": {"days_since_delivery": d, "opened": False, "price": "12.50"}} for d in (1, 29, 30, 31)]
    cases.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    data = json.loads(runner.invoke(main, ["diff", str(old), str(new), "--cases", str(cases),
                                           "--format", "json"]).output)
    assert (data["cases"], data["changed"]) == (4, 1)
    assert data["groups"] == [{
        "change": "refund → deny; rule unopened-refund → return:otherwise", "count": 1,
        "rule_before": "unopened-refund", "rule_after": "return:otherwise",
        "amount_delta": {"USD": "-12.50"}, "customer_pays_delta": {},
        "amount_delta_per_case": {"USD": {"min": "-12.50", "max": "-12.50"}}, "examples": ["c30"],
        "example_changes": [{"case": "c30", "changes": {
            "outcome": {"before": "refund", "after": "deny"},
            "amount": {"before": "12.50 USD", "after": "none"}}}]}]
    assert data["money_moved"] == {"USD": "-12.50"}


def test_diff_without_cases_generates_boundary_cases(runner: CliRunner, tmp_path: Path) -> None:
    old = make_policy(tmp_path / "old")
    new = make_policy(tmp_path / "new", limit=29)
    result = runner.invoke(main, ["diff", str(old), str(new)])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].endswith("changed") and " 0 changed" not in lines[0]
    assert lines[1].startswith("  ") and "refund → deny; rule unopened-refund → return:otherwise" in lines[1]
    assert re.fullmatch(r"      \S+: outcome refund → deny; amount \d+\.\d\d USD → none", lines[2]), lines[2]
    assert "None" not in result.output and "Money moved" not in result.output  # no total over generated cases
    assert lines[-1] == "Money is not totalled over generated cases; give --cases to total real cases."


def test_diff_between_git_revisions(runner: CliRunner, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    make_policy(repo / "policies" / "mini")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "v1"], check=True)
    make_policy(repo / "policies" / "mini", limit=29)
    subprocess.run([*git, "commit", "-qam", "v2"], check=True)
    result = runner.invoke(main, ["diff", "HEAD~1", "HEAD", "--cases",
                                  str(repo / "policies" / "mini" / "tests"), "--format", "json"],
                           env={"GIT_DIR": str(repo / ".git")})
    data = json.loads(result.stdout)
    assert data["changed"] == 1 and data["groups"][0]["examples"] == ["day 30 unopened is refunded"]


def test_diff_rejects_an_unknown_side(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["diff", str(tmp_path / "nope"), str(POLICIES)],
                           env={"GIT_DIR": str(tmp_path / "no-repo")})
    assert result.exit_code == 1
    assert "is neither a path nor a git revision" in result.output + (result.stderr or "")
