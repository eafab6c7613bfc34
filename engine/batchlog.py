"""``clause batch --log``: the decision log is the batch's commit point, so a crash loses nothing.

Each window of decided lines is committed to the log in one transaction,
together with the batch's progress (which input lines it covered, which
record each decided line became, the message of each invalid line); only
then are its lines written to the output. After a kill at any point:

* every decision in the output is in the log (the output is a prefix of
  what the log holds for the run);
* a re-run of the same command (same input content, same output file,
  same formats and language) finds the unfinished run in the log, rewrites
  the output from the log's records of that run, and goes on after the last
  committed line: no decision is logged twice, none is missing, and the
  summary covers the whole file;
* a run that finished is never resumed: the same command run again is a
  new batch, logged again.

Output to stdout (``-o -``) cannot be rewritten, so such a run is never
resumed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, TextIO

from engine.batch import OUT_COLUMNS, Result, Summary, render, run_batch
from engine.engine import Engine
from engine.log import DecisionLog

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS batch_runs (
        run TEXT PRIMARY KEY, run_key TEXT NOT NULL, source TEXT NOT NULL, output TEXT NOT NULL,
        started_at TEXT NOT NULL, done_through INTEGER NOT NULL, finished_at TEXT)""",
    """CREATE TABLE IF NOT EXISTS batch_lines (
        run TEXT NOT NULL REFERENCES batch_runs(run), line INTEGER NOT NULL,
        record BIGINT REFERENCES decisions(id), error TEXT, PRIMARY KEY (run, line))""",
)


@dataclass(frozen=True, slots=True)
class Run:
    run: str
    done_through: int   # the last input line committed (0: none)
    resumed: bool


def run_key(source: Path, output: str, in_fmt: str, out_fmt: str, lang: str) -> str:
    """What makes two invocations the same batch: the input's content, the output file, the formats."""
    digest = hashlib.sha256()
    with source.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    target = str(Path(output).resolve())
    return hashlib.sha256(f"{digest.hexdigest()}\0{target}\0{in_fmt}\0{out_fmt}\0{lang}".encode()).hexdigest()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def start(log: DecisionLog, source: Path, output: str, in_fmt: str, out_fmt: str, lang: str) -> Run:
    """The unfinished run of this batch to resume, or a new one."""
    key = run_key(source, output, in_fmt, out_fmt, lang)
    with log.transaction() as cur:
        for statement in SCHEMA:
            cur.execute(statement)
        row = None
        if output != "-":
            cur.execute(log.sql("SELECT run, done_through FROM batch_runs WHERE run_key = ? AND finished_at "
                                "IS NULL ORDER BY started_at DESC LIMIT 1"), (key,))
            row = cur.fetchone()
        if row is not None:
            return Run(row[0], row[1], True)
        run = uuid.uuid4().hex
        cur.execute(log.sql("INSERT INTO batch_runs VALUES (?, ?, ?, ?, ?, 0, NULL)"),
                    (run, key, str(source.resolve()), output, _now()))
    return Run(run, 0, False)


def recover(log: DecisionLog, run: Run, out: TextIO, out_fmt: str, summary: Summary) -> None:
    """Write the run's committed decisions to ``out`` again, in line order, and count them."""
    with log.transaction() as cur:
        cur.execute(log.sql("SELECT b.line, d.decision_json, b.error FROM batch_lines b LEFT JOIN decisions d "
                            "ON d.id = b.record WHERE b.run = ? ORDER BY b.line"), (run.run,))
        rows = cur.fetchall()
    for line, decision_json, error in rows:
        summary.cases += 1
        if decision_json is None:
            summary.invalid.append((line, error or "invalid"))
            continue
        d = json.loads(decision_json)
        out.write(render(line, d, out_fmt))
        summary.outcomes[d["outcome"]] += 1
        if d["amount"]:
            summary.amounts[d["amount"]["currency"]] += Decimal(d["amount"]["value"])


def committer(log: DecisionLog, engine: Engine, run: Run, lang: str) -> Callable[[list[Result]], None]:
    """The ``on_window`` hook: a window's decisions and the run's progress, in one transaction."""

    def commit(window: list[Result]) -> None:
        decided = [r for r in window if r.ok]
        items = []
        for r in decided:
            case, d = json.loads(r.logged, parse_float=Decimal)
            items.append((case, d, engine.policy_by_digest(d["vendor"], d["policy"]["digest"])))

        def progress(cur: Any, ids: list[int]) -> None:
            lines = [(run.run, r.number, i, None) for r, i in zip(decided, ids)]
            lines += [(run.run, r.number, None, r.text) for r in window if not r.ok]
            log.insert_rows(cur, "batch_lines", lines)  # COPY on PostgreSQL
            cur.execute(log.sql("UPDATE batch_runs SET done_through = ? WHERE run = ?"),
                        (max(r.number for r in window), run.run))

        log.write_many(items, "batch", lang, then=progress)
    return commit


def finish(log: DecisionLog, run: Run) -> None:
    with log.transaction() as cur:
        cur.execute(log.sql("UPDATE batch_runs SET finished_at = ? WHERE run = ?"), (_now(), run.run))


def run_logged_batch(source: Path, output: str, out: TextIO, log: DecisionLog, engine: Engine, *,
                     in_fmt: str, out_fmt: str, policies: str, matcher: str, lang: str, workers: int,
                     on_window: Callable[[list[Result]], None] | None = None,
                     scheduler: str | None = None) -> tuple[Summary, Run]:
    """Decide ``source`` into ``out`` with the log as commit point; resume an interrupted run."""
    run = start(log, source, output, in_fmt, out_fmt, lang)
    summary = Summary()
    if out_fmt == "csv":
        out.write(_csv_header())
    if run.resumed:
        recover(log, run, out, out_fmt, summary)
        out.flush()
    commit = committer(log, engine, run, lang)

    def both(window: list[Result]) -> None:
        commit(window)
        if on_window:
            on_window(window)
    run_batch(source, out, in_fmt=in_fmt, out_fmt=out_fmt, policies=policies, matcher=matcher, lang=lang,
              workers=workers, keep=True, on_window=both, after_line=run.done_through, summary=summary,
              header=False, scheduler=scheduler, engine=engine)
    finish(log, run)
    return summary, run


def _csv_header() -> str:
    buf = io.StringIO()
    csv.writer(buf).writerow(OUT_COLUMNS)
    return buf.getvalue()
