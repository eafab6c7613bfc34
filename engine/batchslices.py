"""``clause batch --workers N`` on a JSON Lines file: each worker reads its own slices of the input.

The parent never reads a case. It scans the file in large binary blocks for
newlines (``bytes.find``/``bytes.count``, in C) and hands each worker a
:class:`Slice`: byte offset, length, and the numbers of its first and last
lines. The worker reads the slice itself, splits it into lines with the very
function the one-process run reads the file with (:func:`engine.batch.jsonl_lines`:
``\\n`` ends a line, a ``\\r`` stays in it, empty lines are skipped but
counted, a last line without a newline is a line), decides and renders every
line, and sends back one message per slice: the output (what one process
writes for those lines, already UTF-8: the parent writes the bytes to a
UTF-8 file as they come) and the slice's summary (cases, outcomes, totals per
currency, invalid lines with their numbers). With the decision log (``keep``)
it sends the slice's :class:`~engine.batch.Result` values instead, which the
parent regroups into windows of :data:`engine.batch.WINDOW` cases, the log's
commit unit, as before.

Workers are plain processes, each with one socket pair to the parent, and no
thread runs in the parent: a process pool's feeder and manager threads and
its futures, with per-slice decoding and encoding, cost the parent of a
2-worker run about twice the CPU this does, on a machine whose every core
is deciding. A slice goes to the worker with the least work queued; results
are put back in input order; at most :data:`AHEAD` slices per worker are out
(queued, being decided, or decided and waiting for an earlier one), so
memory stays flat. With the log, the parent's commit of a window takes long
enough for workers to run dry: they are handed up to two windows' lines. A worker that dies ends the run with the same error as
the line-by-line path, at once (its exit is watched with the results); an
input file replaced or changed under the run is an error, not a misread slice.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import queue
import select
import sys
import threading
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, NamedTuple

from engine import batch
from engine.batch import Result, Summary, jsonl_lines, render_line
from engine.engine import Engine
from engine.errors import Diagnostic, EngineError

SLICE = 1 << 16   # bytes of input per slice, ~230 cases of bench/batch.py (read when called: tests make it tiny)
BLOCK = 1 << 20   # bytes the parent reads at a time to find slice boundaries
AHEAD = 8         # slices out per worker: queued, being decided, or waiting for an earlier slice
QUEUED = 2        # of which at most this many handed to one worker at a time (without the log)


class Slice(NamedTuple):
    offset: int
    length: int
    first: int    # number of its first line (1-based, empty lines counted)
    last: int     # number of its last line


@dataclass(frozen=True, slots=True)
class Decided:
    """A slice decided by a worker: what the parent writes and counts, and nothing per line
    (without ``keep``). ``len()`` is the number of cases, for a progress bar."""

    text: bytes | str  # UTF-8; text when it cannot be encoded (a lone surrogate): the parent's stream decides
    summary: Summary

    def __len__(self) -> int:
        return self.summary.cases


# What a worker sends for a slice: a plain tuple, which pickles in C (a dataclass, a Counter or a
# defaultdict goes through Python code): (text, cases, outcomes, amounts, invalid); or with keep
# its Results; or a Diagnostic, an error that ends the run.
Outcome = (tuple[bytes | str, int, dict[str, int], dict[str, Decimal], list[tuple[int, str]]]
           | list[Result] | Diagnostic)


def slices(path: Path, size: int | None = None) -> Iterator[Slice]:
    """``path`` cut after the first newline at or past every ``size`` bytes (default :data:`SLICE`).

    Every byte is in exactly one slice; a slice ends with a newline, except
    the file's last one when its last line has none; a line longer than
    ``size`` is one slice.
    """
    size = max(1, size or SLICE)
    with path.open("rb") as fh:
        start, first, newlines, pos, tail = 0, 1, 0, 0, b"\n"
        while block := fh.read(max(BLOCK, size)):
            i = 0  # where counting resumes in this block
            while (want := max(start + size - 1 - pos, i)) < len(block) and (j := block.find(b"\n", want)) >= 0:
                newlines += block.count(b"\n", i, j + 1)
                yield Slice(start, pos + j + 1 - start, first, first + newlines - 1)
                start, first, newlines, i = pos + j + 1, first + newlines, 0, j + 1
            newlines += block.count(b"\n", i)
            pos += len(block)
            tail = block[-1:]
        if pos > start:
            yield Slice(start, pos - start, first, first + newlines - (tail == b"\n"))


# --- in a worker --------------------------------------------------------------------------------

def decide_slice(engine: Engine, path: str, ident: tuple[int, int], part: Slice, after_line: int,
                 out_fmt: str, lang: str, keep: bool) -> Outcome:
    """Read, decide and render one slice."""
    try:
        with open(path, "rb") as fh:  # buffered: read(n) goes on to n bytes or the end
            st = os.fstat(fh.fileno())
            fh.seek(part.offset)
            data = fh.read(part.length)
    except OSError as err:
        return Diagnostic("file", f"cannot read {path}: {err.strerror or err}")
    if ((st.st_dev, st.st_ino) != ident or len(data) != part.length
            or (data[-1:] != b"\n" and part.offset + part.length != st.st_size)):
        return Diagnostic("file", f"{path} changed while the batch was reading it (replaced, truncated, "
                          "rewritten, or appended to without ending its last line); run the command again on "
                          "a file that stays as it is")
    results = [render_line(engine, n, raw, "jsonl", out_fmt, lang, keep)
               for n, raw in jsonl_lines(io.BytesIO(data), part.first) if n > after_line]
    if keep:
        return results
    summary = Summary()
    text: bytes | str = batch.tally(results, summary)
    try:  # encoded here, in parallel, rather than decoded and encoded again in the parent
        text = text.encode("utf-8")
    except UnicodeEncodeError:
        pass
    return text, summary.cases, dict(summary.outcomes), dict(summary.amounts), summary.invalid


def _serve(conn: Connection, inherited: list[Connection], engine: Engine | None, policies: str, matcher: str,
           path: str, ident: tuple[int, int], after_line: int, out_fmt: str, lang: str, keep: bool) -> None:
    """A worker's life: a Slice in, its outcome out, until told to stop (None) or the parent is gone."""
    for other in inherited:  # the parent's ends (forked): held here, they would hide the parent's exit
        other.close()
    # Outcomes are sent by a thread of their own: a slice's outcome is larger than a socket's buffer,
    # and while the parent is busy (committing a window to the log) the worker decides the next one.
    outbox: queue.SimpleQueue[Outcome | None] = queue.SimpleQueue()
    sender = threading.Thread(target=_send_all, args=(conn, outbox), daemon=True)
    try:
        engine = engine or Engine.load(policies, matcher=matcher)  # spawned: load its own
        sender.start()
        while (part := conn.recv()) is not None:
            try:
                outcome = decide_slice(engine, path, ident, part, after_line, out_fmt, lang, keep)
            except Exception as err:  # noqa: BLE001 - decide_line keeps a line's errors; this is a bug
                outcome = Diagnostic("worker", f"internal error in a worker ({type(err).__name__}: {err})")
            outbox.put(outcome)
        outbox.put(None)
        sender.join()
    except (EOFError, OSError, KeyboardInterrupt):
        pass  # the parent ended the run; it reports why


def _send_all(conn: Connection, outbox: queue.SimpleQueue[Outcome | None]) -> None:
    try:
        while (outcome := outbox.get()) is not None:
            conn.send(outcome)
    except OSError:
        pass  # the parent is gone; the worker's next read ends it


# --- in the parent ------------------------------------------------------------------------------

class _Worker:
    __slots__ = ("conn", "process", "queued")

    def __init__(self, conn: Connection, process: Any) -> None:
        self.conn, self.process = conn, process
        self.queued: deque[int] = deque()  # indexes of the slices it has, in the order it decides them


def _start(workers: int, engine: Engine | None, policies: str, matcher: str, source: Path,
           ident: tuple[int, int], after_line: int, out_fmt: str, lang: str, keep: bool) -> list[_Worker]:
    """Worker processes: forked with the parent's engine already in memory on Linux (default back
    end, no thread running: nothing to compile again), else spawned, each loading its own."""
    fork = batch.forkable(engine)
    context = multiprocessing.get_context("fork" if fork else "spawn")
    for stream in (sys.stdout, sys.stderr):  # a forked child flushes them when it ends: not twice
        if stream is not None:
            stream.flush()
    started: list[_Worker] = []
    try:
        for _ in range(workers):
            ours, theirs = context.Pipe(duplex=True)
            inherited = [ours, *(w.conn for w in started)] if fork else []
            process = context.Process(target=_serve, daemon=True, name="clause-batch-worker", args=(
                theirs, inherited, engine if fork else None, policies, matcher, str(source), ident, after_line,
                out_fmt, lang, keep))
            process.start()
            theirs.close()
            started.append(_Worker(ours, process))
    except BaseException:
        _stop(started, kill=True)
        raise
    return started


def _watch(team: list[_Worker]) -> Callable[[], list[tuple[_Worker, bool]]]:
    """Wait for the workers with something to read: (worker, whether it ended: died)."""
    ends = {w.process.sentinel: w for w in team}
    if not hasattr(select, "poll"):  # Windows
        conns = {w.conn: w for w in team}
        return lambda: [(conns[x], False) if x in conns else (ends[x], True)
                        for x in wait([*conns, *ends])]  # type: ignore[list-item]
    poller = select.poll()  # registered once: wait() builds a selector per call
    owner = {}
    for w in team:
        for fd in (w.conn.fileno(), w.process.sentinel):
            poller.register(fd, select.POLLIN)
            owner[fd] = w
    return lambda: [(owner[fd], fd in ends) for fd, _ in poller.poll()]


def _stop(workers: list[_Worker], kill: bool) -> None:
    """Tell the workers to go (or kill them: slices still out are not waited for) and reap them."""
    for w in workers:
        if kill:
            w.process.kill()
        else:
            try:
                w.conn.send(None)
            except OSError:
                w.process.kill()
    for w in workers:
        w.process.join(10)
        if w.process.exitcode is None:
            w.process.kill()
            w.process.join()
        w.conn.close()


def decided(source: Path, policies: str, matcher: str, out_fmt: str, lang: str, workers: int, keep: bool,
            engine: Engine | None, after_line: int = 0) -> Iterator[Decided | list[Result]]:
    """The decided lines of ``source`` after line ``after_line``, in input order: one
    :class:`Decided` per slice, or with ``keep`` lists of :data:`~engine.batch.WINDOW` Results."""
    st = os.stat(source)
    if not st.st_size:
        return
    parts = (p for p in slices(source) if p.last > after_line)  # the rest was committed by the run resumed
    workers = max(1, min(workers, -(-st.st_size // (SLICE or 1))))  # no more workers than slices
    team = _start(workers, engine, policies, matcher, source, (st.st_dev, st.st_ino), after_line, out_fmt,
                  lang, keep)
    ready = _watch(team)
    pending: deque[Slice] = deque()  # the slices handed out and not written yet, in input order
    done: dict[int, Outcome] = {}  # decided slices waiting for an earlier one
    written = handed = 0           # slice indexes: the next to write, the next to hand out
    held: list[Result] = []        # with keep: Results not yet in a whole window
    through = after_line           # the last line of the last slice written
    lines_out = 0                  # lines in the slices handed out and not written yet
    more, clean = True, False

    def died() -> EngineError:  # the output holds every line before the first one not written
        return batch._worker_died(held[0].number if held else max(pending[0].first, after_line + 1) if pending
                                  else through + 1)

    try:
        while True:
            while more and (lines_out < 2 * batch.WINDOW if keep else handed - written < AHEAD * workers):
                w = min(team, key=lambda w: len(w.queued))  # the least busy worker
                if len(w.queued) >= QUEUED and not keep:
                    break
                part = next(parts, None)
                if part is None:
                    more = False
                    break
                try:
                    w.conn.send(part)
                except OSError as err:  # its end is closed: it died
                    raise died() from err
                w.queued.append(handed)
                pending.append(part)
                handed += 1
                lines_out += part.last - part.first + 1
            if written == handed:
                break
            for w, ended in ready():  # one message each: a worker with two is ready again at once
                if ended or not w.queued:
                    raise died()
                try:
                    done[w.queued.popleft()] = w.conn.recv()
                except (EOFError, OSError) as err:  # its end closed (it died), or in mid-message
                    raise died() from err
            while written in done:
                outcome = done.pop(written)
                if isinstance(outcome, Diagnostic):
                    raise EngineError([outcome])
                if isinstance(outcome, tuple):
                    text, cases, outcomes, amounts, invalid = outcome
                    yield Decided(text, Summary(cases, Counter(outcomes), defaultdict(Decimal, amounts), invalid))
                else:
                    held.extend(outcome)
                    while len(held) >= batch.WINDOW:
                        yield held[:batch.WINDOW]
                        del held[:batch.WINDOW]
                written += 1
                part = pending.popleft()
                through, lines_out = part.last, lines_out - (part.last - part.first + 1)
        if held:
            yield held
        clean = True
    finally:
        _stop(team, kill=not clean)
