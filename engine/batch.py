"""Batch decisions: JSON Lines or CSV in, JSON Lines or CSV out, streaming.

Memory stays flat in the number of cases: lines are read, decided and
written a window at a time. With ``workers`` > 1, a JSON Lines file is cut
in slices that worker processes read, decide and render themselves
(engine/batchslices.py); other input (CSV, Parquet, a pipe) is read here and
its windows split in chunks for the workers. Either way results are written
in input order. A bad line is reported with its number and
skipped — never fatal, never silently dropped.

CSV input has the columns ``id, vendor, kind, as_of`` and one column per
fact; an empty cell is an absent fact, ``true``/``false`` are booleans for
bool facts, whole numbers for integer facts, and a JSON cell (``[...]``)
gives a list fact. A JSON object cell (``{"at_most": "2025-03-17"}``,
``{"one_of": ["a", "b"]}``) gives a fact known only partly (a bound).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import multiprocessing
import os
import sys
import threading
from collections import Counter, defaultdict, deque
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator, NamedTuple, TextIO

from engine import jsonread
from engine.engine import Engine
from engine.errors import Diagnostic, EngineError
from engine.log import exact_json

WINDOW = 4000
_LINE = json.JSONEncoder(ensure_ascii=False).encode  # json.dumps(d, ensure_ascii=False), built once
CHUNK = 250
CASE_COLUMNS = ("id", "vendor", "kind", "as_of")
OUT_COLUMNS = ("line", "case_id", "vendor", "kind", "as_of", "outcome", "amount", "customer_pays",
               "currency", "deadlines", "missing_facts", "rules", "policy_version")


@dataclass(slots=True)
class Summary:
    cases: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    amounts: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    invalid: list[tuple[int, str]] = field(default_factory=list)

    def add(self, part: Summary) -> None:
        """Count in the summary of the lines that follow (a worker's slice): the order of first
        appearance of outcomes and currencies is kept, as if the lines were counted here."""
        self.cases += part.cases
        self.outcomes.update(part.outcomes)
        for currency, amount in part.amounts.items():
            self.amounts[currency] += amount
        self.invalid.extend(part.invalid)


def tally(window: list[Result], summary: Summary) -> str:
    """Count ``window`` into ``summary``; the output text of its decided lines."""
    written = []  # one write per window: a write call per line was a tenth of the parent's time
    for r in window:
        summary.cases += 1
        if r.ok:
            written.append(r.text)
            summary.outcomes[r.outcome] += 1
            if r.amount:
                summary.amounts[r.currency] += Decimal(r.amount)
        else:
            summary.invalid.append((r.number, r.text))
    return "".join(written)


BAD_LINE = "\x00bad:"  # marks a line that could not even be read; never valid JSON


def _csv_cases(stream: TextIO) -> Iterator[tuple[int, str]]:
    """(line number where the row starts, the row as a JSON case); values stay text."""
    reader = csv.DictReader(stream)
    start = 2  # the header is line 1
    try:
        for row in reader:
            if None in row:  # DictReader puts the cells beyond the header under None
                yield start, f"{BAD_LINE}the row has {len(row[None])} more cell(s) than the header"
            else:
                case: dict[str, Any] = {k: row[k] for k in CASE_COLUMNS if row.get(k)}
                case["facts"] = {k: v for k, v in row.items() if k not in CASE_COLUMNS and v not in ("", None)}
                yield start, json.dumps(case)
            start = reader.line_num + 1
    except csv.Error as err:
        yield start, f"{BAD_LINE}invalid CSV: {err}"


def read_lines(path: Path, fmt: str) -> Iterator[tuple[int, str]]:
    """(line number, raw JSON case) from a JSON Lines or CSV file, lazily.

    JSON Lines are read as bytes and decoded line by line, so one line that
    is not UTF-8 is reported alone. CSV may start with a byte-order mark
    (as spreadsheets write it).
    """
    if fmt == "csv":
        with path.open(encoding="utf-8-sig", newline="", errors="replace") as stream:
            yield from _csv_cases(stream)
        return
    if fmt == "parquet":
        yield from _parquet_cases(path)
        return
    with path.open("rb") as raw:
        yield from jsonl_lines(raw)


def jsonl_lines(raw: Iterable[bytes], first: int = 1) -> Iterator[tuple[int, str]]:
    """(line number, text) of the non-empty lines of binary JSON Lines, numbered from ``first``.

    ``raw`` yields lines split after each ``\\n`` only (a binary file, or a
    ``BytesIO`` of a slice of one): a ``\\r`` stays in its line. The one
    reading of JSON Lines, whether the parent reads the file or a worker its
    slice (engine/batchslices.py), so both number and decode alike.
    """
    for number, data in enumerate(raw, first):
        if not data.strip():
            continue
        try:
            yield number, data.decode("utf-8")
        except UnicodeDecodeError as err:
            yield number, f"{BAD_LINE}not UTF-8 text ({err.reason} at byte {err.start})"


def _parquet_cases(path: Path) -> Iterator[tuple[int, str]]:
    """(row number, the row as a JSON case) from a Parquet file: the CSV columns, typed by Parquet.

    A null is an absent fact; floats are read through their shortest text
    (``0.1`` stays 0.1), dates and timestamps as ISO text, lists and structs
    as JSON. Needs pyarrow (the ``dask`` extra brings it).
    """
    try:
        import pyarrow.parquet as pq  # noqa: PLC0415
    except ImportError as err:
        raise EngineError([Diagnostic("file", "Parquet input needs pyarrow: pip install "
                                      "'clause-engine[dask]'")]) from err
    try:
        table = pq.ParquetFile(path)
    except Exception as err:  # noqa: BLE001 - pyarrow raises several types for a bad file
        raise EngineError([Diagnostic("file", f"{path} is not a readable Parquet file: {err}")]) from err
    number = 0
    for batch in table.iter_batches(batch_size=4096):
        for row in batch.to_pylist():
            number += 1
            case: dict[str, Any] = {k: _plain(row[k]) for k in CASE_COLUMNS if row.get(k) is not None}
            case["facts"] = {k: _plain(v) for k, v in row.items() if k not in CASE_COLUMNS and v is not None}
            try:
                yield number, json.dumps(case, ensure_ascii=False)
            except (TypeError, ValueError) as err:
                yield number, f"{BAD_LINE}a cell cannot be read as a fact value ({err})"


def _plain(value: Any) -> Any:
    """A Parquet cell as the JSON value a case holds."""
    if isinstance(value, float):
        return repr(value) if value == value and value not in (float("inf"), float("-inf")) else str(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _typed_csv_facts(engine: Engine, case: dict[str, Any]) -> None:
    """Turn CSV text into the JSON types the policy's facts expect."""
    try:
        as_of = date.fromisoformat(case["as_of"]) if case.get("as_of") else None
        policy = engine.policy(case["vendor"], as_of)  # the version the row will be decided with
    except (EngineError, KeyError, ValueError, TypeError):
        return  # the decision reports what is wrong with the row
    for name, value in case["facts"].items():
        decl = policy.facts.get(name)
        if decl is None or not isinstance(value, str):
            continue
        kind = decl.type.kind
        if kind == "bool" and value.lower() in ("true", "false"):
            case["facts"][name] = value.lower() == "true"
        elif kind == "integer" and value.lstrip("-").isdigit() and value.isascii() and len(value) <= 20:
            case["facts"][name] = int(value)
        elif kind == "list" and value.startswith("["):
            case["facts"][name] = jsonread.loads(value)
        elif kind != "string" and value.startswith("{"):  # a bound, e.g. {"at_most": "2025-03-17"}
            try:
                case["facts"][name] = jsonread.loads(value)
            except ValueError:
                pass  # coercion reports the text against the fact


def decide_line(engine: Engine, number: int, raw: str, fmt: str, lang: str) -> tuple[int, str, Any]:
    """('ok', (case, decision dict)) or ('error', message) for one input line."""
    if raw.startswith(BAD_LINE):
        return number, "error", raw[len(BAD_LINE):]
    try:
        case = jsonread.loads(raw)
        if fmt == "csv":
            _typed_csv_facts(engine, case)
        return number, "ok", (case, engine.decide(case, lang=lang).to_dict())
    except jsonread.JSONInputError as err:
        return number, "error", f"invalid JSON: {err}"
    except EngineError as err:
        return number, "error", "; ".join(
            f"{d.code}: {d.message}" + (f" ({d.path})" if d.path else "") for d in err.diagnostics)
    except Exception as err:  # noqa: BLE001 - one line must never end the batch
        return number, "error", f"internal error on this line ({type(err).__name__}: {err})"


class Result(NamedTuple):
    """One decided line, already rendered, with what the summary and the log need.

    A named tuple, not a dataclass: results cross process boundaries by the
    thousand, and a tuple pickles in C (a slotted dataclass went through
    Python code per object, which made the parent of ``--workers`` the bottleneck).
    """

    number: int
    ok: bool
    text: str                 # the output line, or the error message
    outcome: str = ""
    amount: str = ""
    currency: str = ""
    logged: str = ""          # JSON [case, decision] when the log is on


def render_line(engine: Engine, number: int, raw: str, in_fmt: str, out_fmt: str, lang: str,
                keep: bool) -> Result:
    """Decide and render one line (in a worker, so only strings cross processes)."""
    number, status, value = decide_line(engine, number, raw, in_fmt, lang)
    if status != "ok":
        return Result(number, False, value)
    case, d = value
    amount = d["amount"] or {}
    try:  # numbers keep their exact digits, so that the log replays what was decided
        logged = exact_json([case, d]) if keep else ""
    except EngineError as err:
        return Result(number, False, "; ".join(f"{x.code}: {x.message}" for x in err.diagnostics))
    return Result(number, True, render(number, d, out_fmt), d["outcome"], amount.get("value", ""),
                  amount.get("currency", ""), logged)


# --- worker processes --------------------------------------------------------
_WORKER: dict[str, Any] = {}


def _init_worker(policies: str, matcher: str, in_fmt: str, out_fmt: str, lang: str, keep: bool) -> None:
    _WORKER.update(engine=Engine.load(policies, matcher=matcher), args=(in_fmt, out_fmt, lang, keep))


def _init_forked(engine: Engine, in_fmt: str, out_fmt: str, lang: str, keep: bool) -> None:
    _WORKER.update(engine=engine, args=(in_fmt, out_fmt, lang, keep))  # inherited, never pickled


def _pool(workers: int, engine: Engine | None, policies: str, matcher: str, in_fmt: str, out_fmt: str,
          lang: str, keep: bool) -> ProcessPoolExecutor:
    """Worker processes. On Linux, with the parent's engine loaded, no thread running and the
    default back end, they are forked with the engine already in memory (no second start-up:
    importing and compiling cost each spawned worker most of a second); otherwise spawned.

    A process pool from concurrent.futures, not multiprocessing.Pool: when a worker dies
    (killed, out of memory) the former fails every pending chunk; the latter lost the
    chunk and waited for it for ever.
    """
    if forkable(engine):
        return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                                   initializer=_init_forked, initargs=(engine, in_fmt, out_fmt, lang, keep))
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                               initargs=(policies, matcher, in_fmt, out_fmt, lang, keep))


def forkable(engine: Engine | None) -> bool:
    """Whether worker processes can be forked with ``engine`` in memory: Linux, no thread running
    (a fork copies one thread, and a lock another one held stays held), the default back end."""
    return (engine is not None and sys.platform.startswith("linux") and threading.active_count() == 1
            and engine.matcher_name == "python")


def _work(chunk: list[tuple[int, str]]) -> list[Result]:
    return [render_line(_WORKER["engine"], n, raw, *_WORKER["args"]) for n, raw in chunk]


def _gathered(first: int, parts: list[Future[list[Result]]]) -> list[Result]:
    """A window's results in order; a dead worker stops the run with an error naming the line."""
    try:
        return [r for part in parts for r in part.result()]
    except BrokenProcessPool as err:
        raise _worker_died(first) from err


def _worker_died(first: int) -> EngineError:
    return EngineError([Diagnostic("worker", "a worker process died (killed, or out of memory, or it "
                                   f"could not start); the output holds every line before line {first}; "
                                   "run the command again (with --log it resumes where the log ends)")])


def windows(lines: Iterator[Any], size: int | None = None) -> Iterator[list[Any]]:
    """``lines`` in lists of ``size`` (default :data:`WINDOW`, read when called), the last shorter."""
    size = size or WINDOW
    window: list[Any] = []
    for item in lines:
        window.append(item)
        if len(window) == size:
            yield window
            window = []
    if window:
        yield window


def results(lines: Iterator[tuple[int, str]], policies: str, matcher: str, in_fmt: str, out_fmt: str,
            lang: str, workers: int, keep: bool, scheduler: str | None = None,
            engine: Engine | None = None) -> Iterator[list[Result]]:
    """Decided windows, in input order; at most one window in memory per stage.

    ``engine``: the caller's engine, loaded from ``policies`` with ``matcher`` (else loaded here).
    """
    if scheduler is not None:  # on a Dask cluster (engine/distributed.py)
        from engine import distributed  # noqa: PLC0415 - Dask is an optional extra

        engine = engine or Engine.load(policies, matcher=matcher)
        yield from distributed.results(lines, engine, matcher, in_fmt, out_fmt, lang, keep, scheduler)
        return
    if workers <= 1:
        engine = engine or Engine.load(policies, matcher=matcher)
        for window in windows(lines):
            yield [render_line(engine, n, raw, in_fmt, out_fmt, lang, keep) for n, raw in window]
        return
    pool = _pool(workers, engine, policies, matcher, in_fmt, out_fmt, lang, keep)
    broken = False
    try:
        # The next window is already being decided while this one is logged and written:
        # waiting for each window before sending the next left the workers idle meanwhile.
        pending: deque[tuple[int, list[Future[list[Result]]]]] = deque()
        for window in windows(lines):
            try:
                parts = [pool.submit(_work, window[i:i + CHUNK]) for i in range(0, len(window), CHUNK)]
            except BrokenProcessPool as err:  # a worker died before this window was handed out
                raise _worker_died(pending[0][0] if pending else window[0][0]) from err
            pending.append((window[0][0], parts))
            if len(pending) > 1:
                yield _gathered(*pending.popleft())
        while pending:
            yield _gathered(*pending.popleft())
    except EngineError:
        # A dead worker: do not wait for the pool's own shutdown, which can block on a
        # queue pipe nobody reads any more; stop the other workers and go.
        broken = True
        for process in list(getattr(pool, "_processes", {}).values()):
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        if not broken:
            pool.shutdown(wait=True)


def render(number: int, d: dict[str, Any], fmt: str) -> str:
    """One output line (JSON Lines) or CSV row, with its line ending."""
    if fmt != "csv":
        return _LINE(d) + "\n"
    buf = io.StringIO()
    money = d["amount"] or d["customer_pays"] or {}
    csv.writer(buf).writerow([
        number, d["case_id"] or "", d["vendor"], d["kind"], d["as_of"], d["outcome"],
        (d["amount"] or {}).get("value", ""), (d["customer_pays"] or {}).get("value", ""),
        money.get("currency", ""), ";".join(f"{x['name']}={x['date'] or 'unknown'}" for x in d["deadlines"]),
        ";".join(m["fact"] for m in d["missing_facts"]), ";".join(r["rule"] for r in d["reasons"]),
        d["policy"]["version"]])
    return buf.getvalue()


def run_batch(source: Path, out: TextIO, *, in_fmt: str, out_fmt: str, policies: str, matcher: str,
              lang: str, workers: int, keep: bool = False,
              on_window: Callable[[list[Result]], None] | None = None,
              after_line: int = 0, summary: Summary | None = None, header: bool = True,
              scheduler: str | None = None, engine: Engine | None = None) -> Summary:
    """Decide every line of ``source`` (after line ``after_line``) into ``out``; return the summary.

    ``keep`` carries each case and decision back for ``on_window`` (the
    decision log); without it only the rendered lines travel. ``on_window``
    runs before the window's lines are written: the log is the commit point,
    so the output never holds a decision the log does not (issue 9, item 2).

    With ``workers`` > 1 on a JSON Lines file, workers read their own slices
    of it (engine/batchslices.py); without ``keep``, ``on_window`` then gets,
    per slice, a :class:`~engine.batchslices.Decided`: its len() is the number
    of cases, its lines are never parsed in the parent.
    """
    summary = summary or Summary()
    if out_fmt == "csv" and header:
        csv.writer(out).writerow(OUT_COLUMNS)
    raw = _utf8_bytes(out)
    if in_fmt == "jsonl" and workers > 1 and scheduler is None and source.is_file():
        from engine import batchslices  # noqa: PLC0415 - imports this module

        decided: Iterator[Any] = batchslices.decided(source, policies, matcher, out_fmt, lang, workers, keep,
                                                     engine, after_line)
    else:
        lines = (item for item in read_lines(source, in_fmt) if item[0] > after_line)
        decided = results(lines, policies, matcher, in_fmt, out_fmt, lang, workers, keep, scheduler, engine)
    for window in decided:
        if on_window:
            on_window(window)
        if isinstance(window, list):
            out.write(tally(window, summary))
        else:  # a worker's slice, already counted, rendered and (most often) encoded
            summary.add(window.summary)
            if isinstance(window.text, str):
                out.write(window.text)
            elif raw is not None:
                out.flush()
                raw.write(window.text)
            else:
                out.write(window.text.decode("utf-8"))
        out.flush()
    return summary


def _utf8_bytes(out: TextIO) -> BinaryIO | None:
    """``out``'s binary buffer when writing UTF-8 there is writing the text to ``out``: a plain
    UTF-8 text file or stream (``open``, ``sys.stdout``) where ``\\n`` is written as it is (POSIX;
    a stream opened with ``newline="\\r\\n"`` would translate it, and cannot be told apart)."""
    if type(out) is not io.TextIOWrapper or os.linesep != "\n":
        return None
    try:
        return out.buffer if codecs.lookup(out.encoding).name == "utf-8" else None
    except LookupError:
        return None


def count_lines(path: Path, fmt: str = "jsonl") -> int:
    """Number of cases (for a progress bar): non-empty lines read in binary blocks, or Parquet rows."""
    if fmt == "parquet":
        try:
            import pyarrow.parquet as pq  # noqa: PLC0415

            return int(pq.ParquetFile(path).metadata.num_rows)
        except Exception:  # noqa: BLE001 - the read itself reports a bad file
            return 0
    with path.open("rb") as fh:
        return sum(1 for line in fh if line.strip())


def summary_text(summary: Summary) -> str:
    lines = [f"{summary.cases} case(s): {summary.cases - len(summary.invalid)} decided, "
             f"{len(summary.invalid)} invalid"]
    lines += [f"  {outcome}: {n}" for outcome, n in sorted(summary.outcomes.items())]
    lines += [f"  total amount: {v:f} {c}" for c, v in sorted(summary.amounts.items())]
    lines += [f"  line {n}: {msg}" for n, msg in summary.invalid[:50]]
    if len(summary.invalid) > 50:
        lines.append(f"  ... and {len(summary.invalid) - 50} more invalid lines")
    return "\n".join(lines)


def csv_text(rows: list[dict[str, Any]]) -> str:
    """Helper for tests and docs: cases as a CSV document."""
    facts = sorted({k for r in rows for k in r["facts"]})
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([*CASE_COLUMNS, *facts])
    for r in rows:
        w.writerow([r.get(c, "") for c in CASE_COLUMNS] + [
            json.dumps(r["facts"][f]) if isinstance(r["facts"].get(f), list)
            else str(r["facts"].get(f, "")).lower() if isinstance(r["facts"].get(f), bool)
            else r["facts"].get(f, "") for f in facts])
    return buf.getvalue()
