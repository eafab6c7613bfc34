"""Which requests ``clause serve`` decides on its event loop, and which it sends to a worker thread.

A decision on the loop saves the thread hop but holds every other request
while it runs, so only cheap ones go there: small bodies (by what arrived,
not by what Content-Length claims) of vendors whose kinds are small, and
never an explanation. Driven through the ASGI interface, no network.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import POLICIES, ROOT, decide_scope
from engine import service

sys.path.insert(0, str(ROOT / "bench"))
import compare  # noqa: E402 - the benchmark's generated policy

ITELLUM = {"vendor": "itellum", "kind": "delivery", "as_of": "2025-02-14", "facts": {"defect_at_delivery": True}}
BIG = {"vendor": "benchco", "kind": "refund", "as_of": "2025-06-01",
       "facts": {"category": "home", "tier": "gold", "days": 3, "defect": False, "opened": True, "receipt": True,
                 "price": "10.00"}}


def _post(app: Any, body: bytes, query: bytes = b"") -> tuple[int, dict[str, Any]]:
    """One request, alone, its body in two messages under a Content-Length that lies (says 2)."""
    async def run() -> tuple[int, dict[str, Any]]:
        async with app.router.lifespan_context(app):
            return await _call(app, body, query, split=True)
    return asyncio.run(run())


async def _call(app: Any, body: bytes, query: bytes, *, split: bool = False) -> tuple[int, dict[str, Any]]:
    """A ``POST /v1/decide`` through the ASGI interface: (status, JSON answer)."""
    length = b"2" if split else str(len(body)).encode()  # split: a lie, the body is longer
    scope = decide_scope([(b"host", b"t"), (b"content-type", b"application/json"), (b"content-length", length)],
                         query)
    parts = ([{"type": "http.request", "body": body[:7], "more_body": True},
              {"type": "http.request", "body": body[7:], "more_body": False}] if split
             else [{"type": "http.request", "body": body, "more_body": False}])
    sent: list[Any] = []

    async def receive() -> Any:
        return parts.pop(0) if parts else {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)
    await app(scope, receive, send)
    answer = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], json.loads(answer)


@pytest.fixture()
def app_and_hops(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[str]]:
    home = tmp_path / "policies"
    shutil.copytree(POLICIES / "itellum", home / "itellum")
    compare.clause_policy(compare._band_rules(service.INLINE_RULES + 1), home)  # one kind over the bound
    hops: list[str] = []
    original = service.run_in_threadpool

    async def counted(fn: Any, *args: Any) -> Any:
        hops.append(args[1]["vendor"])
        return await original(fn, *args)
    monkeypatch.setattr(service, "run_in_threadpool", counted)
    return service.create_app(home, workbench=False), hops


def test_a_small_case_of_a_small_policy_is_decided_on_the_loop(app_and_hops: tuple[Any, list[str]]) -> None:
    app, hops = app_and_hops
    status, answer = _post(app, json.dumps(ITELLUM).encode())
    assert status == 200 and answer["outcome"] == "replace" and hops == []


def test_big_policies_big_bodies_and_explanations_go_to_a_thread(app_and_hops: tuple[Any, list[str]]) -> None:
    app, hops = app_and_hops
    status, answer = _post(app, json.dumps(BIG).encode())
    assert status == 200 and answer["vendor"] == "benchco" and hops == ["benchco"]
    padded = json.dumps({**ITELLUM, "id": "x" * (service.INLINE_BODY + 1)}).encode()
    assert _post(app, padded)[0] == 200 and hops == ["benchco", "itellum"]  # Content-Length said 2
    assert _post(app, json.dumps(ITELLUM).encode(), b"explain=true")[0] == 200
    assert hops == ["benchco", "itellum", "itellum"]


def test_requests_of_one_turn_are_decided_together_each_answered_its_own(
        app_and_hops: tuple[Any, list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    """Concurrent requests meet in one batch (engine.loopbatch); a refusal or a thread hop in it
    touches no other request's answer."""
    app, hops = app_and_hops
    batches: list[int] = []
    original = service.LoopBatch._run_queue

    def run_queue(self: Any, loop: Any) -> None:
        batches.append(len(self._queues.get(loop, ())))
        original(self, loop)
    monkeypatch.setattr(service.LoopBatch, "_run_queue", run_queue)
    warranty = {**ITELLUM, "id": "w", "kind": "warranty",
                "facts": {"installed_on": "2025-01-01", "failed_on": "2025-01-05", "damage_cause": "factory"}}
    requests = [(json.dumps({**ITELLUM, "id": "a"}).encode(), b""), (b"{not json", b""),
                (json.dumps(warranty).encode(), b""), (json.dumps(BIG).encode(), b""),
                (json.dumps({**ITELLUM, "id": "b"}).encode(), b"lang=xx")]
    alone = [_post(app, body, query) for body, query in requests]
    batches.clear()

    async def together() -> list[tuple[int, dict[str, Any]]]:
        async with app.router.lifespan_context(app):
            return await asyncio.gather(*(_call(app, body, query) for body, query in requests))
    answers = asyncio.run(together())
    assert batches == [5]  # one turn, one batch
    assert [s for s, _ in answers] == [200, 422, 200, 200, 422]
    assert answers[0][1]["case_id"] == "a" and answers[2][1]["case_id"] == "w"
    assert answers[1][1]["diagnostics"][0]["code"] == "json" and answers[4][1]["diagnostics"][0]["code"] == "lang"
    assert answers == alone
    assert hops == ["benchco", "benchco"]  # the big policy's case went to a thread both times


class _LockedLog:
    """A decision log whose database stays locked (sqlite3's 'database is locked')."""

    def write_many(self, *_: Any, **__: Any) -> None:
        raise sqlite3.OperationalError("database is locked")


def test_a_turn_whose_log_is_locked_is_answered_503_and_a_refusal_in_it_422(tmp_path: Path) -> None:
    """Decided in the batch, then refused by the log: not given (503, retry), each on its own."""
    home = tmp_path / "policies"
    shutil.copytree(POLICIES / "itellum", home / "itellum")
    app = service.create_app(home, workbench=False, log=_LockedLog())  # type: ignore[arg-type]
    requests = [(json.dumps({**ITELLUM, "id": n}).encode(), b"") for n in range(3)] + [(b"[", b"")]

    async def together() -> list[tuple[int, dict[str, Any]]]:
        async with app.router.lifespan_context(app):
            return await asyncio.gather(*(_call(app, body, query) for body, query in requests))
    answers = asyncio.run(together())
    assert [s for s, _ in answers] == [503, 503, 503, 422]
    assert all(a["diagnostics"][0]["code"] == "log_unavailable" for _, a in answers[:3])
    assert answers[3][1]["diagnostics"][0]["code"] == "json"
