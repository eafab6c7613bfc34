"""The exception tree and the Diagnostic record that every stage reports with.

Codes are stable strings that users and tools may match on:

==================  =========================================================
``yaml_syntax``     the file is not valid YAML (or JSON)
``yaml_duplicate``  a mapping repeats a key (YAML would silently keep one)
``file``            a file cannot be read
``schema``          the document does not match its JSON Schema
``expr_syntax``     an expression does not parse
``expr_type``       an expression is ill-typed (e.g. a date compared with money)
``unknown_fact``    an expression, or a case, names a fact the policy does not declare
``policy``          a semantic error in a policy (duplicate id, cycle, ...)
``limit``           a compile-time limit of a back end is exceeded
``case``            a case is malformed (no vendor, unknown kind, ...)
``case_fact_type``  a case fact has the wrong type or value
``case_check``      a case breaks one of the policy's consistency checks
``case_fact_bound`` a case's bound or value contradicts another fact (both named)
``evaluation``      an expression failed on a case (e.g. division by zero)
``matcher_unavailable``  the requested back end cannot run here
==================  =========================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

    from engine.location import SourceLocation


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem found in a policy or a case."""

    code: str
    message: str
    location: SourceLocation | None = None
    path: str = ""
    hint: str | None = None

    def sort_key(self) -> tuple[str, int, int, str]:
        loc = self.location
        return (loc.file, loc.line, loc.column, self.message) if loc else ("", 0, 0, self.message)

    def to_dict(self) -> dict[str, Any]:
        loc = self.location
        out: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "file": loc.file if loc else None,
            "line": loc.line if loc and loc.line else None,
            "column": loc.column if loc and loc.column else None,
            "path": self.path,
        }
        if self.hint:
            out["hint"] = self.hint
        return out

    def render(self, source_lines: list[str] | None = None) -> str:
        """``FILE:LINE:COL: CODE: message``, then the source line and a caret."""
        head = f"{self.location}: " if self.location else ""
        text = f"{head}{self.code}: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        loc = self.location
        if source_lines and loc and 0 < loc.line <= len(source_lines):
            line = source_lines[loc.line - 1].rstrip("\n")
            caret = " " * max(loc.column - 1, 0) + "^"
            text += f"\n  {line}\n  {caret}"
        return text


class EngineError(Exception):
    """Base of every error the engine raises on purpose."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics = tuple(sorted(diagnostics, key=Diagnostic.sort_key))
        super().__init__("\n".join(d.render() for d in self.diagnostics))


class PolicyError(EngineError):
    """A policy file could not be loaded, validated or compiled."""


class CaseError(EngineError):
    """A case is malformed or its facts do not fit the policy's declarations."""


class EvaluationError(EngineError):
    """An expression failed on a case although the case was well-formed."""


class MatcherUnavailable(EngineError):
    """The requested matching back end cannot run on this interpreter."""


def fail(cls: type[EngineError], code: str, message: str, **kw: Any) -> EngineError:
    """Build a one-diagnostic error (callers ``raise fail(...)``)."""
    return cls([Diagnostic(code, message, **kw)])
