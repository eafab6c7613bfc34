"""Edges of the service's ASGI plumbing and the log's fast JSON, found by review (each failed before its fix).

- body deadlines are kept per event loop: a second loop never drops the first loop's;
- a cancellation from elsewhere (a shutdown) that arrives with the body deadline stays a cancellation;
- decision_json writes what exact_json writes for keys that are not plain str.

In-process, no network; each runs in well under a few seconds.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
import time
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from conftest import POLICIES, decide_scope, stalled_receive
from engine.httpio import BodyReader, Reject
from engine.log import decision_json, exact_json
from engine.service import create_app

DELIVERY = {"vendor": "itellum", "kind": "delivery", "as_of": "2025-02-14", "facts": {"defect_at_delivery": True}}


# --- 1. BodyReader: one timer "per event loop" is really one timer per reader -------------------

def test_a_second_event_loop_does_not_drop_the_first_loops_body_deadlines(tmp_path: Path) -> None:
    """A slow body on one event loop must get 408 within deadline + a quarter, whatever another
    loop does with the same application. Today any read on a second loop moves the reader's one
    timer there; the first loop's old timer then runs _check with the *other* loop, deletes the
    first loop's reads as 'left by a loop that stopped' (and fails to re-arm on the closed loop):
    the slowloris request on loop A is never answered (the connection is held for ever)."""
    shutil.copytree(POLICIES / "itellum", tmp_path / "policies" / "itellum")
    app = create_app(tmp_path / "policies", workbench=False, watch_interval=None, body_timeout=0.2)
    out: dict[str, Any] = {}

    def loop_a() -> None:
        sent: list[Any] = []

        async def send(message: Any) -> None:
            sent.append(message)

        async def run() -> None:
            try:
                await asyncio.wait_for(app(decide_scope(), stalled_receive(), send), 2.0)  # 10x the deadline
            except TimeoutError:
                pass
        asyncio.run(run())
        out["a"] = next((m["status"] for m in sent if m["type"] == "http.response.start"), "no answer in 2 s")

    thread = threading.Thread(target=loop_a)
    thread.start()
    time.sleep(0.05)  # loop A's read is in flight, its timer armed

    async def request_on_loop_b() -> int:  # e.g. another TestClient portal / server thread
        body = json.dumps(DELIVERY).encode()
        parts = [{"type": "http.request", "body": body[:10], "more_body": True},
                 {"type": "http.request", "body": body[10:], "more_body": False}]
        sent: list[Any] = []

        async def receive() -> Any:
            await asyncio.sleep(0.01)
            return parts.pop(0)

        async def send(message: Any) -> None:
            sent.append(message)
        await app(decide_scope(), receive, send)
        return sent[0]["status"]
    assert asyncio.run(request_on_loop_b()) == 200
    thread.join()
    assert out["a"] == 408


def test_body_reader_alone_keeps_deadlines_of_two_loops() -> None:
    """The same, on BodyReader alone: read on loop A (thread), a short read on loop B."""
    reader = BodyReader(1000, 0.2)
    out: dict[str, Any] = {}

    def loop_a() -> None:
        async def run() -> Any:
            try:
                return await asyncio.wait_for(reader.read(decide_scope(), stalled_receive()), 2.0)
            except Reject as err:
                return err.status
            except TimeoutError:
                return "no 408 within 2 s"
        out["a"] = asyncio.run(run())

    thread = threading.Thread(target=loop_a)
    thread.start()
    time.sleep(0.05)

    async def quick() -> bytes:
        parts = [{"type": "http.request", "body": b"{", "more_body": True}, {"type": "http.request", "body": b"}"}]

        async def receive() -> Any:
            await asyncio.sleep(0.01)
            return parts.pop(0)
        return await reader.read(decide_scope(), receive)
    assert asyncio.run(quick()) == b"{}"
    thread.join()
    assert out["a"] == 408


# --- 2. BodyReader: a cancellation that is not ours, arriving with the deadline, is swallowed ----

@pytest.mark.parametrize("order", ["deadline-then-cancel", "cancel-then-deadline"])
def test_a_shutdown_cancel_that_coincides_with_the_deadline_stays_a_cancellation(order: str) -> None:
    """asyncio.timeout (the code replaced) turns its own cancel into TimeoutError only when no other
    cancel is pending (uncancel() back to the count at entry). BodyReader.read uncancels once and
    raises Reject 408 even when the server (shutdown, an outer timeout, a task group) also
    cancelled the task: that cancellation is lost and the task is left with cancelling() == 1."""
    reader = BodyReader(1000, 30.0)

    async def run() -> Any:
        task = asyncio.ensure_future(reader.read(decide_scope(), stalled_receive()))
        await asyncio.sleep(0.01)
        loop = asyncio.get_running_loop()
        state = reader._loops[loop]
        if order == "deadline-then-cancel":
            state.reading[task] = 0.0  # its deadline has passed: the next tick cancels it
            reader._check(loop)
            task.cancel()  # ...and, in the same loop iteration, the server cancels the request
        else:
            task.cancel()
            state.reading[task] = 0.0
            reader._check(loop)
        try:
            await task
        except asyncio.CancelledError:
            return "cancelled"
        except Reject as err:
            return (err.status, task.cancelling())
        return "read"
    assert asyncio.run(run()) == "cancelled"


# --- 3. decision_json is not exact_json for keys that are not plain str ------------------------

@pytest.mark.parametrize("key", [True, None, Decimal("1.0"), date(2025, 1, 2), (1, 2)],
                         ids=["bool", "none", "decimal", "date", "tuple"])
def test_decision_json_writes_or_refuses_what_exact_json_does_for_any_key(key: Any) -> None:
    """DecisionLog.write_many accepts any dict as a decision and used to write it with exact_json
    (str(key)). The C encoder writes True/None keys as "true"/"null" (different text in the log),
    and raises an uncaught TypeError for Decimal/date/tuple keys (the walk writes them; in the
    service that TypeError is not 'busy', so unavailable() re-raises it: a 500)."""
    value = {"d": {key: 1}}
    assert decision_json(value) == exact_json(value)
