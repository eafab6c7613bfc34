"""Fuzzer profiles and the count of generated inputs (not a conftest: tests/conftest.py is ``conftest``).

``fast`` (the default, run by the normal suite): few, derandomized examples
per target, so the suite stays quick and repeatable. ``long`` —
``CLAUSE_FUZZ=long python -m pytest tests/fuzz -m fuzz``, or ``python tests/fuzz/run.py`` which runs the files side by side — draws fresh
random inputs: over 100,000 across the four targets, and 20+ kill -9 crash
runs. The number of inputs each target received is printed at the end.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

PROFILE = os.environ.get("CLAUSE_FUZZ", "fast")
LONG = PROFILE == "long"
SCALE = float(os.environ.get("CLAUSE_FUZZ_SCALE", "1"))  # multiplies the long budgets
COUNTS: Counter[str] = Counter()
COUNTS_FILE = os.environ.get("CLAUSE_FUZZ_COUNTS")  # where to keep the running counts (JSON), if set

_common = {"deadline": None, "suppress_health_check": list(HealthCheck), "print_blob": True}
settings.register_profile("fast", derandomize=True, database=None, **_common)
settings.register_profile("long", **_common)


def examples(fast: int, long: int) -> settings:
    """Settings for one fuzz test: ``fast`` examples normally, ``long`` (× CLAUSE_FUZZ_SCALE) in the long run."""
    if LONG:
        return settings(settings.get_profile("long"), max_examples=max(1, int(long * SCALE)))
    return settings(settings.get_profile("fast"), max_examples=fast)


def counted(target: str, n: int = 1) -> None:
    COUNTS[target] += n
    if COUNTS_FILE and sum(COUNTS.values()) % 200 < n:
        _save()


def _save() -> None:
    Path(COUNTS_FILE).write_text(json.dumps(dict(COUNTS)), encoding="utf-8")  # type: ignore[arg-type]


def summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Called by tests/conftest.py at the end of the session."""
    if COUNTS_FILE:
        _save()
    if COUNTS:
        parts = ", ".join(f"{k} {v}" for k, v in sorted(COUNTS.items()))
        terminalreporter.write_line(f"fuzz inputs ({PROFILE} profile): {parts}; total {sum(COUNTS.values())}")
