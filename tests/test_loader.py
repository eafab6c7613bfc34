"""engine/loader.py (load_policy) and its located diagnostics; engine/_yaml.py reading rules.

Each test breaks a copy of policies/itellum/policy.yaml in tmp_path and
asserts the diagnostic's code, line and column exactly. Expected positions
are computed from the broken text itself (the line holding a unique needle,
and the needle's column in it), so they stay exact if the policy grows.
Also: every diagnostic is reported at once and sorted, a broken derived
fact does not cascade, and YAML reading keeps numbers, words and dates exact.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from engine._yaml import parse_yaml
from engine.errors import Diagnostic, PolicyError
from engine.loader import load_policy
from engine.location import SourceLocation

BUNDLED = Path(__file__).resolve().parent.parent / "policies" / "itellum" / "policy.yaml"
WARRANTY_WHEN = "when: days_in_service < 8 and damage_cause == 'factory'"
EXPIRED_WHEN = "when: failed_on > warranty_ends_on"


def rewrite(folder: Path, *pairs: str) -> str:
    """Apply (old, new) replacements, each once and each required, to the copy's policy."""
    path = folder / "policy.yaml"
    text = path.read_text(encoding="utf-8")
    for old, new in zip(pairs[::2], pairs[1::2], strict=True):
        assert text.count(old) == 1, f"needle not unique in the policy: {old!r}"
        text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")
    return text


def diagnostics(folder: Path) -> tuple[Diagnostic, ...]:
    with pytest.raises(PolicyError) as info:
        load_policy(folder / "policy.yaml")
    return info.value.diagnostics


def position(text: str, line_needle: str, col_needle: str | None = None) -> tuple[int, int]:
    """1-based (line, column) of ``col_needle`` in the only line that contains ``line_needle``."""
    hits = [i for i, line in enumerate(text.splitlines()) if line_needle in line]
    assert len(hits) == 1, f"{line_needle!r} is on lines {hits}"
    line = text.splitlines()[hits[0]]
    return hits[0] + 1, line.index(col_needle if col_needle is not None else line_needle) + 1


def where(d: Diagnostic) -> tuple[str, int, int]:
    assert d.location is not None
    return d.code, d.location.line, d.location.column


def only(diags: tuple[Diagnostic, ...]) -> Diagnostic:
    assert len(diags) == 1, [d.render() for d in diags]
    return diags[0]


# --- the bundled policy --------------------------------------------------------------

def test_bundled_policy_loads() -> None:
    policy = load_policy(BUNDLED)
    assert (policy.vendor, policy.version, policy.currency) == ("itellum", "2024.1", "CRC")
    assert policy.rounding == "half_up"
    assert policy.languages == ("en", "es")
    assert list(policy.kinds) == ["return", "service_failure", "delivery", "warranty", "compensation"]
    assert [r.id for r in policy.kinds["warranty"].rules] == [
        "warranty-early-misuse", "warranty-customer-damage", "warranty-immediate-replacement",
        "warranty-workshop-repair", "warranty-expired"]
    assert len(policy.digest) == 64 and int(policy.digest, 16) >= 0
    assert str(policy.derived["rpcs_multiplier"].expr.type) == "integer"  # a quoted "2"


def test_rule_and_expression_locations(itellum_copy: Path) -> None:
    text = (itellum_copy / "policy.yaml").read_text(encoding="utf-8")
    policy = load_policy(itellum_copy / "policy.yaml")
    rule = policy.kinds["warranty"].rules[4]
    assert rule.when.text == "failed_on > warranty_ends_on"
    line, col = position(text, EXPIRED_WHEN, "failed_on")
    assert (rule.when.location.line, rule.when.location.column) == (line, col)
    assert rule.when.path == "/kinds/warranty/rules/4/when"


def test_digest_changes_with_the_source_text(itellum_copy: Path) -> None:
    before = load_policy(itellum_copy / "policy.yaml").digest
    with (itellum_copy / "source.txt").open("a", encoding="utf-8") as fh:
        fh.write("\n")
    assert load_policy(itellum_copy / "policy.yaml").digest != before


# --- YAML and schema errors ----------------------------------------------------------------

def test_yaml_syntax_error(itellum_copy: Path) -> None:
    text = rewrite(itellum_copy, "rounding: half_up\n", "rounding: half_up\n  stray: indent\n")
    d = only(diagnostics(itellum_copy))
    assert where(d) == ("yaml_syntax", *position(text, "  stray: indent", ":"))
    assert d.message.startswith("invalid YAML: mapping values are not allowed")


def test_yaml_unclosed_flow_sequence(itellum_copy: Path) -> None:
    text = rewrite(itellum_copy, "languages: [en, es]", "languages: [en, es")
    d = only(diagnostics(itellum_copy))
    assert d.code == "yaml_syntax"
    # PyYAML notices the missing ']' at the next key, on the following line.
    assert where(d) == ("yaml_syntax", *position(text, "rounding: half_up", ":"))


def test_duplicate_key(itellum_copy: Path) -> None:
    text = rewrite(itellum_copy, "rounding: half_up\n", "rounding: half_up\nrounding: half_even\n")
    d = only(diagnostics(itellum_copy))
    assert where(d) == ("yaml_duplicate", *position(text, "rounding: half_even", "rounding"))
    assert d.message == "duplicate key 'rounding': each key may appear once"
    assert d.path == "/rounding"


def test_duplicate_key_nested(itellum_copy: Path) -> None:
    text = rewrite(itellum_copy, "    type: bool\n    meaning: An authorized Itellum technician",
                   "    type: bool\n    type: date  # again\n    meaning: An authorized Itellum technician")
    d = only(diagnostics(itellum_copy))
    assert where(d) == ("yaml_duplicate", *position(text, "type: date  # again", "type"))
    assert d.path == "/facts/install_impossible_report/type"


def test_schema_bad_enum_value(itellum_copy: Path) -> None:
    text = rewrite(itellum_copy, "rounding: half_up", "rounding: half_upp")
    d = only(diagnostics(itellum_copy))
    assert where(d) == ("schema", *position(text, "rounding: half_upp", "half_upp"))
    assert "'half_upp' is not one of" in d.message and "half_up" in d.message
    assert d.path == "/rounding"


def test_schema_unknown_top_level_key(itellum_copy: Path) -> None:
    text = rewrite(itellum_copy, "rounding: half_up\n", "rounding: half_up\nroundings: 2\n")
    d = only(diagnostics(itellum_copy))
    assert where(d) == ("schema", *position(text, "roundings: 2", "roundings"))
    assert d.message == "the document: unknown key 'roundings'"
    assert d.hint.startswith("did you mean 'rounding'? allowed keys: clause, vendor, name,")


def test_schema_unknown_key_in_rule(itellum_copy: Path) -> None:
    text = rewrite(itellum_copy, "      - id: warranty-expired\n",
                   "      - id: warranty-expired\n        priorty: 3\n")
    d = only(diagnostics(itellum_copy))
    assert where(d) == ("schema", *position(text, "priorty: 3", "priorty"))
    assert d.path == "/kinds/warranty/rules/4"


def test_schema_errors_are_reported_together_and_sorted(itellum_copy: Path) -> None:
    text = rewrite(itellum_copy, "rounding: half_up", "rounding: half_upp",
                   "currencies: [CRC, USD]", "currencies: [crc, USD]")
    diags = diagnostics(itellum_copy)
    assert [where(d) for d in diags] == [
        ("schema", *position(text, "currencies: [crc, USD]", "crc")),
        ("schema", *position(text, "rounding: half_upp", "half_upp")),
    ]


def test_unknown_currency(itellum_copy: Path) -> None:
    text = rewrite(itellum_copy, "currencies: [CRC, USD]", "currencies: [CRC, XYZ]")
    d = only(diagnostics(itellum_copy))
    assert where(d) == ("schema", *position(text, "currencies: [CRC, XYZ]", "XYZ"))
    assert "unknown currency 'XYZ'" in d.message


# --- expressions ----------------------------------------------------------------------------

def test_unknown_fact_in_condition(itellum_copy: Path) -> None:
    text = rewrite(itellum_copy, WARRANTY_WHEN, WARRANTY_WHEN.replace("damage_cause", "damage_cuase"))
    d = only(diagnostics(itellum_copy))
    assert where(d) == ("unknown_fact", *position(text, "damage_cuase", "damage_cuase"))
    assert d.message == "unknown fact 'damage_cuase'"
    assert d.hint == "did you mean 'damage_cause'?"
    assert d.path == "/kinds/warranty/rules/2/when"


def test_type_error_date_compared_with_money(itellum_copy: Path) -> None:
    text = rewrite(itellum_copy, EXPIRED_WHEN, "when: failed_on > repair_cost")
    d = only(diagnostics(itellum_copy))
    assert where(d) == ("expr_type", *position(text, "when: failed_on > repair_cost", "failed_on"))
    assert d.message == "cannot compare date with money"


def test_condition_must_be_bool(itellum_copy: Path) -> None:
    text = rewrite(itellum_copy, EXPIRED_WHEN, "when: repair_cost")
    d = only(diagnostics(itellum_copy))
    assert where(d) == ("expr_type", *position(text, "when: repair_cost", "repair_cost"))
    assert d.message == "expected bool, found money"


def test_amount_must_be_money(itellum_copy: Path) -> None:
    text = rewrite(itellum_copy, "amount: equipment_price + first_monthly_fee",
                   "amount: equipment_returned_on")
    d = only(diagnostics(itellum_copy))
    assert where(d) == ("expr_type", *position(text, "amount: equipment_returned_on", "equipment"))
    assert d.message == "expected money, found date"


def test_syntax_error_in_expression(itellum_copy: Path) -> None:
    text = rewrite(itellum_copy, EXPIRED_WHEN, "when: failed_on > warranty_ends_on ** 2")
    d = only(diagnostics(itellum_copy))
    assert where(d) == ("expr_syntax", *position(text, "warranty_ends_on ** 2", "**"))


def test_unknown_placeholder_in_reason(itellum_copy: Path) -> None:
    text = rewrite(itellum_copy, "en: The warranty ended on {warranty_ends_on}",
                   "en: The warranty ended on {warranty_endz}")
    d = only(diagnostics(itellum_copy))
    assert where(d) == ("unknown_fact", *position(text, "{warranty_endz}", "The warranty"))
    assert d.message == "placeholder {warranty_endz} names no fact"


@pytest.mark.parametrize(
    "replacement",
    [
        "when: \"days_in_service < 8 and damage_cuase == 'factory'\"",
        "when: 'days_in_service < 8 and damage_cuase == ''factory'''",
        "when: |\n          days_in_service < 8\n          and damage_cuase == 'factory'",
        "when: |-\n          days_in_service < 8 and\n            damage_cuase == 'factory'",
        "when: >-\n          days_in_service < 8\n          and damage_cuase == 'factory'",
        "when: days_in_service < 8\n          and damage_cuase == 'factory'",
        "when: 'damage_cause == ''factory'' and damage_cuase == ''factory'''",
    ],
    ids=["double-quoted", "single-quoted", "literal-block", "literal-block-indented",
         "folded-block", "plain-multiline", "single-quoted-escape-before"],
)
def test_expression_position_in_every_scalar_style(itellum_copy: Path, replacement: str) -> None:
    text = rewrite(itellum_copy, WARRANTY_WHEN, replacement)
    d = only(diagnostics(itellum_copy))
    assert where(d) == ("unknown_fact", *position(text, "damage_cuase", "damage_cuase"))


# --- policy-level errors ---------------------------------------------------------------------

def test_derived_cycle(itellum_copy: Path) -> None:
    text = rewrite(itellum_copy,
                   "expr: days_between(installed_on, failed_on)",
                   "expr: days_between(installed_on, warranty_ends_on)",
                   "expr: add_months(installed_on, 6)",
                   "expr: add_months(installed_on, days_in_service)")
    diags = diagnostics(itellum_copy)
    cycle = [d for d in diags if d.code == "policy"]
    assert len(cycle) == 1
    assert where(cycle[0]) == ("policy", *position(text, "days_between(installed_on, warranty_ends_on)",
                                                   "days_between"))
    assert cycle[0].message == ("derived facts form a cycle: "
                                "days_in_service -> warranty_ends_on -> days_in_service")
    # Both names are declared: the cycle is the only problem to report.
    assert [d.code for d in diags] == ["policy"], [d.render() for d in diags]


def test_derived_self_reference_is_a_cycle(itellum_copy: Path) -> None:
    text = rewrite(itellum_copy, "expr: add_months(installed_on, 6)",
                   "expr: add_months(warranty_ends_on, 6)")
    d = only(diagnostics(itellum_copy))
    assert where(d) == ("policy", *position(text, "add_months(warranty_ends_on, 6)", "add_months"))
    assert "warranty_ends_on -> warranty_ends_on" in d.message


def test_missing_language_text(itellum_copy: Path) -> None:
    text = rewrite(itellum_copy, "        es: Ninguna regla de garantía aplica a este caso.\n", "")
    d = only(diagnostics(itellum_copy))
    # Reported at the text mapping, whose only entry is now the English one.
    assert where(d) == ("policy", *position(text, "en: No warranty rule applies", "en:"))
    assert d.message == "missing the 'es' text (the policy declares languages en, es)"
    assert d.path == "/kinds/warranty/otherwise/reason"


def test_text_in_undeclared_language(itellum_copy: Path) -> None:
    text = rewrite(itellum_copy, "        en: No warranty rule applies to this case.\n",
                   "        en: No warranty rule applies to this case.\n"
                   "        fr: Aucune règle de garantie.\n")
    d = only(diagnostics(itellum_copy))
    assert where(d) == ("policy", *position(text, "fr: Aucune", "Aucune"))
    assert "'fr'" in d.message


def test_duplicate_rule_id(itellum_copy: Path) -> None:
    text = rewrite(itellum_copy, "id: warranty-expired", "id: warranty-workshop-repair")
    d = only(diagnostics(itellum_copy))
    lines = [i + 1 for i, line in enumerate(text.splitlines()) if "id: warranty-workshop-repair" in line]
    assert len(lines) == 2
    second = text.splitlines()[lines[1] - 1]
    assert where(d) == ("policy", lines[1], second.index("warranty-workshop-repair") + 1)
    assert d.message == "rule id 'warranty-workshop-repair' is already used in kind 'warranty'"


def test_duplicate_rule_id_across_kinds(itellum_copy: Path) -> None:
    text = rewrite(itellum_copy, "id: delivery-defect-replace", "id: return-refund")
    d = only(diagnostics(itellum_copy))
    lines = [i + 1 for i, line in enumerate(text.splitlines()) if "id: return-refund" in line]
    assert d.code == "policy" and d.location is not None and d.location.line == lines[1]
    assert "already used in kind 'return'" in d.message


def test_missing_source_file(itellum_copy: Path) -> None:
    (itellum_copy / "source.txt").unlink()
    text = (itellum_copy / "policy.yaml").read_text(encoding="utf-8")
    d = only(diagnostics(itellum_copy))
    assert where(d) == ("file", *position(text, "file: source.txt", "source.txt"))
    assert "cannot read the source text" in d.message and "source.txt" in d.message


def test_missing_policy_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as info:
        load_policy(tmp_path / "nope.yaml")
    d = only(info.value.diagnostics)
    assert d.code == "file" and "nope.yaml" in d.message


def test_policy_must_be_a_mapping(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text("- just\n- a list\n", encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        load_policy(tmp_path / "policy.yaml")
    assert [d.code for d in info.value.diagnostics] == ["schema"]


# --- several problems at once ------------------------------------------------------------------

def test_all_diagnostics_reported_together_and_sorted(itellum_copy: Path) -> None:
    text = rewrite(
        itellum_copy,
        EXPIRED_WHEN, "when: failed_on > repair_cost",
        WARRANTY_WHEN, WARRANTY_WHEN.replace("damage_cause", "damage_cuase"),
        "        es: Ninguna regla de garantía aplica a este caso.\n", "",
        "expr: equipment_undamaged and original_packaging and all_accessories",
        "expr: equipment_undamaged and original_packagin and all_accessories",
    )
    diags = diagnostics(itellum_copy)
    assert [where(d) for d in diags] == [
        ("unknown_fact", *position(text, "original_packagin ", "original_packagin")),
        ("policy", *position(text, "en: No warranty rule applies", "en:")),
        ("unknown_fact", *position(text, "damage_cuase", "damage_cuase")),
        ("expr_type", *position(text, "when: failed_on > repair_cost", "failed_on")),
    ]
    assert all(d.location and d.location.file == str(itellum_copy / "policy.yaml") for d in diags)


@pytest.mark.parametrize(
    ("old", "new", "code", "message"),
    [
        ("expr: add_months(installed_on, 6)", "expr: add_months(installed_onn, 6)",
         "unknown_fact", "unknown fact 'installed_onn'"),
        ("expr: interruptions where compliance_pct <= 40",
         "expr: interruptions where compliance <= 40", "unknown_fact", "unknown fact 'compliance'"),
        ("expr: days_between(installed_on, failed_on)",
         "expr: days_between(installed_on, failed_on) + repair_cost", "expr_type",
         "cannot apply + to integer and money"),
    ],
    ids=["warranty-ends-on", "counted-interruptions-chain", "days-in-service-type"],
)
def test_broken_derived_fact_does_not_cascade(itellum_copy: Path, old: str, new: str, code: str,
                                              message: str) -> None:
    # Each of these derived facts is used by other derived facts, by rule
    # conditions and by {placeholders}; only the definition is reported.
    text = rewrite(itellum_copy, old, new)
    d = only(diagnostics(itellum_copy))
    line, _ = position(text, new.removeprefix("expr: "))
    assert (d.code, d.message) == (code, message)
    assert d.location is not None and d.location.line == line
    assert d.path.startswith("/derived/") and d.path.endswith("/expr")


# --- rendering and YAML reading rules ------------------------------------------------------------

def test_diagnostic_render_and_dict() -> None:
    d = Diagnostic("unknown_fact", "unknown fact 'x'", SourceLocation("p.yaml", 2, 7), "/a/when",
                   "did you mean 'y'?")
    assert d.render(["first", "when: x > 1"]) == (
        "p.yaml:2:7: unknown_fact: unknown fact 'x'\n"
        "  hint: did you mean 'y'?\n"
        "  when: x > 1\n"
        "        ^")
    assert d.to_dict() == {"code": "unknown_fact", "message": "unknown fact 'x'", "file": "p.yaml",
                           "line": 2, "column": 7, "path": "/a/when", "hint": "did you mean 'y'?"}


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("x: 1.10", Decimal("1.10")),
        ("x: 0.1", Decimal("0.1")),
        ("x: 123456789012345678901234567890.123", Decimal("123456789012345678901234567890.123")),
        ("x: 1_000.50", Decimal("1000.50")),
        ("x: -2.5e+3", Decimal("-2.5e+3")),
        ("x: 12", 12),
        ("x: NO", "NO"),
        ("x: yes", "yes"),
        ("x: off", "off"),
        ("x: On", "On"),
        ("x: true", True),
        ("x: False", False),
        ("x: 2025-03-10", "2025-03-10"),
        ("x: 2025-03-10T10:00:00Z", "2025-03-10T10:00:00Z"),
        ("x: '1.10'", "1.10"),
        ("x: null", None),
    ],
    ids=["trailing-zero", "tenth", "long-decimal", "underscores", "exponent", "int", "NO", "yes",
         "off", "On", "true", "False", "date", "timestamp", "quoted", "null"],
)
def test_yaml_reading_rules(yaml_text: str, expected: object) -> None:
    doc, problems = parse_yaml(yaml_text, "t.yaml")
    assert problems == [] and doc is not None
    value = doc.data["x"]
    assert value == expected
    assert type(value) is type(expected)
    if isinstance(expected, Decimal):
        assert str(value) == str(expected)  # exact digits, never via float


def test_yaml_locations() -> None:
    doc, problems = parse_yaml("a:\n  b: 1\n  c: [x, y]\n", "t.yaml")
    assert doc is not None and problems == []
    assert doc.loc(("a", "c", 1)) == SourceLocation("t.yaml", 3, 10)
    assert doc.key_loc(("a", "c")) == SourceLocation("t.yaml", 3, 3)
    assert doc.loc(("a", "missing", 5)) == SourceLocation("t.yaml", 2, 3)


def test_yaml_duplicate_key_reported_at_second_key() -> None:
    doc, problems = parse_yaml("a:\n  b: 1\na: 2\nc: 3\n", "t.yaml")
    assert doc is not None
    assert [(p.code, p.location, p.path) for p in problems] == [
        ("yaml_duplicate", SourceLocation("t.yaml", 3, 1), "/a")]


def test_yaml_syntax_error_is_located_not_raised() -> None:
    doc, problems = parse_yaml("a: [1, 2\nb: 3\n", "t.yaml")
    assert doc is None
    assert [(p.code, p.location.line if p.location else None) for p in problems] == [("yaml_syntax", 2)]


