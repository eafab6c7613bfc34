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
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from engine.errors import Diagnostic, EngineError
from engine.logjson import LogError, decision_json, exact_json

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


COLUMNS = ("logged_at, origin, case_id, vendor, kind, outcome, policy_version, policy_digest, engine_version, "
           "lang, case_json, decision_json")
COPY_FROM = 50  # rows from which a PostgreSQL write uses COPY
INSERT_ROWS = 64  # rows per SQLite INSERT statement (13 values each: under SQLite's old 999-variable limit)
OWN_TABLES = frozenset({"batch_lines"})  # tables insert_rows may fill (names are never input)


def _redacted(text: str) -> str:
    """Hide the password of a database URL (``postgresql://user:secret@host``)."""
    return re.sub(r"(\w+://[^:/@\s]+):[^@\s]+@", r"\1:***@", text)


DIGEST = re.compile(r"[0-9a-f]{64}")
VENDOR = re.compile(r"[a-z0-9][a-z0-9-]*")   # as policy.schema.json and the loader check it
SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")


def _checked_vendor(name: Any) -> str:
    if not isinstance(name, str) or not VENDOR.fullmatch(name) or len(name) > 100:
        raise LogError([Diagnostic("log", f"the logged vendor name {str(name)[:80]!r} is not a vendor name")])
    return name


def _checked_source(name: Any) -> str:
    """A source file name as a policy may give it: relative, plain segments, not the policy itself."""
    parts = name.split("/") if isinstance(name, str) and len(name) <= 255 else []
    if not parts or not all(SEGMENT.fullmatch(p) for p in parts) or name == "policy.yaml":
        raise LogError([Diagnostic("log", f"the logged source file name {str(name)[:80]!r} is not a "
                                   "plain relative file name")])
    return name


def _inside(root: Path, relative: str) -> Path:
    """``root / relative``, refused if it resolves (symlinks included) outside ``root``."""
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()):
        raise LogError([Diagnostic("log", f"the logged path {relative!r} leaves the replay folder")])
    return path


@dataclass(frozen=True, slots=True)
class Record:
    id: int
    logged_at: str
    origin: str
    case: dict[str, Any]
    decision: dict[str, Any]
    engine_version: str
    lang: str


def policy_columns(policy: Policy) -> tuple[str, str, str, str, str, str]:
    """A policy's row in the ``policies`` table: the text as compiled, not as the file is now
    (it may have been edited since)."""
    return (policy.digest, policy.vendor, policy.version, policy.text, policy.source_file, policy.source_text)


def decision_rows(items: list[tuple[Any, Decision | dict[str, Any], Policy]], origin: str, lang: str,
                  known: set[str] | frozenset[str] = frozenset()) -> tuple[list[tuple[Any, ...]],
                                                                           list[tuple[str, ...]]]:
    """The ``decisions`` rows of ``(case, decision, policy)`` items (a case given as text is kept as
    is, a decision as a dict is written as is), and the rows of their policies, each once, but for
    the digests in ``known``."""
    from engine import __version__  # noqa: PLC0415

    now = datetime.now(timezone.utc).isoformat()
    values, policies = [], {}
    for case, decision, policy in items:
        d = decision if isinstance(decision, dict) else decision.to_dict()
        values.append((now, origin, d["case_id"], d["vendor"], d["kind"], d["outcome"], policy.version,
                       policy.digest, __version__, lang, case if isinstance(case, str) else exact_json(case),
                       decision_json(d)))
        if policy.digest not in policies and policy.digest not in known:
            policies[policy.digest] = policy_columns(policy)
    return values, list(policies.values())


class DecisionLog:
    """A decision log on SQLite or PostgreSQL; safe to share between threads."""

    def __init__(self, target: str, *, read_only: bool = False) -> None:
        self.target = target
        # Another process can open the same log (not one in memory, not one opened read-only).
        self.shareable = not read_only and target not in ("", ":memory:") and "mode=memory" not in target
        self._lock = threading.Lock()
        self._known: set[str] = set()
        self._copy = False
        try:
            if target.startswith(("postgresql://", "postgres://")):
                import psycopg  # noqa: PLC0415 - optional driver
                self._conn: Any = psycopg.connect(target)
                self._mark, serial = "%s", "BIGSERIAL"
                self._copy = True  # large writes go through COPY (write_many)
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

    def ping(self) -> None:
        """Raise when the log cannot be reached now (the service's readiness check)."""
        with self._lock:
            self._conn.execute("SELECT 1")
            if not isinstance(self._conn, sqlite3.Connection):
                self._conn.rollback()  # leave no transaction open on the server

    def connected(self) -> bool:
        """False once the connection to a PostgreSQL server is lost (closed or broken): only a new
        connection can write again. A SQLite file is always at hand."""
        if isinstance(self._conn, sqlite3.Connection):
            return True
        return not self._conn.closed and not getattr(self._conn, "broken", False)

    def transaction(self) -> contextlib.AbstractContextManager[Any]:
        """A cursor in one transaction (for tables kept beside the decisions, e.g. batch runs)."""
        return self._transaction()

    def sql(self, text: str) -> str:
        """``text`` with ``?`` placeholders in the driver's style."""
        return self._sql(text)

    def _remember_policy(self, cur: Any, row: tuple[str, ...], added: set[str]) -> None:
        """Store a policy's row (:func:`policy_columns`) once; ``added`` collects digests to trust after the commit."""
        digest = row[0]
        if digest in self._known or digest in added:
            return
        cur.execute(self._sql("SELECT 1 FROM policies WHERE digest = ?"), (digest,))
        if cur.fetchone() is None:
            cur.execute(self._sql("INSERT INTO policies VALUES (?, ?, ?, ?, ?, ?)"), row)
        added.add(digest)

    def write_many(self, items: list[tuple[dict[str, Any], Decision | dict[str, Any], Policy]], origin: str,
                   lang: str = "en", then: Callable[[Any, list[int]], None] | None = None) -> list[int]:
        """Record decisions in one transaction (all of them, or none); return their record ids.

        ``then(cursor, ids)`` runs inside the same transaction (the batch
        progress is committed with its decisions).
        """
        values, policies = decision_rows(items, origin, lang)
        return self.write_rows(values, policies, then)

    def write_rows(self, values: list[tuple[Any, ...]], policies: list[tuple[str, ...]],
                   then: Callable[[Any, list[int]], None] | None = None) -> list[int]:
        """Write :func:`decision_rows`' rows in one transaction; return their record ids.

        A policy digest is taken as stored only once the transaction
        commits: a write that fails must not leave later decisions pointing
        at a policy row that was rolled back (issue 9, item 1).
        """
        added: set[str] = set()
        ids: list[int] = []
        with self._transaction() as cur:
            for row in policies:
                self._remember_policy(cur, row, added)
            if self._copy and len(values) >= COPY_FROM:
                ids = self._copy_decisions(cur, values)
            elif self._mark == "?":
                ids = self._insert_decisions(cur, values)
            else:
                for row in values:
                    cur.execute(self._sql(f"INSERT INTO decisions ({COLUMNS}) VALUES "
                                          "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id"), row)
                    ids.append(cur.fetchone()[0])
            if then is not None:
                then(cur, ids)
        with self._lock:
            self._known |= added
        return ids

    @staticmethod
    def _insert_decisions(cur: Any, values: list[tuple[Any, ...]]) -> list[int]:
        """SQLite: the rows numbered after the table's last id, in multi-row INSERTs of up to
        :data:`INSERT_ROWS` rows.

        A statement per row took three times as long, and the writer thread
        takes the GIL back after every statement. The ids are given, not
        read back: the transaction holds the database's write lock from its
        start (``BEGIN IMMEDIATE``), so no other writer can take them; past
        the largest id SQLite can store, the insert fails (nothing is written).
        """
        cur.execute("SELECT coalesce(max(id), 0) FROM decisions")
        first = cur.fetchone()[0] + 1
        ids = list(range(first, first + len(values)))
        for start in range(0, len(values), INSERT_ROWS):
            chunk = values[start:start + INSERT_ROWS]
            marks = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk))
            cur.execute(f"INSERT INTO decisions (id, {COLUMNS}) VALUES {marks}",
                        [v for record_id, row in zip(ids[start:], chunk) for v in (record_id, *row)])
        return ids

    def insert_rows(self, cur: Any, table: str, rows: list[tuple[Any, ...]]) -> None:
        """Insert ``rows`` into one of the log's own tables (COPY on PostgreSQL when there are many)."""
        if table not in OWN_TABLES:
            raise ValueError(f"not a decision-log table: {table!r}")
        if self._copy and len(rows) >= COPY_FROM:
            with cur.copy(f"COPY {table} FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        elif rows:
            marks = ", ".join([self._mark] * len(rows[0]))
            cur.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)

    @staticmethod
    def _copy_decisions(cur: Any, values: list[tuple[Any, ...]]) -> list[int]:
        """PostgreSQL: reserve the ids from the table's sequence, then stream the rows with COPY.

        One COPY instead of a round trip per row (a batch window is
        thousands); the ids are reserved first because COPY returns none,
        and the batch's progress rows point at them.
        """
        cur.execute("SELECT nextval(pg_get_serial_sequence('decisions', 'id')) FROM generate_series(1, %s)",
                    (len(values),))
        ids = [row[0] for row in cur.fetchall()]
        with cur.copy(f"COPY decisions (id, {COLUMNS}) FROM STDIN") as copy:
            for record_id, row in zip(ids, values):
                copy.write_row((record_id, *row))
        return ids

    def write(self, case: dict[str, Any], decision: Decision, policy: Policy, origin: str,
              lang: str = "en") -> None:
        self.write_many([(case, decision, policy)], origin, lang)

    def records(self, limit: int | None = None, record_id: int | None = None,
                exact: bool = False) -> Iterator[Record]:
        """Logged decisions, oldest first (or the one with ``record_id``).

        ``exact`` reads the case's fractional numbers as Decimals, as the
        engine read them when it decided (replay needs them so).
        """
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
            try:
                case = json.loads(row[3], parse_float=Decimal) if exact else json.loads(row[3])
                decision = json.loads(row[4])
            except (TypeError, ValueError, RecursionError) as err:
                raise LogError([Diagnostic("log", f"record {row[0]} is damaged: {err}")]) from err
            yield Record(row[0], row[1], row[2], case, decision, row[5], row[6])

    def policy_row(self, digest: str) -> tuple[str, str, str, str]:
        """(vendor, policy text, source file name, source text) of the logged policy ``digest``.

        The names are as stored: check them before using them as paths.
        """
        if not isinstance(digest, str) or not DIGEST.fullmatch(digest):
            raise LogError([Diagnostic("log", f"the logged policy digest {str(digest)[:80]!r} is not a digest")])
        with self._lock:
            cur = self._conn.cursor()
            cur.execute(self._sql("SELECT vendor, policy_text, source_file, source_text FROM policies "
                                  "WHERE digest = ?"), (digest,))
            row = cur.fetchone()
        if row is None:
            raise LogError([Diagnostic("log", f"the log holds no policy with digest {digest}")])
        return tuple(row)  # type: ignore[return-value]

    def policy_files(self, digest: str, root: Path) -> Path:
        """Write the logged policy with ``digest`` (and its source) under ``root``.

        Every name read from the log is checked as a name read from a policy
        would be, and the files written must stay inside ``root`` (issue 9,
        item 3): a log is data, not a set of paths to trust.
        """
        vendor, policy_text, source_file, source_text = self.policy_row(digest)
        home = _inside(root, f"{digest[:16]}/{_checked_vendor(vendor)}")
        source = _inside(home, _checked_source(source_file))
        source.parent.mkdir(parents=True, exist_ok=True)
        (home / "policy.yaml").write_text(policy_text, encoding="utf-8")
        source.write_text(source_text, encoding="utf-8")
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
    """Re-decide logged cases with the policy recorded (by digest), and optionally the current one.

    The case is re-read with its numbers exact and compared with the logged
    decision as logged: an id ``2.0`` stays ``2.0`` (issue 9, item 12). A
    record whose fields are not what the log writes is reported, not trusted.
    """
    from engine.engine import Engine  # noqa: PLC0415

    engines: dict[str, Engine] = {}
    with tempfile.TemporaryDirectory(prefix="clause-replay-") as tmp:

        def engine_for(digest: str) -> Engine:
            if digest not in engines:  # checked before it is kept: every record of a bad policy fails
                engine = Engine.load(log.policy_files(digest, Path(tmp)))
                check_rebuilt(engine, digest)
                engines[digest] = engine
            return engines[digest]

        for record in log.records(limit=limit, exact=True):
            yield replay_record(record, engine_for, current)


def check_rebuilt(engine: Engine, digest: str) -> None:
    """Refuse a logged policy whose text no longer gives the digest its decisions name."""
    rebuilt = next(iter(engine.vendors.values()))[-1].digest
    if rebuilt != digest:
        raise LogError([Diagnostic("log", f"the logged policy rebuilds with digest {rebuilt[:12]}, "
                                   f"not {digest[:12]}")])


def replay_record(record: Record, engine_for: Callable[[str], Engine], current: Engine | None) -> Replay:
    """Decide one logged case again with its recorded policy (``engine_for(digest)``) and the current one."""
    try:
        digest, case = _replay_input(record)
        again = engine_for(digest).decide(case, lang=record.lang).to_dict()
    except EngineError as err:
        return Replay(record, False, None, None, "; ".join(d.message for d in err.diagnostics))
    now, now_error = None, None
    if current is not None:
        try:
            now = current.decide(case, lang=record.lang).to_dict()
        except EngineError as err:
            now_error = "; ".join(d.message for d in err.diagnostics)
    return Replay(record, again == record.decision, again, now, None, now_error)


def _replay_input(record: Record) -> tuple[str, dict[str, Any]]:
    """The digest and the case to decide again, from a record that may have been tampered with."""
    policy = record.decision.get("policy") if isinstance(record.decision, dict) else None
    digest = policy.get("digest") if isinstance(policy, dict) else None
    as_of = record.decision.get("as_of") if isinstance(record.decision, dict) else None
    if not isinstance(digest, str) or not isinstance(record.case, dict) or not isinstance(as_of, str):
        raise LogError([Diagnostic("log", "the record does not hold a case and a decision with its policy digest")])
    return digest, dict(record.case, as_of=as_of)
