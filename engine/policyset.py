"""The policies a service decides with, reloaded when their files change.

The new set is loaded and compiled aside and swapped in with one
assignment, so a request sees the old set or the new one, never a mix; a
broken edit keeps the old set and says why.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from engine.engine import Engine
from engine.errors import Diagnostic, EngineError
from engine.metrics import Metrics

LOG = logging.getLogger("clause.service")


class PolicySet:
    """The engine in service, swapped atomically when the policy files change."""

    def __init__(self, root: Path, matcher: str, metrics: Metrics | None = None) -> None:
        self.root = root
        self.matcher = matcher
        self.metrics = metrics or Metrics()
        self.engine = Engine.load(root, matcher=matcher)
        self.loaded_at = time.time()
        self.stamp = self._stamp()
        self.last_error: list[dict[str, Any]] | None = None
        self._lock = threading.Lock()
        self._languages: tuple[Engine | None, dict[str, frozenset[str]]] = (None, {})

    def languages(self, engine: Engine, vendor: Any) -> frozenset[str] | None:
        """The languages of ``vendor``'s policies in ``engine`` (None: no such vendor), computed once
        per engine, not per request."""
        known, table = self._languages
        if known is not engine:
            table = {v: frozenset(lang for p in versions for lang in p.languages)
                     for v, versions in engine.vendors.items() if versions}
            self._languages = (engine, table)
        return table.get(vendor) if isinstance(vendor, str) else None

    def _stamp(self) -> tuple[tuple[str, int, int], ...]:
        files = [p for p in self.root.rglob("*") if p.is_file() and p.suffix in (".yaml", ".txt")]
        return tuple(sorted((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files))

    def reload(self, force: bool = False) -> bool:
        """Load the files again if they changed; keep the old set if the new one is broken."""
        with self._lock:
            stamp = self._stamp()
            if stamp == self.stamp and not force:
                return False
            changed = self._load(stamp)
            self.metrics.reloaded("reloaded" if changed else "failed", self.last_error is None)
            return changed

    def _load(self, stamp: tuple[tuple[str, int, int], ...]) -> bool:
        """Compile the files aside and swap them in, or keep serving the old set and say why."""
        try:
            fresh = Engine.load(self.root, matcher=self.matcher)
        except Exception as err:  # noqa: BLE001 - a policy must never take the service down
            self.stamp = stamp  # do not retry the same broken files every second
            diagnostics = err.diagnostics if isinstance(err, EngineError) else [
                Diagnostic("internal", f"the policies could not be loaded ({type(err).__name__}: {err})")]
            self.last_error = [d.to_dict() for d in diagnostics]
            LOG.error("policy reload failed; still serving the previous policies:\n%s", err,
                      exc_info=not isinstance(err, EngineError))
            return False
        # The swap: one reference assignment. The old engine is not closed
        # here: requests in flight may still use it; its back end is freed
        # when the last of them lets go of it.
        self.engine = fresh
        self.stamp, self.last_error, self.loaded_at = stamp, None, time.time()
        LOG.info("policies reloaded from %s", self.root)
        return True

    def watch(self, interval: float, stop: threading.Event) -> None:
        while not stop.wait(interval):
            try:
                self.reload()
            except Exception:  # noqa: BLE001 - the watcher must outlive any surprise
                LOG.exception("policy watcher")
