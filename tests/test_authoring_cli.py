"""The author's first hour (issue 10): edit and see, clause init, errors that teach, CI output."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from engine import PolicyError
from engine.cliutil import resolve_policies
from engine.loader import load_policy
from engine.testing import load_tests

from conftest import POLICIES
from test_authoring import make_policy

CASE = POLICIES / "itellum" / "cases" / "return-refund.yaml"
NO_ENV = {"CLAUSE_POLICIES": None}


@pytest.fixture()
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory with its own ./policies (a copy of Itellum), as the current directory."""
    shutil.copytree(POLICIES / "itellum", tmp_path / "policies" / "itellum")
    monkeypatch.chdir(tmp_path)
    return tmp_path


# --- 1. edit and see ---------------------------------------------------------------------

def test_the_current_directorys_policies_are_used_and_named(runner: CliRunner, checkout: Path) -> None:
    policy = checkout / "policies" / "itellum" / "policy.yaml"
    result = runner.invoke(main, ["validate"], env=NO_ENV)
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == f"policies: {checkout / 'policies'} (./policies)"
    policy.write_text(policy.read_text(encoding="utf-8").replace("rounding: half_up", "rounding: half_upp"),
                      encoding="utf-8")
    broken = runner.invoke(main, ["validate"], env=NO_ENV)
    assert broken.exit_code == 1 and "'half_upp' is not one of" in broken.stderr
    decided = runner.invoke(main, ["decide", str(CASE)], env=NO_ENV)
    assert decided.exit_code == 1 and "half_upp" in decided.stderr


def test_an_edit_changes_the_decision(runner: CliRunner, checkout: Path) -> None:
    policy = checkout / "policies" / "itellum" / "policy.yaml"
    before = json.loads(runner.invoke(main, ["decide", str(CASE), "--format", "json"], env=NO_ENV).stdout)
    text = policy.read_text(encoding="utf-8")
    policy.write_text(text.replace("amount: equipment_price + first_monthly_fee", "amount: equipment_price"),
                      encoding="utf-8")
    after = runner.invoke(main, ["decide", str(CASE), "--format", "json"], env=NO_ENV)
    assert after.stderr == f"policies: {checkout / 'policies'} (./policies)\n"  # json: the line on stderr
    assert json.loads(after.stdout)["amount"] != before["amount"]


def test_env_and_flag_beat_the_current_directory(tmp_path: Path, checkout: Path) -> None:
    assert resolve_policies(None).origin == "./policies"
    assert resolve_policies(tmp_path / "x") == resolve_policies(tmp_path / "x")
    assert resolve_policies(tmp_path / "x").origin == "--policies"


def test_without_a_policies_directory_the_bundled_set_is_used(runner: CliRunner, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CLAUSE_POLICIES", raising=False)
    assert resolve_policies(None).origin == "bundled"
    result = runner.invoke(main, ["facts", "itellum", "--format", "json"], env=NO_ENV)
    assert result.exit_code == 0 and result.stderr.endswith(" (bundled)\n")
    assert json.loads(result.stdout)["vendor"] == "itellum"
    monkeypatch.setenv("CLAUSE_POLICIES", str(POLICIES))
    assert resolve_policies(None).origin == "$CLAUSE_POLICIES"


def test_serve_keeps_no_log_unless_asked(runner: CliRunner, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn  # noqa: PLC0415

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append(kw))
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(main, ["serve", "--policies", str(POLICIES)])
    assert result.exit_code == 0 and calls and "decision log: none (add --log FILE)" in result.stdout
    assert list(tmp_path.iterdir()) == []  # nothing written where it was started
    logged = runner.invoke(main, ["serve", "--policies", str(POLICIES), "--log", str(tmp_path / "d.sqlite3")])
    assert logged.exit_code == 0 and (tmp_path / "d.sqlite3").exists()


def test_log_verbs_need_a_log(runner: CliRunner) -> None:
    result = runner.invoke(main, ["log", "list"])
    assert result.exit_code == 2 and "--log" in result.output


def test_no_sqlite_file_is_tracked() -> None:
    root = POLICIES.parent
    ignore = (root / ".gitignore").read_text(encoding="utf-8")
    assert "clause-log.sqlite3*" in ignore


# --- 3. errors that teach ------------------------------------------------------------------

NESTED = """\
metadata:
  vendor: acme
  name: Acme
  version: "1"
source: source.txt
facts:
  delivered_on: {type: date, meaning: Delivery day}
kinds:
  return:
    title: Returns
    combine: first_match
    otherwise: deny
    rules:
      - {id: r, clause: x, when: "true", outcome: refund, reason: {en: ok}}
"""


def _problems(tmp_path: Path, text: str) -> list:
    (tmp_path / "policy.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "source.txt").write_text("x", encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        load_policy(tmp_path / "policy.yaml")
    return list(info.value.diagnostics)


def test_root_schema_errors_name_every_key(tmp_path: Path) -> None:
    found = _problems(tmp_path, NESTED)
    messages = [d.message for d in found]
    assert "the document: unknown key 'metadata'" in messages
    meta = next(d for d in found if d.message == "the document: unknown key 'metadata'")
    assert (meta.location.line, meta.location.column) == (1, 1)
    assert "its keys (vendor, name, version) belong directly here, without 'metadata:'" in meta.hint
    missing = next(m for m in messages if "missing required key(s)" in m)
    assert missing.startswith("the document: missing required key(s): clause (always 1), vendor, name,")
    assert "/source: expected a mapping with file, e.g. {file: source.txt" in " ".join(messages)
    assert ("/kinds/return/otherwise: expected a mapping with outcome and reason, e.g. {outcome: deny, "
            "reason: {en: No rule of these terms grants it.}}; found the string 'deny'") in messages
    assert not any("{'" in m for m in messages)  # never a Python dict


def test_test_file_shape_errors(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("- note: x\n  input: {vendor: acme, kind: k, facts: {}}\n  want_decision: {outcome: refund}\n",
                    encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        load_tests(path)
    (d,) = info.value.diagnostics
    assert d.message.startswith("the document: expected a mapping with cases, e.g. {cases: [{note: ")
    assert d.message.endswith("; found a list of 1 item(s)")
    path.write_text("cases:\n- note: x\n  input: {vendor: acme, kind: k, facts: {}}\n  want: {outcome: refund}\n",
                    encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        load_tests(path)
    (d,) = info.value.diagnostics
    assert d.message == "/cases/0: unknown key 'want'"
    assert d.hint.startswith("did you mean 'want_decision'? allowed keys: note, input, lang,")
    assert (d.location.line, d.location.column) == (4, 3)


@pytest.mark.parametrize(("expr", "ok"), [
    ("days_between(delivered_on, as_of) > price", False),
    ("price < days_between(delivered_on, as_of)", False),
    ("price * 2 > count_units", False),
    ("price > 0", True),
    ("price >= -1", True),
    ("price > money('10.00')", True),
    ("price * count_units > money(0)", True),
], ids=["days-vs-money", "money-vs-days", "money-vs-count-fact", "money-vs-zero", "money-vs-negative-literal",
        "money-vs-money", "money-times-count-vs-money"])
def test_money_compares_only_with_money_or_a_number_literal(tmp_path: Path, expr: str, ok: bool) -> None:
    home = make_policy(tmp_path / "mini", tests=False)
    policy = home / "policy.yaml"
    text = policy.read_text(encoding="utf-8").replace(
        "  color: {type: string, meaning: Never read by any rule}",
        "  color: {type: string, meaning: Never read by any rule}\n"
        "  delivered_on: {type: date, meaning: Delivery day}\n"
        "  count_units: {type: integer, meaning: Units}").replace(
        "when: opened and days_since_delivery <= 30", f"when: {expr}")
    policy.write_text(text, encoding="utf-8")
    if ok:
        load_policy(policy)
        return
    with pytest.raises(PolicyError) as info:
        load_policy(policy)
    (d,) = info.value.diagnostics
    assert d.code == "expr_type" and d.message.startswith("cannot compare money with integer")


# --- 4. clause init ------------------------------------------------------------------------

TERMS = """\
Returns
Unopened items may be returned within 30 days of delivery for a full refund.
Opened items cannot be returned.
Shipping costs are paid by the customer.
Thank you for shopping with us
"""


def test_init_validates_and_tests_at_once(runner: CliRunner, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "terms.txt").write_text(TERMS, encoding="utf-8")
    result = runner.invoke(main, ["init", "acme", "--source", "terms.txt", "--languages", "en,es",
                                  "--currency", "eur", "--country", "de", "--timezone", "Europe/Berlin"],
                           env=NO_ENV)
    assert result.exit_code == 0, result.output
    home = tmp_path / "policies" / "acme"
    assert sorted(p.relative_to(home).as_posix() for p in home.rglob("*") if p.is_file()) == [
        "policy.yaml", "source.txt", "tests/skeleton.yaml"]
    assert (home / "source.txt").read_text(encoding="utf-8") == TERMS
    policy = load_policy(home / "policy.yaml")
    assert (policy.currency, policy.country, policy.timezone, policy.languages) == ("EUR", "DE", "Europe/Berlin",
                                                                                   ("en", "es"))
    assert [o.clause for o in policy.out_of_scope] == [
        "Unopened items may be returned within 30 days of delivery for a full refund.",
        "Opened items cannot be returned.", "Shipping costs are paid by the customer."]
    validated = runner.invoke(main, ["validate"], env=NO_ENV)
    assert validated.exit_code == 0, validated.output
    tested = runner.invoke(main, ["test"], env=NO_ENV)
    assert tested.exit_code == 0 and tested.stdout.endswith("1 passed, 0 failed\n"), tested.output


def test_init_never_overwrites(runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "terms.txt").write_text(TERMS, encoding="utf-8")
    home = tmp_path / "policies" / "acme"
    home.mkdir(parents=True)
    (home / "policy.yaml").write_text("mine", encoding="utf-8")
    result = runner.invoke(main, ["init", "acme", "--source", "terms.txt"], env=NO_ENV)
    assert result.exit_code == 1 and "already exists: clause init never overwrites" in result.stderr
    assert (home / "policy.yaml").read_text(encoding="utf-8") == "mine"


@pytest.mark.parametrize(("vendor", "terms", "message"), [
    ("Acme Inc", TERMS, "is not a vendor name"),
    ("acme", "   \n\n", "has no sentences to quote"),
], ids=["bad-name", "empty-source"])
def test_init_refuses_bad_input(runner: CliRunner, tmp_path: Path, vendor: str, terms: str, message: str) -> None:
    (tmp_path / "terms.txt").write_text(terms, encoding="utf-8")
    result = runner.invoke(main, ["init", vendor, "--source", str(tmp_path / "terms.txt"),
                                  "--policies", str(tmp_path / "p")])
    assert result.exit_code == 1 and message in result.stderr
    assert not (tmp_path / "p").exists()


# --- 7. CI-friendly output -----------------------------------------------------------------

def test_test_junit_and_json(runner: CliRunner, tmp_path: Path) -> None:
    home = make_policy(tmp_path / "mini", limit=29)  # one test fails
    result = runner.invoke(main, ["test", str(home), "--format", "junit"])
    assert result.exit_code == 1
    root = ET.fromstring(result.stdout)
    assert (root.tag, root.get("tests"), root.get("failures")) == ("testsuites", "2", "1")
    (suite,) = root
    assert suite.get("name") == "mini/tests/return"
    failed = [c for c in suite if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["day 30 unopened is refunded"]
    assert 'outcome: expected "refund", got "deny"' in failed[0].find("failure").text
    data = json.loads(runner.invoke(main, ["test", str(home), "--format", "json"]).stdout)
    assert (data["passed"], data["failed"]) == (1, 1)


def test_lint_sarif(runner: CliRunner, tmp_path: Path) -> None:
    home = make_policy(tmp_path / "mini")
    result = runner.invoke(main, ["lint", str(home), "--format", "sarif"])
    assert result.exit_code == 1  # the shadowed rule is an error
    sarif = json.loads(result.stdout)
    assert sarif["version"] == "2.1.0"
    run = sarif["runs"][0]
    ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    shadowed = next(r for r in run["results"] if r["ruleId"] == "shadowed_rule")
    assert shadowed["level"] == "error" and ids[shadowed["ruleIndex"]] == "shadowed_rule"
    where = shadowed["locations"][0]["physicalLocation"]
    assert where["artifactLocation"]["uri"].endswith("mini/policy.yaml") and where["region"]["startLine"] > 1


def test_unknown_lang_is_a_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(main, ["decide", str(CASE), "--lang", "fr"])
    assert result.exit_code == 2
    assert "'fr' is not a language of the policies (itellum: en, es)" in result.stderr
    assert runner.invoke(main, ["decide", str(CASE), "--lang", "es"]).exit_code == 0


def test_batch_reads_stdin_and_writes_stdout(runner: CliRunner) -> None:
    case = {"id": "A", "vendor": "itellum", "kind": "delivery", "as_of": "2025-01-01",
            "facts": {"defect_at_delivery": True}}
    result = runner.invoke(main, ["batch", "-", "-o", "-", "--no-progress"], input=json.dumps(case) + "\n")
    assert result.exit_code == 0, result.output
    (line,) = result.stdout.splitlines()
    assert json.loads(line)["case_id"] == "A"
    assert "1 case(s): 1 decided, 0 invalid" in result.stderr
    bad_lang = runner.invoke(main, ["batch", "-", "-o", "-", "--lang", "xx"], input=json.dumps(case) + "\n")
    assert bad_lang.exit_code == 2


def test_facts_schema_per_kind(runner: CliRunner) -> None:
    whole = json.loads(runner.invoke(main, ["facts", "itellum", "--schema"]).stdout)
    listed = json.loads(runner.invoke(main, ["facts", "itellum", "delivery", "--format", "json"]).stdout)
    one = json.loads(runner.invoke(main, ["facts", "itellum", "delivery", "--schema"]).stdout)
    assert list(one["properties"]) == [f["name"] for f in listed["facts"]]
    assert 0 < len(one["properties"]) < len(whole["properties"])
    assert one["$id"].endswith("/facts/itellum/delivery.json")
