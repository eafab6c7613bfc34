"""Clause: a declarative rules engine for refund, return, warranty and compensation terms.

>>> from engine import Engine
>>> engine = Engine.load()                      # the bundled policies
>>> decision = engine.decide({"vendor": "itellum", "kind": "warranty", "as_of": "2025-03-10",
...                           "facts": {...}})   # doctest: +SKIP
"""

from __future__ import annotations

from engine.case import Case
from engine.engine import Engine
from engine.errors import (
    CaseError,
    Diagnostic,
    EngineError,
    EvaluationError,
    MatcherUnavailable,
    PolicyError,
)
from engine.model import Decision, Money

__version__ = "0.1.0"

__all__ = [
    "Case",
    "CaseError",
    "Decision",
    "Diagnostic",
    "Engine",
    "EngineError",
    "EvaluationError",
    "MatcherUnavailable",
    "Money",
    "PolicyError",
    "__version__",
]
