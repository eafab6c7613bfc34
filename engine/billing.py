"""Billing periods and prepaid terms: how much of a paid period is still unused.

A subscription case can carry its current billing cycle (start and end)
and a prepaid term that spans several cycles (a year paid upfront, billed
monthly). Two measures of the unused part, for the expression language:

* by days — :func:`unused_days` / :func:`pro_rata_days`: the days of
  ``[start, end]`` after ``on`` (``on`` itself counts as used);
* by whole cycles — :func:`cycles_between` / :func:`unused_cycles` /
  :func:`pro_rata_cycles`: the whole cycles of ``months`` months of the term
  that start after the cycle containing ``on`` (the current cycle counts as
  used, as where cancellations take effect at the end of the cycle).

Results are unrounded Decimals; rounding is the caller's (the decision
rounds money once, to the currency's minor unit). Impossible inputs raise
``ValueError``, which the engine reports as an evaluation error on the case.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from engine.calendar import add_months
from engine.money import CONTEXT

MAX_CYCLES = 1200  # a hundred years of monthly cycles: beyond it the case is wrong


def pro_rata(amount: Decimal, part: int, whole: int) -> Decimal:
    """amount × part ÷ whole, exact to 34 digits."""
    if whole == 0:
        raise ValueError("division by zero")
    return CONTEXT.divide(CONTEXT.multiply(Decimal(amount), Decimal(part)), Decimal(whole))


def _check_span(start: date, end: date) -> None:
    if end < start:
        raise ValueError(f"the period ends ({end.isoformat()}) before it starts ({start.isoformat()})")


def unused_days(start: date, end: date, on: date) -> int:
    """Days of ``[start, end]`` after ``on`` (0 when ``on`` is the last day or later)."""
    _check_span(start, end)
    first_unused = max(start, on + timedelta(days=1))
    return max(0, (end - first_unused).days + 1)


def pro_rata_days(amount: Decimal, start: date, end: date, on: date) -> Decimal:
    """``amount`` × days of ``[start, end]`` after ``on`` ÷ days of ``[start, end]``."""
    return pro_rata(amount, unused_days(start, end, on), (end - start).days + 1)


def _months(months: int) -> int:
    if not 1 <= months <= 120:
        raise ValueError(f"a billing cycle is 1 to 120 months, found {months}")
    return months


def cycles_between(start: date, end: date, months: int) -> int:
    """Whole cycles of ``months`` months from ``start`` that end on or before ``end``."""
    _check_span(start, end)
    months = _months(months)
    n = 0
    while n < MAX_CYCLES and add_months(start, (n + 1) * months) <= end + timedelta(days=1):
        n += 1
    return n


def unused_cycles(start: date, end: date, on: date, months: int) -> int:
    """Whole cycles of the term ``[start, end]`` that start after the cycle containing ``on``."""
    total = cycles_between(start, end, months)
    if on < start:
        return total
    current = 0  # index of the cycle containing ``on``
    while current < total and add_months(start, (current + 1) * months) <= on:
        current += 1
    return max(0, total - current - 1)


def pro_rata_cycles(amount: Decimal, start: date, end: date, on: date, months: int) -> Decimal:
    """``amount`` × unused whole cycles ÷ whole cycles of the term."""
    total = cycles_between(start, end, months)
    if total == 0:
        raise ValueError(f"the term {start.isoformat()}..{end.isoformat()} is shorter than one "
                          f"cycle of {months} month(s)")
    return pro_rata(amount, unused_cycles(start, end, on, months), total)
