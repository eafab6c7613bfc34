"""An ASGI app served by uvicorn on 127.0.0.1 in a thread of the test process, and a tiny client.

In-process (so a test can hand the app its own DecisionLog) yet over real
HTTP (the project ships no httpx, which Starlette's TestClient needs).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import uvicorn


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """The base URL of ``app`` while the block runs; the server stops (bounded wait) after it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical",
                                          lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True, name="test-uvicorn")
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "the loopback server did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def post(url: str, body: bytes | str, timeout: float = 30) -> tuple[int, Any]:
    """POST a JSON body; (status, parsed answer or raw text)."""
    data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        with err:
            status, raw = err.code, err.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode("utf-8", "replace")
