"""cli.py through click's CliRunner: the `validate`, `decide` and `facts` verbs.

Covers the exit-code contract (0 job done, 1 invalid input with
diagnostics, 2 usage error), the text diagnostic form (FILE:LINE:COL: CODE:
message, source line, caret) and the JSON forms (diagnostics and the
decision's stable keys), languages, --explain, stdin, templates and
schemas, and the Rete back end.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli import main
from conftest import POLICIES, needs_rete

HERE = f"policies: {POLICIES} (./policies)\n"  # the line naming the policy directory

CASE = POLICIES / "itellum" / "cases" / "return-refund.yaml"
DECISION_KEYS = {"case_id", "vendor", "kind", "as_of", "outcome", "amount", "customer_pays", "fees",
                 "deadlines", "actions", "alternatives", "missing_facts", "reasons", "policy"}
DIAGNOSTIC_KEYS = {"code", "message", "file", "line", "column", "path"}
RETURN_RULES = ["return-needs-technician-report", "return-needs-ticket",
                "return-equipment-not-complete", "return-refund"]
WARRANTY_WHEN = "when: days_in_service < 8 and damage_cause == 'factory'"


def run(runner: CliRunner, *args: str, stdin: str | None = None) -> Result:
    return runner.invoke(main, list(args), input=stdin, catch_exceptions=False)


def assert_clean_exit(result: Result, code: int) -> None:
    """Exited with ``code`` on purpose (SystemExit), never through a traceback."""
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output


def break_policy(folder: Path) -> tuple[Path, int, int]:
    """Misspell a fact in a rule condition; return the file and the name's line and column."""
    path = folder / "policy.yaml"
    text = path.read_text(encoding="utf-8")
    assert text.count(WARRANTY_WHEN) == 1
    text = text.replace(WARRANTY_WHEN, WARRANTY_WHEN.replace("damage_cause", "damage_cuase"))
    path.write_text(text, encoding="utf-8")
    (index, line), = [(i, ln) for i, ln in enumerate(text.splitlines()) if "damage_cuase" in ln]
    return path, index + 1, line.index("damage_cuase") + 1


# --- validate -----------------------------------------------------------------------------

def test_validate_bundled_policies(runner: CliRunner) -> None:
    result = run(runner, "validate")
    assert_clean_exit(result, 0)
    assert re.search(r"policy\.yaml: ok \(itellum 2024\.1: 5 kinds, 18 rules\)", result.stdout)


def test_validate_bundled_policies_json(runner: CliRunner) -> None:
    result = run(runner, "validate", "--format", "json")
    assert_clean_exit(result, 0)
    data = json.loads(result.stdout)
    assert data["ok"] is True and data["diagnostics"] == []
    by_vendor = {p["vendor"]: p for p in data["policies"]}
    assert set(by_vendor) == {"itellum", "intpho", "voip-provider", "ippbx-store", "did-provider"}
    policy = by_vendor["itellum"]
    assert (policy["version"], policy["rules"]) == ("2024.1", 18)
    assert all(re.fullmatch(r"[0-9a-f]{64}", p["digest"]) for p in data["policies"])


def test_validate_broken_policy_text(runner: CliRunner, itellum_copy: Path) -> None:
    path, line, col = break_policy(itellum_copy)
    result = run(runner, "validate", str(path))
    assert_clean_exit(result, 1)
    lines = result.stderr.splitlines()
    assert lines[0] == f"{path}:{line}:{col}: unknown_fact: unknown fact 'damage_cuase'"
    assert lines[1] == "  hint: did you mean 'damage_cause'?"
    source_line = path.read_text(encoding="utf-8").splitlines()[line - 1]
    assert lines[2] == "  " + source_line
    assert lines[3] == "  " + " " * (col - 1) + "^"
    assert lines[-1] == "1 problem(s)"
    assert result.stdout == ""


def test_validate_directory_of_broken_policy(runner: CliRunner, itellum_copy: Path) -> None:
    path, line, col = break_policy(itellum_copy)
    result = run(runner, "validate", "--policies", str(itellum_copy.parent))
    assert_clean_exit(result, 1)
    assert f"{path}:{line}:{col}: unknown_fact:" in result.stderr


def test_validate_broken_policy_json(runner: CliRunner, itellum_copy: Path) -> None:
    path, line, col = break_policy(itellum_copy)
    result = run(runner, "validate", str(path), "--format", "json")
    assert_clean_exit(result, 1)
    data = json.loads(result.stdout)
    assert data["ok"] is False
    (diag,) = data["diagnostics"]
    assert DIAGNOSTIC_KEYS <= set(diag)
    assert {k: diag[k] for k in DIAGNOSTIC_KEYS} == {
        "code": "unknown_fact", "message": "unknown fact 'damage_cuase'", "file": str(path),
        "line": line, "column": col, "path": "/kinds/warranty/rules/2/when"}


def test_validate_reports_every_problem(runner: CliRunner, itellum_copy: Path) -> None:
    path, line, _ = break_policy(itellum_copy)
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("when: failed_on > warranty_ends_on",
                                 "when: failed_on > repair_cost"), encoding="utf-8")
    result = run(runner, "validate", str(path), "--format", "json")
    assert_clean_exit(result, 1)
    diags = json.loads(result.stdout)["diagnostics"]
    assert [d["code"] for d in diags] == ["unknown_fact", "expr_type"]
    assert diags[0]["line"] == line < diags[1]["line"]


def test_validate_yaml_error(runner: CliRunner, itellum_copy: Path) -> None:
    path = itellum_copy / "policy.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "rounding: half_up\n", "rounding: half_up\nrounding: half_even\n"), encoding="utf-8")
    line = path.read_text(encoding="utf-8").splitlines().index("rounding: half_even") + 1
    result = run(runner, "validate", str(path))
    assert_clean_exit(result, 1)
    assert result.stderr.startswith(f"{path}:{line}:1: yaml_duplicate: duplicate key 'rounding'")


def test_validate_missing_path(runner: CliRunner, tmp_path: Path) -> None:
    result = run(runner, "validate", str(tmp_path / "nope.yaml"))
    assert_clean_exit(result, 1)
    assert "file: cannot read" in result.stderr


# --- decide --------------------------------------------------------------------------------------

def test_decide_text(runner: CliRunner) -> None:
    result = run(runner, "decide", str(CASE))
    assert_clean_exit(result, 0)
    out = result.stdout
    assert "Outcome: refund" in out
    assert "Amount: 175000.50 CRC" in out
    assert "refund_due: 2025-05-05 open  Last day for the refund transfer" in out
    assert out.startswith(HERE + "CASE-0042  itellum/return  as of 2025-04-01")


def test_decide_json(runner: CliRunner) -> None:
    result = run(runner, "decide", str(CASE), "--format", "json")
    assert_clean_exit(result, 0)
    data = json.loads(result.stdout)
    assert set(data) == DECISION_KEYS
    assert data["case_id"] == "CASE-0042"
    assert (data["vendor"], data["kind"], data["as_of"]) == ("itellum", "return", "2025-04-01")
    assert data["outcome"] == "refund"
    assert data["amount"] == {"value": "175000.50", "currency": "CRC"}
    assert data["customer_pays"] is None
    assert data["fees"] == [] and data["missing_facts"] == []
    assert [(x["name"], x["date"], x["status"], x["rule"]) for x in data["deadlines"]] == [
        ("refund_due", "2025-05-05", "open", None)]
    assert data["alternatives"] == []
    assert data["actions"] == [{
        "party": "vendor", "rule": "return-refund",
        "text": "Refund 175000.50 CRC by electronic transfer to the account the customer provides, "
                "by 2025-05-05."}]
    (reason,) = data["reasons"]
    assert set(reason) == {"rule", "clause", "source", "text"}
    assert (reason["rule"], reason["source"]) == ("return-refund", "source.txt")
    assert reason["clause"].startswith("El Reembolso del monto total pagado")
    assert set(data["policy"]) == {"vendor", "version", "effective_from", "digest"}
    assert data["policy"]["effective_from"] == "2024-01-01"


def test_decide_spanish(runner: CliRunner) -> None:
    result = run(runner, "decide", str(CASE), "--lang", "es", "--format", "json")
    assert_clean_exit(result, 0)
    data = json.loads(result.stdout)
    assert data["reasons"][0]["text"] == (
        "La instalación no fue posible y el equipo se devolvió completo, por lo que se reembolsa "
        "el costo del equipo y la primera mensualidad (175000.50 CRC) en un plazo no mayor a 20 "
        "días hábiles.")
    assert data["actions"][0]["text"].startswith("Reembolsar 175000.50 CRC por transferencia")


def test_decide_explain_lists_every_rule(runner: CliRunner) -> None:
    result = run(runner, "decide", str(CASE), "--explain")
    assert_clean_exit(result, 0)
    out = result.stdout.split("Rules, in decision order:\n", 1)[1]
    positions = [out.index(rule) for rule in RETURN_RULES]
    assert positions == sorted(positions)
    assert "=> return-refund [refund] decided" in out
    assert "- " + " return-needs-ticket [needs_info] failed: not ticket_opened is false" in out


def test_decide_explain_json(runner: CliRunner) -> None:
    result = run(runner, "decide", str(CASE), "--explain", "--format", "json")
    assert_clean_exit(result, 0)
    data = json.loads(result.stdout)
    steps = data["explanation"]
    assert [s["rule"] for s in steps] == RETURN_RULES
    assert [s["status"] for s in steps] == ["failed", "failed", "failed", "decided"]


def test_decide_from_stdin(runner: CliRunner) -> None:
    result = run(runner, "decide", "-", "--format", "json", stdin=CASE.read_text(encoding="utf-8"))
    assert_clean_exit(result, 0)
    data = json.loads(result.stdout)
    assert (data["outcome"], data["amount"]["value"]) == ("refund", "175000.50")


def test_decide_json_case(runner: CliRunner, tmp_path: Path) -> None:
    case = {"vendor": "itellum", "kind": "delivery", "as_of": "2025-03-10",
            "facts": {"defect_at_delivery": True}}
    path = tmp_path / "case.json"
    path.write_text(json.dumps(case), encoding="utf-8")
    result = run(runner, "decide", str(path), "--format", "json")
    assert_clean_exit(result, 0)
    assert json.loads(result.stdout)["outcome"] == "replace"


def test_decide_misspelled_fact(runner: CliRunner, tmp_path: Path) -> None:
    text = CASE.read_text(encoding="utf-8").replace("  ticket_opened: true", "  tiket_opened: true")
    path = tmp_path / "case.yaml"
    path.write_text(text, encoding="utf-8")
    line = text.splitlines().index("  tiket_opened: true") + 1
    result = run(runner, "decide", str(path))
    assert_clean_exit(result, 1)
    lines = result.stderr.splitlines()
    assert lines[0] == (f"{path}:{line}:3: unknown_fact: unknown fact 'tiket_opened': "
                        "the itellum policy does not declare it")
    assert lines[1] == "  hint: did you mean 'ticket_opened'?"
    assert lines[2:4] == ["    tiket_opened: true", "    ^"]
    assert result.stdout == HERE


def test_decide_misspelled_fact_from_stdin(runner: CliRunner) -> None:
    text = CASE.read_text(encoding="utf-8").replace("  ticket_opened: true", "  tiket_opened: true")
    line = text.splitlines().index("  tiket_opened: true") + 1
    result = run(runner, "decide", "-", stdin=text)
    assert_clean_exit(result, 1)
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"<stdin>:{line}:3: unknown_fact: unknown fact 'tiket_opened'")
    assert lines[2:4] == ["    tiket_opened: true", "    ^"]


def test_decide_misspelled_fact_json(runner: CliRunner, tmp_path: Path) -> None:
    text = CASE.read_text(encoding="utf-8").replace("  ticket_opened: true", "  tiket_opened: true")
    path = tmp_path / "case.yaml"
    path.write_text(text, encoding="utf-8")
    result = run(runner, "decide", str(path), "--format", "json")
    assert_clean_exit(result, 1)
    data = json.loads(result.stdout)
    assert data["ok"] is False
    (diag,) = data["diagnostics"]
    assert (diag["code"], diag["path"], diag["file"]) == ("unknown_fact", "/facts/tiket_opened", str(path))
    assert diag["line"] == text.splitlines().index("  tiket_opened: true") + 1


def test_decide_wrong_fact_type(runner: CliRunner, tmp_path: Path) -> None:
    text = CASE.read_text(encoding="utf-8").replace(
        "equipment_returned_on: 2025-04-01", "equipment_returned_on: first of april")
    path = tmp_path / "case.yaml"
    path.write_text(text, encoding="utf-8")
    result = run(runner, "decide", str(path))
    assert_clean_exit(result, 1)
    assert "case_fact_type: fact equipment_returned_on: expected a date YYYY-MM-DD" in result.stderr


def test_decide_missing_case_file(runner: CliRunner, tmp_path: Path) -> None:
    result = run(runner, "decide", str(tmp_path / "nope.yaml"))
    assert_clean_exit(result, 1)
    assert "file: cannot read case" in result.stderr
    assert "nope.yaml" in result.stderr


def test_decide_case_yaml_error(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "case.yaml"
    path.write_text("vendor: itellum\nkind: [return\n", encoding="utf-8")
    result = run(runner, "decide", str(path), "--format", "json")
    assert_clean_exit(result, 1)
    (diag,) = json.loads(result.stdout)["diagnostics"]
    assert (diag["code"], diag["file"]) == ("yaml_syntax", str(path))


def test_decide_unknown_vendor(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "case.yaml"
    path.write_text("vendor: acme\nkind: return\nfacts: {}\n", encoding="utf-8")
    result = run(runner, "decide", str(path))
    assert_clean_exit(result, 1)
    assert "case: unknown vendor 'acme'" in result.stderr


def test_decide_broken_policy_dir(runner: CliRunner, itellum_copy: Path) -> None:
    path, line, col = break_policy(itellum_copy)
    result = run(runner, "decide", str(CASE), "--policies", str(itellum_copy.parent))
    assert_clean_exit(result, 1)
    assert f"{path}:{line}:{col}: unknown_fact:" in result.stderr


def test_decide_policies_from_environment(runner: CliRunner, itellum_copy: Path) -> None:
    path, line, col = break_policy(itellum_copy)
    result = runner.invoke(main, ["decide", str(CASE)], env={"CLAUSE_POLICIES": str(itellum_copy.parent)})
    assert_clean_exit(result, 1)
    assert f"{path}:{line}:{col}: unknown_fact:" in result.stderr


@pytest.mark.parametrize(
    "args",
    [["decide"], ["decide", str(CASE), "--format", "xml"], ["decide", str(CASE), "--matcher", "x"],
     ["nosuchverb"], ["facts"]],
    ids=["missing-case", "bad-format", "bad-matcher", "unknown-verb", "facts-without-vendor"],
)
def test_usage_error_exits_2(runner: CliRunner, args: list[str]) -> None:
    result = runner.invoke(main, args)
    assert result.exit_code == 2
    assert "Usage:" in result.stderr


# --- facts ----------------------------------------------------------------------------------------

def test_facts_lists_facts(runner: CliRunner) -> None:
    result = run(runner, "facts", "itellum")
    assert_clean_exit(result, 0)
    out = result.stdout
    assert out.startswith(HERE + "Itellum Comunicaciones de Costa Rica S.A. (itellum 2024.1); money in CRC")
    assert "  installed_on: date\n" in out
    assert "  damage_cause: enum: factory | customer_misuse | other\n" in out
    assert "  interruptions: list of {start: datetime, end: datetime, compliance_pct: decimal}" in out


def test_facts_of_a_kind_json(runner: CliRunner) -> None:
    result = run(runner, "facts", "itellum", "warranty", "--format", "json")
    assert_clean_exit(result, 0)
    data = json.loads(result.stdout)
    assert (data["vendor"], data["kind"]) == ("itellum", "warranty")
    assert [f["name"] for f in data["facts"]] == [
        "installed_on", "failed_on", "damage_cause", "shipping_cost", "repair_cost"]
    assert data["facts"][2]["values"] == ["factory", "customer_misuse", "other"]


def test_facts_template_fills_in_and_decides(runner: CliRunner, tmp_path: Path) -> None:
    result = run(runner, "facts", "itellum", "warranty", "--template")
    assert_clean_exit(result, 0)
    template = result.stdout
    assert "kind: warranty" in template
    values = {"installed_on": "2025-01-10", "failed_on": "2025-03-01", "damage_cause": "other",
              "shipping_cost": "'3500.00'", "repair_cost": "'20000.00'"}
    filled = template
    for name, value in values.items():
        filled, n = re.subn(rf"^(\s+{name}:) *$", rf"\1 {value}", filled, flags=re.MULTILINE)
        assert n == 1, name
    filled = re.sub(r"^as_of:.*$", "as_of: 2025-03-10", filled, flags=re.MULTILINE)
    path = tmp_path / "case.yaml"
    path.write_text(filled, encoding="utf-8")
    decided = run(runner, "decide", str(path), "--format", "json")
    assert_clean_exit(decided, 0)
    data = json.loads(decided.stdout)
    assert data["outcome"] == "repair"
    assert data["customer_pays"] == {"value": "3500.00", "currency": "CRC"}
    assert data["reasons"][0]["rule"] == "warranty-workshop-repair"


def test_facts_template_as_is_is_a_valid_case(runner: CliRunner, tmp_path: Path) -> None:
    """The blank template parses; with every fact unknown the decision asks for them."""
    path = tmp_path / "blank.yaml"
    path.write_text(run(runner, "facts", "itellum", "warranty", "--template").stdout, encoding="utf-8")
    result = run(runner, "decide", str(path), "--format", "json")
    assert_clean_exit(result, 0)
    data = json.loads(result.stdout)
    assert data["outcome"] == "needs_info"
    assert {"installed_on", "failed_on", "damage_cause"} <= {m["fact"] for m in data["missing_facts"]}


def test_facts_schema(runner: CliRunner) -> None:
    result = run(runner, "facts", "itellum", "--schema")
    assert_clean_exit(result, 0)
    schema = json.loads(result.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    props = schema["properties"]
    value, bounded = props["installed_on"]["anyOf"]  # a value, or a bound (README "Bounded facts")
    assert value["format"] == "date" and set(bounded["properties"]) == {"at_least", "at_most"}
    assert props["damage_cause"]["anyOf"][0]["enum"] == ["factory", "customer_misuse", "other"]
    assert props["interruptions"]["items"]["required"] == ["start", "end", "compliance_pct"]
    assert "days_in_service" not in props  # derived facts are not input


def test_facts_schema_accepts_the_bundled_case(runner: CliRunner) -> None:
    import jsonschema  # noqa: PLC0415
    import yaml  # noqa: PLC0415
    schema = json.loads(run(runner, "facts", "itellum", "--schema").stdout)
    facts = yaml.safe_load(CASE.read_text(encoding="utf-8"))["facts"]
    facts["equipment_returned_on"] = str(facts["equipment_returned_on"])
    jsonschema.Draft202012Validator(schema).validate(facts)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate({**facts, "tiket_opened": True})


def test_facts_unknown_vendor(runner: CliRunner) -> None:
    result = run(runner, "facts", "nosuchvendor")
    assert_clean_exit(result, 1)
    assert ("case: unknown vendor 'nosuchvendor'; known: did-provider, intpho, ippbx-store, itellum, "
            "voip-provider") in result.stderr


def test_facts_unknown_kind(runner: CliRunner) -> None:
    result = run(runner, "facts", "itellum", "warrenty")
    assert_clean_exit(result, 1)
    assert "unknown kind 'warrenty'" in result.stderr


# --- the Rete back end ---------------------------------------------------------------------------------

@needs_rete
def test_decide_with_rete_matches_python(runner: CliRunner) -> None:
    python = run(runner, "decide", str(CASE), "--format", "json")
    rete = run(runner, "decide", str(CASE), "--format", "json", "--matcher", "rete")
    assert_clean_exit(rete, 0)
    assert json.loads(rete.stdout) == json.loads(python.stdout)
    assert json.loads(rete.stdout)["amount"] == {"value": "175000.50", "currency": "CRC"}


@needs_rete
def test_validate_with_rete(runner: CliRunner) -> None:
    result = run(runner, "validate", "--matcher", "rete")
    assert_clean_exit(result, 0)
    assert ": ok (itellum 2024.1" in result.stdout
