"""``clause batch``: streaming decisions from JSON Lines or CSV, run as a real subprocess.

Covers: every valid line decided in input order and equal to Engine.decide;
malformed and ill-typed lines reported with their line numbers and skipped
(exit 0); CSV in and CSV out; ``--workers 2`` byte-identical to one worker;
the JSON summary (counts per outcome, totals per currency, invalid lines);
no progress bar when stderr is not a terminal; ``--log`` recording every
decided line; and a SIGKILL in the middle of a logged batch leaving a
consistent SQLite log holding only whole windows.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import POLICIES, ROOT

from engine import Engine
from engine._yaml import parse_yaml
from engine.batch import OUT_COLUMNS, WINDOW, csv_text
from engine.log import DecisionLog

sys.path.insert(0, str(ROOT / "bench"))
from bench_itellum import generate

VOIP = {"id": "V-1", "vendor": "voip-provider", "kind": "cancellation", "as_of": "2025-04-10",
        "facts": {"violation": "none", "cancelled_by": "customer", "requested_via": "account_portal",
                  "billing": "prepaid", "cycle_start": "2025-04-01", "cycle_end": "2025-04-30",
                  "cycle_fee": "30.00", "cancel_requested_on": "2025-04-10"}}
DID = {"id": "DID-0001", "vendor": "did-provider", "kind": "restore", "as_of": "2025-04-04",
       "facts": {"cancelled_on": "2025-03-01", "restore_on": "2025-04-04", "daily_rate": "0.165"}}


def case_file(path: Path) -> dict[str, Any]:
    doc, problems = parse_yaml(path.read_text(encoding="utf-8"), str(path))
    assert doc is not None and not problems, problems
    return json.loads(json.dumps(doc.data, default=str))


INTPHO = case_file(POLICIES / "intpho" / "cases" / "non-defective-fee.yaml")
BAR_MARKS = ("Deciding", "[#", "#-", "%", "\r")


def clause(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("CLAUSE_POLICIES", None)
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, check=False)


def ok(result: subprocess.CompletedProcess[str], code: int = 0) -> subprocess.CompletedProcess[str]:
    assert result.returncode == code, (result.stdout[-2000:], result.stderr[-2000:])
    assert "Traceback" not in result.stdout + result.stderr, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def local_engine() -> Iterator[Engine]:
    eng = Engine.load(POLICIES)
    yield eng
    eng.close()


def write_jsonl(path: Path, lines: list[Any]) -> Path:
    """One line per item: dicts as JSON, strings written verbatim (to make bad lines)."""
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines), encoding="utf-8")
    return path


def expected(engine: Engine, case: dict[str, Any]) -> dict[str, Any]:
    return engine.decide(json.loads(json.dumps(case), parse_float=Decimal)).to_dict()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def mixed_cases() -> list[dict[str, Any]]:
    return [*generate(40, seed=3), VOIP, DID, INTPHO]


# --- JSON Lines -------------------------------------------------------------------------------

def test_jsonl_decides_every_line_in_order(tmp_path: Path, local_engine: Engine) -> None:
    cases = mixed_cases()
    source = write_jsonl(tmp_path / "in.jsonl", cases)
    result = ok(clause("batch", str(source), "-o", str(tmp_path / "out.jsonl"), cwd=tmp_path))
    out = read_jsonl(tmp_path / "out.jsonl")
    assert [d["case_id"] for d in out] == [c["id"] for c in cases]
    assert out == [expected(local_engine, c) for c in cases]
    first, summary = result.stdout.split("\n", 1)
    assert first.startswith("policies: ") and first.endswith(" (bundled)")  # run from tmp_path
    assert summary.startswith(f"{len(cases)} case(s): {len(cases)} decided, 0 invalid")
    assert out[-3]["amount"] == {"value": "20.00", "currency": "USD"}
    assert out[-2]["customer_pays"] == {"value": "5.61", "currency": "EUR"}


def test_bad_lines_are_reported_and_skipped(tmp_path: Path, local_engine: Engine) -> None:
    good = generate(6, seed=5)
    wrong_type = dict(good[0], id="WRONG", facts=dict(good[0]["facts"], installed_on="the 1st of May"))
    assert good[0]["kind"] == "warranty"
    lines = [good[0], good[1], "{not json", good[2], "", wrong_type, good[3],
             '{"vendor": "itellum", "kind": "delivery", "facts": {"defect_at_delivery": tru}}',
             {"id": "GHOST", "vendor": "ghost-vendor", "kind": "return", "facts": {}}, good[4], good[5]]
    source = write_jsonl(tmp_path / "in.jsonl", lines)
    result = ok(clause("batch", str(source), "-o", str(tmp_path / "out.jsonl"), cwd=tmp_path))
    out = read_jsonl(tmp_path / "out.jsonl")
    assert [d["case_id"] for d in out] == [c["id"] for c in good]
    assert out == [expected(local_engine, c) for c in good]
    summary = result.stdout
    assert "10 case(s): 6 decided, 4 invalid" in summary  # the blank line 5 is not a case
    assert "line 3: invalid JSON" in summary
    assert "line 6: case_fact_type: fact installed_on" in summary
    assert "line 8: invalid JSON" in summary
    assert "line 9: " in summary and "ghost-vendor" in summary
    for n in (1, 2, 4, 5, 7, 10, 11):
        assert f"line {n}:" not in summary


def test_bad_as_of_line_is_reported_not_fatal(tmp_path: Path) -> None:
    """A case whose as_of is not a date string is one invalid line, not the end of the batch."""
    good = generate(3, seed=9)
    source = write_jsonl(tmp_path / "in.jsonl", [good[0], dict(good[1], as_of=20250101), good[2]])
    result = ok(clause("batch", str(source), "-o", str(tmp_path / "out.jsonl"), cwd=tmp_path))
    assert [d["case_id"] for d in read_jsonl(tmp_path / "out.jsonl")] == [good[0]["id"], good[2]["id"]]
    assert "3 case(s): 2 decided, 1 invalid" in result.stdout
    assert "line 2:" in result.stdout and "as_of" in result.stdout


def test_output_to_stdout_keeps_the_summary_on_stderr(tmp_path: Path, local_engine: Engine) -> None:
    cases = [VOIP, DID]
    source = write_jsonl(tmp_path / "in.jsonl", [*cases, "oops"])
    result = ok(clause("batch", str(source), "-o", "-", cwd=tmp_path))
    assert [json.loads(line) for line in result.stdout.splitlines()] == [expected(local_engine, c) for c in cases]
    assert "3 case(s): 2 decided, 1 invalid" in result.stderr
    assert "line 3: invalid JSON" in result.stderr


def test_json_summary(tmp_path: Path, local_engine: Engine) -> None:
    cases = [*generate(25, seed=11), VOIP, DID, INTPHO]
    source = write_jsonl(tmp_path / "in.jsonl", [*cases[:10], "[1, 2", *cases[10:], {"vendor": "itellum"}])
    result = ok(clause("batch", str(source), "-o", str(tmp_path / "out.jsonl"), "--format", "json", cwd=tmp_path))
    summary = json.loads(result.stdout)
    decisions = [expected(local_engine, c) for c in cases]
    totals: dict[str, Decimal] = {}
    for d in decisions:
        if d["amount"]:
            totals[d["amount"]["currency"]] = totals.get(d["amount"]["currency"], Decimal(0)) + \
                Decimal(d["amount"]["value"])
    assert summary["cases"] == len(cases) + 2
    assert summary["decided"] == len(cases)
    assert summary["outcomes"] == dict(Counter(d["outcome"] for d in decisions))
    assert {c: Decimal(v) for c, v in summary["amounts"].items()} == totals
    assert summary["amounts"]["USD"] == "20.00"  # the voip refund is the only USD amount
    assert set(summary["amounts"]) == {"CRC", "USD"}
    assert [i["line"] for i in summary["invalid"]] == [11, len(cases) + 2]
    assert summary["invalid"][0]["error"].startswith("invalid JSON")
    assert "kind" in summary["invalid"][1]["error"]


# --- CSV --------------------------------------------------------------------------------------

def test_csv_in_jsonl_out(tmp_path: Path, local_engine: Engine) -> None:
    cases = mixed_cases()
    source = tmp_path / "in.csv"
    source.write_text(csv_text(cases), encoding="utf-8")
    ok(clause("batch", str(source), "-o", str(tmp_path / "out.jsonl"), cwd=tmp_path))
    out = read_jsonl(tmp_path / "out.jsonl")
    assert [d["case_id"] for d in out] == [c["id"] for c in cases]
    assert out == [expected(local_engine, c) for c in cases]


def test_handwritten_csv_with_bad_row(tmp_path: Path) -> None:
    source = tmp_path / "cases.csv"
    source.write_text(
        "id,vendor,kind,as_of,cancelled_on,restore_on,daily_rate,defect_at_delivery\n"
        "R1,did-provider,restore,2025-04-04,2025-03-01,2025-04-04,0.165,\n"
        "D1,itellum,delivery,2025-02-14,,,,true\n"
        "D2,itellum,delivery,2025-02-14,,,,maybe\n"
        "D3,itellum,delivery,2025-02-14,,,,false\n", encoding="utf-8")
    result = ok(clause("batch", str(source), "-o", str(tmp_path / "out.jsonl"), cwd=tmp_path))
    out = read_jsonl(tmp_path / "out.jsonl")
    assert [(d["case_id"], d["outcome"]) for d in out] == [("R1", out[0]["outcome"]), ("D1", "replace"),
                                                          ("D3", out[2]["outcome"])]
    assert out[0]["customer_pays"] == {"value": "5.61", "currency": "EUR"}
    assert out[2]["outcome"] != "replace"
    assert "4 case(s): 3 decided, 1 invalid" in result.stdout
    assert "line 4: case_fact_type: fact defect_at_delivery" in result.stdout


def test_csv_out(tmp_path: Path, local_engine: Engine) -> None:
    cases = mixed_cases()
    source = write_jsonl(tmp_path / "in.jsonl", [cases[0], "{bad", *cases[1:]])
    ok(clause("batch", str(source), "-o", str(tmp_path / "out.csv"), cwd=tmp_path))
    rows = list(csv.reader(io.StringIO((tmp_path / "out.csv").read_text(encoding="utf-8"))))
    assert tuple(rows[0]) == OUT_COLUMNS
    body = [dict(zip(OUT_COLUMNS, r)) for r in rows[1:]]
    assert len(body) == len(cases)
    assert [r["line"] for r in body] == ["1", *[str(n) for n in range(3, len(cases) + 2)]]
    for row, case in zip(body, cases):
        d = expected(local_engine, case)
        money = d["amount"] or d["customer_pays"] or {}
        assert row["case_id"] == case["id"]
        assert (row["vendor"], row["kind"], row["as_of"], row["outcome"]) == \
            (d["vendor"], d["kind"], d["as_of"], d["outcome"])
        assert row["amount"] == (d["amount"] or {}).get("value", "")
        assert row["customer_pays"] == (d["customer_pays"] or {}).get("value", "")
        assert row["currency"] == money.get("currency", "")
        assert row["rules"] == ";".join(r["rule"] for r in d["reasons"])
        assert row["deadlines"] == ";".join(f"{x['name']}={x['date'] or 'unknown'}" for x in d["deadlines"])
        assert row["missing_facts"] == ";".join(m["fact"] for m in d["missing_facts"])
        assert row["policy_version"] == d["policy"]["version"]
    voip = next(r for r in body if r["case_id"] == "V-1")
    assert (voip["outcome"], voip["amount"], voip["currency"]) == ("partial_refund", "20.00", "USD")
    assert voip["deadlines"] == "cancellation_effective=2025-04-10"


def test_csv_in_csv_out_explicit_formats(tmp_path: Path) -> None:
    source = tmp_path / "cases.txt"  # no suffix hint: the formats are given
    source.write_text(csv_text([VOIP, DID]), encoding="utf-8")
    ok(clause("batch", str(source), "-o", str(tmp_path / "out.txt"), "--input-format", "csv",
              "--output-format", "csv", cwd=tmp_path))
    rows = list(csv.reader(io.StringIO((tmp_path / "out.txt").read_text(encoding="utf-8"))))
    assert tuple(rows[0]) == OUT_COLUMNS
    assert [(r[1], r[5], r[6], r[7], r[8]) for r in rows[1:]] == \
        [("V-1", "partial_refund", "20.00", "", "USD"), ("DID-0001", rows[2][5], "", "5.61", "EUR")]


# --- workers, progress, log ---------------------------------------------------------------------

def test_two_workers_give_identical_output(tmp_path: Path) -> None:
    cases = generate(WINDOW + 700, seed=13)  # more than a window and many chunks
    lines: list[Any] = list(cases)
    lines[5] = "{broken"
    lines[WINDOW + 3] = dict(cases[WINDOW + 3], facts={"unknown_fact": 1})
    source = write_jsonl(tmp_path / "in.jsonl", lines)
    outputs, summaries = [], []
    for workers in ("1", "2"):
        for suffix in ("jsonl", "csv"):
            out = tmp_path / f"out-{workers}.{suffix}"
            result = ok(clause("batch", str(source), "-o", str(out), "--workers", workers, "--format", "json",
                               cwd=tmp_path))
            outputs.append(out.read_bytes())
            summaries.append(json.loads(result.stdout))
    one_jsonl, one_csv, two_jsonl, two_csv = outputs
    assert one_jsonl == two_jsonl
    assert one_csv == two_csv
    assert summaries[0] == summaries[2] and summaries[1] == summaries[3]
    assert summaries[0]["decided"] == len(cases) - 2
    assert [i["line"] for i in summaries[0]["invalid"]] == [6, WINDOW + 4]
    ids = [json.loads(line)["case_id"] for line in one_jsonl.decode().splitlines()]
    assert ids == [c["id"] for i, c in enumerate(cases) if i not in (5, WINDOW + 3)]


def test_no_progress_bar_when_not_a_terminal(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", generate(50))
    quiet = ok(clause("batch", str(source), "-o", str(tmp_path / "out.jsonl"), cwd=tmp_path))
    assert quiet.stderr == ""
    for mark in BAR_MARKS:
        assert mark not in quiet.stderr
    assert "50 case(s): 50 decided" in quiet.stdout
    forced = ok(clause("batch", str(source), "-o", str(tmp_path / "out2.jsonl"), "--progress", cwd=tmp_path))
    assert "Deciding" in forced.stderr  # the check above can see a bar
    assert (tmp_path / "out.jsonl").read_bytes() == (tmp_path / "out2.jsonl").read_bytes()


@pytest.mark.parametrize("workers", ["1", "2"], ids=["workers-1", "workers-2"])
def test_log_records_every_decided_line(tmp_path: Path, workers: str) -> None:
    cases = [*generate(30, seed=17), VOIP, DID, INTPHO]
    source = write_jsonl(tmp_path / "in.jsonl", [*cases[:4], "nope", *cases[4:], {"vendor": "x", "kind": "y",
                                                                                    "facts": {}}])
    db = tmp_path / "log.sqlite3"
    ok(clause("batch", str(source), "-o", str(tmp_path / "out.jsonl"), "--log", str(db), "--workers", workers,
              cwd=tmp_path))
    out = read_jsonl(tmp_path / "out.jsonl")
    log = DecisionLog(str(db))
    records = list(log.records())
    log.close()
    assert len(records) == len(cases)
    assert [r.decision for r in records] == out
    assert [r.case["id"] for r in records] == [c["id"] for c in cases]
    assert {r.origin for r in records} == {"batch"}
    assert records[-3].case == VOIP
    replayed = ok(clause("log", "replay", "--log", str(db), cwd=tmp_path))
    assert f"{len(cases)} replayed, {len(cases)} reproduced, 0 would change" in replayed.stdout


# --- crash safety -------------------------------------------------------------------------------

def test_sigkill_leaves_only_whole_windows(tmp_path: Path) -> None:
    total = 60_000
    source = write_jsonl(tmp_path / "big.jsonl", generate(total, seed=23))
    db = tmp_path / "log.sqlite3"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("CLAUSE_POLICIES", None)
    proc = subprocess.Popen([sys.executable, str(ROOT / "cli.py"), "batch", str(source), "-o",
                             str(tmp_path / "out.jsonl"), "--log", str(db)], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        count = 0
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline and proc.poll() is None:
            if db.exists():
                try:
                    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
                    try:
                        count = conn.execute("SELECT COUNT(*) FROM decisions").fetchone()[0]
                    finally:
                        conn.close()
                except sqlite3.OperationalError:
                    count = 0  # tables not created yet, or busy
                if count > 0:
                    break
            time.sleep(0.05)
        assert count > 0, f"no committed record within the timeout; stderr: {proc.stderr.read() if proc.stderr else ''}"
        finished_early = proc.poll() is not None
        proc.send_signal(signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        if proc.stderr:
            proc.stderr.close()
    if not finished_early:
        assert proc.returncode == -signal.SIGKILL

    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        rows = conn.execute("SELECT id, case_json, decision_json, outcome FROM decisions ORDER BY id").fetchall()
        policies = conn.execute("SELECT COUNT(*) FROM policies").fetchone()[0]
    finally:
        conn.close()
    assert 0 < len(rows) <= total
    assert len(rows) % WINDOW == 0, f"{len(rows)} records: a window was committed in part"
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1))
    for _, case_json, decision_json, outcome in rows:
        case, decision = json.loads(case_json), json.loads(decision_json)
        assert decision["outcome"] == outcome and outcome
        assert decision["case_id"] == case["id"]
    assert [json.loads(r[1])["id"] for r in rows] == [f"B-{i}" for i in range(len(rows))]
    assert policies == 1


def test_csv_cell_with_a_bound(tmp_path: Path) -> None:
    """A JSON object in a CSV cell is a bounded fact."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["id", "vendor", "kind", "as_of", "sent_to_miami", "has_ra", "ra_issued_on",
                     "approved_for_return", "shipped_back_on"])
    writer.writerow(["B1", "intpho", "return", "2025-03-25", "true", "true", "2025-03-01", "false",
                     '{"at_least": "2025-03-02"}'])
    writer.writerow(["B2", "intpho", "return", "2025-03-25", "true", "true", "2025-03-01", "true",
                     '{"at_least": "2025-03-20"}'])
    source = tmp_path / "bounds.csv"
    source.write_text(buf.getvalue(), encoding="utf-8")
    ok(clause("batch", str(source), "-o", str(tmp_path / "out.jsonl"), cwd=tmp_path))
    out = read_jsonl(tmp_path / "out.jsonl")
    assert [(d["case_id"], d["outcome"], d["missing_facts"]) for d in out] == [
        ("B1", "deny", []), ("B2", "deny", [])]
    assert out[1]["reasons"][0]["rule"] == "return-ra-expired"


def test_a_worker_killed_mid_run_stops_the_batch_with_an_error_not_a_hang(tmp_path: Path) -> None:
    """multiprocessing.Pool lost a killed worker's chunk and waited for it for ever; the run must end,
    exit 1 and say what happened, with the output holding only whole, ordered lines."""
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_itellum import generate  # noqa: PLC0415 - the benchmark's valid cases

    source, out = tmp_path / "cases.jsonl", tmp_path / "out.jsonl"
    source.write_text("".join(json.dumps(c) + "\n" for c in generate(200_000)), encoding="utf-8")
    proc = subprocess.Popen([sys.executable, str(ROOT / "cli.py"), "batch", str(source), "-o", str(out),
                             "--workers", "2", "--no-progress", "--policies", str(POLICIES)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    children: list[int] = []
    deadline = time.monotonic() + 60
    while not children and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
        listed = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout
        children = [int(p) for p in listed.split()]
    assert children, "no worker process appeared"
    time.sleep(0.5)
    os.kill(children[0], signal.SIGKILL)
    try:
        _, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the batch hung after a worker was killed")
    assert proc.returncode == 1 and "worker process died" in err
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) < 200_000 and all(json.loads(line)["outcome"] for line in lines)
