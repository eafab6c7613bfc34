"""Issue 9, hostile HTTP clients: 4xx with diagnostics, never a 500, a traceback or a stall.

The application is driven in-process through ASGI (no sockets, no waiting):
lone surrogates (item 5), a policy that crashed reloads (item 6), slow and
abandoned uploads and a busy decision log (item 7), duplicate keys (item 9)
and the protection of ``POST /v1/reload`` (item 15).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hardening_policy import case, write_policy
from test_robustness import ACME

from conftest import MATCHERS

from engine.service import create_app

Reply = tuple[int, dict[str, str], Any]


def call(app: Any, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
         messages: list[dict[str, Any]] | None = None) -> Reply:
    """One request through the ASGI app; ``messages`` replaces the body (then the client stalls)."""
    heads = {"content-type": "application/json", **(headers or {})}
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "scheme": "http",
             "headers": [(k.lower().encode(), v.encode()) for k, v in heads.items() if v],
             "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 50000)}
    queue = list(messages if messages is not None else [{"type": "http.request", "body": body}])
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if queue:
            return queue.pop(0)
        await asyncio.sleep(3600)  # a client that never sends the rest
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    raw = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, json.loads(raw)


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    return write_policy(tmp_path / "policies" / "acme").parent


def decide_body(data: Any) -> bytes:
    return json.dumps(data).encode()


# --- item 5: lone surrogates ----------------------------------------------------------------

@pytest.mark.parametrize("raw", [
    '{"id":"\\ud800","vendor":"acme","kind":"k","as_of":"2025-06-01","facts":{}}',
    '{"vendor":"acme","kind":"k","as_of":"2025-06-01","facts":{"\\ud800":1}}',
    '{"vendor":"acme","kind":"k","as_of":"2025-06-01","facts":{"note":"\\udfff"}}',
])
@pytest.mark.parametrize("matcher", MATCHERS)
def test_surrogates_are_422_not_500(home: Path, raw: str, matcher: str) -> None:
    status, _, body = call(create_app(home, matcher=matcher), "POST", "/v1/decide", raw.encode())
    assert status == 422 and "surrogate" in body["error"]


def test_one_surrogate_case_does_not_fail_a_batch(home: Path) -> None:
    good = json.dumps(case())
    raw = f'[{good}, {{"id":"\\ud800","vendor":"acme","kind":"k","facts":{{}}}}, {good}]'.encode()
    status, _, body = call(create_app(home), "POST", "/v1/decide/batch", raw)
    assert status == 200
    assert "decision" in body[0] and "decision" in body[2]
    assert "surrogate" in body[1]["diagnostics"][0]["message"]


# --- item 9: duplicate keys -------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/v1/decide", "/v1/decide/batch"])
def test_duplicate_keys_are_refused_over_http(home: Path, path: str) -> None:
    one = '{"vendor":"acme","kind":"k","facts":{"n":1,"n":2}}'
    raw = (one if path == "/v1/decide" else f"[{one}]").encode()
    status, _, body = call(create_app(home), "POST", path, raw)
    assert status == 422 and "duplicate key 'n'" in body["error"]


# --- item 7: slow uploads, abandoned uploads, a busy log ----------------------------------------

def test_a_slow_upload_is_408(home: Path) -> None:
    app = create_app(home, body_timeout=0.05)
    status, _, body = call(app, "POST", "/v1/decide", messages=[
        {"type": "http.request", "body": b'{"vendor":', "more_body": True}])
    assert status == 408 and body["diagnostics"][0]["code"] == "body_timeout"


def test_a_client_leaving_mid_body_is_no_server_error(home: Path, caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(home)
    with caplog.at_level(logging.INFO, logger="clause.service"):
        status, _, body = call(app, "POST", "/v1/decide", messages=[
            {"type": "http.request", "body": b'{"vendor":', "more_body": True}, {"type": "http.disconnect"}])
    assert status == 400 and body["diagnostics"][0]["code"] == "client_disconnect"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


class BusyLog:
    """A decision log whose database stays locked (sqlite3's 'database is locked')."""

    def write(self, *_: Any, **__: Any) -> None:
        raise sqlite3.OperationalError("database is locked")

    def write_many(self, *_: Any, **__: Any) -> None:
        raise sqlite3.OperationalError("database is locked")


def test_a_busy_log_is_503_with_retry_after(home: Path) -> None:
    app = create_app(home, log=BusyLog())  # type: ignore[arg-type]
    status, headers, body = call(app, "POST", "/v1/decide", decide_body(case()))
    assert status == 503 and headers["retry-after"] == "1"
    assert body["diagnostics"][0]["code"] == "log_unavailable" and "database is locked" in body["error"]
    status, _, body = call(app, "POST", "/v1/decide/batch", decide_body([case(), case()]))
    assert status == 200 and all(r["diagnostics"][0]["code"] == "log_unavailable" for r in body)


class CountingLog:
    """A decision log that counts its transactions."""

    def __init__(self) -> None:
        self.transactions: list[int] = []

    def write_many(self, items: list[Any], *_: Any, **__: Any) -> list[int]:
        self.transactions.append(len(items))
        return list(range(len(items)))


def test_a_batch_is_logged_in_one_transaction_before_it_is_answered(home: Path) -> None:
    """Issue 11, item 5: one commit (one fsync) per HTTP batch, not one per case."""
    log = CountingLog()
    app = create_app(home, log=log)  # type: ignore[arg-type]
    status, _, body = call(app, "POST", "/v1/decide/batch", decide_body([case(), {"vendor": "nope"}, case()]))
    assert status == 200 and [("decision" in r) for r in body] == [True, False, True]
    assert log.transactions == [2]  # the two decisions; the refused case is not logged
    call(app, "POST", "/v1/decide", decide_body(case()))
    assert log.transactions == [2, 1]


# --- item 15 and 6: /v1/reload ----------------------------------------------------------------

def test_reload_is_off_by_default(home: Path) -> None:
    status, _, body = call(create_app(home), "POST", "/v1/reload")
    assert status == 403 and "--allow-reload" in body["error"]


def test_reload_when_allowed(home: Path) -> None:
    status, _, body = call(create_app(home, allow_reload=True), "POST", "/v1/reload")
    assert status == 200 and body["ok"] is True


@pytest.mark.parametrize(("headers", "status"), [
    ({}, 401), ({"authorization": "Bearer wrong"}, 401), ({"authorization": "Bearer s3cret"}, 200),
    ({"authorization": "s3cret"}, 401),
])
def test_reload_token(home: Path, headers: dict[str, str], status: int) -> None:
    app = create_app(home, allow_reload=True, reload_token="s3cret")
    got, heads, _ = call(app, "POST", "/v1/reload", headers=headers)
    assert got == status
    if status == 401:
        assert heads["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("kind", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_reload_refuses_form_content_types(home: Path, kind: str) -> None:
    status, _, body = call(create_app(home, allow_reload=True), "POST", "/v1/reload", b"x=1",
                           headers={"content-type": kind})
    assert status == 415 and body["diagnostics"][0]["code"] == "content_type"


def test_a_reload_to_a_crashing_policy_keeps_serving(home: Path) -> None:
    app = create_app(home, allow_reload=True)
    (home / "acme" / "policy.yaml").write_text(ACME.replace('version: "1"', 'version: "1\\0x"'), encoding="utf-8")
    status, _, body = call(app, "POST", "/v1/reload")
    assert status == 422 and "control characters" in body["diagnostics"][0]["message"]
    status, _, health = call(app, "GET", "/healthz")
    assert status == 200 and health["ok"] is False and health["reload_error"]
    status, _, decision = call(app, "POST", "/v1/decide", decide_body(case()))
    assert status == 200 and decision["outcome"] == "deny"


def test_an_unexpected_reload_failure_is_reported_not_raised(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_app(home, allow_reload=True)

    def boom(*_: Any, **__: Any) -> None:
        raise ValueError("embedded null character")

    monkeypatch.setattr("engine.service.Engine.load", boom)
    status, _, body = call(app, "POST", "/v1/reload")
    assert status == 422 and "embedded null character" in body["diagnostics"][0]["message"]
    assert call(app, "GET", "/healthz")[2]["ok"] is False
