"""Traceability (engine/trace.py): quotes are verbatim, deciding sentences are covered."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from engine import Engine
from engine.loader import load_policy
from engine.trace import check_trace, is_deciding, sentences

from conftest import POLICIES

BUNDLED = sorted(POLICIES.glob("*/policy*.yaml"))


@pytest.mark.parametrize("path", BUNDLED, ids=[p.parent.name for p in BUNDLED])
def test_bundled_policies_are_traceable(path: Path) -> None:
    assert [d.render() for d in check_trace(load_policy(path))] == []


def test_every_bundled_vendor_is_checked() -> None:
    assert {p.parent.name for p in BUNDLED} == set(Engine.load(POLICIES).vendors)


def test_one_altered_word_is_reported_with_the_difference(itellum_copy: Path) -> None:
    path = itellum_copy / "policy.yaml"
    text = path.read_text(encoding="utf-8")
    assert "un plazo no mayor a 20 días hábiles." in text
    # The rule and the kind's declared deadline refund_due quote the sentence: alter both.
    path.write_text(text.replace("un plazo no mayor a 20 días hábiles.", "un plazo no mayor a 30 días hábiles."),
                    encoding="utf-8")
    problems = check_trace(load_policy(path))
    # The altered quotes no longer cover their sentence either: all are reported.
    assert [d.code for d in problems] == ["clause_not_in_source", "clause_not_in_source",
                                          "sentence_not_covered"]
    assert problems[0].message == "the clause of rule return-refund is not a verbatim quote of source.txt"
    assert problems[1].message == ("the clause of deadline refund_due of kind return is not a verbatim "
                                   "quote of source.txt")
    assert problems[0].hint == "the source has '20' where the clause has '30'"
    line = next(i for i, l in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                if "id: return-refund" in l) + 1
    assert problems[0].location.line == line  # the `clause:` key right below the id


def test_an_uncovered_deciding_sentence_is_reported_at_its_source_line(itellum_copy: Path) -> None:
    path = itellum_copy / "policy.yaml"
    text = path.read_text(encoding="utf-8")
    start = text.index("  - clause: >-\n      La compensación por parte")
    # the entry ends where the next list item or top-level key begins
    end = re.compile(r"\n(  - |\S)").search(text, start + 1).start() + 1
    path.write_text(text[:start] + text[end:], encoding="utf-8")
    problems = check_trace(load_policy(path))
    assert [d.code for d in problems] == ["sentence_not_covered"]
    source_line = next(i for i, l in enumerate((itellum_copy / "source.txt").read_text(encoding="utf-8")
                                               .splitlines(), 1) if l.startswith("La compensación"))
    assert (Path(problems[0].location.file).name, problems[0].location.line, problems[0].location.column) == (
        "source.txt", source_line, 1)
    assert "La compensación por parte del operador" in problems[0].message


def test_validate_fails_on_trace_problems(itellum_copy: Path) -> None:
    path = itellum_copy / "policy.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "Our satellite equipment is guaranteed for 6 months.", "Our satellite equipment is guaranteed for six months."),
        encoding="utf-8")
    result = CliRunner().invoke(main, ["validate", str(itellum_copy)])
    assert result.exit_code == 1
    assert "clause_not_in_source: the clause of derived fact warranty_ends_on" in result.output
    assert "the source has '6' where the clause has 'six'" in result.output


@pytest.mark.parametrize(("sentence", "deciding"), [
    ("Return Policy", False),                                    # heading
    ("You cannot ask a refund in the following cases:", False),  # introduction
    ("Return Authorization numbers are good for fourteen (14) days only.", True),
    ("Whatsapp here for any question", False),
    ("La tranquilidad y satisfacción de nuestros clientes es nuestra prioridad.", False),
    ("se realizará en un plazo no mayor a 20 días hábiles.", True),
], ids=["heading", "intro", "ra-days", "chat", "es-no-keyword", "es-plazo"])
def test_deciding_sentence_heuristic(sentence: str, deciding: bool) -> None:
    assert is_deciding(sentence) is deciding


def test_sentences_split_bullets_and_keep_offsets() -> None:
    source = "Title\n  • 1. First rule applies. Second one too.\n"
    parts = sentences(source)
    assert [p.text for p in parts] == ["Title", "First rule applies.", "Second one too."]
    assert [source[p.offset:p.offset + 5] for p in parts] == ["Title", "First", "Secon"]
