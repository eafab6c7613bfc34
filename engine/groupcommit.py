"""Group commit for the decision log: concurrent requests share one transaction (one fsync).

A synchronous log write per request costs one fsync each, which caps a
logged service at the disk's sync rate. Here each request hands its records
to one writer thread and waits; the writer takes what has queued up — up to
``max_items`` records: everything that arrived while the previous
transaction was committing, plus what arrives within ``max_wait`` seconds
(default 0: the groups form by themselves under load, and a lone request
waits for no one) — writes it all in one transaction, then wakes every
waiter. A request is answered only after the transaction holding its
records has committed, so nothing answered is ever lost.

When a group's transaction fails, each request in it is retried in a
transaction of its own, so one request whose records the log refuses fails
alone, never its neighbours; a failure that persists (a locked or
unreachable database) is handed to each request, none of which is answered.
A request still waiting after ``timeout`` seconds gets :class:`LogTimeout`.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from concurrent.futures import Future, InvalidStateError
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Callable

_STOP = object()
TIMEOUT = 30.0  # seconds a writer of records waits for their commit before LogTimeout


def _late(timeout: float) -> str:
    return f"no commit of the decision log within {timeout:g} s"


class LogTimeout(TimeoutError):
    """The writer did not commit a request's records in time (the log is stalled); nothing was answered."""


class LogBusy(Exception):
    """The log could not take a request's records now (locked, unreachable, its writer gone): retry."""


class LogFailed(Exception):
    """The log refused a request's records for another reason (reported as the server's own error)."""


def is_busy(err: BaseException) -> bool:
    """A log write that failed because the database is locked, busy or unreachable (retryable)."""
    import sqlite3  # noqa: PLC0415

    if isinstance(err, (sqlite3.OperationalError, TimeoutError, LogBusy)):  # TimeoutError: the writer stalled
        return True
    return type(err).__module__.split(".")[0] in ("psycopg", "psycopg2") and type(err).__name__ in (
        "OperationalError", "LockNotAvailable", "QueryCanceled", "SerializationFailure", "DeadlockDetected")


class GroupCommitter:
    """One writer thread in front of a :class:`engine.log.DecisionLog` (or anything with ``write_many``)."""

    def __init__(self, log: Any, *, max_wait: float = 0.0, max_items: int = 1000,
                 on_commit: Callable[[float, int], None] | None = None) -> None:
        self.log = log
        self.max_wait, self.max_items, self.on_commit = max_wait, max_items, on_commit
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="clause-log-writer", daemon=True)
        self._closed = False
        self._thread.start()

    def submit(self, items: list[Any], origin: str, lang: str = "en") -> Future[None]:
        """Queue ``items``; the future is done once a transaction holding them committed (or failed)."""
        if self._closed:
            raise RuntimeError("the decision log writer is closed")
        done: Future[None] = Future()
        self._queue.put((items, origin, lang, done))
        return done

    def write_many(self, items: list[Any], origin: str, lang: str = "en", timeout: float = TIMEOUT) -> None:
        """Record ``items`` durably, in some group's transaction; raise what that transaction raised."""
        done = self.submit(items, origin, lang)
        try:
            done.result(timeout)
        except FutureTimeout as err:
            raise LogTimeout(_late(timeout)) from err

    async def write_many_async(self, items: list[Any], origin: str, lang: str = "en",
                               timeout: float = TIMEOUT) -> None:
        """:meth:`write_many` for an event loop: the commit is awaited, no thread waits for it.

        The waiter is a future of the loop itself, settled by the writer with one
        ``call_soon_threadsafe`` per loop and group (not a thread-safe future
        wrapped per request, and one wake-up of the loop per waiter).
        """
        if self._closed:
            raise RuntimeError("the decision log writer is closed")
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._queue.put((items, origin, lang, (loop, waiter)))
        timer = loop.call_later(timeout, expire_waiter, waiter, timeout)
        try:
            await waiter
        finally:
            timer.cancel()

    def pending(self) -> int:
        """Requests waiting for a commit (the log's queue depth)."""
        return self._queue.qsize()

    def close(self) -> None:
        """Commit what is queued, then stop the writer (the log itself is closed by its owner)."""
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
            self._thread.join(timeout=60)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            group, stop = self._gather(first)
            self._commit(group)
            if stop:
                return

    def _gather(self, first: Any) -> tuple[list[Any], bool]:
        group = [first]
        count = len(first[0])
        deadline = time.monotonic() + self.max_wait
        while count < self.max_items:
            left = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                return group, True
            group.append(item)
            count += len(item[0])
        return group, False

    def _commit(self, group: list[Any]) -> None:
        """One transaction per (origin, language) in the group; each waiter learns its own result."""
        parts: dict[tuple[str, str], list[Any]] = {}
        for entry in group:
            parts.setdefault((entry[1], entry[2]), []).append(entry)
        for (origin, lang), entries in parts.items():
            try:
                self._write(entries, origin, lang)
            except BaseException as err:  # noqa: BLE001 - retried alone, then handed to its waiter
                if len(entries) == 1:
                    _settle([entries[0][3]], err)
                    continue
                for entry in entries:  # isolate the request the log refused
                    try:
                        self._write([entry], origin, lang)
                    except BaseException as alone:  # noqa: BLE001
                        _settle([entry[3]], alone)

    def _write(self, entries: list[Any], origin: str, lang: str) -> None:
        """Write the entries' records in one transaction, then answer their waiters."""
        items = [item for entry in entries for item in entry[0]]
        started = time.perf_counter()
        self.log.write_many(items, origin, lang)
        if self.on_commit is not None:
            self.on_commit(time.perf_counter() - started, len(items))
        _settle([entry[3] for entry in entries], None)


Waiter = Future[None] | tuple[asyncio.AbstractEventLoop, "asyncio.Future[None]"]


def _settle(waiters: list[Waiter], error: BaseException | None) -> None:
    """Answer waiters, unless they stopped waiting (a timed-out request gave up its future).

    A thread's waiter is a concurrent future, answered here; an event loop's
    waiters are answered on their loop, with one wake-up per loop. Setting a
    cancelled future raises; uncaught here, that failed the whole group after
    its commit (its records then written twice) and killed the writer.
    """
    loops: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for done in waiters:
        if isinstance(done, tuple):
            loops.setdefault(done[0], []).append(done[1])
            continue
        try:
            if error is None:
                done.set_result(None)
            else:
                done.set_exception(error)
        except InvalidStateError:
            pass  # nobody waits for this answer any more
    for loop, futures in loops.items():
        try:
            loop.call_soon_threadsafe(_answer, futures, error)
        except RuntimeError:
            pass  # the loop is closed: nobody waits there any more


def _answer(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    """On the waiters' loop: answer those still waiting."""
    for future in futures:
        if not future.done():  # done: timed out or cancelled meanwhile
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)


def expire_waiter(waiter: asyncio.Future[None], timeout: float) -> None:
    """A loop's waiter still unanswered after ``timeout``: the log is stalled."""
    if not waiter.done():
        waiter.set_exception(LogTimeout(_late(timeout)))
