"""Fuzz target 1: cases (typed and junk; JSON, YAML and batch lines) through the CLI path and Engine.decide.

Each input must end in a decision or in diagnostics (a CaseError/EngineError
with a code and a message, or exit 1 from the CLI path): never another
exception type, never a traceback.
"""

from __future__ import annotations

import json
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from fuzzing import counted, examples
from hypothesis import given
from hypothesis import strategies as st
from strategies import JSON, TEXT, as_json_text, cases

from cli import read_case, render_decision
from engine import Engine
from engine.batch import decide_line, render_line
from engine.errors import EngineError
from tests_root import POLICIES

pytestmark = pytest.mark.fuzz
ENGINE = Engine.load(POLICIES)


def decided_or_diagnosed(case: Any) -> None:
    try:
        decision = ENGINE.decide(case)
    except EngineError as err:
        assert err.diagnostics and all(d.code and d.message for d in err.diagnostics)
        assert type(case) is not dict or ENGINE._decide_fast(case, "en") is None, case
        return
    d = decision.to_dict()
    json.dumps(d)
    render_decision(d)
    if type(case) is dict and ENGINE._decide_fast(case, "en") is not None:
        # the generated decide path answered: the generic path must give the same Decision
        generic = ENGINE._run(case, "en")[0]
        assert (generic, generic.to_dict(), generic.matched) == (decision, d, decision.matched), case


@given(many=st.lists(cases(ENGINE), min_size=5, max_size=20))
@examples(6, 3500)
def test_engine_decides_or_diagnoses(many: list[Any]) -> None:
    counted("cases", len(many))
    for case in many:
        decided_or_diagnosed(case)


def _yaml_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _yaml_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_yaml_ready(v) for v in value]
    return float(value) if isinstance(value, Decimal) else value


def _through_read_case(text: str, suffix: str) -> None:
    with tempfile.TemporaryDirectory(prefix="clause-fuzz-") as tmp:
        path = Path(tmp) / f"case{suffix}"
        # Lone surrogates go to the file as the invalid UTF-8 an editor or a bad export would leave.
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
        try:
            case, _ = read_case(str(path), "json")
        except SystemExit as exit_:
            assert exit_.code == 1
            return
    decided_or_diagnosed(case)


@given(case=cases(ENGINE), suffix=st.sampled_from([".json", ".yaml"]))
@examples(30, 4000)
def test_cli_reads_case_files(case: Any, suffix: str, capsys: pytest.CaptureFixture[str]) -> None:
    counted("cases")
    # YAML gets Decimals as floats: the huge ones become `.inf`, which must be refused with the fact named.
    text = as_json_text(case) if suffix == ".json" else yaml.safe_dump(_yaml_ready(case), allow_unicode=True)
    _through_read_case(text, suffix)
    assert "Traceback" not in capsys.readouterr().err


@given(text=st.one_of(TEXT, st.lists(st.sampled_from(["vendor: itellum", "kind: delivery", "facts:", "  x: 1",
                                                 "- a", "{", "as_of: 2025-01-01", "id: &a [*a]", "!!python/object:os.system",
                                                 "\t", "facts: {defect_at_delivery: yes}", "'"]), max_size=8)
                 .map("\n".join)))
@examples(30, 2000)
def test_cli_reads_junk_files(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    counted("cases")
    _through_read_case(text, ".yaml")
    assert "Traceback" not in capsys.readouterr().err


@given(lines=st.lists(st.one_of(cases(ENGINE).map(as_json_text), JSON.map(as_json_text), TEXT),
                      min_size=5, max_size=20))
@examples(4, 1000)
def test_batch_lines_decide_or_report(lines: list[str]) -> None:
    counted("cases", len(lines))
    for raw in lines:
        number, status, value = decide_line(ENGINE, 7, raw, "jsonl", "en")
        assert number == 7 and status in ("ok", "error")
        if status == "error":
            assert isinstance(value, str) and value and "internal error" not in value, value
        result = render_line(ENGINE, 7, raw, "jsonl", "csv", "en", True)
        assert result.ok == (status == "ok")
