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


def test_waiters_on_an_event_loop_share_transactions_and_one_wake_up_per_group() -> None:
    """Requests awaiting on a loop: each is answered after its commit, a failing one alone, and the
    writer wakes the loop once per group (not once per waiter)."""
    log = FakeLog(delay=0.02)
    writer = GroupCommitter(log)
    wake_ups = []

    async def run() -> list[BaseException | None]:
        loop = asyncio.get_running_loop()
        original = loop.call_soon_threadsafe

        def counted(*args: Any, **kwargs: Any) -> Any:
            wake_ups.append(args[0])
            return original(*args, **kwargs)
        loop.call_soon_threadsafe = counted  # type: ignore[method-assign]

        async def one(name: str) -> BaseException | None:
            try:
                await writer.write_many_async([name], "serve", timeout=10)
            except ValueError as err:
                return err
            return None
        grouped = await asyncio.gather(*(one(f"r{i}") for i in range(30)))
        together = len(log.transactions), len(wake_ups)
        with_bad = await asyncio.gather(*(one(name) for name in ("s1", "bad", "s2")))
        return [*grouped, *with_bad, together]
    *results, (transactions, woken) = asyncio.run(run())
    writer.close()
    assert isinstance(results[31], ValueError) and all(r is None for i, r in enumerate(results) if i != 31)
    assert sorted(x for t in log.transactions for x in t) == sorted([f"r{i}" for i in range(30)] + ["s1", "s2"])
    assert transactions < 30 and woken == transactions  # one wake-up per group


def test_a_closed_loop_does_not_stop_the_writer() -> None:
    """A request whose loop ended (it timed out, the server stopped) is answered nowhere; the writer
    goes on serving the next requests."""
    log = FakeLog(delay=0.2)
    writer = GroupCommitter(log)
    with pytest.raises(LogTimeout):
        asyncio.run(writer.write_many_async(["gone"], "serve", timeout=0.02))  # its loop closes at once
    time.sleep(0.3)  # the commit lands after the loop closed
    asyncio.run(writer.write_many_async(["next"], "serve", timeout=5))
    writer.close()
    assert [x for t in log.transactions for x in t] == ["gone", "next"]
