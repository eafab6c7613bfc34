"""Deadlines: every time limit the terms set for a case, whatever the outcome.

A kind declares its deadlines once (``kinds.<kind>.deadlines``); every
decision of the kind reports them — approvals, refusals for any reason,
``needs_info`` and ``otherwise`` alike — with a status on the decision day:
``open`` (the date is on or after ``as_of``), ``passed``, or ``unknown``
when a fact the date (or its ``when``) needs is missing (then ``date`` is
null). The deciding rule may add its own deadlines, and one it names like a
declared deadline replaces the declared one (the rule knows the case better:
e.g. a prepaid cancellation takes effect on the request day, not at the end
of the cycle). A missing fact of a deadline never blocks the decision.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any, Callable

from engine.errors import Diagnostic, EvaluationError
from engine.expressions.functions import EvalFailure
from engine.model import Deadline

if TYPE_CHECKING:
    from collections.abc import Mapping

    from engine.compiler import CompiledDeadline, CompiledKind
    from engine.model import Expr

OPEN, PASSED, UNKNOWN = "open", "passed", "unknown"
_FAILURES = (EvalFailure, ArithmeticError, ValueError, OverflowError)


def status(day: date | None, as_of: date) -> str:
    """open (on or after ``as_of``), passed, or unknown (no date)."""
    if day is None:
        return UNKNOWN
    return OPEN if day >= as_of else PASSED


def _evaluate(fn: Callable[[dict[str, Any]], Any], expr: Expr, facts: dict[str, Any], what: str) -> Any:
    """The value, or None when a fact is missing; a failure on the case's values is an error."""
    try:
        return fn(facts)
    except KeyError:
        return None
    except _FAILURES as err:
        raise EvaluationError([Diagnostic("evaluation", f"{what}: {err}", expr.location)]) from err


def _one(d: CompiledDeadline, facts: dict[str, Any], missed: dict[str, str], as_of: date,
         text: Callable[[Mapping[str, str]], str]) -> Deadline | None:
    decl = d.decl
    applies = True
    if d.when is not None and decl.when is not None:
        d.derive_when(facts, missed)
        applies = _evaluate(d.when, decl.when, facts, f"the condition of deadline {decl.name!r}")
        if applies is False:
            return None  # the deadline does not concern this case
    day = None
    if applies:  # derive what the date needs only once it applies (it may fail otherwise)
        d.derive(facts, missed)
        day = _evaluate(d.date, decl.date, facts, f"deadline {decl.name!r}")
    return Deadline(decl.name, day, None, status(day, as_of), text(decl.text))


def declared(kind: CompiledKind, facts: dict[str, Any], missed: dict[str, str], as_of: date,
             text: Callable[[Mapping[str, str]], str]) -> list[Deadline]:
    """The kind's declared deadlines for this case, in declaration order."""
    return [x for d in kind.deadlines if (x := _one(d, facts, missed, as_of, text)) is not None]


def merge(kind_deadlines: list[Deadline], own: tuple[Deadline, ...]) -> tuple[Deadline, ...]:
    """Declared deadlines with the rule's own: same name replaces in place, others follow."""
    if not kind_deadlines:
        return own
    by_name = {d.name: d for d in own}
    out = [by_name.pop(d.name, d) for d in kind_deadlines]
    return (*out, *(d for d in own if d.name in by_name))


def rule_text(name: str, rule_texts: Mapping[str, Mapping[str, str]], kind: CompiledKind,
              text: Callable[[Mapping[str, str]], str]) -> str:
    """A rule deadline's text: its own, else the kind's deadline of that name, else its name."""
    own = rule_texts.get(name)
    if own is None:
        own = next((d.decl.text for d in kind.deadlines if d.decl.name == name), None)
    return text(own) if own is not None else name.replace("_", " ")
