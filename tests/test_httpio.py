"""engine/httpio.py's BodyReader: the table of the last loop read on is remembered, never another loop's."""

from __future__ import annotations

import asyncio
from typing import Any

from conftest import stalled_receive
from engine.httpio import BodyReader, Reject

_SCOPE = {"type": "http", "headers": [(b"content-type", b"application/json")]}


async def _status(reader: BodyReader) -> Any:
    try:
        return await asyncio.wait_for(reader.read(_SCOPE, stalled_receive()), 2.0)
    except Reject as err:
        return err.status
    except TimeoutError:
        return "no 408 within 2 s"


def test_a_read_on_a_new_loop_is_timed_by_that_loop_not_the_last_one() -> None:
    """After reads on loop B (kept alive here), a slow body on loop A still gets its 408: A's read
    goes in A's table, timed by A's timer, not in the remembered table of B (whose timer never
    runs again once B is closed)."""
    reader = BodyReader(1000, 0.2)
    whole = {"type": "http.request", "body": b"{}"}

    async def receive() -> Any:
        return whole
    b = asyncio.new_event_loop()
    try:
        assert b.run_until_complete(reader.read(_SCOPE, receive)) == b"{}"
        assert b.run_until_complete(reader.read(_SCOPE, receive)) == b"{}"
    finally:
        b.close()
    assert asyncio.run(_status(reader)) == 408
    assert asyncio.run(_status(reader)) == 408  # and again on a third loop, after A's
    del b


def test_one_message_bodies_and_their_limit() -> None:
    reader = BodyReader(4, 5.0)

    async def run(body: bytes) -> Any:
        async def receive() -> Any:
            return {"type": "http.request", "body": body}
        try:
            return await reader.read(_SCOPE, receive)
        except Reject as err:
            return err.status
    assert asyncio.run(run(b"1234")) == b"1234"
    assert asyncio.run(run(b"12345")) == 413
    assert asyncio.run(run(bytearray(b"12"))) == b"12"
