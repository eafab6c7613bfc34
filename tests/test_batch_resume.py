"""Issue 9, item 2: ``clause batch --log`` keeps output and log in agreement after a crash.

The log is the commit point: a window is committed to the log (with the
run's progress) before its lines reach the output, so the output never
holds a decision the log lacks; re-running the same command resumes the
unfinished run from the log: the output is rewritten from the log's records
and deciding goes on after the last committed line, with no duplicate.
A crash is simulated in process (an exception right after a window's
commit, before its output); the kill -9 runs are in tests/fuzz/test_crash.py.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import POLICIES, ROOT

import engine.batch
from engine import Engine
from engine.batchlog import run_logged_batch
from engine.log import DecisionLog, replay

sys.path.insert(0, str(ROOT / "bench"))
from bench_itellum import generate  # noqa: E402

from cli import main  # noqa: E402


class Crash(Exception):
    pass


@pytest.fixture()
def small_windows(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(engine.batch, "WINDOW", 7)
    return 7


def cases_file(path: Path, n: int, bad_every: int = 0) -> list[dict[str, Any]]:
    cases = generate(n, seed=5)
    lines = [("{not json" if bad_every and i % bad_every == bad_every - 1 else json.dumps(c))
             for i, c in enumerate(cases)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return cases


def crash_after(windows: int, source: Path, out: Path, db: Path, out_fmt: str = "jsonl") -> None:
    """Run the logged batch and 'die' right after window ``windows`` was committed to the log."""
    seen = []

    def hook(window: list[Any]) -> None:
        seen.append(window)
        if len(seen) == windows:
            raise Crash
    log = DecisionLog(str(db))
    eng = Engine.load(POLICIES)
    with out.open("w", encoding="utf-8", newline="") as fh, pytest.raises(Crash):
        run_logged_batch(source, str(out), fh, log, eng, in_fmt="jsonl", out_fmt=out_fmt,
                         policies=str(POLICIES), matcher="python", lang="en", workers=1, on_window=hook)
    log.close()


def logged(db: Path) -> list[Any]:
    log = DecisionLog(str(db))
    records = list(log.records())
    log.close()
    return records


def test_output_never_holds_what_the_log_lacks(tmp_path: Path, small_windows: int) -> None:
    source, out, db = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "log.sqlite3"
    cases_file(source, 40)
    crash_after(3, source, out, db)
    output = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    records = logged(db)
    assert len(output) == 2 * small_windows and len(records) == 3 * small_windows
    assert output == [r.decision for r in records][:len(output)]


@pytest.mark.parametrize("out_name", ["out.jsonl", "out.csv"])
def test_a_rerun_resumes_without_duplicates(tmp_path: Path, small_windows: int, out_name: str) -> None:
    source, out, db = tmp_path / "in.jsonl", tmp_path / out_name, tmp_path / "log.sqlite3"
    cases = cases_file(source, 40, bad_every=9)
    crash_after(2, source, out, db, "csv" if out_name.endswith(".csv") else "jsonl")
    resumed = CliRunner().invoke(main, ["batch", str(source), "-o", str(out), "--log", str(db),
                                        "--policies", str(POLICIES), "--format", "json"])
    assert resumed.exit_code == 0, resumed.output
    assert "resumed an interrupted run after input line 14" in resumed.output
    summary = json.loads(resumed.output[resumed.output.index("{"):])
    valid = [c for i, c in enumerate(cases) if i % 9 != 8]
    assert summary["cases"] == 40 and summary["decided"] == len(valid)
    assert [x["line"] for x in summary["invalid"]] == [9, 18, 27, 36]

    fresh = tmp_path / ("fresh" + out.suffix)
    clean = CliRunner().invoke(main, ["batch", str(source), "-o", str(fresh), "--policies", str(POLICIES)])
    assert clean.exit_code == 0, clean.output
    assert out.read_bytes() == fresh.read_bytes()
    records = logged(db)
    ids = Counter(r.case["id"] for r in records)
    assert sorted(ids) == sorted(c["id"] for c in valid) and set(ids.values()) == {1}
    log = DecisionLog(str(db), read_only=True)
    assert all(r.reproduced for r in replay(log))
    log.close()


def test_a_finished_run_is_a_new_batch_when_run_again(tmp_path: Path, small_windows: int) -> None:
    source, out, db = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "log.sqlite3"
    cases_file(source, 10)
    for _ in range(2):
        result = CliRunner().invoke(main, ["batch", str(source), "-o", str(out), "--log", str(db),
                                           "--policies", str(POLICIES)])
        assert result.exit_code == 0 and "resumed" not in result.output, result.output
    assert len(logged(db)) == 20
    assert len(out.read_text(encoding="utf-8").splitlines()) == 10


def test_changed_input_is_not_resumed(tmp_path: Path, small_windows: int) -> None:
    source, out, db = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "log.sqlite3"
    cases_file(source, 20)
    crash_after(1, source, out, db)
    cases_file(source, 12)  # another input: another batch
    result = CliRunner().invoke(main, ["batch", str(source), "-o", str(out), "--log", str(db),
                                       "--policies", str(POLICIES)])
    assert result.exit_code == 0 and "resumed" not in result.output, result.output
    assert len(out.read_text(encoding="utf-8").splitlines()) == 12
