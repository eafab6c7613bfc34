"""The Clause workbench: a web page served by ``clause serve`` at ``/``.

Decide a case from a form, see why (every rule, the vendor's text beside it),
the policy at a glance, try a policy change in memory, decide a batch, and
explore the API at ``/docs``. Plain HTML, CSS and JavaScript shipped in
``static/``: no build step, no CDN, works offline.
"""

from __future__ import annotations

import socket
import threading
import time
import webbrowser

from engine.workbench.routes import make_routes

__all__ = ["make_routes", "open_browser"]


def open_browser(host: str, port: int, timeout: float = 30.0) -> threading.Thread:
    """Open the workbench in the user's browser once the server accepts connections."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    url = f"http://{'[' + shown + ']' if ':' in shown else shown}:{port}/"

    def wait_then_open() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((shown, port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.2)
        webbrowser.open(url)

    thread = threading.Thread(target=wait_then_open, daemon=True, name="clause-open-browser")
    thread.start()
    return thread
