"""Group commit: concurrent requests share a transaction; a refused request fails alone."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from engine.groupcommit import GroupCommitter, LogTimeout


class FakeLog:
    """Records each transaction; refuses any transaction holding a record named ``bad``."""

    def __init__(self, delay: float = 0.0, fail: Exception | None = None) -> None:
        self.transactions: list[list[Any]] = []
        self.delay, self.fail = delay, fail

    def write_many(self, items: list[Any], origin: str, lang: str) -> None:
        time.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        if "bad" in items:
            raise ValueError("refused: bad")
        self.transactions.append(list(items))


def _submit_all(writer: GroupCommitter, batches: list[list[Any]]) -> dict[int, BaseException | None]:
    results: dict[int, BaseException | None] = {}
    start = threading.Barrier(len(batches))

    def one(i: int, batch: list[Any]) -> None:
        start.wait()
        try:
            writer.write_many(batch, "serve")
            results[i] = None
        except BaseException as err:  # noqa: BLE001
            results[i] = err

    threads = [threading.Thread(target=one, args=(i, b)) for i, b in enumerate(batches)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_requests_share_transactions_and_each_is_committed() -> None:
    log = FakeLog(delay=0.01)  # a slow commit lets the next requests queue up behind it
    writer = GroupCommitter(log, max_wait=0.005)
    results = _submit_all(writer, [[f"r{i}"] for i in range(40)])
    writer.close()
    assert all(r is None for r in results.values())
    written = sorted(x for t in log.transactions for x in t)
    assert written == sorted(f"r{i}" for i in range(40))  # every record once, none twice
    assert len(log.transactions) < 40  # grouped, not one commit each


def test_a_refused_request_fails_alone_and_its_neighbours_are_committed() -> None:
    log = FakeLog(delay=0.01)
    writer = GroupCommitter(log, max_wait=0.02)
    results = _submit_all(writer, [["a"], ["bad"], ["c"], ["d"]])
    writer.close()
    assert isinstance(results[1], ValueError)
    assert [results[i] for i in (0, 2, 3)] == [None, None, None]
    assert sorted(x for t in log.transactions for x in t) == ["a", "c", "d"]


def test_a_failing_log_fails_every_waiter_and_the_next_group_starts_afresh() -> None:
    log = FakeLog(fail=OSError("disk gone"))
    writer = GroupCommitter(log)
    results = _submit_all(writer, [["a"], ["b"]])
    assert all(isinstance(r, OSError) for r in results.values())
    log.fail = None
    writer.write_many(["c"], "serve")
    writer.close()
    assert log.transactions == [["c"]]


def test_a_stalled_log_times_out_instead_of_hanging() -> None:
    log = FakeLog(delay=0.5)
    writer = GroupCommitter(log)
    with pytest.raises(LogTimeout):
        writer.write_many(["a"], "serve", timeout=0.05)
    with pytest.raises(LogTimeout):  # the same from an event loop
        asyncio.run(writer.write_many_async(["b"], "serve", timeout=0.05))
    writer.close()  # drains: the stalled writes still complete
    assert sorted(x for t in log.transactions for x in t) == ["a", "b"]


def test_close_commits_what_is_queued_then_refuses_new_work() -> None:
    log = FakeLog(delay=0.02)
    writer = GroupCommitter(log)
    t = threading.Thread(target=writer.write_many, args=(["late"], "serve"))
    t.start()
    time.sleep(0.005)
    writer.close()
    t.join()
    assert ["late"] in log.transactions
    with pytest.raises(RuntimeError):
        writer.write_many(["x"], "serve")


def test_a_waiter_that_gave_up_neither_kills_the_writer_nor_fails_its_group() -> None:
    """A request that timed out cancels its future; the commit that lands later must not fail the
    group (its records would be written twice and its neighbours told the log failed) nor stop the
    writer (every later request would then time out)."""
    log = FakeLog(delay=0.05)
    writer = GroupCommitter(log)
    first = writer.submit(["slow"], "serve")  # being committed while the next ones queue
    time.sleep(0.01)
    gave_up = writer.submit(["gave-up"], "serve")
    neighbour = writer.submit(["neighbour"], "serve")
    assert gave_up.cancel()  # what asyncio does to it when the request's wait times out
    assert first.result(5) is None and neighbour.result(5) is None
    writer.write_many(["later"], "serve", timeout=5)  # the writer is still alive
    writer.close()
    written = [x for t in log.transactions for x in t]
    assert sorted(written) == ["gave-up", "later", "neighbour", "slow"]  # each once
