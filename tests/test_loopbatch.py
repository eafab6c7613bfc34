"""engine.loopbatch: one turn's requests done back to back, each answered with its own result."""

from __future__ import annotations

import asyncio
import collections
import contextvars
import gc
import threading
import types
import weakref

import pytest

from engine.loopbatch import LoopBatch, _alone


def test_one_turns_work_runs_in_one_callback_in_arrival_order() -> None:
    calls: list[tuple[int, int]] = []
    turn = [0]

    def work(n: int) -> int:
        calls.append((turn[0], n))
        return n * 10

    async def main() -> list[int]:
        batch = LoopBatch(work)

        def tick() -> None:  # counts the loop's turns: the batch must run within one
            turn[0] += 1
            asyncio.get_running_loop().call_soon(tick)
        asyncio.get_running_loop().call_soon(tick)
        return await asyncio.gather(*(batch.run(n) for n in range(5)))
    assert asyncio.run(main()) == [0, 10, 20, 30, 40]
    assert [n for _, n in calls] == [0, 1, 2, 3, 4]
    assert len({t for t, _ in calls}) == 1  # all five in the same turn


def test_a_later_turn_gets_a_new_batch() -> None:
    turns: list[list[int]] = []

    async def main() -> None:
        batch = LoopBatch(lambda n: n)
        original = batch._run_queue  # noqa: SLF001

        def run_queue(loop: asyncio.AbstractEventLoop) -> None:
            turns.append([args[0] for args, _, _ in batch._queues.get(loop, ())])  # noqa: SLF001
            original(loop)
        batch._run_queue = run_queue  # type: ignore[method-assign]  # noqa: SLF001
        assert await asyncio.gather(batch.run(1), batch.run(2)) == [1, 2]
        assert await asyncio.gather(batch.run(3), batch.run(4)) == [3, 4]
        assert not batch._queues  # noqa: SLF001 - nothing left queued between turns
    asyncio.run(main())
    assert turns == [[1, 2], [3, 4]]


def test_each_request_gets_its_own_exception_and_the_others_their_results() -> None:
    def work(n: int) -> int:
        if n == 2:
            raise ValueError("two")
        return n

    async def main() -> list[object]:
        batch = LoopBatch(work)
        return await asyncio.gather(*(batch.run(n) for n in range(4)), return_exceptions=True)
    out = asyncio.run(main())
    assert out[:2] == [0, 1] and out[3] == 3
    assert isinstance(out[2], ValueError) and str(out[2]) == "two"


def test_a_cancelled_request_is_not_computed() -> None:
    done: list[int] = []

    async def main() -> None:
        batch = LoopBatch(done.append)
        first = asyncio.ensure_future(batch.run(1))
        second = asyncio.ensure_future(batch.run(2))
        await asyncio.sleep(0)  # both queued, their turn not yet run
        first.cancel()
        await second
        with pytest.raises(asyncio.CancelledError):
            await first
    asyncio.run(main())
    assert done == [2]


def test_an_interrupt_fails_the_rest_of_the_turn_instead_of_leaving_it_waiting() -> None:
    def work(n: int) -> int:
        if n == 1:
            raise KeyboardInterrupt
        return n

    loop = asyncio.new_event_loop()
    try:
        batch = LoopBatch(work)
        futures = [loop.create_task(batch.run(n)) for n in range(3)]
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(asyncio.gather(*futures))
        loop.run_until_complete(asyncio.sleep(0))  # let the tasks see their futures' ends
        assert futures[0].result() == 0
        for task in futures[1:]:
            assert isinstance(task.exception(), RuntimeError)
    finally:
        loop.close()


def test_loops_in_two_threads_keep_their_own_queues() -> None:
    where: list[tuple[int, int]] = []

    def work(n: int) -> int:
        where.append((threading.get_ident(), n))
        return n

    batch = LoopBatch(work)
    results: dict[int, list[int]] = {}
    start = threading.Barrier(2)

    def serve(base: int) -> None:
        async def main() -> list[int]:
            start.wait()
            out = []
            for _ in range(50):
                out += await asyncio.gather(*(batch.run(base + n) for n in range(3)))
            return out
        results[base] = asyncio.run(main())
    threads = [threading.Thread(target=serve, args=(base,)) for base in (0, 100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results[0] == [0, 1, 2] * 50 and results[100] == [100, 101, 102] * 50
    by_thread: dict[int, set[int]] = {}
    for ident, n in where:
        by_thread.setdefault(ident, set()).add(n // 100)
    assert sorted(map(sorted, by_thread.values())) == [[0], [1]]  # each thread computed its own


def test_a_loop_closed_before_its_turn_is_forgotten() -> None:
    batch = LoopBatch(lambda n: n)
    dead = asyncio.new_event_loop()
    task = dead.create_task(batch.run(1))
    dead.call_soon(dead.stop)  # the task queues its work, then the loop stops before the work's turn
    dead.run_forever()
    dead.set_exception_handler(lambda _loop, _context: None)  # the task is pending for ever: by design
    dead.close()
    assert list(batch._queues) == [dead]  # noqa: SLF001
    assert asyncio.run(batch.run(2)) == 2
    assert not batch._queues  # noqa: SLF001
    del task


def test_a_request_alone_in_its_turn_is_done_at_once_one_with_company_waits_for_its_turn() -> None:
    order: list[str] = []

    async def main() -> None:
        batch = LoopBatch(order.append)
        await batch.run("alone")  # nothing else waits in this turn: no batch, no extra turn
        order.append("after")
        asyncio.get_running_loop().call_soon(order.append, "waiting callback")
        await batch.run("with company")  # something waits: batched, run after it
    asyncio.run(main())
    assert order == ["alone", "after", "waiting callback", "with company"]


def test_a_loop_that_does_not_show_its_turn_is_never_taken_as_alone() -> None:
    assert _alone(types.SimpleNamespace()) is False  # type: ignore[arg-type] - e.g. uvloop
    assert _alone(types.SimpleNamespace(_ready=object())) is False  # type: ignore[arg-type]
    assert _alone(types.SimpleNamespace(_ready=collections.deque())) is True  # type: ignore[arg-type]
    assert _alone(types.SimpleNamespace(_ready=collections.deque([1]))) is False  # type: ignore[arg-type]


def test_each_requests_work_runs_in_its_own_context() -> None:
    """A span's parent or a middleware's contextvar must be the request's own, not the context of
    the request that happened to start the turn."""
    request = contextvars.ContextVar("request")

    def work(n: int) -> tuple[int, object]:
        return n, request.get(None)

    async def one(n: int) -> tuple[int, object]:
        request.set(f"r{n}")
        return await batch.run(n)

    batch = LoopBatch(work)

    async def main() -> list[tuple[int, object]]:
        return await asyncio.gather(*(one(n) for n in range(4)))
    assert asyncio.run(main()) == [(0, "r0"), (1, "r1"), (2, "r2"), (3, "r3")]


@pytest.mark.parametrize("error", [StopIteration, GeneratorExit, asyncio.CancelledError])
def test_what_a_future_refuses_or_a_callback_would_swallow_fails_its_own_request_only(
        error: type[BaseException]) -> None:
    """As in a coroutine (PEP 479): the request gets a RuntimeError whose cause is the error; the
    turn's other requests get their results."""
    def work(n: int) -> int:
        if n == 1:
            raise error
        return n

    async def main() -> list[object]:
        batch = LoopBatch(work)
        return await asyncio.wait_for(asyncio.gather(*(batch.run(n) for n in range(3)), return_exceptions=True), 5)
    out = asyncio.run(main())
    assert out[0] == 0 and out[2] == 2
    assert isinstance(out[1], RuntimeError) and isinstance(out[1].__cause__, error)


def test_forgetting_closed_loops_survives_another_thread_changing_the_queues() -> None:
    """With an app served on loops in several threads, _forget_closed iterated ``_queues`` while
    another thread could add or pop its own loop's queue: 'dictionary changed size during
    iteration', a 500 (a review found it through the app with six threads). Modelled here
    deterministically: the other thread's insert happens while the dictionary is being iterated."""
    batch: LoopBatch[int] = LoopBatch(lambda n: n)

    class OtherLoop:  # another thread's loop, whose turn starts while we look at it
        def is_closed(self) -> bool:
            batch._queues[object()] = []  # type: ignore[index]  # noqa: SLF001 - that thread's first request
            return False

    batch._queues[OtherLoop()] = []  # type: ignore[index]  # noqa: SLF001

    async def main() -> int:
        return await batch.run(7)
    assert asyncio.run(main()) == 7


def test_a_refused_request_does_not_pin_the_rest_of_its_turn_until_the_cyclic_gc() -> None:
    """The exception set on a future kept a traceback through _run_queue's frame, whose ``batch``
    holds every request of the turn (scopes, bodies up to 1 MiB): a cycle, freed only by the
    cyclic GC (a review measured, through the app, 7 x 900 kB bodies and one bad JSON per turn
    holding up to ~80 MB more than before the batch)."""
    class Body:  # stands for a request's body
        pass

    def work(body: Body | None) -> int:
        if body is None:
            raise ValueError("refused")
        return 1

    refs: list[weakref.ref[Body]] = []

    async def main() -> None:
        batch = LoopBatch(work)
        bodies = [Body() for _ in range(3)]
        refs.extend(weakref.ref(b) for b in bodies)
        await asyncio.gather(*(batch.run(b) for b in [*bodies, None]), return_exceptions=True)
        del bodies
    gc.collect()
    gc.disable()
    try:
        asyncio.run(main())
        assert [r() for r in refs] == [None, None, None]
    finally:
        gc.enable()
