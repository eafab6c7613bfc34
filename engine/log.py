"""The decision log: every decision with its case, policy and engine, to reproduce it later.

SQLite (WAL mode) by default — a file path — or PostgreSQL with a
``postgresql://`` URL (through psycopg, a DB-API driver; install
``clause-engine[postgres]``). Each record holds the case, the decision, the
policy's vendor, version and digest, the engine version and a UTC
timestamp; the policy text and its source text are kept once per digest, so
``replay`` can rebuild exactly the policy a decision was made with.

Writes are transactional: :meth:`DecisionLog.write_many` commits a batch in
one transaction, so a crash loses at most the batch in flight and never
leaves half a record.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import tempfile
import threading
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from engine.errors import Diagnostic, EngineError

if TYPE_CHECKING:
    from engine.engine import Engine
    from engine.model import Decision, Policy

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS policies (
        digest TEXT PRIMARY KEY, vendor TEXT NOT NULL, version TEXT NOT NULL,
        policy_text TEXT NOT NULL, source_file TEXT NOT NULL, source_text TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS decisions (
        id {serial} PRIMARY KEY, logged_at TEXT NOT NULL, origin TEXT NOT NULL,
        case_id TEXT, vendor TEXT NOT NULL, kind TEXT NOT NULL, outcome TEXT NOT NULL,
        policy_version TEXT NOT NULL, policy_digest TEXT NOT NULL REFERENCES policies(digest),
        engine_version TEXT NOT NULL, lang TEXT NOT NULL,
        case_json TEXT NOT NULL, decision_json TEXT NOT NULL)""",
)


def _plain(value: Any) -> Any:
    """A case as JSON that decides the same: exact numbers stay numbers or exact text."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and value.is_finite() else str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def _redacted(text: str) -> str:
    """Hide the password of a database URL (``postgresql://user:secret@host``)."""
    return re.sub(r"(\w+://[^:/@\s]+):[^@\s]+@", r"\1:***@", text)


class LogError(EngineError):
    """The decision log cannot be opened or written."""


@dataclass(frozen=True, slots=True)
class Record:
    id: int
    logged_at: str
    origin: str
    case: dict[str, Any]
    decision: dict[str, Any]
    engine_version: str
    lang: str


class DecisionLog:
    """A decision log on SQLite or PostgreSQL; safe to share between threads."""

    def __init__(self, target: str, *, read_only: bool = False) -> None:
        self.target = target
        self._lock = threading.Lock()
        self._known: set[str] = set()
        try:
            if target.startswith(("postgresql://", "postgres://")):
                import psycopg  # noqa: PLC0415 - optional driver
                self._conn: Any = psycopg.connect(target)
                self._mark, serial = "%s", "BIGSERIAL"
            elif read_only:  # reading a log never creates one, nor touches another file
                if not Path(target).is_file():
                    raise LogError([Diagnostic("log", f"no decision log at {target}")])
                self._conn = sqlite3.connect(f"file:{Path(target).resolve()}?mode=ro", uri=True,
                                             check_same_thread=False, isolation_level=None)
                self._conn.execute("SELECT 1 FROM decisions LIMIT 1")
                self._mark = "?"
            else:
                self._conn = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=FULL")
                self._mark, serial = "?", "INTEGER"
            if not read_only:
                with self._transaction() as cur:
                    for statement in SCHEMA:
                        cur.execute(statement.format(serial=serial))
        except LogError:
            raise
        except ImportError as err:
            raise LogError([Diagnostic("log", "a postgresql:// log needs psycopg: "
                                       "pip install 'clause-engine[postgres]'")]) from err
        except Exception as err:  # noqa: BLE001 - sqlite3/psycopg raise their own trees
            raise LogError([Diagnostic("log", f"cannot open the decision log {_redacted(target)}: "
                                       f"{_redacted(str(err))}")]) from err

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Any]:
        """One transaction under the log's lock: committed whole or rolled back."""
        sqlite = isinstance(self._conn, sqlite3.Connection)
        with self._lock:
            cur = self._conn.cursor()
            if sqlite:
                cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK") if sqlite else self._conn.rollback()
                raise
            cur.execute("COMMIT") if sqlite else self._conn.commit()

    def _sql(self, text: str) -> str:
        return text.replace("?", self._mark)

    def _remember_policy(self, cur: Any, policy: Policy) -> None:
        if policy.digest in self._known:
            return
        cur.execute(self._sql("SELECT 1 FROM policies WHERE digest = ?"), (policy.digest,))
        if cur.fetchone() is None:
            # The text as compiled, not as the file is now (it may have been edited since).
            cur.execute(self._sql("INSERT INTO policies VALUES (?, ?, ?, ?, ?, ?)"),
                        (policy.digest, policy.vendor, policy.version, policy.text, policy.source_file,
                         policy.source_text))
        self._known.add(policy.digest)

    def write_many(self, items: list[tuple[dict[str, Any], Decision | dict[str, Any], Policy]], origin: str,
                   lang: str = "en") -> None:
        """Record decisions in one transaction (all of them, or none)."""
        from engine import __version__  # noqa: PLC0415

        now = datetime.now(timezone.utc).isoformat()
        with self._transaction() as cur:
            for case, decision, policy in items:
                self._remember_policy(cur, policy)
                d = decision if isinstance(decision, dict) else decision.to_dict()
                cur.execute(self._sql(
                    "INSERT INTO decisions (logged_at, origin, case_id, vendor, kind, outcome, "
                    "policy_version, policy_digest, engine_version, lang, case_json, decision_json) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
                    (now, origin, d["case_id"], d["vendor"], d["kind"], d["outcome"], policy.version,
                     policy.digest, __version__, lang, json.dumps(_plain(case), ensure_ascii=False),
                     json.dumps(d, ensure_ascii=False)))

    def write(self, case: dict[str, Any], decision: Decision, policy: Policy, origin: str,
              lang: str = "en") -> None:
        self.write_many([(case, decision, policy)], origin, lang)

    def records(self, limit: int | None = None, record_id: int | None = None) -> Iterator[Record]:
        """Logged decisions, oldest first (or the one with ``record_id``)."""
        query = ("SELECT id, logged_at, origin, case_json, decision_json, engine_version, lang "
                 "FROM decisions")
        args: tuple[Any, ...] = ()
        if record_id is not None:
            query += " WHERE id = ?"
            args = (record_id,)
        query += " ORDER BY id"
        if limit is not None:
            query += f" LIMIT {int(limit)}"
        with self._lock:
            cur = self._conn.cursor()
            cur.execute(self._sql(query), args)
            rows = cur.fetchall()
        for row in rows:
            yield Record(row[0], row[1], row[2], json.loads(row[3]), json.loads(row[4]), row[5], row[6])

    def policy_files(self, digest: str, root: Path) -> Path:
        """Write the logged policy with ``digest`` (and its source) under ``root``."""
        with self._lock:
            cur = self._conn.cursor()
            cur.execute(self._sql("SELECT vendor, policy_text, source_file, source_text FROM policies "
                                  "WHERE digest = ?"), (digest,))
            row = cur.fetchone()
        if row is None:
            raise LogError([Diagnostic("log", f"the log holds no policy with digest {digest}")])
        home = root / digest[:16] / row[0]
        source = (home / row[2]).resolve()
        if not source.is_relative_to(home.resolve()):
            raise LogError([Diagnostic("log", f"the logged source path {row[2]!r} leaves the policy folder")])
        source.parent.mkdir(parents=True, exist_ok=True)
        (home / "policy.yaml").write_text(row[1], encoding="utf-8")
        source.write_text(row[3], encoding="utf-8")
        return home

    def close(self) -> None:
        with self._lock:
            self._conn.close()


@dataclass(frozen=True, slots=True)
class Replay:
    record: Record
    reproduced: bool               # same decision with the recorded policy version
    replayed: dict[str, Any] | None
    current: dict[str, Any] | None  # the decision under the current policies, if asked
    error: str | None = None        # why the recorded decision could not be replayed
    current_error: str | None = None  # why the current policies cannot decide it

    @property
    def changed_now(self) -> bool:
        if self.current_error is not None:
            return True
        return self.current is not None and _essence(self.current) != _essence(self.record.decision)


def _essence(decision: dict[str, Any]) -> dict[str, Any]:
    """The decision without its policy block (which names the version)."""
    return {k: v for k, v in decision.items() if k != "policy"}


def replay(log: DecisionLog, current: Engine | None = None, limit: int | None = None) -> Iterator[Replay]:
    """Re-decide logged cases with the policy recorded (by digest), and optionally the current one."""
    from engine.engine import Engine  # noqa: PLC0415

    engines: dict[str, Engine] = {}
    with tempfile.TemporaryDirectory(prefix="clause-replay-") as tmp:
        for record in log.records(limit=limit):
            digest = record.decision["policy"]["digest"]
            case = dict(record.case, as_of=record.decision["as_of"])
            try:
                if digest not in engines:
                    engines[digest] = Engine.load(log.policy_files(digest, Path(tmp)))
                    rebuilt = next(iter(engines[digest].vendors.values()))[-1].digest
                    if rebuilt != digest:
                        raise LogError([Diagnostic("log", f"the logged policy rebuilds with digest "
                                                   f"{rebuilt[:12]}, not {digest[:12]}")])
                again = engines[digest].decide(case, lang=record.lang).to_dict()
            except EngineError as err:
                yield Replay(record, False, None, None, "; ".join(d.message for d in err.diagnostics))
                continue
            now, now_error = None, None
            if current is not None:
                try:
                    now = current.decide(case, lang=record.lang).to_dict()
                except EngineError as err:
                    now_error = "; ".join(d.message for d in err.diagnostics)
            yield Replay(record, again == record.decision, again, now, None, now_error)


