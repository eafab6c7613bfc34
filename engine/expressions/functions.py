"""The whitelisted functions: their type rules and their runtime helpers.

Each entry says how to type a call and which helper the generated code
calls. A name not in :data:`FUNCTIONS` is an error at load time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Callable

from engine import billing
from engine.calendar import add_months
from engine.expressions import types as t
from engine.money import CONTEXT

if TYPE_CHECKING:
    from collections.abc import Sequence

    from engine.expressions.types import Type


class EvalFailure(Exception):
    """A helper failed on a value (division by zero, bad interval...)."""


@dataclass(frozen=True, slots=True)
class Function:
    """A function's name, type rule and one-line help."""

    name: str
    signature: str
    help: str
    typer: Callable[[Sequence[Type]], Type | str]


def _fixed(params: tuple[Type | str, ...], result: Type) -> Callable[[Sequence[Type]], Type | str]:
    def typer(args: Sequence[Type]) -> Type | str:
        if len(args) != len(params):
            return f"takes {len(params)} argument(s), got {len(args)}"
        for i, (want, got) in enumerate(zip(params, args, strict=True), 1):
            kind = want if isinstance(want, str) else want.kind
            ok = got.kind == kind or (kind == "decimal" and got.numeric)
            if not ok:
                return f"argument {i} must be {kind}, found {got}"
        return result
    return typer


def _extreme(args: Sequence[Type]) -> Type | str:
    if len(args) == 1 and args[0].kind == "list" and args[0].item is not None:
        args = [args[0].item]
    elif len(args) < 2:
        return "takes a list or at least two values"
    out = args[0]
    for a in args[1:]:
        joined = t.unify(out, a)
        if joined is None:
            return f"cannot mix {out} and {a}"
        out = joined
    if out.kind not in ("integer", "decimal", "money", "date", "datetime", "duration"):
        return f"needs numbers, money, dates or durations, found {out}"
    return out


def _sum(args: Sequence[Type]) -> Type | str:
    if len(args) != 1 or args[0].kind != "list" or args[0].item is None:
        return "takes one list"
    item = args[0].item
    if item.kind not in ("integer", "decimal", "money", "duration"):
        return f"needs a list of numbers, money or durations, found {args[0]}"
    return item


def _count(args: Sequence[Type]) -> Type | str:
    if len(args) != 1 or args[0].kind != "list":
        return "takes one list"
    return t.INTEGER


def _round(args: Sequence[Type]) -> Type | str:
    if not args or len(args) > 2 or args[0].kind not in ("money", "decimal", "integer"):
        return "takes money or a decimal, and optionally a number of places"
    if len(args) == 2 and args[1].kind != "integer":
        return "the number of places must be an integer"
    return t.DECIMAL if args[0].kind == "integer" else args[0]


def _pro_rata(args: Sequence[Type]) -> Type | str:
    if len(args) != 3 or args[0].kind != "money" or not (args[1].numeric and args[2].numeric):
        return "takes (money, part, whole) with part and whole numbers"
    return t.MONEY


def _coalesce(args: Sequence[Type]) -> Type | str:
    if len(args) < 2:
        return "takes at least two values"
    out: Type | None = args[0]
    for a in args[1:]:
        out = t.unify(out, a) if out else None
    return out or "all values must have one type"


def _abs(args: Sequence[Type]) -> Type | str:
    if len(args) != 1 or args[0].kind not in ("integer", "decimal", "money", "duration"):
        return "takes one number, money or duration"
    return args[0]


def _intervals(args: Sequence[Type]) -> Type | str:
    if len(args) != 1 or args[0].kind != "list" or args[0].item is None:
        return "takes one list of records with 'start' and 'end' datetimes"
    fields = args[0].item.fields
    if fields.get("start") != t.DATETIME or fields.get("end") != t.DATETIME:
        return "the records need 'start' and 'end' fields of type datetime"
    return t.INTEGER


FUNCTIONS: dict[str, Function] = {f.name: f for f in (
    Function("days_between", "days_between(from: date, to: date) -> integer",
             "calendar days from `from` to `to` (negative when `to` is earlier)",
             _fixed((t.DATE, t.DATE), t.INTEGER)),
    Function("add_days", "add_days(day: date, n: integer) -> date", "the date n calendar days later",
             _fixed((t.DATE, t.INTEGER), t.DATE)),
    Function("add_months", "add_months(day: date, n: integer) -> date",
             "same day n months later, clamped to the end of a shorter month",
             _fixed((t.DATE, t.INTEGER), t.DATE)),
    Function("add_business_days", "add_business_days(day: date, n: integer) -> date",
             "the n-th business day after `day` on the vendor's country calendar",
             _fixed((t.DATE, t.INTEGER), t.DATE)),
    Function("business_days_between", "business_days_between(from: date, to: date) -> integer",
             "business days in (from, to] on the vendor's country calendar",
             _fixed((t.DATE, t.DATE), t.INTEGER)),
    Function("date_of", "date_of(moment: datetime) -> date",
             "the calendar day of a moment in the vendor's time zone",
             _fixed((t.DATETIME,), t.DATE)),
    Function("minutes", "minutes(d: duration) -> integer",
             "whole minutes of a duration, a started minute counting as one",
             _fixed((t.DURATION,), t.INTEGER)),
    Function("interval_minutes", "interval_minutes(records) -> integer",
             "minutes covered by the union of the records' [start, end) intervals, "
             "a started minute counting as one", _intervals),
    Function("min", "min(a, b, ...) | min(list)", "the smallest value", _extreme),
    Function("max", "max(a, b, ...) | max(list)", "the largest value", _extreme),
    Function("sum", "sum(list)", "the sum of a list (0 for an empty list)", _sum),
    Function("count", "count(list) -> integer", "the number of items in a list", _count),
    Function("round", "round(x) | round(x, places)",
             "round with the policy's rounding mode: money to the currency's minor unit",
             _round),
    Function("pro_rata", "pro_rata(amount: money, part, whole) -> money",
             "amount × part ÷ whole, unrounded", _pro_rata),
    Function("unused_days", "unused_days(start: date, end: date, on: date) -> integer",
             "days of the period [start, end] after `on` (`on` counts as used)",
             _fixed((t.DATE, t.DATE, t.DATE), t.INTEGER)),
    Function("pro_rata_days", "pro_rata_days(amount: money, start: date, end: date, on: date) -> money",
             "amount × unused days after `on` ÷ days of [start, end], unrounded",
             _fixed((t.MONEY, t.DATE, t.DATE, t.DATE), t.MONEY)),
    Function("cycles_between", "cycles_between(start: date, end: date, months: integer) -> integer",
             "whole billing cycles of `months` months from `start` that end by `end`",
             _fixed((t.DATE, t.DATE, t.INTEGER), t.INTEGER)),
    Function("unused_cycles", "unused_cycles(start: date, end: date, on: date, months: integer) -> integer",
             "whole cycles of the term [start, end] that start after the cycle containing `on`",
             _fixed((t.DATE, t.DATE, t.DATE, t.INTEGER), t.INTEGER)),
    Function("pro_rata_cycles",
             "pro_rata_cycles(amount: money, start: date, end: date, on: date, months: integer) -> money",
             "amount × unused whole cycles ÷ whole cycles of the term, unrounded",
             _fixed((t.MONEY, t.DATE, t.DATE, t.DATE, t.INTEGER), t.MONEY)),
    Function("coalesce", "coalesce(a, b, ...)", "the first value whose facts are given",
             _coalesce),
    Function("abs", "abs(x)", "the absolute value", _abs),
)}

# ``has(fact)``, ``date('2024-01-31')``, ``datetime(...)`` and ``money('25')``
# are handled by the checker itself: they take a name or a literal, not a value.
SPECIAL = ("has", "date", "datetime", "money")


# --- runtime helpers (referenced by generated code) -------------------------

def days_between(a: date, b: date) -> int:
    return (b - a).days


def add_days(d: date, n: int) -> date:
    return d + timedelta(days=n)


def div(a: Any, b: Any) -> Any:
    if b == 0:
        raise EvalFailure("division by zero")
    return CONTEXT.divide(Decimal(a), Decimal(b))


def mul(a: Any, b: Any) -> Any:
    return CONTEXT.multiply(Decimal(a), Decimal(b))


def minutes(d: timedelta) -> int:
    return math.ceil(d / timedelta(minutes=1))


def interval_minutes(records: list[dict[str, Any]]) -> int:
    """Minutes in the union of [start, end) intervals; overlaps count once."""
    spans = sorted((r["start"], r["end"]) for r in records)
    total = timedelta()
    current_start: datetime | None = None
    current_end: datetime | None = None
    for start, end in spans:
        if end < start:
            raise EvalFailure(f"an interval ends ({end.isoformat()}) before it starts ({start.isoformat()})")
        if current_end is None or start > current_end:
            if current_end is not None and current_start is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        elif end > current_end:
            current_end = end
    if current_end is not None and current_start is not None:
        total += current_end - current_start
    return minutes(total)


def extreme(pick: Callable[..., Any], *args: Any) -> Any:
    values = args[0] if len(args) == 1 and isinstance(args[0], list) else args
    if not values:
        raise EvalFailure("min/max of an empty list")
    return pick(values)


def total(values: list[Any], zero: Any) -> Any:
    """Sum of ``values``; ``zero`` (of the item type) for an empty list."""
    return sum(values, zero)


def pro_rata(amount: Decimal, part: Any, whole: Any) -> Decimal:
    return div(mul(amount, part), whole)


def coalesce(*thunks: Callable[[], Any]) -> Any:
    missing: KeyError | None = None
    for thunk in thunks:
        try:
            return thunk()
        except KeyError as err:
            missing = missing or err
    assert missing is not None
    raise missing


RUNTIME: dict[str, Any] = {
    "_days_between": days_between, "_add_days": add_days, "_add_months": add_months,
    "_div": div, "_minutes": minutes, "_interval_minutes": interval_minutes,
    "_extreme": extreme, "_min": min, "_max": max, "_sum": total, "_len": len,
    "_pro_rata": pro_rata, "_coalesce": coalesce, "_abs": abs, "_D": Decimal,
    "_unused_days": billing.unused_days, "_pro_rata_days": billing.pro_rata_days,
    "_cycles_between": billing.cycles_between, "_unused_cycles": billing.unused_cycles,
    "_pro_rata_cycles": billing.pro_rata_cycles,
}
