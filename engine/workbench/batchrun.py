"""A batch uploaded from the page: decided line by line, streamed back as
JSON Lines (a header with the count, the results in slices for the progress
bar, then a summary whose money is summed in Decimal, to the cent).
"""

from __future__ import annotations

import io
import json
from collections import Counter, defaultdict
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Iterator

from engine.batch import _csv_cases, decide_line  # the CLI's batch, line for line

if TYPE_CHECKING:
    from engine.engine import Engine

SLICE = 100          # results per progress message
MAX_LINES = 20_000
MAX_INVALID = 200    # invalid lines listed in the summary (all are counted)


def lines_of(text: str, fmt: str) -> list[tuple[int, str]]:
    """(line number, JSON case) pairs, as ``clause batch`` reads them."""
    if fmt == "csv":
        return list(_csv_cases(io.StringIO(text.lstrip("\ufeff"), newline="")))
    return [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


class _Tally:
    """What the summary charts show."""

    def __init__(self) -> None:
        self.outcomes: Counter[tuple[str, str]] = Counter()
        self.rules: Counter[str] = Counter()
        self.amounts: dict[str, Decimal] = defaultdict(Decimal)
        self.customer: dict[str, Decimal] = defaultdict(Decimal)
        self.invalid: list[dict[str, Any]] = []
        self.invalid_count = self.decided = 0

    def add(self, number: int, status: str, value: Any) -> dict[str, Any]:
        if status != "ok":
            self.invalid_count += 1
            if len(self.invalid) < MAX_INVALID:
                self.invalid.append({"line": number, "error": value})
            return {"line": number, "error": value}
        _, d = value
        self.decided += 1
        self.outcomes[(f"{d['vendor']}/{d['kind']}", d["outcome"])] += 1
        if d["reasons"]:
            self.rules[f"{d['vendor']}/{d['reasons'][0]['rule']}"] += 1
        for money, target in ((d["amount"], self.amounts), (d["customer_pays"], self.customer)):
            if money:
                target[money["currency"]] += Decimal(money["value"])
        return {"line": number, "decision": d}

    def summary(self) -> dict[str, Any]:
        kinds: dict[str, dict[str, int]] = defaultdict(dict)
        for (kind, outcome), n in sorted(self.outcomes.items()):
            kinds[kind][outcome] = n
        return {"decided": self.decided, "invalid_count": self.invalid_count, "invalid": self.invalid,
                "outcomes": kinds, "rules": self.rules.most_common(10),
                "amounts": {c: f"{v:f}" for c, v in sorted(self.amounts.items())},
                "customer_pays": {c: f"{v:f}" for c, v in sorted(self.customer.items())}}


def stream(engine: Engine, lines: list[tuple[int, str]], fmt: str, lang: str) -> Iterator[bytes]:
    """JSON Lines: ``{"total"}``, then ``{"done", "results"}`` per slice, then ``{"summary"}``."""
    yield _line({"total": len(lines)})
    tally = _Tally()
    for start in range(0, len(lines), SLICE):
        part = [tally.add(*decide_line(engine, n, raw, fmt, lang)) for n, raw in lines[start:start + SLICE]]
        yield _line({"done": min(start + SLICE, len(lines)), "results": part})
    yield _line({"summary": tally.summary()})


def _line(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, default=str) + "\n").encode()
