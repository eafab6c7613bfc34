"""Deciding one case on both back ends: the same decision, or the same diagnostics."""

from __future__ import annotations

import json
from typing import Any

from engine import Engine
from engine.errors import EngineError


def outcome_of(engine: Engine, case: Any) -> tuple[str, Any]:
    """('decision', its JSON form) or ('error', the diagnostics' codes and messages)."""
    try:
        d = engine.decide(case).to_dict()
    except EngineError as err:
        assert err.diagnostics and all(x.code and x.message for x in err.diagnostics)
        return "error", sorted((x.code, x.message) for x in err.diagnostics)
    json.dumps(d)
    return "decision", d


def agree(python: Engine, rete: Engine, case: Any) -> None:
    first, second = outcome_of(python, case), outcome_of(rete, case)
    assert first == second, f"the back ends disagree on {case!r}:\npython: {first}\nrete:   {second}"
