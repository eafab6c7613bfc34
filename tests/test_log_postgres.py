"""The decision log on PostgreSQL, against a throwaway server this module starts.

Needs the PostgreSQL server programs (Debian's ``postgresql`` package;
``.ci/run`` installs it) and psycopg. The server listens on 127.0.0.1 only
and is stopped at the end of the module.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from glob import glob
from pathlib import Path

import pytest

from engine import Engine
from engine.log import DecisionLog, replay

from conftest import POLICIES

CASE = {"id": "PG-1", "vendor": "itellum", "kind": "warranty", "as_of": "2025-03-10",
        "facts": {"installed_on": "2025-03-01", "failed_on": "2025-03-09", "damage_cause": "factory",
                  "shipping_cost": "12500.00"}}


def _server_programs() -> tuple[str, str] | None:
    for folder in [*(os.environ.get("PATH", "").split(os.pathsep)), *sorted(glob("/usr/lib/postgresql/*/bin"))]:
        initdb, pg_ctl = Path(folder) / "initdb", Path(folder) / "pg_ctl"
        if initdb.exists() and pg_ctl.exists():
            return str(initdb), str(pg_ctl)
    return None


def _unavailable() -> str | None:
    try:
        import psycopg  # noqa: F401, PLC0415
    except ImportError:
        return "psycopg is not installed (pip install '.[postgres]')"
    if _server_programs() is None:
        return "the PostgreSQL server programs (initdb, pg_ctl) are not installed"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser to start PostgreSQL as another user"
    return None


pytestmark = pytest.mark.skipif(_unavailable() is not None, reason=str(_unavailable()))


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    yield from throwaway_server()


def throwaway_server() -> Iterator[str]:
    """A PostgreSQL server on 127.0.0.1 for as long as the generator runs (also used by tests/fuzz)."""
    initdb, pg_ctl = _server_programs()  # type: ignore[misc]
    # Not under pytest's tmp_path: its parents are private to root, and the
    # server must run as another user.
    home = Path(tempfile.mkdtemp(prefix="clause-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root: use Debian's postgres account
        user = "postgres"
        try:
            pwd.getpwnam(user)
        except KeyError:
            user = "clausepg"
            subprocess.run(["useradd", "--system", "--no-create-home", user], capture_output=True, check=False)
        shutil.chown(home, user)
        os.chmod(home, 0o700)
        as_user = ["runuser", "-u", user, "--"]
    data = home / "data"
    subprocess.run([*as_user, initdb, "-D", str(data), "-A", "trust", "-U", "clause", "--no-sync"],
                   check=True, capture_output=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    options = f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run([*as_user, pg_ctl, "-D", str(data), "-o", options, "-w", "-t", "30", "-l",
                    str(home / "log"), "start"], check=True, capture_output=True)
    try:
        yield f"postgresql://clause@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


def test_records_and_replays_on_postgres(pg_url: str) -> None:
    engine = Engine.load(POLICIES)
    decision = engine.decide(CASE)
    log = DecisionLog(pg_url)
    policy = engine.policy_by_digest("itellum", decision.policy["digest"])
    log.write(CASE, decision, policy, "test", "en")
    log.write(CASE, engine.decide(CASE, lang="es"), policy, "test", "es")
    records = list(log.records())
    assert [(r.id, r.origin, r.lang) for r in records][-2:] == [(records[-2].id, "test", "en"),
                                                               (records[-1].id, "test", "es")]
    assert records[-2].decision == decision.to_dict() and records[-2].case == CASE
    assert records[-1].decision["reasons"][0]["text"].startswith("La falla está dentro de la garantía")
    results = list(replay(log, engine))
    assert [r.reproduced for r in results] == [True] * len(results)
    assert not any(r.changed_now for r in results)
    log.close()


def test_cli_decide_logs_to_postgres(pg_url: str, tmp_path: Path) -> None:
    from click.testing import CliRunner  # noqa: PLC0415

    from cli import main  # noqa: PLC0415
    result = CliRunner().invoke(main, ["decide", str(POLICIES / "itellum" / "cases" / "return-refund.yaml"),
                                       "--log", pg_url])
    assert result.exit_code == 0, result.output
    listing = CliRunner().invoke(main, ["log", "list", "--log", pg_url])
    assert "itellum/return  CASE-0042  refund 175000.50 CRC  (2024.1)" in listing.output


def test_a_failed_write_does_not_poison_later_writes_on_postgres(pg_url: str) -> None:
    """Issue 9, item 1: the policy row of a rolled-back write is written again by the next one."""
    import psycopg  # noqa: PLC0415

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE DATABASE poison")
    url = pg_url.rsplit("/", 1)[0] + "/poison"
    engine = Engine.load(POLICIES)
    decision = engine.decide(CASE)
    policy = engine.policy_by_digest("itellum", decision.policy["digest"])
    log = DecisionLog(url)
    with pytest.raises(psycopg.Error):  # NOT NULL outcome: fails after the policy row was written
        log.write_many([(CASE, dict(decision.to_dict(), outcome=None), policy)], "test")
    log.write(CASE, decision, policy, "test")
    results = list(replay(log))
    log.close()
    assert [(r.reproduced, r.error) for r in results] == [(True, None)]


def test_batch_log_on_postgres_records_the_run(pg_url: str, tmp_path: Path) -> None:
    """``clause batch --log postgresql://…``: the batch tables work there too; a finished run replays."""
    import json  # noqa: PLC0415

    from click.testing import CliRunner  # noqa: PLC0415

    from cli import main  # noqa: PLC0415
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(CASE) + "\n{bad\n" + json.dumps(dict(CASE, id="PG-2")) + "\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["batch", str(source), "-o", str(tmp_path / "out.jsonl"), "--log", pg_url,
                                       "--policies", str(POLICIES)])
    assert result.exit_code == 0, result.output
    log = DecisionLog(pg_url)
    ids = [r.case["id"] for r in log.records()]
    log.close()
    assert ids[-2:] == ["PG-1", "PG-2"]


def test_a_large_batch_goes_through_copy_and_replays(pg_url: str, tmp_path: Path) -> None:
    """Issue 13 item 4: windows of thousands of decisions are written with COPY (ids reserved from
    the sequence first); every decision and every batch line is recorded and replays."""
    import json  # noqa: PLC0415

    import psycopg  # noqa: PLC0415
    from click.testing import CliRunner  # noqa: PLC0415

    from cli import main  # noqa: PLC0415
    from engine.log import COPY_FROM  # noqa: PLC0415

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE DATABASE copied")
    url = pg_url.rsplit("/", 1)[0] + "/copied"
    n = 4 * COPY_FROM + 7
    lines = [json.dumps(dict(CASE, id=f"C-{i}")) for i in range(n)] + ["{bad"]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["batch", str(source), "-o", str(tmp_path / "out.jsonl"), "--log", url,
                                       "--policies", str(POLICIES)])
    assert result.exit_code == 0, result.output
    log = DecisionLog(url)
    records = list(log.records())
    with psycopg.connect(url) as conn:
        kept = conn.execute("SELECT count(*), count(record), count(error) FROM batch_lines").fetchone()
        linked = conn.execute("SELECT count(*) FROM batch_lines b JOIN decisions d ON d.id = b.record").fetchone()
    assert [r.case["id"] for r in records] == [f"C-{i}" for i in range(n)]
    assert kept == (n + 1, n, 1) and linked == (n,)
    assert all(r.reproduced for r in replay(log))
    engine = Engine.load(POLICIES)  # a later single insert does not clash with the reserved ids
    decision = engine.decide(CASE)
    log.write(CASE, decision, engine.policy_by_digest("itellum", decision.policy["digest"]), "test")
    assert len(list(log.records())) == n + 1
    log.close()


def test_the_service_writer_reconnects_after_the_server_drops_it(pg_url: str) -> None:
    """Review: a PostgreSQL connection closed by the server left every later request a 503."""
    import asyncio  # noqa: PLC0415

    import psycopg  # noqa: PLC0415

    from engine.groupcommit import LogBusy  # noqa: PLC0415
    from engine.logprocess import ProcessCommitter  # noqa: PLC0415

    engine = Engine.load(POLICIES)
    decision = engine.decide(CASE)
    policy = engine.policy_by_digest(decision.vendor, decision.policy["digest"])
    log = DecisionLog(pg_url)
    writer = ProcessCommitter(log)

    def item(case_id: str) -> list:
        return [({**CASE, "id": case_id}, {**decision.to_dict(), "case_id": case_id}, policy)]

    async def main() -> list[str]:
        await writer.write_many_async(item("PG-BEFORE-DROP"), "serve")
        with psycopg.connect(pg_url, autocommit=True) as admin:  # drop every other session: the writer's too
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        outcomes = []
        for attempt in range(5):  # a client retries a 503
            try:
                await writer.write_many_async(item("PG-AFTER-DROP"), "serve")
            except LogBusy as err:
                outcomes.append(f"busy: {err}")
                continue
            outcomes.append("ok")
            break
        return outcomes

    try:
        outcomes = asyncio.run(main())
    finally:
        writer.close()
        log.close()
    assert outcomes[-1] == "ok" and len(outcomes) <= 3, outcomes
    check = DecisionLog(pg_url)
    try:
        ids = {r.decision["case_id"] for r in check.records()}
    finally:
        check.close()
    assert {"PG-BEFORE-DROP", "PG-AFTER-DROP"} <= ids
