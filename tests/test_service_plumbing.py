"""The lean request path of ``POST /v1/decide`` (engine/httpio.py) answers what Starlette's did.

The decide endpoint reads its body, options and answer at the ASGI level,
with one deadline timer for all body reads and one JSON encoder built once;
the metrics look their labelled children up once. These tests pin what
those shortcuts must keep: the answer's bytes and headers, the 408 of a
late body (and only of the late one), cancellation that is not ours, the
languages after a reload, and bounded metric labels. In-process, no network.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from starlette.responses import JSONResponse

from conftest import POLICIES
from hardening_policy import write_policy
from engine.httpio import BodyReader, Reject, json_bytes, send_json
from engine.service import create_app

DELIVERY = {"vendor": "itellum", "kind": "delivery", "as_of": "2025-02-14", "facts": {"defect_at_delivery": True}}


def _scope(method: str = "POST", path: str = "/v1/decide", query: bytes = b"",
           headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": query, "root_path": "",
            "headers": headers if headers is not None else [(b"content-type", b"application/json")],
            "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}


async def _call(app: Any, scope: dict[str, Any], body: bytes) -> tuple[int, list[Any], bytes]:
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[Any] = []

    async def receive() -> Any:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)

    async def send(message: Any) -> None:
        sent.append(message)
    await app(scope, receive, send)
    body_out = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], sent[0]["headers"], body_out


def _raising_call(app: Any, raised: type[BaseException], failing_body: Exception | None = None) -> list[Any]:
    """The messages ``app`` sends for DELIVERY, which must end by raising ``raised`` to the server;
    with ``failing_body``, the server's send raises it on the response body (a client gone)."""
    sent: list[Any] = []

    async def receive() -> Any:
        return {"type": "http.request", "body": json.dumps(DELIVERY).encode(), "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)
        if failing_body is not None and message["type"] == "http.response.body":
            raise failing_body

    async def run() -> None:
        with pytest.raises(raised):
            await app(_scope(), receive, send)
    asyncio.run(run())
    return sent


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    shutil.copytree(POLICIES / "itellum", tmp_path / "policies" / "itellum")
    return tmp_path / "policies"


def test_the_answer_is_byte_for_byte_what_json_response_wrote(home: Path) -> None:
    app = create_app(home, workbench=False, watch_interval=None)
    status, headers, body = asyncio.run(_call(app, _scope(), json.dumps(DELIVERY).encode()))
    decision = json.loads(body)
    assert status == 200 and decision["outcome"] == "replace"
    reference = JSONResponse(decision)
    assert body == reference.body
    assert headers[:2] == reference.raw_headers and headers[2][0] == b"x-request-id"
    odd = {"text": "caf\u00e9 \u2014 \U0001f600", "n": [1, None, True], "nested": {"a": "\u00e9"}}
    assert json_bytes(odd) == JSONResponse(odd).body
    for refused_by_orjson in ({"n": 2 ** 64}, {"n": -(2 ** 63) - 1}, {True: 1, None: [2]}):
        assert json_bytes(refused_by_orjson) == JSONResponse(refused_by_orjson).body  # json writes them
    with pytest.raises(UnicodeEncodeError):  # a lone surrogate: refused, as JSONResponse refuses it
        json_bytes({"x": "\ud800"})


def test_send_json_sends_a_start_and_one_body() -> None:
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)
    asyncio.run(send_json(send, {"a": "\u00e9"}, 201))
    assert sent == [{"type": "http.response.start", "status": 201,
                     "headers": [(b"content-length", b"10"), (b"content-type", b"application/json")]},
                    {"type": "http.response.body", "body": '{"a":"\u00e9"}'.encode()}]


def test_options_and_languages_follow_a_reload(home: Path) -> None:
    app = create_app(home, workbench=False, watch_interval=None)
    body = json.dumps(DELIVERY).encode()
    assert asyncio.run(_call(app, _scope(query=b"lang=es"), body))[0] == 200
    status, _, answer = asyncio.run(_call(app, _scope(query=b"lang=fr"), body))
    assert status == 422 and json.loads(answer)["code"] == "lang"
    status, _, answer = asyncio.run(_call(app, _scope(query=b"explain=maybe"), body))
    assert status == 422 and json.loads(answer)["code"] == "query"
    unknown = json.dumps({**DELIVERY, "vendor": "nobody"}).encode()
    status, _, answer = asyncio.run(_call(app, _scope(query=b"lang=es"), unknown))
    assert status == 422 and "one of the policy's: en" in json.loads(answer)["detail"]


def test_the_languages_checked_are_the_served_engines_after_a_reload(tmp_path: Path) -> None:
    home = tmp_path / "policies"
    shutil.copytree(POLICIES / "itellum", tmp_path / "later" / "itellum")
    write_policy(home / "acme")
    app = create_app(home, workbench=False, watch_interval=None)
    body = json.dumps(DELIVERY).encode()
    status, _, answer = asyncio.run(_call(app, _scope(query=b"lang=es"), body))
    assert status == 422 and json.loads(answer)["code"] == "lang"  # no itellum yet: only "en" passes
    shutil.copytree(tmp_path / "later" / "itellum", home / "itellum")
    assert app.state.policies.reload(force=True)
    status, _, answer = asyncio.run(_call(app, _scope(query=b"lang=es"), body))
    assert status == 200 and json.loads(answer)["outcome"] == "replace"


def test_an_unknown_method_shares_one_metrics_label(home: Path) -> None:
    app = create_app(home, workbench=False, watch_interval=None)
    for method in ("FOO1", "FOO2", "POST"):
        asyncio.run(_call(app, _scope(method=method), json.dumps(DELIVERY).encode()))
    text = app.state.metrics.render()[0].decode()
    assert 'method="other"' in text and "FOO" not in text
    assert 'clause_http_request_seconds_count{method="POST",route="decide",status="200"} 1.0' in text


def _slow_receive(parts: list[dict[str, Any]]) -> Any:
    async def receive() -> Any:
        if parts:
            return parts.pop(0)
        await asyncio.sleep(3600)  # a client that never sends the rest
    return receive


def test_only_the_late_body_times_out_and_the_timer_stops_when_idle() -> None:
    reader = BodyReader(1000, 0.08)
    scope = _scope(headers=[(b"content-length", b"20")])

    async def run() -> tuple[Any, Any, Any]:
        late = asyncio.ensure_future(reader.read(scope, _slow_receive([{"type": "http.request", "body": b"{",
                                                                        "more_body": True}])))
        whole = await reader.read(scope, _slow_receive([{"type": "http.request", "body": b"{}"}]))

        async def slow_but_in_time() -> bytes:
            parts = [{"type": "http.request", "body": b"[", "more_body": True},
                     {"type": "http.request", "body": b"]", "more_body": False}]

            async def receive() -> Any:
                await asyncio.sleep(0.02)
                return parts.pop(0)
            return await reader.read(scope, receive)
        in_time = await slow_but_in_time()
        try:
            await late
        except Reject as err:
            late_error: Any = err
        await asyncio.sleep(0.1)  # nothing in flight: the timer must not re-arm
        state = reader._loops[asyncio.get_running_loop()]
        assert state.reading == {} and state.expired == set() and state.timer is None
        return whole, in_time, late_error
    whole, in_time, late_error = asyncio.run(run())
    assert whole == b"{}" and in_time == b"[]"
    assert late_error.status == 408 and late_error.code == "body_timeout"


def test_a_cancellation_that_is_not_the_deadline_stays_a_cancellation() -> None:
    reader = BodyReader(1000, 30.0)

    async def run() -> None:
        task = asyncio.ensure_future(reader.read(_scope(), _slow_receive([])))
        await asyncio.sleep(0.01)
        task.cancel()  # the server cancels the request (the client went away)
        with pytest.raises(asyncio.CancelledError):
            await task
        assert reader._loops[asyncio.get_running_loop()].reading == {}
    asyncio.run(run())


def test_sizes_are_refused_by_what_is_declared_and_by_what_arrives() -> None:
    reader = BodyReader(10, 5.0)

    async def read(headers: list[tuple[bytes, bytes]], parts: list[dict[str, Any]]) -> Any:
        try:
            return await reader.read(_scope(headers=headers), _slow_receive(parts))
        except Reject as err:
            return err.status, err.code
    chunk = {"type": "http.request", "body": b"123456", "more_body": True}
    assert asyncio.run(read([(b"content-length", b"11")], [])) == (413, "body_too_large")
    assert asyncio.run(read([(b"content-length", b"\xb2")], [{"type": "http.request", "body": b"1"}])) == b"1"
    assert asyncio.run(read([], [dict(chunk), dict(chunk)])) == (413, "body_too_large")
    assert asyncio.run(read([], [{"type": "http.request", "body": b"x" * 11}])) == (413, "body_too_large")
    assert asyncio.run(read([], [dict(chunk), {"type": "http.disconnect"}])) == (400, "client_disconnect")
    assert asyncio.run(read([], [dict(chunk), {"type": "http.request", "body": b"78"}])) == b"12345678"


# --- the direct route: POST /v1/decide past Starlette's layers (engine.httpio.DirectService) --------

def test_a_middleware_added_later_is_not_skipped_by_the_direct_route(home: Path) -> None:
    """Someone embedding the app adds their own middleware (authentication): the decide route must
    go through it like every other route, not around it."""
    app = create_app(home, workbench=False, watch_interval=None)
    seen: list[str] = []

    class Gate:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            seen.append(scope.get("path", ""))
            if scope["type"] == "http" and dict(scope["headers"]).get(b"authorization") != b"Bearer ok":
                await JSONResponse({"denied": True}, status_code=401)(scope, receive, send)
                return
            await self.inner(scope, receive, send)
    app.add_middleware(Gate)
    status, _, body = asyncio.run(_call(app, _scope(), json.dumps(DELIVERY).encode()))
    assert (status, json.loads(body)) == (401, {"denied": True}) and seen == ["/v1/decide"]
    allowed = _scope(headers=[(b"content-type", b"application/json"), (b"authorization", b"Bearer ok")])
    status, _, body = asyncio.run(_call(app, allowed, json.dumps(DELIVERY).encode()))
    assert status == 200 and json.loads(body)["outcome"] == "replace"


def test_the_direct_route_answers_refusals_and_crashes_as_the_stack_did(home: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A refusal is its problem (status, code, request id, metrics); a crash is a 500 problem with no
    traceback in it, raised on to the server as Starlette's error layer raises it."""
    from engine.engine import Engine  # noqa: PLC0415

    app = create_app(home, workbench=False, watch_interval=None)
    status, headers, body = asyncio.run(_call(app, _scope(), b"{not json"))
    assert status == 422 and json.loads(body)["code"] == "json"
    assert any(name == b"x-request-id" for name, _ in headers)
    status, _, body = asyncio.run(_call(app, _scope(headers=[(b"content-length", b"99999999")]), b"{}"))
    assert status == 413 and json.loads(body)["code"] == "body_too_large"

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("secret internal detail")
    monkeypatch.setattr(Engine, "decide", broken)
    sent = _raising_call(app, RuntimeError)
    assert sent[0]["status"] == 500
    text = b"".join(m.get("body", b"") for m in sent[1:]).decode()
    assert json.loads(text)["code"] == "internal" and "secret" not in text
    metrics = app.state.metrics.render()[0].decode()
    assert 'clause_errors_total{code="internal",status="500"} 1.0' in metrics
    assert 'route="decide",status="500"' in metrics and 'route="decide",status="422"' in metrics


def test_a_root_path_or_another_method_takes_the_usual_way(home: Path) -> None:
    app = create_app(home, workbench=False, watch_interval=None)
    status, _, _ = asyncio.run(_call(app, _scope(method="GET"), b""))
    assert status == 405
    mounted = dict(_scope(path="/api/v1/decide"), root_path="/api")
    status, _, body = asyncio.run(_call(app, mounted, json.dumps(DELIVERY).encode()))
    assert status == 200 and json.loads(body)["outcome"] == "replace"


def test_an_exception_handler_or_a_route_added_later_is_not_skipped(home: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """An embedder's own exception handler, or their own route in front of ours, must be what
    answers POST /v1/decide (review: the direct route ignored both)."""
    from starlette.routing import Route  # noqa: PLC0415

    from engine.engine import Engine  # noqa: PLC0415

    app = create_app(home, workbench=False, watch_interval=None)

    async def mine(_: Any, __: Exception) -> JSONResponse:
        return JSONResponse({"mine": True}, status_code=503)
    app.add_exception_handler(RuntimeError, mine)

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("boom")
    with monkeypatch.context() as patch:
        patch.setattr(Engine, "decide", broken)
        status, _, body = asyncio.run(_call(app, _scope(), json.dumps(DELIVERY).encode()))
    assert (status, json.loads(body)) == (503, {"mine": True})

    fresh = create_app(home, workbench=False, watch_interval=None)

    async def override(_: Any) -> JSONResponse:
        return JSONResponse({"override": True})
    fresh.router.routes.insert(0, Route("/v1/decide", override, methods=["POST"]))
    status, _, body = asyncio.run(_call(fresh, _scope(), json.dumps(DELIVERY).encode()))
    assert (status, json.loads(body)) == (200, {"override": True})


def test_a_crash_after_the_answer_began_sends_nothing_more(home: Path) -> None:
    """The server's send failing on the body (a client gone): no second response start, and the
    request stays counted as the 200 it was (review: a 500 was sent after the 200)."""
    app = create_app(home, workbench=False, watch_interval=None)
    sent = _raising_call(app, OSError, failing_body=OSError("the client went away"))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 200
    metrics = app.state.metrics.render()[0].decode()
    assert 'route="decide",status="200"' in metrics and 'status="500"' not in metrics
