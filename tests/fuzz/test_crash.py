"""Crash tests: kill -9 of ``clause serve --log`` and ``clause batch --log`` at random points under load.

After every kill: each decision a client received (serve) or found in the
output (batch) is in the log, identical; the log passes an integrity check
(``PRAGMA integrity_check`` on SQLite; on PostgreSQL every decision's policy
row exists); and at the end ``clause log replay`` reproduces all of it. The
batch is re-run after each kill and must resume: finally every case is
logged exactly once and the output equals an uninterrupted run's.

Loopback only, bounded loops. Fast profile: a few kills; ``CLAUSE_FUZZ=long``:
24+ kills. Kill points come from a seeded generator (random in the long run).
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from fuzzing import LONG, counted

from tests_root import POLICIES, ROOT

sys.path.insert(0, str(ROOT / "bench"))
from bench_itellum import generate  # noqa: E402

pytestmark = pytest.mark.fuzz
RNG = random.Random(None if LONG else 9)
SERVE_KILLS = 10 if LONG else 2
BATCH_KILLS = 10 if LONG else 1
PG_KILLS = 4 if LONG else 1


def env() -> dict[str, str]:
    out = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    out.pop("CLAUSE_POLICIES", None)
    return out


def clause(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], cwd=cwd, env=env(), capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL, check=False)


def kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    counted("kills")


# --- serve ------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_serve(home: Path, log: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with (home / f"serve-{port}.err").open("wb") as err:
        proc = subprocess.Popen([sys.executable, str(ROOT / "cli.py"), "serve", "--port", str(port), "--policies",
                                 str(POLICIES), "--log", log], cwd=home, env=env(), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.1)
    kill(proc)
    raise AssertionError(f"clause serve did not start: {(home / f'serve-{port}.err').read_text()}")


def load(url: str, round_: int, answered: dict[str, Any], stop: threading.Event, worker: int) -> None:
    """Post valid cases until the server dies (or 3,000 requests); keep every answered decision."""
    for i, case in enumerate(generate(3000, seed=round_ * 100 + worker)):
        if stop.is_set():
            return
        case["id"] = f"K{round_}-W{worker}-{i}"
        req = urllib.request.Request(url + "/v1/decide", data=json.dumps(case).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                if resp.status == 200:
                    answered[case["id"]] = json.loads(resp.read())
        except (OSError, ValueError, http.client.HTTPException):
            return  # the server is gone (an answer cut short was not answered)


def serve_and_kill(home: Path, log: str, round_: int) -> dict[str, Any]:
    """One round: a server under load from 4 clients, killed at a random moment; what it answered."""
    proc, url = start_serve(home, log)
    answered: dict[str, Any] = {}
    stop = threading.Event()
    clients = [threading.Thread(target=load, args=(url, round_, answered, stop, w)) for w in range(4)]
    for c in clients:
        c.start()
    deadline = time.monotonic() + 60  # under a loaded machine the first answer may take a while
    while not answered and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    time.sleep(RNG.uniform(0.0, 2.0))
    kill(proc)
    stop.set()
    for c in clients:
        c.join(timeout=30)
    assert answered, "the server answered nothing before the kill"
    return answered


def sqlite_logged(db: Path) -> dict[str, Any]:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        rows = conn.execute("SELECT case_id, decision_json FROM decisions").fetchall()
    finally:
        conn.close()
    return {case_id: json.loads(d) for case_id, d in rows}


def assert_answered_are_logged(answered: dict[str, Any], logged: dict[str, Any]) -> None:
    missing = sorted(set(answered) - set(logged))
    assert not missing, f"{len(missing)} answered decision(s) missing from the log, e.g. {missing[:3]}"
    assert all(logged[k] == v for k, v in answered.items())


def assert_replays(log: str, home: Path, count: int) -> None:
    result = clause("log", "replay", "--log", log, "--recorded-only", cwd=home)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert f"{count} replayed, {count} reproduced" in result.stdout


def test_serve_killed_under_load_loses_no_answered_decision(tmp_path: Path) -> None:
    db = tmp_path / "serve.sqlite3"
    total: dict[str, Any] = {}
    for round_ in range(SERVE_KILLS):
        answered = serve_and_kill(tmp_path, str(db), round_)
        logged = sqlite_logged(db)
        assert_answered_are_logged(answered, logged)
        total.update(answered)
    assert_replays(str(db), tmp_path, len(sqlite_logged(db)))


def test_serve_on_postgres_killed_under_load(tmp_path: Path) -> None:
    import test_log_postgres as pg  # noqa: PLC0415 - its throwaway server

    if pg._unavailable() is not None:
        pytest.skip(str(pg._unavailable()))
    url_iter = pg.throwaway_server()
    url = next(url_iter)
    try:
        import psycopg  # noqa: PLC0415

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE crash")
        target = url.rsplit("/", 1)[0] + "/crash"
        for round_ in range(PG_KILLS):
            answered = serve_and_kill(tmp_path, target, round_)
            with psycopg.connect(target) as conn:
                logged = {k: json.loads(d) for k, d in conn.execute("SELECT case_id, decision_json FROM decisions")}
                orphans = conn.execute("SELECT COUNT(*) FROM decisions d LEFT JOIN policies p ON "
                                       "p.digest = d.policy_digest WHERE p.digest IS NULL").fetchone()[0]
            assert orphans == 0
            assert_answered_are_logged(answered, logged)
        assert_replays(target, tmp_path, len(logged))
    finally:
        for _ in url_iter:  # stops the server
            pass


# --- batch ------------------------------------------------------------------------------------

def complete_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    return [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines()]


def batch_logged(db: Path) -> list[dict[str, Any]]:
    if not db.exists():
        return []
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        try:
            return [json.loads(r[0]) for r in conn.execute("SELECT decision_json FROM decisions ORDER BY id")]
        except sqlite3.OperationalError:  # killed before the tables were made
            return []
    finally:
        conn.close()


def test_batch_killed_repeatedly_resumes_to_the_full_output(tmp_path: Path) -> None:
    # Enough cases that no run finishes before its kill (each kill lands within 2.5 s, a decision
    # takes tens of microseconds): a finished run would make the next invocation a new run.
    total = 100_000 if LONG else 20_000
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(c) + "\n" for c in generate(total, seed=31)), encoding="utf-8")
    out, db = tmp_path / "out.jsonl", tmp_path / "log.sqlite3"
    command = [sys.executable, str(ROOT / "cli.py"), "batch", str(source), "-o", str(out), "--log", str(db),
               "--policies", str(POLICIES)]
    for _ in range(BATCH_KILLS):
        proc = subprocess.Popen(command, cwd=tmp_path, env=env(), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(RNG.uniform(0.3, 2.5 if LONG else 0.8))
        assert proc.poll() is None, "the batch finished before it was killed: give it more cases"
        kill(proc)
        output, logged = complete_lines(out), batch_logged(db)
        assert len(output) <= len(logged)
        keys = {(d["case_id"], json.dumps(d, sort_keys=True)) for d in logged}
        assert all((d["case_id"], json.dumps(d, sort_keys=True)) in keys for d in output), \
            "the output holds a decision the log does not"
    finished = clause("batch", str(source), "-o", str(out), "--log", str(db), "--policies", str(POLICIES),
                      cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr[-2000:]
    logged = batch_logged(db)
    ids = [d["case_id"] for d in logged]
    assert len(ids) == len(set(ids)) == total, "a case was logged twice, or not at all"
    fresh = tmp_path / "fresh.jsonl"
    assert clause("batch", str(source), "-o", str(fresh), "--policies", str(POLICIES), cwd=tmp_path).returncode == 0
    assert out.read_bytes() == fresh.read_bytes()
    assert_replays(str(db), tmp_path, total)
