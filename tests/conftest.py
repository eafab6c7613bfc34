"""Shared fixtures: engines for both back ends, a CLI runner, policy factories."""

from __future__ import annotations

import asyncio
import shutil
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from engine import Engine, MatcherUnavailable

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "policies"
FIXED_TODAY = date(2025, 6, 1)


def rete_unavailable_reason() -> str | None:
    """Why the Rete back end cannot run here (durable-rules missing, or Python 3.13+)."""
    try:
        from engine.match.rete import load_core  # noqa: PLC0415
        load_core()
    except MatcherUnavailable as err:
        return err.diagnostics[0].message
    return None


def decide_scope(headers: list[tuple[bytes, bytes]] | None = None, query: bytes = b"") -> dict[str, Any]:
    """The ASGI scope of a ``POST /v1/decide`` from 127.0.0.1 (a JSON content type unless ``headers``)."""
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
            "path": "/v1/decide", "raw_path": b"/v1/decide", "query_string": query, "root_path": "",
            "headers": headers if headers is not None else [(b"content-type", b"application/json")],
            "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}


def stalled_receive() -> Any:
    """An ASGI ``receive`` of a client that sends the first byte of its body, then nothing (slowloris)."""
    parts = [{"type": "http.request", "body": b"{", "more_body": True}]

    async def receive() -> Any:
        if parts:
            return parts.pop(0)
        await asyncio.sleep(3600)
    return receive


RETE_REASON = rete_unavailable_reason()
needs_rete = pytest.mark.skipif(RETE_REASON is not None, reason=f"rete back end unavailable: {RETE_REASON}")
MATCHERS = ["python", pytest.param("rete", marks=needs_rete)]


@pytest.fixture(scope="session")
def engine() -> Engine:
    """The bundled policies on the default back end, with a fixed 'today'."""
    return Engine.load(POLICIES, today=lambda: FIXED_TODAY)


@pytest.fixture(scope="session", params=MATCHERS)
def any_engine(request: pytest.FixtureRequest) -> Engine:
    """The bundled policies on each back end in turn."""
    eng = Engine.load(POLICIES, matcher=request.param, today=lambda: FIXED_TODAY)
    yield eng
    eng.close()


@pytest.fixture()
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture()
def itellum_copy(tmp_path: Path) -> Path:
    """A writable copy of the Itellum policy directory."""
    dest = tmp_path / "itellum"
    shutil.copytree(POLICIES / "itellum", dest)
    return dest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The fuzzers' input counts (tests/fuzz/fuzzing.py), when they ran."""
    fuzzing = sys.modules.get("fuzzing")
    if fuzzing is not None:
        fuzzing.summary(terminalreporter)
