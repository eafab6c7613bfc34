"""The HTTP plumbing of ``POST /v1/decide``, written for a request that costs tens of microseconds.

A decision takes ~10-50 µs, so what surrounds it counts: Starlette's
``Request`` and ``JSONResponse`` conveniences (a headers object, an async
generator per body, a JSON encoder built per response) and one timer per
request for the body deadline cost about as much as the decision itself.
Here, at the ASGI level:

* :class:`BodyReader` reads a body up to a size limit within a deadline
  kept by **one** timer for all the requests in flight (a body late by
  more than the deadline is cancelled within a quarter of the deadline
  after it), instead of a timer armed and cancelled per request;
* :func:`json_bytes` and :func:`send_json_bytes` write a decision as the
  JSON answer — the bytes and headers ``JSONResponse`` writes
  (``content-length`` then ``content-type: application/json``; compact
  separators, no ASCII escaping) — with orjson, which writes a decision in
  a fifth of the time json's C encoder takes (about 1.5 µs against 8),
  and json's encoder, built once, for what orjson refuses (an integer
  beyond 64 bits, a lone surrogate, a key that is not a plain str);
* :class:`DirectService` hands ``POST /v1/decide`` straight to its
  endpoint, past Starlette's error and routing layers (about 15 µs a
  request), as long as nobody added middleware, exception handlers or a
  route in front of it.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from asyncio import current_task, get_running_loop
from typing import Any, Awaitable, Callable

import orjson
from starlette.applications import Starlette

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]

# What Starlette's JSONResponse.render passes to json.dumps, built once.
_ENCODE = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
_JSON = (b"content-type", b"application/json")


class Reject(Exception):
    """A request refused before it is decided: answered as a problem with this status and code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def json_bytes(content: Any) -> bytes:
    """A decision's dict as ``JSONResponse`` would write it.

    Only for values without floats, which a decision never holds (amounts
    and bounds are text): orjson writes ``1e16`` where json writes
    ``1e+16``, and a NaN as ``null`` where json refuses it."""
    try:
        return orjson.dumps(content)
    except (TypeError, ValueError):  # orjson.JSONEncodeError is a TypeError
        return _ENCODE(content).encode("utf-8")


async def send_json(send: Send, content: Any, status: int = 200) -> None:
    """Answer ``content`` as JSON (what ``JSONResponse(content, status)`` sends)."""
    await send_json_bytes(send, json_bytes(content), status)


async def send_json_bytes(send: Send, body: bytes, status: int = 200) -> None:
    """Answer ``body``, a JSON text already encoded (by :func:`json_bytes`)."""
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-length", str(len(body)).encode("latin-1")), _JSON]})
    await send({"type": "http.response.body", "body": body})


def asgi_endpoint(app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> Any:
    """``app`` as an object Starlette's ``Route`` calls as a plain ASGI application (a function it
    would wrap as a request -> response endpoint), with no call frame of its own."""
    return type(app.__name__, (), {"__call__": staticmethod(app)})()


class _LoopDeadlines:
    """The reads in flight on one event loop, their deadlines, and the loop's one timer."""

    __slots__ = ("expired", "reading", "timer")

    def __init__(self) -> None:
        self.reading: dict[asyncio.Task[Any], float] = {}
        self.expired: set[asyncio.Task[Any]] = set()
        self.timer: asyncio.TimerHandle | None = None


class BodyReader:
    """Request bodies read whole, at most ``max_body`` bytes, within ``timeout`` seconds.

    The deadline of every read in flight is kept in one table per event
    loop; one timer per loop, armed only while some read is in flight there,
    checks it every quarter of ``timeout`` and cancels the reads past their
    deadline (each then raises :class:`Reject` 408 — its own cancellation,
    never another's: a cancellation from elsewhere that arrives with it, such
    as a shutdown, stays a cancellation).
    """

    def __init__(self, max_body: int, timeout: float) -> None:
        self.max_body, self.timeout, self.tick = max_body, timeout, timeout / 4
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopDeadlines] = \
            weakref.WeakKeyDictionary()
        # The last loop read on (weakly) and its table: one server has one loop, and looking it
        # up in the weak dictionary on every read cost about as much as the rest of the bookkeeping.
        self._last: tuple[weakref.ref[asyncio.AbstractEventLoop], _LoopDeadlines] | None = None

    def _too_large(self) -> Reject:
        return Reject(413, "body_too_large", f"the body is over {self.max_body} bytes")

    async def read(self, scope: Scope, receive: Receive) -> bytes:
        """The whole body, or :class:`Reject`: 413 too large, 408 too slow, 400 the client left."""
        for name, value in scope["headers"]:
            if name == b"content-length":  # the first one, as Starlette's Headers.get reads it
                if value.isdigit() and int(value) > self.max_body:
                    raise self._too_large()
                break
        loop = get_running_loop()
        task = current_task(loop)  # given the loop: asking for it again costs a system call (getpid)
        assert task is not None
        last = self._last
        if last is not None and last[0]() is loop:  # the loop of the last read: the usual case
            state = last[1]
        else:
            state = self._loops.get(loop)
            if state is None:
                state = self._loops[loop] = _LoopDeadlines()  # keyed weakly: it never holds the loop
            self._last = (weakref.ref(loop), state)
        state.reading[task] = loop.time() + self.timeout
        if state.timer is None:
            state.timer = loop.call_later(self.tick, self._check, loop)
        pending = task.cancelling()  # cancellations already asked for, not ours
        try:
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                body = message.get("body", b"")  # the usual case: the whole body in one message
                if len(body) > self.max_body:
                    raise self._too_large()
                return bytes(body)
            return await self._rest(message, receive)
        except asyncio.CancelledError:
            if task not in state.expired:
                raise
            state.expired.discard(task)
            if task.uncancel() > pending:
                raise  # cancelled from elsewhere too (a shutdown): that one wins
            raise Reject(408, "body_timeout", f"the body did not arrive within {self.timeout:g} s") from None
        finally:
            state.reading.pop(task, None)
            state.expired.discard(task)

    async def _rest(self, message: Any, receive: Receive) -> bytes:
        """A body in several messages (or none), from its first message on."""
        data = bytearray()
        while True:
            if message["type"] == "http.request":
                data += message.get("body", b"")
                if len(data) > self.max_body:
                    raise self._too_large()
                if not message.get("more_body", False):
                    return bytes(data)
            elif message["type"] == "http.disconnect":
                raise Reject(400, "client_disconnect", "the client went away before sending the whole body")
            message = await receive()

    def _check(self, loop: asyncio.AbstractEventLoop) -> None:
        """One loop's timer: cancel its reads past their deadline; re-arm while any is in flight."""
        state = self._loops[loop]
        now = loop.time()
        for task, deadline in list(state.reading.items()):
            if deadline <= now:
                del state.reading[task]
                state.expired.add(task)
                task.cancel()
        state.timer = loop.call_later(self.tick, self._check, loop) if state.reading else None


class DirectService(Starlette):
    """A Starlette application that hands ``POST /v1/decide`` to ``direct`` itself.

    ``direct`` must do for that route what the layers it skips would: name
    the request in the access log and metrics, answer a :class:`Reject` as
    its problem and a crash as a 500. It is used only while the application
    is as :meth:`go_direct` found it: the same number of middleware, the
    same exception handlers, the same first route (``POST /v1/decide``'s:
    nothing after it can shadow it). Someone embedding the app who adds a
    middleware (authentication, CORS), an exception handler or a route of
    their own in front gets every request the usual way through the stack.
    """

    direct: Callable[[Scope, Receive, Send], Awaitable[None]] | None = None
    _built: tuple[int, dict[Any, Any], Any] = (0, {}, None)

    def go_direct(self, direct: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        """Serve ``POST /v1/decide`` with ``direct`` while the application stays as it is now
        (its first route must be that one)."""
        self.direct = direct
        self._built = (len(self.user_middleware), dict(self.exception_handlers), self.router.routes[0])

    def _as_built(self) -> bool:
        middleware, handlers, first = self._built
        routes = self.router.routes
        return (len(self.user_middleware) == middleware and self.exception_handlers == handlers
                and bool(routes) and routes[0] is first)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (self.direct is not None and scope["type"] == "http" and scope["path"] == "/v1/decide"
                and scope["method"] == "POST" and not scope.get("root_path") and self._as_built()):
            scope["app"] = self
            await self.direct(scope, receive, send)
            return
        await super().__call__(scope, receive, send)
