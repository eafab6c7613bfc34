"""Issue 11, item 5: ``clause batch --workers N`` on a JSON Lines file, workers reading their own slices.

The sliced path (engine/batchslices.py) must write what one process writes,
byte for byte, on every file one process reads: CRLF line endings, a last
line without newline, empty and blank lines, a byte-order mark, lines that
are not UTF-8 or not JSON, and lines far longer than a slice or than the
parent's read block. Slice boundaries are checked on their own (every byte in
one slice, lines numbered as a file is read) and through whole runs with
slices down to one line, so a slice lost, repeated or put out of order at a
boundary fails. Also: the summary (counts, totals, invalid lines and their
order), ``--log`` with resume, a file changed under the run, and a CSV header
to stdout written once although workers fork after it.
"""

from __future__ import annotations

import io
import json
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import POLICIES, ROOT

import engine.batch
import engine.batchslices
from engine import Engine
from engine.batch import Summary, run_batch
from engine.batchlog import run_logged_batch
from engine.batchslices import Slice, decide_slice, slices
from engine.errors import Diagnostic, EngineError
from engine.log import DecisionLog

sys.path.insert(0, str(ROOT / "bench"))
from bench_itellum import generate


@pytest.fixture(scope="module")
def eng() -> Any:
    loaded = Engine.load(POLICIES)
    yield loaded
    loaded.close()


def lines_of(data: bytes) -> list[bytes]:
    return list(io.BytesIO(data))  # how a binary file is read: split after each \n only


def check_slices(data: bytes, size: int) -> None:
    path_lines = lines_of(data)
    got: list[Slice] = []
    source = Path(os.environ["SLICE_TMP"]) / "data.bin"
    source.write_bytes(data)
    got = list(slices(source, size))
    assert b"".join(data[s.offset:s.offset + s.length] for s in got) == data  # nothing lost or repeated
    assert all(s.length > 0 for s in got)
    assert [s.offset for s in got] == [sum(s.length for s in got[:i]) for i in range(len(got))]
    number = 1
    for s in got:
        chunk = lines_of(data[s.offset:s.offset + s.length])
        assert chunk == path_lines[number - 1:number - 1 + len(chunk)]  # cut at line ends only
        assert (s.first, s.last) == (number, number + len(chunk) - 1)
        if s is not got[-1]:
            assert chunk[-1].endswith(b"\n") and (s.length >= size or not s.length)
        number += len(chunk)
    assert number - 1 == len(path_lines)


@pytest.mark.parametrize("block", [engine.batchslices.BLOCK, 7, 1])
def test_slices_cover_the_file_once_cut_at_line_ends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     block: int) -> None:
    monkeypatch.setenv("SLICE_TMP", str(tmp_path))
    monkeypatch.setattr(engine.batchslices, "BLOCK", block)
    rnd = random.Random(11)
    samples = [b"", b"\n", b"\n\n\n", b"a", b"a\n", b"ab\ncd", b"\r\n\r\n", b"x" * 50 + b"\n" + b"y" * 3,
               b"".join(rnd.choice([b"a", b"b\n", b"\r", b"\n", b"ccc", b"\xff", b"  "]) for _ in range(400))]
    for data in samples:
        for size in (1, 2, 3, 5, 16, 64, 1 << 20):
            check_slices(data, size)


# --- the sliced run against one process, byte for byte ---------------------------------------

def tricky_file(path: Path) -> bytes:
    """Everything one process reads in its own way, in one JSON Lines file."""
    cases = [json.dumps(c, ensure_ascii=False).encode() for c in generate(60, seed=29)]
    huge = dict(generate(1, seed=3)[0], id="HUGE-1")
    huge["facts"] = dict(huge["facts"], note="é" * 700_000)  # far past a slice and the read block
    padded = json.dumps(dict(generate(1, seed=4)[0], id="HUGE-2"), indent=1).replace("\n", " " * 50_000)
    parts = [
        b"\xef\xbb\xbf" + cases[0] + b"\n",   # a byte-order mark: one process reports line 1
        cases[1] + b"\r\n", cases[2] + b"\r\n",  # CRLF
        b"\n", b"   \r\n", b"\t\n", b"\r\n",      # empty and blank lines: skipped, counted
        cases[3] + b"\n", b"{not json\n", cases[4] + b"\r\r\n", b"\xff\xfe bad utf-8\n",
        json.dumps(huge, ensure_ascii=False).encode() + b"\n",  # huge, an unknown fact
        padded.encode() + b"\n",                 # huge and valid: 2 MB, mostly blanks between tokens
        cases[5] + b"\n", b"x" * 300_000 + b"\n",  # a huge line that is not JSON
        *(c + (b"\r\n" if i % 3 else b"\n") for i, c in enumerate(cases[6:-1])),
        b"\n\n", cases[-1],                    # and a last line without newline
    ]
    data = b"".join(parts)
    path.write_bytes(data)
    return data


def run(eng: Engine, source: Path, out: Path, workers: int, out_fmt: str = "jsonl", **kw: Any) -> Summary:
    with out.open("w", encoding="utf-8", newline="") as fh:
        return run_batch(source, fh, in_fmt="jsonl", out_fmt=out_fmt, policies=str(POLICIES), matcher="python",
                         lang="en", workers=workers, engine=eng, **kw)


@pytest.fixture()
def sliced(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the runs that took the sliced path (so that a test cannot pass on the line-by-line one)."""
    calls: list[int] = []
    real = engine.batchslices.decided

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)
    monkeypatch.setattr(engine.batchslices, "decided", spy)
    return calls


@pytest.mark.parametrize("out_fmt", ["jsonl", "csv"])
@pytest.mark.parametrize("size", [1, 90, 4096, 1 << 15])
def test_sliced_output_is_one_process_output_byte_for_byte(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           eng: Engine, sliced: list[int], out_fmt: str,
                                                           size: int) -> None:
    source = tmp_path / "tricky.jsonl"
    tricky_file(source)
    one = run(eng, source, tmp_path / f"one.{out_fmt}", 1, out_fmt)
    monkeypatch.setattr(engine.batchslices, "SLICE", size)
    two = run(eng, source, tmp_path / f"two.{out_fmt}", 2, out_fmt)
    assert sliced == [1]
    assert (tmp_path / f"two.{out_fmt}").read_bytes() == (tmp_path / f"one.{out_fmt}").read_bytes()
    assert two == one
    assert list(two.outcomes) == list(one.outcomes) and list(two.amounts) == list(one.amounts)  # same order
    # BOM (one process does not skip it either), not JSON, not UTF-8, an unknown fact, not JSON
    assert [n for n, _ in one.invalid] == [1, 9, 11, 12, 15]
    assert one.cases == 60 + 5 and "HUGE-2" in (tmp_path / f"one.{out_fmt}").read_text(encoding="utf-8")


def test_any_text_stream_gets_the_same_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, eng: Engine,
                                             sliced: list[int]) -> None:
    """Workers send UTF-8, written as bytes to a UTF-8 file; any other text stream gets the text."""
    source = tmp_path / "tricky.jsonl"
    tricky_file(source)
    one = run(eng, source, tmp_path / "one.jsonl", 1)
    monkeypatch.setattr(engine.batchslices, "SLICE", 500)
    sink = io.StringIO()
    two = run_batch(source, sink, in_fmt="jsonl", out_fmt="jsonl", policies=str(POLICIES), matcher="python",
                    lang="en", workers=2, engine=eng)
    assert sliced == [1] and two == one
    assert sink.getvalue() == (tmp_path / "one.jsonl").read_text(encoding="utf-8")
    assert engine.batch._utf8_bytes(sink) is None
    with (tmp_path / "x").open("w", encoding="utf-8") as utf8, (tmp_path / "y").open("w", encoding="latin-1") as other:
        assert engine.batch._utf8_bytes(utf8) is utf8.buffer and engine.batch._utf8_bytes(other) is None


def test_tiny_slices_lose_repeat_or_reorder_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    eng: Engine, sliced: list[int]) -> None:
    cases = generate(700, seed=31)
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(c) + ("\n\n" if i % 50 == 7 else "\n") for i, c in enumerate(cases)),
                      encoding="utf-8")
    monkeypatch.setattr(engine.batchslices, "SLICE", 1)  # one line a slice: every line is on a boundary
    monkeypatch.setattr(engine.batchslices, "AHEAD", 3)
    windows: list[int] = []
    summary = run(eng, source, tmp_path / "out.jsonl", 3, on_window=lambda w: windows.append(len(w)))
    assert sliced == [1]
    ids = [json.loads(x)["case_id"] for x in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert ids == [c["id"] for c in cases]
    assert summary.cases == sum(windows) == len(cases)
    csv_summary = run(eng, source, tmp_path / "out.csv", 2, "csv")
    rows = (tmp_path / "out.csv").read_text(encoding="utf-8").splitlines()[1:]
    numbers = [int(r.split(",", 1)[0]) for r in rows]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(cases) == csv_summary.cases
    assert numbers[-1] == len(cases) + len(cases) // 50  # the empty lines are counted


def test_a_worker_reads_only_the_file_it_was_given(tmp_path: Path, eng: Engine) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(c) + "\n" for c in generate(5, seed=2)), encoding="utf-8")
    st = os.stat(source)
    ident = (st.st_dev, st.st_ino)
    whole = list(slices(source, 1 << 20))
    assert len(whole) == 1
    done = decide_slice(eng, str(source), ident, whole[0], 0, "jsonl", "en", False)
    assert isinstance(done, tuple) and done[1] == 5 and done[0].count(b"\n") == 5
    replaced = tmp_path / "other.jsonl"
    replaced.write_bytes(source.read_bytes())
    os.replace(replaced, source)  # another file under the same name
    changed = decide_slice(eng, str(source), ident, whole[0], 0, "jsonl", "en", False)
    assert isinstance(changed, Diagnostic) and "changed while the batch was reading it" in changed.message
    st = os.stat(source)
    source.write_bytes(source.read_bytes()[:-40])  # truncated in place
    cut = decide_slice(eng, str(source), (st.st_dev, st.st_ino), whole[0], 0, "jsonl", "en", False)
    assert isinstance(cut, Diagnostic) and "changed" in cut.message


def test_a_file_changed_under_the_run_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  eng: Engine) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(c) + "\n" for c in generate(300, seed=2)), encoding="utf-8")
    monkeypatch.setattr(engine.batchslices, "SLICE", 2000)
    real = engine.batchslices.slices

    def then_truncate(path: Path, size: int | None = None) -> Any:
        for i, part in enumerate(real(path, size)):
            if i == 3:
                with path.open("r+b") as fh:
                    fh.truncate(part.offset + 10)
            yield part
    monkeypatch.setattr(engine.batchslices, "slices", then_truncate)
    with pytest.raises(EngineError) as err:
        run(eng, source, tmp_path / "out.jsonl", 2)
    assert "changed while the batch was reading it" in err.value.diagnostics[0].message


@pytest.mark.parametrize("logged", [False, True], ids=["no-log", "log"])
def test_a_worker_that_dies_ends_the_run_and_the_output_is_the_lines_before(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, eng: Engine, logged: bool) -> None:
    """The error names the first line the output lacks; the output (and the log) hold every line
    before it and nothing after. The death is planted in the forked workers' code."""
    if not engine.batch.forkable(eng):
        pytest.skip("workers are spawned here (a thread runs): they would not inherit the planted death")
    cases = generate(400, seed=43)
    source, out, db = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "log.sqlite3"
    source.write_text("".join(json.dumps(c) + "\n" for c in cases), encoding="utf-8")
    monkeypatch.setattr(engine.batch, "WINDOW", 30)
    monkeypatch.setattr(engine.batchslices, "SLICE", 2000)
    real = engine.batchslices.decide_slice

    def dies_at_line_250(eng: Engine, path: str, ident: Any, part: Slice, *rest: Any) -> Any:
        if part.first <= 250 <= part.last:
            os._exit(9)
        return real(eng, path, ident, part, *rest)
    monkeypatch.setattr(engine.batchslices, "decide_slice", dies_at_line_250)
    with pytest.raises(EngineError) as err:
        if logged:
            log = DecisionLog(str(db))
            try:
                with out.open("w", encoding="utf-8", newline="") as fh:
                    run_logged_batch(source, str(out), fh, log, eng, in_fmt="jsonl", out_fmt="jsonl",
                                     policies=str(POLICIES), matcher="python", lang="en", workers=2)
            finally:
                records = list(log.records())
                log.close()
        else:
            run(eng, source, out, 2)
    message = err.value.diagnostics[0].message
    assert "worker process died" in message
    first = int(message.split("before line ")[1].split(";")[0])
    assert 1 < first <= 250
    written = [json.loads(x)["case_id"] for x in out.read_text(encoding="utf-8").splitlines()]
    assert written == [c["id"] for c in cases[:first - 1]]
    if logged:
        assert [r.case["id"] for r in records] == written and len(written) % 30 == 0


# --- the log: windows, resume ---------------------------------------------------------------------

class Crash(Exception):
    pass


def test_log_and_resume_with_slices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, eng: Engine,
                                    sliced: list[int]) -> None:
    """Windows of WINDOW cases as before; a crash after a window's commit resumes after its last line,
    and the resumed output is the uninterrupted one-process output."""
    monkeypatch.setattr(engine.batch, "WINDOW", 7)
    monkeypatch.setattr(engine.batchslices, "SLICE", 700)  # slices and windows cut at different lines
    source, out, db = tmp_path / "in.jsonl", tmp_path / "out.csv", tmp_path / "log.sqlite3"
    cases = generate(60, seed=37)
    source.write_text("".join(("{bad\n" if i % 11 == 4 else "") + json.dumps(c) + "\n" for i, c in enumerate(cases)),
                      encoding="utf-8")
    seen: list[list[int]] = []

    def hook(window: list[Any]) -> None:
        seen.append([r.number for r in window])
        if len(seen) == 3:
            raise Crash
    log = DecisionLog(str(db))
    with out.open("w", encoding="utf-8", newline="") as fh, pytest.raises(Crash):
        run_logged_batch(source, str(out), fh, log, eng, in_fmt="jsonl", out_fmt="csv", policies=str(POLICIES),
                         matcher="python", lang="en", workers=2, on_window=hook)
    assert [len(w) for w in seen] == [7, 7, 7]
    with out.open("w", encoding="utf-8", newline="") as fh:  # as the command opens it
        summary, run_ = run_logged_batch(source, str(out), fh, log, eng, in_fmt="jsonl", out_fmt="csv",
                                         policies=str(POLICIES), matcher="python", lang="en", workers=2)
    assert run_.resumed and run_.done_through == seen[2][-1]
    records = list(log.records())
    log.close()
    assert sliced == [1, 1]
    assert sorted(Counter(r.case["id"] for r in records).values()) == [1] * len(cases)
    fresh = tmp_path / "fresh.csv"
    one = run(eng, source, fresh, 1, "csv")
    assert out.read_bytes() == fresh.read_bytes()
    assert summary == one


# --- the command line -----------------------------------------------------------------------------

def test_csv_to_stdout_with_workers_writes_the_header_once(tmp_path: Path) -> None:
    """Forked workers flush stdout when they end: what the parent wrote before they started must not
    be written again (stdout to a pipe is block-buffered)."""
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(c) + "\n" for c in generate(40, seed=41)), encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("PYTHONUNBUFFERED", None)
    env.pop("CLAUSE_POLICIES", None)
    outputs = []
    for workers in ("1", "2"):
        proc = subprocess.run([sys.executable, str(ROOT / "cli.py"), "batch", str(source), "-o", "-",
                               "--output-format", "csv", "--workers", workers, "--policies", str(POLICIES)],
                              cwd=tmp_path, env=env, capture_output=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr[-2000:]
        outputs.append(proc.stdout)
    assert outputs[0].count(b"line,case_id,") == 1
    assert outputs[1] == outputs[0]
