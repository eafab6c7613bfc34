"""The docs are checked: the reference's examples validate, every function is documented,
the walkthrough's policy validates and its tests pass, and the README links the docs."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from cli import main
from engine import Engine
from engine.compiler import compile_policy
from engine.expressions.functions import FUNCTIONS, SPECIAL
from engine.loader import load_policy
from engine.testing import load_tests, run_test

from conftest import ROOT

DOCS = ROOT / "docs"
REFERENCE = DOCS / "reference.md"
FENCE = re.compile(r"^```(\w+)(?: ([\w.-]+))?\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def blocks(path: Path, lang: str, tag: str | None = None) -> list[tuple[str | None, str, int]]:
    """Fenced blocks ```lang tag of a Markdown file: (tag, text, line)."""
    text = path.read_text(encoding="utf-8")
    return [(m.group(2), m.group(3), text.count("\n", 0, m.start()) + 1) for m in FENCE.finditer(text)
            if m.group(1) == lang and (tag is None or m.group(2) == tag)]


def _merge(base: Any, extra: Any) -> Any:
    """Deep-merge mappings (a fragment extends the base policy); anything else replaces."""
    if isinstance(base, dict) and isinstance(extra, dict):
        out = dict(base)
        for key, value in extra.items():
            out[key] = _merge(base[key], value) if key in base else value
        return out
    return extra


def _base() -> dict[str, Any]:
    ((_, text, _),) = blocks(REFERENCE, "yaml", "policy")
    return yaml.safe_load(text)


def _write(home: Path, policy: dict[str, Any]) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    (home / "source.txt").write_text("The reference's examples are checked for shape, not traceability.\n",
                                     encoding="utf-8")
    path = home / "policy.yaml"
    path.write_text(yaml.safe_dump(policy, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _examples() -> list[Any]:
    out = [pytest.param("policy", text, id=f"policy-line-{line}") for _, text, line in
           blocks(REFERENCE, "yaml", "policy")]
    out += [pytest.param(tag, text, id=f"{tag}-line-{line}") for tag, text, line in blocks(REFERENCE, "yaml")
            if tag in ("fragment", "rule")]
    return out


@pytest.mark.parametrize(("tag", "text"), _examples())
def test_reference_policy_examples_validate(tmp_path: Path, tag: str, text: str) -> None:
    policy = yaml.safe_load(text)
    if tag == "fragment":
        policy = _merge(_base(), policy)
    elif tag == "rule":
        full = copy.deepcopy(_base())
        full["kinds"]["return"]["rules"].append(policy)
        policy = full
    compile_policy(load_policy(_write(tmp_path, policy)))


def test_reference_tests_and_cases_pass(tmp_path: Path) -> None:
    _write(tmp_path / "acme", _base())
    engine = Engine.load(tmp_path)
    tagged = blocks(REFERENCE, "yaml", "tests")
    assert tagged
    for _, text, line in tagged:
        path = tmp_path / f"tests-{line}.yaml"
        path.write_text(text, encoding="utf-8")
        for test in load_tests(path):
            result = run_test(engine, test)
            assert result.passed, (line, test.name, result.diffs, result.error)
    for _, text, _ in blocks(REFERENCE, "yaml", "case"):
        assert engine.decide(yaml.safe_load(text)).outcome == "refund"


def test_every_yaml_block_of_the_reference_is_checked() -> None:
    untagged = [line for tag, _, line in blocks(REFERENCE, "yaml") if tag not in
                ("policy", "fragment", "rule", "tests", "case")]
    assert untagged == [], "tag each ```yaml block of docs/reference.md (policy, fragment, rule, tests, case)"


@pytest.mark.parametrize("name", sorted([*FUNCTIONS, *SPECIAL]))
def test_every_function_is_documented(name: str) -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    assert re.search(rf"^#### .*`{name}\(", text, re.MULTILINE), f"document {name}() in docs/reference.md"
    (_, functions, _) = next(b for b in blocks(REFERENCE, "yaml", "fragment") if "f_days_between" in b[1])
    assert re.search(rf"\b{name}\(", functions), f"use {name}() in the reference's checked function examples"


def test_the_walkthrough_policy_validates_and_its_tests_pass(runner: CliRunner, tmp_path: Path) -> None:
    walk = DOCS / "walkthrough.md"
    home = tmp_path / "policies" / "brightlamp"
    (home / "tests").mkdir(parents=True)
    ((_, source, _),) = blocks(walk, "text", "source.txt")
    (home / "source.txt").write_text(source, encoding="utf-8")
    policies = blocks(walk, "yaml", "policy.yaml")
    assert len(policies) >= 2  # the first round and the finished policy
    tests = blocks(walk, "yaml", "tests.yaml")
    (home / "tests" / "returns.yaml").write_text(tests[-1][1], encoding="utf-8")
    for _, text, line in policies[1:]:  # every round after the first validates, tracing included
        (home / "policy.yaml").write_text(text, encoding="utf-8")
        result = runner.invoke(main, ["validate", "--policies", str(tmp_path / "policies")])
        assert result.exit_code == 0, (line, result.output)
    result = runner.invoke(main, ["test", str(home)])
    assert result.exit_code == 0 and result.stdout.endswith(" passed, 0 failed\n"), result.output


def test_the_walkthroughs_first_round_fails_as_the_text_says(runner: CliRunner, tmp_path: Path) -> None:
    walk = DOCS / "walkthrough.md"
    home = tmp_path / "brightlamp"
    home.mkdir()
    ((_, source, _),) = blocks(walk, "text", "source.txt")
    (home / "source.txt").write_text(source, encoding="utf-8")
    (home / "policy.yaml").write_text(blocks(walk, "yaml", "policy.yaml")[0][1], encoding="utf-8")
    result = runner.invoke(main, ["validate", str(home / "policy.yaml")])
    assert result.exit_code == 1
    ((_, shown, _),) = blocks(walk, "text", "output")
    for line in shown.splitlines():
        if ": " in line and line.startswith("policy.yaml"):
            assert line.split(": ", 1)[1] in result.stderr, line


def test_readme_links_the_docs_and_cites_no_missing_file() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for doc in ("docs/reference.md", "docs/walkthrough.md", "docs/design.md"):
        assert f"]({doc})" in readme
        assert (ROOT / doc).is_file()
    old = "DESIGN" + ".md"  # the notes that lived outside the repository
    for path in [*ROOT.glob("*.toml"), *ROOT.glob("*.md"), *ROOT.glob("engine/**/*.py"), *ROOT.glob("tests/*.py")]:
        text = path.read_text(encoding="utf-8")
        assert old not in text, f"{path} cites {old}: cite docs/design.md"
