"""Work of one event-loop turn's requests, done back to back in one callback.

Under concurrent load a server's event loop wakes with several requests
ready at once and runs each one's task to the end before the next: the
HTTP parser, the decision, the response's writing and its system call,
the access log — and then the next request's decision. On a small machine
that interleaving leaves the decision's code and data (the compiled
policy, the generated decide path, the number and date routines) out of
the processor's caches every time: a decision that takes 7 µs in a loop
took about 26 µs in the server (``bench/service.py`` with the decide step
stubbed out, benchmark policy, concurrency 8).

:class:`LoopBatch` queues each request's work and runs the whole queue in
one ``call_soon`` callback, in arrival order, at the start of the loop's
next turn; each request's task awaits its own result. The decisions of
one turn then run on warm caches. The cost is one future and one loop turn
per request, which a lone request (concurrency 1) also pays; measured, it
is within the noise there, and at concurrency 8 the server's CPU per
request fell by 14-18 µs.

Nothing is shared between requests but the queue: each request's work is
its own function call, its exception is raised in its own task, and a
request whose task was cancelled before its turn is skipped.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Generic, TypeVar

R = TypeVar("R")


class LoopBatch(Generic[R]):
    """``await batch.run(*args)`` is ``work(*args)``, run in a callback with the same turn's others."""

    def __init__(self, work: Callable[..., R]) -> None:
        self.work = work
        # Per event loop (an app may be served on several, in several threads), the work queued
        # for its next turn. An entry exists only from a turn's first request to that turn's callback.
        self._queues: dict[asyncio.AbstractEventLoop, list[tuple[tuple[Any, ...], asyncio.Future[R]]]] = {}

    async def run(self, *args: Any) -> R:
        """``work(*args)``'s result (or its exception), computed at the start of the loop's next turn."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        queue = self._queues.get(loop)
        if queue is None:
            if self._queues:  # another loop's queue: only a loop closed before its turn leaves one
                self._forget_closed()
            self._queues[loop] = [(args, future)]
            loop.call_soon(self._run_queue, loop)
        else:
            queue.append((args, future))
        return await future

    def _run_queue(self, loop: asyncio.AbstractEventLoop) -> None:
        batch = self._queues.pop(loop, [])
        for index, (args, future) in enumerate(batch):
            if future.cancelled():
                continue  # its request is gone (a shutdown, a timeout): nothing to compute
            try:
                result = self.work(*args)
            except Exception as exc:  # noqa: BLE001 - the request's own error, raised in its own task
                future.set_exception(exc)
            except BaseException:  # KeyboardInterrupt, SystemExit: the rest must fail, not wait for ever
                for _, rest in batch[index:]:
                    if not rest.done():
                        rest.set_exception(RuntimeError("the server was interrupted before this request's turn"))
                raise
            else:
                future.set_result(result)

    def _forget_closed(self) -> None:
        for other in [other for other in self._queues if other.is_closed()]:
            del self._queues[other]


__all__ = ["LoopBatch"]
