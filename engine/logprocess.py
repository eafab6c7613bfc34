"""The decision log's writer in a process of its own: group commit without the interpreter lock.

A writer thread (:mod:`engine.groupcommit`) needs the GIL back after every
SQLite call, and a busy event loop keeps winning it: the thread starts a
commit only when the loop runs out of work, so under load every request
waits for a commit with the loop idle. Here the writing is done by a child
process (:func:`main`) with its own lock and, given a
free core, its own CPU. The event loop turns each request's decisions into
rows (:func:`engine.log.decision_rows`), sends them down a pipe and reads the
acknowledgements from another, never blocking on either (``add_reader`` and
``add_writer``). The child takes everything that arrived while its last
transaction committed, writes it as one transaction (a group refused as a
whole is retried request by request, so a record the log refuses fails
alone), and acknowledges each request. A request is answered only after its
acknowledgement, so nothing answered is lost, whichever process is killed.

The pipes belong to the two processes alone; a frame is a 4-byte length and
a :mod:`marshal` dump of tuples, lists, text and numbers (data only, never
executed). The log's target goes down the pipe, not on the command line,
where ``ps`` would show a PostgreSQL password. The child ignores SIGINT and
SIGTERM (the server's graceful shutdown still needs it to commit what is in
flight) and exits when its input closes, which happens however the server
ends. A child that dies is replaced at the next write; the requests it held
get :class:`LogBusy`, which the service answers 503 — never a decision.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import marshal
import os
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from engine.groupcommit import TIMEOUT, LogBusy, LogFailed, expire_waiter, is_busy
from engine.log import DecisionLog, decision_rows

_LENGTH = struct.Struct(">I")
READ_SIZE = 1 << 20  # bytes the child reads at a time: everything queued, up to this


def frame(obj: Any) -> bytes:
    """One message on a pipe: its length, then its marshal dump."""
    data = marshal.dumps(obj)
    return _LENGTH.pack(len(data)) + data


def unframe(buffer: bytearray) -> list[Any]:
    """The whole messages at the start of ``buffer``, removed from it (a partial one stays)."""
    out, start = [], 0
    while len(buffer) - start >= 4:
        size = _LENGTH.unpack_from(buffer, start)[0]
        if len(buffer) - start - 4 < size:
            break
        out.append(marshal.loads(bytes(buffer[start + 4:start + 4 + size])))
        start += 4 + size
    del buffer[:start]
    return out


class _Child:
    """One writer process and its pipes, seen from the server; used on one event loop at a time."""

    def __init__(self, target: str, max_items: int) -> None:
        # This very package, whatever the working directory holds (``-m`` would put it first on the path).
        root = str(Path(__file__).resolve().parents[1])
        code = f"import sys; sys.path[0] = {root!r}; from engine.logprocess import main; main()"
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     close_fds=True)
        self.sink, self.source = self.proc.stdin.fileno(), self.proc.stdout.fileno()  # type: ignore[union-attr]
        os.set_blocking(self.sink, False)
        os.set_blocking(self.source, False)
        self.out = bytearray(frame(("open", target, max_items)))  # written, or being written
        self.held, self.held_seqs = bytearray(), []  # queued while a group is in flight
        self.unacked: set[int] = set()  # the group in flight
        self.scheduled = False
        self.into = bytearray()
        self.sent: set[str] = set()  # policy digests the child has been given
        self.waiters: dict[int, asyncio.Future[None]] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.dead: str | None = None
        self.closed = False  # its pipes are closed: their fd numbers may belong to anything now
        self.pid = os.getpid()  # the process that started it (a fork must not share its pipes)

    def attach(self, loop: asyncio.AbstractEventLoop, readable: Callable[[], None]) -> None:
        self.detach()
        self.loop = loop
        loop.add_reader(self.source, readable)
        if self.out:
            loop.add_writer(self.sink, self.flush)
        if self.held:
            self.scheduled = True
            loop.call_soon(self.release)

    def detach(self) -> None:
        if self.loop is not None and not self.loop.is_closed():
            self.loop.remove_reader(self.source)
            self.loop.remove_writer(self.sink)
        self.loop = None

    def send(self, seq: int, message: Any) -> None:
        """Queue a request's message. One group at a time goes to the child: what is queued while
        it commits is written in one piece when that group is acknowledged (or, with none in
        flight, at the end of this turn of the loop). So each commit costs one write and one
        wake-up of the child, however many requests it holds."""
        self.held += frame(message)
        self.held_seqs.append(seq)
        if not self.unacked and not self.scheduled and self.loop is not None:
            self.scheduled = True
            self.loop.call_soon(self.release)

    def release(self) -> None:
        """Send the queued messages, unless a group is still in flight."""
        self.scheduled = False
        if self.closed or self.unacked or not self.held:
            return
        self.unacked.update(self.held_seqs)
        self.held_seqs.clear()
        self.out += self.held
        self.held.clear()
        self.flush()

    def acknowledged(self, seqs: list[int]) -> None:
        self.unacked.difference_update(seqs)
        if not self.unacked and self.held:
            self.release()

    def flush(self) -> None:
        if self.closed:  # a callback left over from before its end: never write to a reused fd
            return
        try:
            written = os.write(self.sink, self.out) if self.out else 0
        except BlockingIOError:
            written = 0
        except OSError as err:  # the child is gone; its reader sees the end and fails the waiters
            self.dead = self.dead or f"the decision log writer stopped ({err.strerror})"
            written = len(self.out)
        del self.out[:written]
        if self.loop is not None:
            if self.out:
                self.loop.add_writer(self.sink, self.flush)
            else:
                self.loop.remove_writer(self.sink)

    def close_pipes(self) -> None:
        """Close this process's ends of its pipes, and never write to their descriptors again (the
        numbers are free for anything the process opens next)."""
        self.closed = True
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()

    def end(self, wait: float) -> None:
        """Close its input (it commits what it was sent, then exits) and wait for it, ``wait`` seconds
        at most: what is left is written without blocking, and the acknowledgements (nobody waits
        for them now) are read and dropped, so neither side blocks on a full pipe."""
        self.detach()
        self.out += self.held
        self.held.clear()
        deadline = time.monotonic() + wait
        poller = select.poll()  # not select(): a busy server's descriptors may be numbered past 1024
        poller.register(self.source, select.POLLIN)
        poller.register(self.sink, select.POLLOUT)
        try:
            while (left := deadline - time.monotonic()) > 0:
                if not self.out and not self.proc.stdin.closed:  # type: ignore[union-attr]
                    poller.unregister(self.sink)
                    self.proc.stdin.close()  # type: ignore[union-attr]  # its end of input
                for fd, _ in poller.poll(left * 1000):
                    with contextlib.suppress(BlockingIOError):
                        if fd == self.sink:
                            del self.out[:os.write(self.sink, self.out)]
                        elif not os.read(self.source, 1 << 16):
                            raise EOFError  # it has ended
        except (OSError, EOFError):
            pass  # gone (or going): nothing more to write or read
        self.close_pipes()
        try:
            self.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class ProcessCommitter:
    """:class:`engine.groupcommit.GroupCommitter`'s interface, with the writing in a child process."""

    def __init__(self, log: DecisionLog, *, max_items: int = 1000,
                 on_commit: Callable[[float, int], None] | None = None) -> None:
        self.log, self.max_items, self.on_commit = log, max_items, on_commit
        self._seq = itertools.count(1)
        self._lock = threading.RLock()
        self._closed = False
        self._child: _Child | None = None  # started by start() or the first write

    def start(self) -> None:
        """Start the writer process now rather than at the first write (the service's start-up)."""
        with self._lock:
            if self._child is None and not self._closed:
                self._child = _Child(self.log.target, self.max_items)

    def pending(self) -> int:
        """Requests waiting for their acknowledgement (the log's queue depth)."""
        child = self._child
        return len(child.waiters) if child is not None else 0

    async def write_many_async(self, items: list[Any], origin: str, lang: str = "en",
                               timeout: float = TIMEOUT) -> None:
        """Record ``items`` durably; return once the child acknowledged their commit."""
        if self._closed:
            raise RuntimeError("the decision log writer is closed")
        loop = asyncio.get_running_loop()
        child = self._ready(loop)
        if child is None:  # another event loop holds the child: write from a thread, still durably
            await asyncio.to_thread(self.log.write_many, items, origin, lang)
            return
        values, fresh = decision_rows(items, origin, lang, child.sent)
        child.sent.update(row[0] for row in fresh)
        seq = next(self._seq)
        waiter = loop.create_future()
        child.waiters[seq] = waiter
        child.send(seq, (seq, values, fresh))
        timer = loop.call_later(timeout, expire_waiter, waiter, timeout)
        try:
            await waiter
        finally:
            timer.cancel()
            child.waiters.pop(seq, None)

    def write_many(self, items: list[Any], origin: str, lang: str = "en", timeout: float = TIMEOUT) -> None:
        """:meth:`write_many_async` for a thread: through the child's event loop while one runs it."""
        child = self._child
        loop = child.loop if child is not None else None
        if loop is None or loop.is_closed() or not loop.is_running() or _on(loop):
            self.log.write_many(items, origin, lang)  # no loop to hand it to: the log's own transaction
            return
        asyncio.run_coroutine_threadsafe(self.write_many_async(items, origin, lang, timeout), loop).result()

    def close(self, wait: float = 60.0) -> None:
        """Let the child commit what it was sent, then stop it (the log itself is closed by its
        owner); after ``wait`` seconds (a stalled disk or database), it is killed."""
        with self._lock:
            self._closed, child, self._child = True, self._child, None
        if child is not None:
            child.end(wait)

    def _ready(self, loop: asyncio.AbstractEventLoop) -> _Child | None:
        """The child, attached to ``loop`` (and restarted if it died); None when another loop has it."""
        with self._lock:
            child = self._child
            if child is not None and child.pid != os.getpid():  # inherited through a fork: not ours
                child.loop = None  # not detached: the loop's selector may be the parent's too
                child.close_pipes()  # our copies only; the parent keeps its own
                child = self._child = None
            if child is not None and child.dead is not None and child.loop is loop:
                self._fail(child, child.dead)
                child = None
            if child is None:
                child = self._child = _Child(self.log.target, self.max_items)
            if child.loop is loop:
                return child
            if child.loop is not None and not child.loop.is_closed() and child.loop.is_running():
                return None
            child.waiters.clear()  # their loop has stopped: nobody waits for them any more
            child.attach(loop, lambda: self._readable(child))
            return child

    def _readable(self, child: _Child) -> None:
        """Acknowledgements (or the end of the child): answer the waiting requests."""
        try:
            data = os.read(child.source, 1 << 16)
        except BlockingIOError:
            return
        except OSError as err:
            data, child.dead = b"", f"the decision log writer stopped ({err.strerror})"
        if not data:
            code = child.proc.poll()
            ended = f" (exit status {code})" if code is not None else ""
            self._fail(child, child.dead or f"the decision log writer stopped{ended}")
            return
        child.into += data
        for message in unframe(child.into):
            self._acknowledged(child, message)

    def _acknowledged(self, child: _Child, message: Any) -> None:
        kind, results, timing = message
        if kind == "fatal":
            child.dead = results
            return
        for seq, error in results:
            waiter = child.waiters.get(seq)
            if waiter is None or waiter.done():
                continue
            if error is None:
                waiter.set_result(None)
            else:
                busy, text = error
                waiter.set_exception(LogBusy(text) if busy else LogFailed(text))
        if self.on_commit is not None:
            for seconds, count in timing:
                self.on_commit(seconds, count)
        child.acknowledged([seq for seq, _ in results])

    def _fail(self, child: _Child, why: str) -> None:
        """The child is gone: the requests it held are not answered (503, retry); the next write
        starts a new one."""
        child.dead = why
        for waiter in child.waiters.values():
            if not waiter.done():
                waiter.set_exception(LogBusy(why))
        child.waiters.clear()
        child.detach()
        with self._lock:
            if self._child is child:
                self._child = None
        child.close_pipes()
        if child.proc.poll() is None:  # its output ended: it is gone or going; reap it now
            child.proc.kill()
            child.proc.wait()


def _on(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether this thread is running ``loop`` (it must not block waiting for it)."""
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


# --- the child --------------------------------------------------------------------------------

def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _commit(log: DecisionLog, entries: list[Any], policies: dict[str, tuple[str, ...]],
            timing: list[tuple[float, int]]) -> list[tuple[int, Any]]:
    """One transaction for the entries; if it is refused, one per entry. Each entry's result."""
    values = [row for entry in entries for row in entry[1]]
    needed = [policies[d] for d in dict.fromkeys(row[7] for row in values) if d in policies]
    started = time.perf_counter()
    try:
        log.write_rows(values, needed)
    except Exception as err:  # noqa: BLE001 - every driver error goes back to its requests
        if len(entries) > 1:
            return [result for entry in entries for result in _commit(log, [entry], policies, timing)]
        return [(entries[0][0], (is_busy(err), f"{type(err).__name__}: {err}"))]
    timing.append((time.perf_counter() - started, len(values)))
    return [(entry[0], None) for entry in entries]


def _groups(entries: list[Any], max_items: int) -> list[list[Any]]:
    """Consecutive entries in groups of at most ``max_items`` rows (an entry is never split)."""
    groups: list[list[Any]] = [[]]
    count = 0
    for entry in entries:
        if groups[-1] and count + len(entry[1]) > max_items:
            groups.append([])
            count = 0
        groups[-1].append(entry)
        count += len(entry[1])
    return groups


def main() -> None:
    """The writer process: open the log, then commit what arrives until the input ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sink = os.dup(1)
    os.dup2(2, 1)  # the frames keep the pipe to themselves: a stray print goes to stderr
    log = None
    try:
        log = _serve(0, sink)
    except BrokenPipeError:
        pass  # the server is gone: nobody waits for an acknowledgement
    finally:
        if log is not None:
            log.close()


def _serve(source: int, sink: int) -> DecisionLog | None:
    """Read, commit, acknowledge; return the log once the input ends."""
    buffer, log, max_items, policies = bytearray(), None, 1000, {}
    while True:
        data = os.read(source, READ_SIZE)
        buffer += data
        entries = []
        for message in unframe(buffer):
            if message[0] == "open":
                try:
                    log, max_items = DecisionLog(message[1]), message[2]
                except Exception as err:  # noqa: BLE001 - told to the server, then the end
                    _write_all(sink, frame(("fatal", f"cannot open the decision log: {err}", [])))
                    return None
                continue
            entries.append(message)
            policies.update((row[0], row) for row in message[2])
        if entries and log is not None:
            timing: list[tuple[float, int]] = []
            results = [r for group in _groups(entries, max_items) for r in _commit(log, group, policies, timing)]
            _write_all(sink, frame(("acks", results, timing)))
            if not log.connected():  # the server dropped us: a new writer reconnects at the next write
                return log
        if not data:
            return log
