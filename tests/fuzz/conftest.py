"""Fuzzer profiles and the count of generated inputs.

``fast`` (the default, run by the normal suite): few, derandomized examples
per target, so the suite stays quick and repeatable. ``long`` — run with
``CLAUSE_FUZZ=long python -m pytest tests/fuzz -m fuzz`` — draws fresh random
inputs: over 100,000 across the four targets, and 20+ kill -9 crash runs.
The number of inputs each target received is printed at the end.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).resolve().parent))

PROFILE = os.environ.get("CLAUSE_FUZZ", "fast")
LONG = PROFILE == "long"
COUNTS: Counter[str] = Counter()

_common = {"deadline": None, "suppress_health_check": list(HealthCheck), "print_blob": True}
settings.register_profile("fast", max_examples=25, derandomize=True, database=None, **_common)
settings.register_profile("long", max_examples=int(os.environ.get("CLAUSE_FUZZ_EXAMPLES", "12000")), **_common)


def examples(fast: int, long_share: float = 1.0) -> settings:
    """Settings for one fuzz test: ``fast`` examples normally, a share of the long budget otherwise."""
    if LONG:
        return settings(settings.get_profile("long"),
                        max_examples=int(settings.get_profile("long").max_examples * long_share))
    return settings(settings.get_profile("fast"), max_examples=fast)


def counted(target: str) -> None:
    COUNTS[target] += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if COUNTS:
        parts = ", ".join(f"{k} {v}" for k, v in sorted(COUNTS.items()))
        terminalreporter.write_line(f"fuzz inputs ({PROFILE} profile): {parts}; total {sum(COUNTS.values())}")
