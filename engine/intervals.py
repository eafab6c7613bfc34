"""Abstract values: what is known about a fact that is missing or only bounded.

The relevance analysis (:mod:`engine.relevance`) must say, for a case with
missing facts, whether *every* value those facts could take gives the same
decision. It cannot try every value, so it evaluates expressions over sets of
values instead:

- :class:`Span` — an interval of an orderable type (integer, decimal, money,
  date, datetime, duration), each end open or closed;
- :class:`Choice` — a finite set of possible values (bool, enum, string);
- :data:`TOP` — nothing is known (a type or function we do not reason about).

Every operation here is *sound*: the abstract result contains every concrete
result the inputs could produce. It may contain more (then a condition stays
unknown and the fact stays needed) but never less, so the engine never
decides on a guess. Integer and date spans are kept with closed ends (an
open end moves by one step), which makes comparisons on them exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Callable

from engine.case import MAX_INTEGER, MAX_MAGNITUDE, MAX_YEAR, MIN_YEAR
from engine.expressions.functions import EvalFailure

TRUE, FALSE, UNKNOWN = "true", "false", "unknown"
ORDERABLE = ("integer", "decimal", "money", "date", "datetime", "duration")
FINITE = ("bool", "enum")
_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Span:
    """The values between ``lo`` and ``hi`` (each end open or closed)."""

    lo: Any
    hi: Any
    lo_open: bool = False
    hi_open: bool = False

    @property
    def empty(self) -> bool:
        return self.lo > self.hi or (self.lo == self.hi and (self.lo_open or self.hi_open))

    @property
    def point(self) -> bool:
        return self.lo == self.hi and not self.empty


@dataclass(frozen=True, slots=True)
class Choice:
    """One of finitely many values."""

    values: frozenset[Any]


@dataclass(frozen=True, slots=True)
class Top:
    """Any value: what an expression we do not reason about may give."""


TOP = Top()
Abstract = Span | Choice | Top


def _discrete(value: Any) -> Any:
    """The step of a discrete ordered type (int, date), or None for dense ones."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return 1
    if isinstance(value, date) and not isinstance(value, datetime):
        return _DAY
    return None


def normal(span: Span) -> Span:
    """Closed ends for discrete types, so that ``x < 5`` and ``x <= 4`` are one span."""
    step = _discrete(span.lo)
    if step is None:
        return span
    try:
        lo = span.lo + step if span.lo_open else span.lo
        hi = span.hi - step if span.hi_open else span.hi
    except OverflowError:
        return span
    return Span(lo, hi)


def point(value: Any) -> Abstract:
    """The abstract value holding exactly ``value``."""
    if isinstance(value, (bool, str)):
        return Choice(frozenset({value}))
    if isinstance(value, (int, Decimal, date, timedelta)):
        return Span(value, value)
    return TOP


def single(value: Abstract) -> tuple[bool, Any]:
    """``(True, v)`` when the abstract value holds one value ``v``."""
    if isinstance(value, Span) and value.point:
        return True, value.lo
    if isinstance(value, Choice) and len(value.values) == 1:
        return True, next(iter(value.values))
    return False, None


def domain(kind: str, values: tuple[str, ...] = (), minimum: Decimal | None = None,
           maximum: Decimal | None = None) -> Abstract:
    """Every value a fact of this declared type may take (the case coercion's limits)."""
    if kind == "bool":
        return Choice(frozenset({True, False}))
    if kind == "enum":
        return Choice(frozenset(values))
    if kind == "integer":
        span = Span(-MAX_INTEGER + 1, MAX_INTEGER - 1)
    elif kind in ("decimal", "money"):
        span = Span(-MAX_MAGNITUDE, MAX_MAGNITUDE, True, True)
    elif kind == "date":
        span = Span(date(MIN_YEAR, 1, 1), date(MAX_YEAR, 12, 31))
    elif kind == "datetime":
        span = Span(datetime(MIN_YEAR, 1, 1, tzinfo=timezone.utc) - _DAY,
                    datetime(MAX_YEAR, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc) + _DAY)
    elif kind == "duration":
        span = Span(timedelta(0), timedelta.max)
    else:
        return TOP
    if minimum is not None:
        span = meet(span, Span(int(minimum) if kind == "integer" else minimum, span.hi))  # type: ignore[assignment]
    if maximum is not None:
        span = meet(span, Span(span.lo, int(maximum) if kind == "integer" else maximum))  # type: ignore[assignment]
    return normal(span) if isinstance(span, Span) else span


def meet(a: Abstract, b: Abstract) -> Abstract:
    """Values in both ``a`` and ``b`` (may be empty: check :func:`is_empty`)."""
    if isinstance(a, Top):
        return b
    if isinstance(b, Top):
        return a
    if isinstance(a, Choice) and isinstance(b, Choice):
        return Choice(a.values & b.values)
    if isinstance(a, Span) and isinstance(b, Span):
        lo, lo_open = max((a.lo, a.lo_open), (b.lo, b.lo_open), key=lambda e: (e[0], e[1]))
        hi, hi_open = min((a.hi, not a.hi_open), (b.hi, not b.hi_open), key=lambda e: (e[0], e[1]))
        return normal(Span(lo, hi, lo_open, not hi_open))
    return TOP


def join(a: Abstract, b: Abstract) -> Abstract:
    """The smallest abstract value holding both ``a`` and ``b``."""
    if isinstance(a, Choice) and isinstance(b, Choice):
        return Choice(a.values | b.values)
    if isinstance(a, Span) and isinstance(b, Span):
        lo, lo_open = min((a.lo, a.lo_open), (b.lo, b.lo_open), key=lambda e: (e[0], e[1]))
        hi, hi_open = max((a.hi, not a.hi_open), (b.hi, not b.hi_open), key=lambda e: (e[0], e[1]))
        return Span(lo, hi, lo_open, not hi_open)
    return TOP


def is_empty(a: Abstract) -> bool:
    if isinstance(a, Span):
        return a.empty
    if isinstance(a, Choice):
        return not a.values
    return False


# --- comparisons -------------------------------------------------------------

def _less(a: Span, b: Span) -> str:
    """Is every value of ``a`` below every value of ``b`` (TRUE), none (FALSE), or some?"""
    if a.hi < b.lo or (a.hi == b.lo and (a.hi_open or b.lo_open)):
        return TRUE
    if a.lo >= b.hi:
        return FALSE
    return UNKNOWN


def _less_equal(a: Span, b: Span) -> str:
    if a.hi <= b.lo:
        return TRUE
    if a.lo > b.hi or (a.lo == b.hi and (a.lo_open or b.hi_open)):
        return FALSE
    return UNKNOWN


def _not(value: str) -> str:
    return {TRUE: FALSE, FALSE: TRUE}.get(value, UNKNOWN)


def compare(a: Abstract, op: str, b: Abstract) -> str:
    """Three-valued ``a op b``: TRUE or FALSE for every pair of values, else UNKNOWN."""
    try:
        if isinstance(a, Span) and isinstance(b, Span):
            if op == "<":
                return _less(a, b)
            if op == "<=":
                return _less_equal(a, b)
            if op == ">":
                return _less(b, a)
            if op == ">=":
                return _less_equal(b, a)
            equal = TRUE if a.point and b.point and a.lo == b.lo else (
                FALSE if TRUE in (_less(a, b), _less(b, a)) else UNKNOWN)
            return equal if op == "==" else _not(equal)
        if isinstance(a, Choice) and isinstance(b, Choice) and op in ("==", "!="):
            if len(a.values) == 1 and a.values == b.values:
                equal = TRUE
            else:
                equal = FALSE if not a.values & b.values else UNKNOWN
            return equal if op == "==" else _not(equal)
    except TypeError:
        return UNKNOWN  # values of types that do not compare: no proof either way
    return UNKNOWN


def member(a: Abstract, values: tuple[Any, ...], negated: bool) -> str:
    """Three-valued ``a in values`` (``not in`` when ``negated``)."""
    if isinstance(a, Choice):
        inside = TRUE if a.values <= set(values) else FALSE if not a.values & set(values) else UNKNOWN
    elif isinstance(a, Span) and a.point:
        inside = TRUE if a.lo in values else FALSE
    elif isinstance(a, Span):
        inside = FALSE if not any(compare(a, "==", Span(v, v)) != FALSE
                                  for v in values if not isinstance(v, (bool, str))) else UNKNOWN
    else:
        inside = UNKNOWN
    return _not(inside) if negated else inside


def truth(a: Abstract) -> str:
    """Three-valued reading of a boolean abstract value."""
    if isinstance(a, Choice) and a.values and a.values <= {True, False}:
        return TRUE if a.values == {True} else FALSE if a.values == {False} else UNKNOWN
    return UNKNOWN


def of_truth(value: str) -> Abstract:
    return Choice(frozenset({True} if value == TRUE else {False} if value == FALSE else {True, False}))


# --- arithmetic --------------------------------------------------------------

def plus(x: Any, y: Any) -> Any:
    """``x + y`` with the expression language's date rule (date + integer = days later)."""
    if isinstance(x, date) and not isinstance(x, datetime) and isinstance(y, int):
        return x + timedelta(days=y)
    if isinstance(y, date) and not isinstance(y, datetime) and isinstance(x, int):
        return y + timedelta(days=x)
    return x + y


def minus(x: Any, y: Any) -> Any:
    """``x - y`` with date - date = days between and date - integer = days earlier."""
    if isinstance(x, date) and not isinstance(x, datetime):
        if isinstance(y, int):
            return x - timedelta(days=y)
        if isinstance(y, date) and not isinstance(y, datetime):
            return (x - y).days
    return x - y


def monotone(fn: Callable[..., Any], args: list[Abstract], signs: tuple[int, ...]) -> Abstract:
    """Apply ``fn`` that is non-decreasing (sign 1) or non-increasing (-1) in each argument.

    The extremes of such a function over a box of arguments are at its corners,
    so evaluating the two corners bounds every result. Ends become closed (a
    superset, so still sound).
    """
    if not all(isinstance(a, Span) for a in args):
        return TOP
    spans: list[Span] = args  # type: ignore[assignment]
    low = [s.lo if sign > 0 else s.hi for s, sign in zip(spans, signs, strict=True)]
    high = [s.hi if sign > 0 else s.lo for s, sign in zip(spans, signs, strict=True)]
    try:
        lo, hi = fn(*low), fn(*high)
    except (ArithmeticError, OverflowError, ValueError, TypeError, EvalFailure):
        # A corner the function cannot evaluate (a year the holiday calendar
        # does not know, a date past 9999) bounds nothing: stay unproven.
        return TOP
    if all(s.point for s in spans):
        return point(lo)
    return Span(lo, hi) if lo <= hi else TOP


def add(a: Abstract, b: Abstract) -> Abstract:
    if isinstance(a, Span) and isinstance(b, Span):
        try:
            return normal(Span(plus(a.lo, b.lo), plus(a.hi, b.hi),
                               a.lo_open or b.lo_open, a.hi_open or b.hi_open))
        except (ArithmeticError, OverflowError, TypeError):
            return TOP
    return TOP


def negate(a: Abstract) -> Abstract:
    if isinstance(a, Span):
        try:
            return Span(-a.hi, -a.lo, a.hi_open, a.lo_open)
        except TypeError:
            return TOP
    return TOP


def subtract(a: Abstract, b: Abstract) -> Abstract:
    if isinstance(a, Span) and isinstance(b, Span):
        try:
            return normal(Span(minus(a.lo, b.hi), minus(a.hi, b.lo),
                               a.lo_open or b.hi_open, a.hi_open or b.lo_open))
        except (ArithmeticError, OverflowError, TypeError):
            return TOP
    return TOP


def corners(fn: Callable[[Any, Any], Any], a: Abstract, b: Abstract) -> Abstract:
    """``fn`` (product or quotient) over two spans: the hull of its four corner values.

    Sound for multiplication everywhere and for division when the divisor's
    span excludes zero: on each sign-constant box both are monotone in each
    argument, and correctly rounded Decimal arithmetic keeps that monotony.
    """
    if not (isinstance(a, Span) and isinstance(b, Span)):
        return TOP
    try:
        values = [fn(x, y) for x in (a.lo, a.hi) for y in (b.lo, b.hi)]
    except (ArithmeticError, OverflowError, ValueError, TypeError):
        return TOP
    if a.point and b.point:
        return point(values[0])
    return Span(min(values), max(values))


def divide(a: Abstract, b: Abstract, fn: Callable[[Any, Any], Any]) -> Abstract:
    if not isinstance(b, Span) or compare(b, "==", Span(0, 0)) != FALSE:
        return TOP  # the divisor may be zero (or is unknown): no bound
    return corners(fn, a, b)


def extreme(pick: Callable[..., Any], args: list[Abstract]) -> Abstract:
    """``min``/``max`` of spans: the pick of the lows and the pick of the highs."""
    if not args or not all(isinstance(a, Span) for a in args):
        return TOP
    spans: list[Span] = args  # type: ignore[assignment]
    try:
        return Span(pick(s.lo for s in spans), pick(s.hi for s in spans))
    except TypeError:
        return TOP


def absolute(a: Abstract) -> Abstract:
    if not isinstance(a, Span):
        return TOP
    zero = a.lo - a.lo
    if a.lo >= zero:
        return a
    if a.hi <= zero:
        return negate(a)
    return Span(zero, max(-a.lo, a.hi))


def bisect(span: Span) -> tuple[Span, Span] | None:
    """Two halves of a span, or None when it cannot be split further."""
    lo, hi = span.lo, span.hi
    try:
        if _discrete(lo) is not None:
            if lo >= hi:
                return None
            mid = lo + (hi - lo) // 2
            return Span(lo, mid), Span(plus(mid, 1) if isinstance(mid, int) else mid + _DAY, hi)
        if isinstance(lo, Decimal):
            mid = (lo + hi) / 2
        elif isinstance(lo, (datetime, timedelta)):
            mid = lo + (hi - lo) / 2
        else:
            return None
    except (ArithmeticError, OverflowError, TypeError):
        return None
    if not lo < mid < hi:
        return None
    return Span(lo, mid, span.lo_open, False), Span(mid, hi, True, span.hi_open)


def cut(span: Span, at: Any) -> list[Span]:
    """``span`` split at the value ``at`` into below, equal and above (non-empty parts).

    For a discrete span ``at`` must be of its type (an integer or a date),
    else the parts could skip or repeat a value; callers bisect instead.
    """
    step = _discrete(span.lo)
    if step is not None and type(at) is not type(span.lo):
        return [span]
    out = []
    for part in (Span(span.lo, at, span.lo_open, True), Span(at, at), Span(at, span.hi, True, span.hi_open)):
        try:
            piece = meet(span, normal(part))
        except (TypeError, OverflowError):
            return [span]
        if isinstance(piece, Span) and not piece.empty:
            out.append(piece)
    return out
