"""clause fmt: canonical layout that keeps comments and values, idempotent, decisions unchanged."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from engine import Engine
from engine._yaml import parse_yaml
from engine.fmt import ORDERS, format_file, format_text, write, yaml_files
from engine.testing import find_test_files, load_tests, run_test

from conftest import FIXED_TODAY, POLICIES, ROOT


@pytest.fixture(scope="module")
def formatted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the bundled policies, formatted."""
    dest = tmp_path_factory.mktemp("fmt") / "policies"
    shutil.copytree(POLICIES, dest)
    for result in (format_file(f) for f, _ in yaml_files([dest])):
        assert not result.problems, result.problems
        write(result)
    return dest


BUNDLED = sorted(str(f.relative_to(POLICIES)) for f, _ in yaml_files([POLICIES]))


def comments(text: str) -> Counter[str]:
    return Counter(line.strip() for line in text.splitlines() if line.strip().startswith("#"))


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_files_keep_data_and_comments_and_format_idempotently(formatted: Path, name: str) -> None:
    before = (POLICIES / name).read_text(encoding="utf-8")
    after = (formatted / name).read_text(encoding="utf-8")
    assert parse_yaml(after, name)[0].data == parse_yaml(before, name)[0].data
    assert comments(after) == comments(before)
    assert format_text(after, Path(name)) == (after, [])  # what `clause fmt --check` asks


def _cases(root: Path) -> list[dict]:
    """Every case the policies' tests and example cases decide."""
    out = [t.input for f in find_test_files(root) for t in load_tests(f) if t.want_error_code is None]
    for f in sorted(root.glob("*/cases/*")):
        doc, _ = parse_yaml(f.read_text(encoding="utf-8"), str(f))
        out.append(doc.data)
    return out


def test_bundled_decisions_are_unchanged_by_formatting(formatted: Path) -> None:
    old = Engine.load(POLICIES, today=lambda: FIXED_TODAY)
    new = Engine.load(formatted, today=lambda: FIXED_TODAY)
    cases = _cases(POLICIES)
    assert len(cases) == len(_cases(formatted)) > 200

    def decided(engine: Engine, case: dict) -> dict:
        d = engine.decide(case).to_dict()
        d["policy"].pop("digest")  # the digest is of the file's text, which fmt changes
        return d

    for case in cases:
        assert decided(new, case) == decided(old, case), case
    for f in find_test_files(formatted):
        assert all(run_test(new, t).passed for t in load_tests(f)), f


MESSY = """\
# header comment stays on top
vendor: tiny   # end-of-line comment on vendor
clause: 1

# about the kinds
kinds:
  return:
    rules:
      # the only rule
      - when: opened
        id: r1   # the id
        outcome: deny
    title: Returns
facts:
  opened:
    meaning: Opened
    type: bool
odd_scalars: [NO, yes, 2024-1-5, '010', 1_000, 0.10, "0.10", 'x: y', ~]
"""

TIDY = """\
# header comment stays on top
clause: 1
vendor: tiny   # end-of-line comment on vendor
facts:
  opened:
    type: bool
    meaning: Opened

# about the kinds
kinds:
  return:
    title: Returns
    rules:
      # the only rule
      - id: r1   # the id
        when: opened
        outcome: deny
odd_scalars: [NO, yes, 2024-1-5, '010', 1_000, 0.10, "0.10", 'x: y', ~]
"""


def test_keys_follow_the_schema_order_and_comments_follow_their_keys() -> None:
    text, problems = format_text(MESSY, Path("policy.yaml"))
    assert problems == []
    assert text == TIDY
    assert format_text(TIDY, Path("policy.yaml")) == (TIDY, [])


def test_scalars_are_kept_as_written() -> None:
    """YAML 1.1 booleans, loose dates, octal-looking and underscored numbers: never re-spelled."""
    text, _ = format_text(MESSY, Path("policy.yaml"))
    assert "[NO, yes, 2024-1-5, '010', 1_000, 0.10, \"0.10\", 'x: y', ~]" in text


def test_a_long_flow_collection_becomes_block_style_and_a_short_one_stays() -> None:
    long_want = "{" + ", ".join(f"field_{i}: value_{i}" for i in range(12)) + "}"
    text, _ = format_text(f"cases:\n  - note: n\n    want_decision: {long_want}\n    input: {{vendor: v}}\n",
                          Path("t.yaml"))
    assert text.splitlines()[:4] == ["cases:", "  - note: n", "    input: {vendor: v}", "    want_decision:"]
    assert "      field_11: value_11" in text
    assert all(len(line) <= 100 for line in text.splitlines())


def test_orders_cover_exactly_the_schema_properties() -> None:
    schemas = {n: json.loads((ROOT / "schemas" / f"{n}.schema.json").read_text())
               for n in ("policy", "test-case", "case")}
    policy = schemas["policy"]
    defs = policy["$defs"]
    rule = defs["rule"]["properties"]
    test = schemas["test-case"]["properties"]["cases"]["items"]["properties"]
    expected = {
        "policy": policy["properties"], "source": policy["properties"]["source"]["properties"],
        "fact": defs["fact"]["properties"], "field": defs["field"]["properties"],
        "derived": policy["properties"]["derived"]["additionalProperties"]["properties"],
        "check": policy["properties"]["checks"]["items"]["properties"],
        "kind": defs["kind"]["properties"], "otherwise": defs["kind"]["properties"]["otherwise"]["properties"],
        "rule": rule, "fee": rule["fees"]["items"]["properties"],
        "deadline": rule["deadlines"]["items"]["properties"], "action": rule["actions"]["items"]["properties"],
        "out_of_scope": policy["properties"]["out_of_scope"]["items"]["properties"],
        "lint": policy["properties"]["lint"]["properties"],
        "suppress": policy["properties"]["lint"]["properties"]["suppress"]["items"]["properties"],
        "mutation": policy["properties"]["mutation"]["properties"],
        "equivalent": policy["properties"]["mutation"]["properties"]["equivalent"]["items"]["properties"],
        "tests": schemas["test-case"]["properties"], "test": test,
        "case": schemas["case"]["properties"], "want": test["want_decision"]["properties"],
        "kind_deadline": defs["kind"]["properties"]["deadlines"]["items"]["properties"],
        "alternative": rule["alternatives"]["items"]["properties"],
    }
    assert set(ORDERS) == set(expected)
    for name, props in expected.items():
        assert set(ORDERS[name]) == set(props), name


def test_check_lists_files_and_fails_then_formatting_fixes_them(runner: CliRunner, tmp_path: Path) -> None:
    messy = tmp_path / "policy.yaml"
    messy.write_text(MESSY)
    (tmp_path / "tidy.yaml").write_text(TIDY)
    result = runner.invoke(main, ["fmt", "--check", str(tmp_path)])
    assert result.exit_code == 1
    assert f"would reformat {messy}\n" in result.output and "tidy.yaml" not in result.output
    assert messy.read_text() == MESSY  # --check writes nothing
    assert runner.invoke(main, ["fmt", str(messy)]).exit_code == 0
    assert messy.read_text() == TIDY
    assert runner.invoke(main, ["fmt", "--check", str(tmp_path)]).exit_code == 0


def test_directories_skip_hidden_and_foreign_yaml(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "policy.yaml").write_text(MESSY)
    (tmp_path / "ci.yaml").write_text("steps:\n- run: x\n")  # neither policy, test nor case
    (tmp_path / "policy.yaml").write_text(MESSY)
    result = runner.invoke(main, ["fmt", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "policy.yaml").read_text() == TIDY
    assert (tmp_path / ".venv" / "policy.yaml").read_text() == MESSY
    assert (tmp_path / "ci.yaml").read_text() == "steps:\n- run: x\n"
    named = runner.invoke(main, ["fmt", str(tmp_path / "ci.yaml")])  # a file named is formatted
    assert named.exit_code == 0 and (tmp_path / "ci.yaml").read_text() == "steps:\n  - run: x\n"


def test_a_layout_that_would_change_a_value_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """The safety net: the output must load to the original data, or nothing is written."""
    import re  # noqa: PLC0415
    import engine.fmt  # noqa: PLC0415
    monkeypatch.setattr(engine.fmt, "_TRAILING", re.compile(r"0"))  # a layout bug that eats zeros
    text, problems = format_text(MESSY, Path("policy.yaml"))
    assert text is None
    assert [d.code for d in problems] == ["fmt_unsafe"]


def test_invalid_yaml_is_reported_at_its_line_and_left_alone(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text("clause: 1\nvendor: [unclosed\n")
    result = runner.invoke(main, ["fmt", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:3:1: yaml_syntax:" in result.output
    assert bad.read_text() == "clause: 1\nvendor: [unclosed\n"


def test_without_paths_and_without_policies_dir_is_a_usage_error(runner: CliRunner, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(main, ["fmt"])
    assert result.exit_code == 2
    assert "no ./policies here" in result.output
