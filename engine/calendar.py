"""Dates, months and business days on a vendor's own calendar.

Business days are Monday to Friday that are not public holidays of the
vendor's country, from the ``holidays`` package. One :class:`Calendar` per
compiled policy; holiday tables are built per year on first use and kept in
the instance (no module-level state).
"""

from __future__ import annotations

import bisect
import calendar as _stdlib_calendar
import threading
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays


def add_months(day: date, months: int) -> date:
    """Same day ``months`` later, clamped to the month's end (Jan 31 + 1 → Feb 28/29)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = _stdlib_calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


class Calendar:
    """Holidays and time zone of one country, for business-day arithmetic."""

    def __init__(self, country: str, timezone: str, subdivision: str | None = None) -> None:
        self.country = country
        self.subdivision = subdivision
        self.tz = ZoneInfo(timezone)
        self._years: dict[int, frozenset[date]] = {}
        self._ordinals: dict[int, list[int]] = {}
        self._lock = threading.Lock()
        table = holidays.country_holidays(country, subdiv=subdivision)  # fail early on a bad code
        # The years the holidays tables know (e.g. Indonesia 1946-2100): a business
        # day outside them would silently ignore every holiday, so it is refused.
        self.first_year: int = getattr(table, "start_year", 1900)
        self.last_year: int = getattr(table, "end_year", 2100)

    def _known(self, year: int) -> None:
        if not self.first_year <= year <= self.last_year:
            from engine.expressions.functions import EvalFailure  # noqa: PLC0415 - it imports this module

            raise EvalFailure(f"business days in {year} are unknown: the {self.country} holiday calendar "
                              f"covers {self.first_year}-{self.last_year}")

    def holidays_of(self, year: int) -> frozenset[date]:
        """Public holidays of ``year`` (cached per instance)."""
        days = self._years.get(year)
        if days is None:
            self._known(year)
            with self._lock:
                table = holidays.country_holidays(self.country, subdiv=self.subdivision, years=year)
                days = frozenset(table)
                self._years[year] = days
        return days

    def holiday_name(self, day: date) -> str | None:
        if day not in self.holidays_of(day.year):
            return None
        # English names whatever the machine's locale (holidays defaults to the country's language).
        try:
            table = holidays.country_holidays(self.country, subdiv=self.subdivision, years=day.year,
                                              language="en_US")
        except (NotImplementedError, ValueError):
            table = holidays.country_holidays(self.country, subdiv=self.subdivision, years=day.year)
        return table.get(day)

    def is_business_day(self, day: date) -> bool:
        off = self.holidays_of(day.year)  # first: a weekend past the calendar's years is unknown too
        return day.weekday() < 5 and day not in off

    def _business_ordinals(self, year: int) -> list[int]:
        """Ordinals of the business days of ``year`` - 1 through ``year`` + 1 (cached)."""
        days = self._ordinals.get(year)
        if days is None:
            self._known(year)
            first, last = max(year - 1, self.first_year), min(year + 1, self.last_year)
            start, end = date(first, 1, 1).toordinal(), date(last + 1, 1, 1).toordinal()
            days = [n for n in range(start, end) if self.is_business_day(date.fromordinal(n))]
            with self._lock:
                self._ordinals[year] = days
        return days

    def add_business_days(self, day: date, count: int) -> date:
        """The ``count``-th business day after ``day`` (``day`` itself is not counted).

        A negative count walks backwards; zero returns ``day`` unchanged.
        """
        if count == 0:
            return day
        ordinals = self._business_ordinals(day.year)
        n = day.toordinal()
        index = bisect.bisect_right(ordinals, n) + count - 1 if count > 0 else bisect.bisect_left(ordinals, n) + count
        if 0 <= index < len(ordinals):
            return date.fromordinal(ordinals[index])
        return self._walk(day, count)  # beyond the cached three years

    def _walk(self, day: date, count: int) -> date:
        step = 1 if count >= 0 else -1
        remaining = abs(count)
        while remaining:
            day += timedelta(days=step)
            if self.is_business_day(day):
                remaining -= 1
        return day

    def business_days_between(self, start: date, end: date) -> int:
        """Business days in (start, end]; negative when ``end`` is before ``start``."""
        if end < start:
            return -self.business_days_between(end, start)
        return sum(1 for n in range(1, (end - start).days + 1)
                   if self.is_business_day(start + timedelta(days=n)))

    def date_of(self, moment: datetime) -> date:
        """The calendar day of ``moment`` in the vendor's time zone."""
        return moment.astimezone(self.tz).date()
