"""The decision log (engine.log): SQLite storage, and the ``decide --log`` / ``log`` verbs.

Covers WAL mode, the write/read round trip of every stored field, the
policy text kept once per digest, all-or-nothing batch writes, the ``log
list``/``log show`` output (text and JSON), ``log replay`` (reproduced,
"would change" under an edited policy, NOT reproduced for a tampered
record) and a clean error for an unreachable PostgreSQL log. The CLI runs as
a real subprocess (``cli.py``), as a user would run it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import POLICIES, ROOT

from engine import Engine, __version__
from engine.log import DecisionLog, LogError, replay

RETURN_CASE = POLICIES / "itellum" / "cases" / "return-refund.yaml"
WARRANTY_CASE = POLICIES / "itellum" / "cases" / "warranty-day-8.yaml"
VOIP_CASE = POLICIES / "voip-provider" / "cases" / "prepaid-cancellation.yaml"
REFUND_AMOUNT = "equipment_price + first_monthly_fee"

RETURN = {"id": "CASE-0042", "vendor": "itellum", "kind": "return", "as_of": "2025-04-01",
          "facts": {"install_impossible_report": True, "ticket_opened": True, "equipment_undamaged": True,
                    "original_packaging": True, "all_accessories": True, "equipment_price": "150000.00",
                    "first_monthly_fee": "25000.50", "equipment_returned_on": "2025-04-01"}}
DELIVERY = {"id": "D-1", "vendor": "itellum", "kind": "delivery", "as_of": "2025-02-14",
            "facts": {"defect_at_delivery": True}}
VOIP = {"id": "V-1", "vendor": "voip-provider", "kind": "cancellation", "as_of": "2025-04-10",
        "facts": {"violation": "none", "cancelled_by": "customer", "requested_via": "account_portal",
                  "billing": "prepaid", "cycle_start": "2025-04-01", "cycle_end": "2025-04-30",
                  "cycle_fee": "30.00", "cancel_requested_on": "2025-04-10"}}


def clause(*args: str, cwd: Path, env: dict[str, str] | None = None,
           pre: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``cli.py`` as a subprocess (``pre``: Python to run before the CLI, e.g. to hide a module)."""
    full_env = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    full_env.pop("CLAUSE_POLICIES", None)
    if pre is None:
        cmd = [sys.executable, str(ROOT / "cli.py"), *args]
    else:
        boot = (f"{pre}\nimport runpy, sys\nsys.argv = [{str(ROOT / 'cli.py')!r}, *{list(args)!r}]\n"
                f"runpy.run_path({str(ROOT / 'cli.py')!r}, run_name='__main__')\n")
        cmd = [sys.executable, "-c", boot]
    return subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=120, check=False)


def ok(result: subprocess.CompletedProcess[str], code: int = 0) -> subprocess.CompletedProcess[str]:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


@pytest.fixture()
def engine_here() -> Iterator[Engine]:
    eng = Engine.load(POLICIES)
    yield eng
    eng.close()


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    return tmp_path / "decisions.sqlite3"


def log_one(log: DecisionLog, engine: Engine, case: dict[str, Any], origin: str = "test",
            lang: str = "en") -> dict[str, Any]:
    decision = engine.decide(case, lang=lang)
    log.write(case, decision, engine.policy_by_digest(decision.vendor, decision.policy["digest"]), origin, lang)
    return decision.to_dict()


def edited_policies(tmp_path: Path, new_amount: str = "equipment_price") -> Path:
    root = tmp_path / "edited"
    shutil.copytree(POLICIES, root)
    path = root / "itellum" / "policy.yaml"
    text = path.read_text(encoding="utf-8")
    assert text.count(REFUND_AMOUNT) == 1
    path.write_text(text.replace(REFUND_AMOUNT, new_amount), encoding="utf-8")
    return root


def query(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


# --- the library --------------------------------------------------------------------------------

def test_sqlite_log_is_in_wal_mode(db: Path) -> None:
    DecisionLog(str(db)).close()
    assert query(db, "PRAGMA journal_mode") == [("wal",)]
    tables = {name for (name,) in query(db, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"decisions", "policies"} <= tables


def test_write_and_read_back(db: Path, engine_here: Engine) -> None:
    log = DecisionLog(str(db))
    first = log_one(log, engine_here, RETURN, origin="unit")
    second = log_one(log, engine_here, VOIP, origin="other", lang="es")
    records = list(log.records())
    log.close()
    assert [r.id for r in records] == [1, 2]
    r1, r2 = records
    assert (r1.origin, r1.case, r1.decision, r1.engine_version, r1.lang) == ("unit", RETURN, first, __version__, "en")
    assert (r2.origin, r2.case, r2.decision, r2.lang) == ("other", VOIP, second, "es")
    assert r1.decision["amount"] == {"value": "175000.50", "currency": "CRC"}
    assert r2.decision["amount"] == {"value": "20.00", "currency": "USD"}
    assert r1.logged_at.endswith("+00:00") and r1.logged_at[:4].isdigit()
    rows = query(db, "SELECT case_id, vendor, kind, outcome, policy_version, policy_digest FROM decisions ORDER BY id")
    assert rows == [("CASE-0042", "itellum", "return", "refund", "2024.1", first["policy"]["digest"]),
                    ("V-1", "voip-provider", "cancellation", "partial_refund", "2025.1", second["policy"]["digest"])]


def test_records_limit_and_id(db: Path, engine_here: Engine) -> None:
    log = DecisionLog(str(db))
    for case in (RETURN, DELIVERY, VOIP):
        log_one(log, engine_here, case)
    assert [r.case["id"] for r in log.records(limit=2)] == ["CASE-0042", "D-1"]
    assert [r.case["id"] for r in log.records(record_id=3)] == ["V-1"]
    assert list(log.records(record_id=99)) == []
    log.close()


def test_policy_text_stored_once_per_digest(db: Path, engine_here: Engine) -> None:
    log = DecisionLog(str(db))
    for case in (RETURN, DELIVERY, RETURN, VOIP):
        log_one(log, engine_here, case)
    log.close()
    again = DecisionLog(str(db))  # a fresh instance (empty cache) must not store it twice either
    log_one(again, engine_here, DELIVERY)
    again.close()
    rows = query(db, "SELECT vendor, version, digest, policy_text, source_file, source_text FROM policies "
                     "ORDER BY vendor")
    assert [(v, ver) for v, ver, *_ in rows] == [("itellum", "2024.1"), ("voip-provider", "2025.1")]
    itellum = engine_here.policy("itellum")
    assert rows[0][2] == itellum.digest
    assert rows[0][3] == (POLICIES / "itellum" / "policy.yaml").read_text(encoding="utf-8")
    assert rows[0][4] == "source.txt"
    assert rows[0][5] == itellum.source_text
    assert query(db, "SELECT COUNT(*) FROM decisions") == [(5,)]


def test_policy_files_rebuild_the_logged_policy(db: Path, engine_here: Engine, tmp_path: Path) -> None:
    log = DecisionLog(str(db))
    decision = log_one(log, engine_here, RETURN)
    home = log.policy_files(decision["policy"]["digest"], tmp_path / "rebuilt")
    with pytest.raises(LogError):
        log.policy_files("0" * 64, tmp_path / "rebuilt")
    log.close()
    assert (home / "policy.yaml").read_text(encoding="utf-8") == \
        (POLICIES / "itellum" / "policy.yaml").read_text(encoding="utf-8")
    assert (home / "source.txt").read_text(encoding="utf-8") == \
        (POLICIES / "itellum" / "source.txt").read_text(encoding="utf-8")
    rebuilt = Engine.load(home)
    assert rebuilt.policy("itellum").digest == decision["policy"]["digest"]
    rebuilt.close()


def test_write_many_is_all_or_nothing(db: Path, engine_here: Engine) -> None:
    log = DecisionLog(str(db))
    log_one(log, engine_here, DELIVERY)
    good = engine_here.decide(RETURN)
    policy = engine_here.policy_by_digest("itellum", good.policy["digest"])
    broken = {k: v for k, v in good.to_dict().items() if k != "outcome"}
    with pytest.raises(KeyError):
        log.write_many([(RETURN, good, policy), (RETURN, broken, policy)], "batch")
    assert [r.case["id"] for r in log.records()] == ["D-1"]
    log.write_many([(RETURN, good, policy), (VOIP, engine_here.decide(VOIP),
                                               engine_here.policy("voip-provider"))], "batch")
    assert [r.case["id"] for r in log.records()] == ["D-1", "CASE-0042", "V-1"]
    log.close()


def test_write_many_numbers_its_rows_after_the_last_id_across_statements(db: Path, engine_here: Engine) -> None:
    """SQLite writes up to INSERT_ROWS rows per statement with the ids it returns: each id must be
    its own row's, across statement boundaries and after a gap in the ids."""
    from engine.log import INSERT_ROWS  # noqa: PLC0415

    log = DecisionLog(str(db))
    decision = engine_here.decide(RETURN)
    policy = engine_here.policy_by_digest("itellum", decision.policy["digest"])
    first = log.write_many([(dict(RETURN, id=f"A-{i}"), decision, policy) for i in range(3)], "unit")
    assert first == [1, 2, 3]
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM decisions WHERE id = 3")  # the last id gone: numbering goes on after 2
    count = 2 * INSERT_ROWS + 5
    ids = log.write_many([(dict(RETURN, id=f"B-{i}"), decision, policy) for i in range(count)], "unit")
    assert ids == list(range(3, 3 + count))
    rows = {i: json.loads(case)["id"] for i, case in query(db, "SELECT id, case_json FROM decisions")}
    assert [rows[i] for i in ids] == [f"B-{i}" for i in range(count)]
    assert [r.case["id"] for r in log.records(record_id=ids[INSERT_ROWS])] == [f"B-{INSERT_ROWS}"]
    log.close()


def test_write_many_past_the_largest_id_fails_whole(db: Path, engine_here: Engine) -> None:
    """A log whose last id is SQLite's largest integer takes no more rows: an error, nothing written,
    no row numbered at random (SQLite's own choice past that id)."""
    log = DecisionLog(str(db))
    decision = engine_here.decide(RETURN)
    policy = engine_here.policy_by_digest("itellum", decision.policy["digest"])
    log.write_many([(RETURN, decision, policy)], "unit")
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE decisions SET id = ? WHERE id = 1", (2 ** 63 - 1,))
    with pytest.raises(OverflowError):
        log.write_many([(RETURN, decision, policy)], "unit")
    assert query(db, "SELECT count(*) FROM decisions") == [(1,)]
    log.close()


def test_replay_api(db: Path, engine_here: Engine, tmp_path: Path) -> None:
    log = DecisionLog(str(db))
    for case in (RETURN, DELIVERY, VOIP):
        log_one(log, engine_here, case)
    edited = Engine.load(edited_policies(tmp_path))
    results = list(replay(log, edited))
    log.close()
    edited.close()
    assert [(r.record.id, r.reproduced, r.changed_now, r.error) for r in results] == \
        [(1, True, True, None), (2, True, False, None), (3, True, False, None)]
    assert results[0].current["amount"] == {"value": "150000.00", "currency": "CRC"}
    assert results[0].replayed == results[0].record.decision


def test_unopenable_sqlite_log_is_a_log_error(tmp_path: Path) -> None:
    with pytest.raises(LogError) as info:
        DecisionLog(str(tmp_path / "no-such-dir" / "log.sqlite3"))
    assert info.value.diagnostics[0].code == "log"
    assert "no-such-dir" in info.value.diagnostics[0].message


# --- the command line -----------------------------------------------------------------------------

def test_decide_log_then_list_and_show(tmp_path: Path, db: Path) -> None:
    decided = ok(clause("decide", str(RETURN_CASE), "--log", str(db), "--format", "json", cwd=tmp_path))
    ok(clause("decide", str(VOIP_CASE), "--log", str(db), cwd=tmp_path))
    decision = json.loads(decided.stdout)

    listed = ok(clause("log", "list", "--log", str(db), cwd=tmp_path)).stdout.splitlines()
    assert len(listed) == 2
    assert listed[0].split()[0] == "1"
    for part in ("decide", "itellum/return", "CASE-0042", "refund 175000.50 CRC", "(2024.1)"):
        assert part in listed[0]
    for part in ("voip-provider/cancellation", "CASE-VOIP-0001", "partial_refund 20.00 USD", "(2025.1)"):
        assert part in listed[1]

    as_json = json.loads(ok(clause("log", "list", "--log", str(db), "--format", "json", cwd=tmp_path)).stdout)
    assert [(r["id"], r["origin"], r["case_id"], r["vendor"], r["kind"], r["outcome"]) for r in as_json] == \
        [(1, "decide", "CASE-0042", "itellum", "return", "refund"),
         (2, "decide", "CASE-VOIP-0001", "voip-provider", "cancellation", "partial_refund")]
    assert as_json[0]["policy"] == decision["policy"]
    limited = json.loads(ok(clause("log", "list", "--log", str(db), "--limit", "1", "--format", "json",
                                   cwd=tmp_path)).stdout)
    assert [r["id"] for r in limited] == [1]

    shown = ok(clause("log", "show", "1", "--log", str(db), cwd=tmp_path)).stdout
    assert shown.startswith("Record 1, logged ")
    assert f"by decide (engine {__version__})" in shown
    for part in ("CASE-0042  itellum/return  as of 2025-04-01", "Outcome: refund", "Amount: 175000.50 CRC",
                 "refund_due: 2025-05-05", "[return-refund]", "Policy: itellum 2024.1"):
        assert part in shown

    record = json.loads(ok(clause("log", "show", "1", "--log", str(db), "--format", "json", cwd=tmp_path)).stdout)
    assert record["id"] == 1 and record["origin"] == "decide" and record["engine_version"] == __version__
    assert record["decision"] == decision
    assert record["case"] == RETURN


def test_log_show_unknown_id(tmp_path: Path, db: Path) -> None:
    ok(clause("decide", str(RETURN_CASE), "--log", str(db), cwd=tmp_path))
    text = ok(clause("log", "show", "7", "--log", str(db), cwd=tmp_path), 1)
    assert "no logged decision with id 7" in text.stderr
    as_json = json.loads(ok(clause("log", "show", "7", "--log", str(db), "--format", "json", cwd=tmp_path), 1).stdout)
    assert as_json["ok"] is False and "id 7" in as_json["diagnostics"][0]["message"]


def test_decide_without_log_writes_nothing(tmp_path: Path) -> None:
    ok(clause("decide", str(RETURN_CASE), cwd=tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_replay_reproduces(tmp_path: Path, db: Path) -> None:
    undated = tmp_path / "undated.json"
    undated.write_text(json.dumps({k: v for k, v in DELIVERY.items() if k != "as_of"}), encoding="utf-8")
    for case in (RETURN_CASE, WARRANTY_CASE, VOIP_CASE, undated):
        ok(clause("decide", str(case), "--log", str(db), cwd=tmp_path))
    out = ok(clause("log", "replay", "--log", str(db), cwd=tmp_path)).stdout
    assert "4 replayed, 4 reproduced, 0 would change under the current policies" in out
    assert "NOT reproduced" not in out
    as_json = json.loads(ok(clause("log", "replay", "--log", str(db), "--format", "json", cwd=tmp_path)).stdout)
    assert as_json == {"replayed": 4, "reproduced": 4, "not_reproduced": [], "changed_under_current": []}


def test_replay_flags_a_policy_edit(tmp_path: Path, db: Path) -> None:
    ok(clause("decide", str(RETURN_CASE), "--log", str(db), cwd=tmp_path))
    ok(clause("decide", str(WARRANTY_CASE), "--log", str(db), cwd=tmp_path))
    edited = edited_policies(tmp_path)
    out = ok(clause("log", "replay", "--log", str(db), "--policies", str(edited), cwd=tmp_path)).stdout
    assert "record 1: the current policy would change it: refund 175000.50 CRC → refund 150000.00 CRC" in out
    assert "record 2" not in out
    assert "2 replayed, 2 reproduced, 1 would change under the current policies" in out
    as_json = json.loads(ok(clause("log", "replay", "--log", str(db), "--policies", str(edited),
                                   "--format", "json", cwd=tmp_path)).stdout)
    assert as_json["changed_under_current"] == [{"id": 1, "was": "refund", "now": "refund"}]
    recorded_only = ok(clause("log", "replay", "--log", str(db), "--policies", str(edited), "--recorded-only",
                              cwd=tmp_path)).stdout
    assert "2 replayed, 2 reproduced, 0 would change" in recorded_only


def test_replay_uses_the_logged_policy_not_the_current_one(tmp_path: Path, db: Path) -> None:
    """Logged under an edited policy, a decision still reproduces after the edit is gone."""
    edited = edited_policies(tmp_path)
    logged = json.loads(ok(clause("decide", str(RETURN_CASE), "--log", str(db), "--policies", str(edited),
                                  "--format", "json", cwd=tmp_path)).stdout)
    assert logged["amount"]["value"] == "150000.00"
    shutil.rmtree(edited)
    out = ok(clause("log", "replay", "--log", str(db), cwd=tmp_path)).stdout
    assert "refund 150000.00 CRC → refund 175000.50 CRC" in out
    assert "1 replayed, 1 reproduced, 1 would change" in out


def test_replay_reports_a_tampered_record(tmp_path: Path, db: Path) -> None:
    ok(clause("decide", str(RETURN_CASE), "--log", str(db), cwd=tmp_path))
    ok(clause("decide", str(VOIP_CASE), "--log", str(db), cwd=tmp_path))
    (raw,), = query(db, "SELECT decision_json FROM decisions WHERE id = 1")
    forged = json.loads(raw)
    forged["amount"]["value"] = "999999.99"
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE decisions SET decision_json = ? WHERE id = 1", (json.dumps(forged),))
    conn.close()
    result = ok(clause("log", "replay", "--log", str(db), cwd=tmp_path), 1)
    assert "record 1: NOT reproduced" in result.stdout
    assert "record 2: NOT reproduced" not in result.stdout
    assert "2 replayed, 1 reproduced" in result.stdout
    as_json = json.loads(ok(clause("log", "replay", "--log", str(db), "--format", "json", cwd=tmp_path), 1).stdout)
    assert as_json["reproduced"] == 1
    assert [r["id"] for r in as_json["not_reproduced"]] == [1]


def test_a_tampered_policy_row_fails_every_record_that_names_it(tmp_path: Path, db: Path) -> None:
    """Not only the first: the rebuilt policy is checked before it is reused for later records."""
    for _ in range(3):
        ok(clause("decide", str(RETURN_CASE), "--log", str(db), cwd=tmp_path))
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE policies SET policy_text = policy_text || ' '")
    conn.close()
    as_json = json.loads(ok(clause("log", "replay", "--log", str(db), "--format", "json", cwd=tmp_path), 1).stdout)
    assert [r["id"] for r in as_json["not_reproduced"]] == [1, 2, 3]
    assert all("rebuilds with digest" in r["error"] for r in as_json["not_reproduced"])


def test_log_list_empty_log(tmp_path: Path, db: Path) -> None:
    DecisionLog(str(db)).close()  # an empty log
    assert ok(clause("log", "list", "--log", str(db), cwd=tmp_path)).stdout == ""
    assert json.loads(ok(clause("log", "list", "--log", str(db), "--format", "json", cwd=tmp_path)).stdout) == []


def test_unopenable_log_is_a_clean_error(tmp_path: Path) -> None:
    result = ok(clause("log", "list", "--log", str(tmp_path / "missing" / "x.sqlite3"), cwd=tmp_path), 1)
    assert "no decision log at" in result.stderr
    assert not (tmp_path / "missing").exists()  # reading never creates a log


def test_reading_a_file_that_is_not_a_log_is_a_clean_error(tmp_path: Path) -> None:
    other = tmp_path / "notes.sqlite3"
    other.write_text("not a database", encoding="utf-8")
    result = ok(clause("log", "list", "--log", str(other), cwd=tmp_path), 1)
    assert "cannot open the decision log" in result.stderr
    assert other.read_text(encoding="utf-8") == "not a database"


# --- PostgreSQL ---------------------------------------------------------------------------------

PG_PORT = 5432
PG_URL = f"postgresql://clause:clause@127.0.0.1:{PG_PORT}/clause?connect_timeout=5"


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("verb", [("log", "list"), ("decide", str(RETURN_CASE))], ids=["log-list", "decide"])
def test_postgres_without_psycopg_is_a_clean_error(tmp_path: Path, verb: tuple[str, ...]) -> None:
    result = ok(clause(*verb, "--log", PG_URL, cwd=tmp_path, pre="import sys; sys.modules['psycopg'] = None"), 1)
    assert "needs psycopg" in result.stderr
    assert "pip install 'clause-engine[postgres]'" in result.stderr


def test_postgres_without_server_is_a_clean_error(tmp_path: Path) -> None:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed (the no-psycopg path is tested above)")
    if _port_open(PG_PORT):
        pytest.skip(f"a server answers on 127.0.0.1:{PG_PORT}; cannot test the no-server error here")
    result = ok(clause("log", "list", "--log", PG_URL, cwd=tmp_path), 1)
    assert "cannot open the decision log postgresql://" in result.stderr
    result = ok(clause("decide", str(RETURN_CASE), "--log", PG_URL, cwd=tmp_path), 1)
    assert "cannot open the decision log" in result.stderr
