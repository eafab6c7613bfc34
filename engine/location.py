"""Where something came from in a source file (1-based line and column)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SourceLocation:
    """A position in a file; ``line`` and ``column`` are 1-based, 0 when unknown."""

    file: str
    line: int = 0
    column: int = 0

    def shifted(self, lines: int, column: int) -> SourceLocation:
        """Return the location ``lines`` lines below, at ``column`` when lines > 0."""
        if lines:
            return SourceLocation(self.file, self.line + lines, column)
        return SourceLocation(self.file, self.line, self.column + column)

    def __str__(self) -> str:
        if not self.line:
            return self.file
        return f"{self.file}:{self.line}:{self.column}"
