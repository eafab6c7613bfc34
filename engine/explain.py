"""Why each rule of a kind did or did not decide a case.

One :class:`Step` per rule, in decision order: ``decided``, ``matched``
(matched but outranked), ``failed`` (with its first failing condition and
the values it compared) or ``unknown`` (with the facts it is missing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.expressions.syntax import names
from engine.match import ir

if TYPE_CHECKING:
    from engine.compiler import CompiledKind, CompiledPolicy
    from engine.model import Decision


@dataclass(frozen=True, slots=True)
class Step:
    rule: str
    status: str            # decided | matched | failed | unknown
    outcome: str
    location: str
    condition: str | None = None
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "status": self.status, "outcome": self.outcome,
                "location": self.location, "condition": self.condition, "detail": self.detail}


def _values(cond: ir.Cond, facts: dict[str, Any], compiled: CompiledPolicy) -> str:
    """The values a failing condition compared, e.g. ``days_in_service = 12``."""
    read: list[str] = []
    for leaf in ir.leaves(cond):
        syn = compiled.synthetics.get(leaf.field)
        read.extend(sorted(names(syn.node)) if syn else [leaf.field])
    shown = [f"{n} = {_show(facts[n])}" for n in dict.fromkeys(read)
             if n in facts and not isinstance(facts[n], list)]
    return "; ".join(shown)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def explain(compiled: CompiledPolicy, kind: CompiledKind, facts: dict[str, Any],
            decision: Decision) -> list[Step]:
    """Steps for every rule of ``kind`` on the derived ``facts``."""
    deciding = decision.reasons[0].rule if decision.outcome != "needs_info" else None
    matched = set(decision.matched)
    steps = []
    for crule in kind.ranked:
        rule = crule.rule
        loc = str(rule.location)
        if rule.id == deciding:
            steps.append(Step(rule.id, "decided", rule.outcome, loc))
        elif rule.id in matched:
            steps.append(Step(rule.id, "matched", rule.outcome, loc,
                              detail="matched, but a higher-ranked rule decides"))
        elif ir.evaluate3(crule.cond, facts) == ir.UNKNOWN:
            need = compiled.needs(ir.unknown_fields(crule.cond, facts), facts)
            steps.append(Step(rule.id, "unknown", rule.outcome, loc,
                              detail="missing facts: " + ", ".join(need)))
        else:
            failing = ir.first_failure(crule.cond, facts)
            text = failing.text if failing else rule.when.text
            values = _values(failing, facts, compiled) if failing else ""
            steps.append(Step(rule.id, "failed", rule.outcome, loc, condition=text,
                              detail=values or None))
    return steps


def render_text(steps: list[Step]) -> str:
    lines = ["Rules, in decision order:"]
    marks = {"decided": "=>", "matched": "+ ", "failed": "- ", "unknown": "? "}
    for s in steps:
        head = f"  {marks[s.status]} {s.rule} [{s.outcome}] {s.status}"
        if s.status == "failed":
            head += f": {s.condition} is false"
        lines.append(head)
        if s.detail:
            lines.append(f"       {s.detail}")
        lines.append(f"       at {s.location}")
    return "\n".join(lines)
