"""``clause batch --dask``: decisions on a Dask cluster, the same bytes as one process.

Covers: 100,000 generated cases over every vendor and kind (plus bad lines)
decided on ``local:2`` byte-identical to the single-process run; a worker
killed with SIGKILL mid-run — the output still complete, in order and
duplicate-free; ``--log`` with ``--dask`` recording every decision; Parquet
input deciding as the same cases in JSON Lines; option errors; and the
shipped policy texts checked like names read from a log.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import POLICIES, ROOT

from engine import Engine, EngineError
from engine.factschema import kind_facts
from engine.sample import Sampler

pytest.importorskip("dask.distributed", reason="the dask extra is not installed")

from engine import distributed  # noqa: E402
from engine.batch import read_lines, render_line  # noqa: E402
from engine.log import DecisionLog  # noqa: E402

BAD = ["{not json", '{"vendor": "nobody", "kind": "x", "facts": {}}', "[1, 2]"]


def clause(*args: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("CLAUSE_POLICIES", None)
    result = subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                            check=False)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr[-3000:]
    return result


def generated(total: int) -> list[str]:
    """``total`` lines: cases generated for every bundled kind (boundary values), some bad lines."""
    engine = Engine.load(POLICIES)
    pool: list[dict[str, Any]] = []
    for vendor, versions in engine.vendors.items():
        compiled = engine.compiled(vendor, versions[-1].effective_from)
        sampler = Sampler(compiled)
        for kind in compiled.kinds:
            pool += sampler.cases(kind, kind_facts(compiled, kind), 60, salt="dask")
    lines = []
    for i in range(total):
        if i % 997 == 0:
            lines.append(BAD[i % len(BAD)])
        else:
            lines.append(json.dumps({**pool[i % len(pool)], "id": f"case-{i}"}, default=str))
    return lines


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dask") / "cases.jsonl"
    path.write_text("\n".join(generated(100_000)) + "\n", encoding="utf-8")
    return path


@pytest.mark.slow
def test_dask_output_is_byte_identical_to_one_process(big: Path, tmp_path: Path) -> None:
    one = clause("batch", str(big), "-o", str(tmp_path / "one.jsonl"), "--format", "json", cwd=tmp_path)
    dask = clause("batch", str(big), "-o", str(tmp_path / "dask.jsonl"), "--dask", "local:2", "--format",
                  "json", cwd=tmp_path)
    assert one.returncode == dask.returncode == 0, dask.stderr[-2000:]
    assert (tmp_path / "one.jsonl").read_bytes() == (tmp_path / "dask.jsonl").read_bytes()
    summary = json.loads(dask.stdout)
    assert summary == json.loads(one.stdout)
    assert summary["cases"] == 100_000 and summary["decided"] > 80_000
    bad = {x["line"] for x in summary["invalid"]}
    assert {i + 1 for i in range(0, 100_000, 997)} <= bad  # the malformed lines, reported by number
    assert len(summary["outcomes"]) >= 6  # many kinds of decision, not one repeated


def test_a_worker_killed_mid_run_loses_and_repeats_nothing(tmp_path: Path) -> None:
    lines = generated(12_000)
    source = tmp_path / "cases.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    engine = Engine.load(POLICIES)
    want = [render_line(engine, n, raw, "jsonl", "jsonl", "en", False) for n, raw in read_lines(source, "jsonl")]
    client, cluster = distributed.connect("local:2")
    got = []
    try:
        killed = False
        for chunk in distributed._pipeline(client, read_lines(source, "jsonl"), engine, "python", "jsonl",
                                           "jsonl", "en", False):
            got += chunk
            if not killed:  # the first chunk is back: the others are queued or running
                pids = client.run(os.getpid)
                os.kill(next(iter(pids.values())), signal.SIGKILL)
                killed = True
    finally:
        client.close()
        cluster.close()
    assert [r.number for r in got] == [r.number for r in want]  # complete, in order, no duplicate
    assert got == want


def test_log_with_dask_records_every_decision(tmp_path: Path) -> None:
    source = tmp_path / "cases.jsonl"
    source.write_text("\n".join(generated(3_000)) + "\n", encoding="utf-8")
    log = tmp_path / "log.sqlite3"
    result = clause("batch", str(source), "-o", str(tmp_path / "out.jsonl"), "--dask", "local:1", "--log",
                    str(log), "--format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    decided = json.loads(result.stdout)["decided"]
    out = (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()
    records = list(DecisionLog(str(log), read_only=True).records())
    assert len(out) == decided == len(records) and decided > 2_000
    assert [r.decision for r in records] == [json.loads(x) for x in out]


def test_parquet_input_decides_like_the_same_cases_in_json_lines(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    rows = [{"id": "P-1", "vendor": "did-provider", "kind": "restore", "as_of": "2025-04-04",
             "cancelled_on": "2025-03-01", "restore_on": "2025-04-04", "daily_rate": 0.165},
            {"id": "P-2", "vendor": "did-provider", "kind": "restore", "as_of": "2025-04-04",
             "cancelled_on": "2025-03-01", "restore_on": None, "daily_rate": 0.165}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "cases.parquet")
    same = [{"id": r["id"], "vendor": r["vendor"], "kind": r["kind"], "as_of": r["as_of"],
             "facts": {k: (str(v) if isinstance(v, float) else v) for k, v in r.items()
                       if k not in ("id", "vendor", "kind", "as_of") and v is not None}} for r in rows]
    (tmp_path / "cases.jsonl").write_text("".join(json.dumps(c) + "\n" for c in same), encoding="utf-8")
    for name in ("cases.parquet", "cases.jsonl"):
        result = clause("batch", name, "-o", name + ".out.jsonl", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    parquet = (tmp_path / "cases.parquet.out.jsonl").read_text(encoding="utf-8")
    assert parquet == (tmp_path / "cases.jsonl.out.jsonl").read_text(encoding="utf-8")
    first, second = (json.loads(x) for x in parquet.splitlines())
    assert first["outcome"] != "needs_info" and second["outcome"] == "needs_info"


@pytest.mark.parametrize(("args", "needle"), [
    (["--dask", "local:2", "--workers", "2"], "--workers and --dask exclude each other"),
    (["--dask", "somewhere"], "--dask takes tcp://HOST:PORT or local[:N]"),
    (["--dask", "local:0"], "local:N needs 1 to 256 workers"),
])
def test_dask_option_errors_are_clear(tmp_path: Path, args: list[str], needle: str) -> None:
    (tmp_path / "c.jsonl").write_text(json.dumps({"vendor": "intpho"}) + "\n", encoding="utf-8")
    result = clause("batch", "c.jsonl", "-o", "out.jsonl", *args, cwd=tmp_path)
    assert result.returncode != 0 and needle in result.stdout + result.stderr


def test_unreachable_scheduler_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "c.jsonl").write_text(json.dumps({"vendor": "intpho"}) + "\n", encoding="utf-8")
    result = clause("batch", "c.jsonl", "-o", "out.jsonl", "--dask", "tcp://127.0.0.1:9", cwd=tmp_path)
    assert result.returncode != 0 and "cannot reach the Dask scheduler" in result.stdout + result.stderr


@pytest.mark.parametrize(("field", "value"), [
    ("file", "../policy.yaml"), ("file", "evil.py"), ("vendor", "../../elsewhere"),
    ("source_file", "/etc/passwd"), ("source_file", "../x.txt"),
])
def test_shipped_names_are_checked_before_any_file_is_written(field: str, value: str) -> None:
    files = distributed.bundle(Engine.load(POLICIES))
    bad = (distributed.PolicyText(**{**_fields(files[0]), field: value}), *files[1:])
    with pytest.raises(EngineError):
        distributed._compile(bad, "python")


def test_a_digest_that_does_not_match_the_text_is_refused() -> None:
    files = distributed.bundle(Engine.load(POLICIES))
    bad = (distributed.PolicyText(**{**_fields(files[0]), "digest": "0" * 64}), *files[1:])
    with pytest.raises(EngineError, match="do not have the digests"):
        distributed._compile(bad, "python")


def _fields(p: distributed.PolicyText) -> dict[str, Any]:
    return {k: getattr(p, k) for k in p.__slots__}


def test_log_replay_on_dask_reports_what_the_local_replay_does(tmp_path: Path) -> None:
    """Issue 13 item 4: ``clause log replay --dask`` — same figures, same records not reproduced."""
    import sqlite3  # noqa: PLC0415

    source = tmp_path / "cases.jsonl"
    source.write_text("\n".join(generated(2_500)) + "\n", encoding="utf-8")
    log = tmp_path / "log.sqlite3"
    assert clause("batch", str(source), "-o", str(tmp_path / "out.jsonl"), "--log", str(log),
                  cwd=tmp_path).returncode == 0
    with sqlite3.connect(log) as conn:  # one record altered after the fact, one policy row tampered with
        conn.execute("UPDATE decisions SET decision_json = replace(decision_json, '\"outcome\":\"', "
                     "'\"outcome\":\"x') WHERE id = 7")
        digest = conn.execute("SELECT policy_digest FROM decisions WHERE id = 20").fetchone()[0]
        conn.execute("UPDATE policies SET policy_text = policy_text || ' ' WHERE digest = ?", (digest,))
    local = clause("log", "replay", "--log", str(log), "--format", "json", cwd=tmp_path)
    dask = clause("log", "replay", "--log", str(log), "--format", "json", "--dask", "local:2", cwd=tmp_path)
    assert local.returncode == dask.returncode == 1
    mine, theirs = json.loads(local.stdout), json.loads(dask.stdout)
    assert mine == theirs
    broken = {x["id"] for x in mine["not_reproduced"]}
    assert 7 in broken and 20 in broken and mine["replayed"] > 2_000
