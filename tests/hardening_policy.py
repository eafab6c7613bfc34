"""A small policy (Acme, from test_robustness) extended for the hardening tests (issue 9)."""

from __future__ import annotations

from pathlib import Path

from test_robustness import ACME

HARD = ACME.replace(
    "  calls: {type: list, meaning: calls, fields: {dur: {type: duration, meaning: length}}}\n",
    "  calls: {type: list, meaning: calls, fields: {dur: {type: duration, meaning: length}}}\n"
    "  note: {type: string, meaning: note}\n") + """\
  h:
    title: H
    combine: first_match
    otherwise: {outcome: deny, reason: {en: no}}
    rules:
      - {id: rounded, clause: Refunds apply., when: "round(price, 2) > money('100')", outcome: refund,
         amount: "round(price, 2)", reason: {en: r}}
      - {id: one-call, clause: Refunds apply., when: "count(calls where has(dur)) == 1", outcome: credit,
         reason: {en: c}}
      - {id: either, clause: Refunds apply., when: "note == 'or' and (n > 5 or r > 0.5)", outcome: approve,
         reason: {en: e}}
"""

NEUTRAL = {"price": "1", "n": 0, "r": "0", "at": "2024-01-01T00:00:00+00:00", "calls": [], "note": ""}


def write_policy(home: Path, text: str = HARD, source: str = "Refunds apply. Big ones too.\n") -> Path:
    """A vendor directory with ``policy.yaml`` and ``source.txt``; returns the directory."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "source.txt").write_text(source, encoding="utf-8")
    (home / "policy.yaml").write_text(text, encoding="utf-8")
    return home


def case(kind: str = "k", **facts: object) -> dict:
    return {"vendor": "acme", "kind": kind, "as_of": "2025-06-01", "facts": {**NEUTRAL, **facts}}
