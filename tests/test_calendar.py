"""engine/calendar.py: business days on a vendor's country calendar, and local days.

Covers add_business_days / business_days_between on the Costa Rican calendar
across Holy Week 2025 (Apr 17-18) and Juan Santamaría Day (Apr 11), weekends,
negative and zero counts; Indonesian holidays; date_of near midnight in the
vendor's time zone; and add_months clamping.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from engine.calendar import Calendar, add_months


@pytest.fixture(scope="module")
def cr() -> Calendar:
    return Calendar("CR", "America/Costa_Rica")


@pytest.fixture(scope="module")
def indonesia() -> Calendar:
    return Calendar("ID", "Asia/Jakarta")


@pytest.mark.parametrize(
    ("day", "name"),
    [
        (date(2025, 4, 11), "Juan Santamaría"),
        (date(2025, 4, 17), "Thursday"),
        (date(2025, 4, 18), "Good Friday"),
        (date(2025, 5, 1), "Labor"),
    ],
    ids=["juan-santamaria", "holy-thursday", "good-friday", "labour-day"],
)
def test_costa_rica_holidays_are_not_business_days(cr: Calendar, day: date, name: str) -> None:
    assert day.weekday() < 5  # each falls on a weekday in 2025
    assert not cr.is_business_day(day)
    assert name in (cr.holiday_name(day) or "")


def test_ordinary_weekday_is_a_business_day(cr: Calendar) -> None:
    assert cr.is_business_day(date(2025, 4, 16))
    assert cr.holiday_name(date(2025, 4, 16)) is None


@pytest.mark.parametrize(
    ("start", "count", "expected"),
    [
        # 20 business days skip Apr 11, Apr 17-18, May 1 and four weekends.
        (date(2025, 4, 1), 20, date(2025, 5, 5)),
        # Wed Apr 16 + 1: Thu/Fri are Holy Week, then the weekend.
        (date(2025, 4, 16), 1, date(2025, 4, 21)),
        # Thu Apr 10 + 1: Fri Apr 11 is Juan Santamaría Day.
        (date(2025, 4, 10), 1, date(2025, 4, 14)),
        # Friday + 1 = Monday.
        (date(2025, 3, 7), 1, date(2025, 3, 10)),
        # Saturday + 1 = Monday (the start day is never counted).
        (date(2025, 3, 8), 1, date(2025, 3, 10)),
        # Monday + 5 = next Monday.
        (date(2025, 3, 3), 5, date(2025, 3, 10)),
        # Zero leaves the day unchanged, even on a holiday.
        (date(2025, 4, 18), 0, date(2025, 4, 18)),
        # Negative counts walk back across Holy Week and the weekend.
        (date(2025, 4, 21), -1, date(2025, 4, 16)),
        (date(2025, 5, 5), -20, date(2025, 4, 1)),
        # Across a year end: Dec 25 and Jan 1 are holidays.
        (date(2024, 12, 24), 3, date(2024, 12, 30)),
    ],
    ids=["20-after-apr-1", "holy-week", "juan-santamaria", "friday", "saturday",
         "full-week", "zero-on-holiday", "back-over-holy-week", "back-20", "year-end"],
)
def test_add_business_days_costa_rica(cr: Calendar, start: date, count: int, expected: date) -> None:
    assert cr.add_business_days(start, count) == expected


def test_add_business_days_never_lands_on_weekend_or_holiday(cr: Calendar) -> None:
    start = date(2025, 3, 1)
    for n in range(1, 60):
        day = cr.add_business_days(start, n)
        assert day.weekday() < 5, (n, day)
        assert day not in cr.holidays_of(day.year), (n, day)
        assert cr.add_business_days(start, n - 1) < day


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (date(2025, 4, 1), date(2025, 5, 5), 20),
        (date(2025, 5, 5), date(2025, 4, 1), -20),
        (date(2025, 4, 16), date(2025, 4, 21), 1),
        (date(2025, 4, 1), date(2025, 4, 1), 0),
        # (start, end]: a Saturday to Sunday span holds no business day.
        (date(2025, 3, 8), date(2025, 3, 9), 0),
        # Friday to Monday: only the Monday.
        (date(2025, 3, 7), date(2025, 3, 10), 1),
    ],
    ids=["apr1-may5", "reversed", "holy-week", "same-day", "weekend", "friday-monday"],
)
def test_business_days_between(cr: Calendar, start: date, end: date, expected: int) -> None:
    assert cr.business_days_between(start, end) == expected


def test_business_days_between_inverts_add_business_days(cr: Calendar) -> None:
    start = date(2025, 4, 1)
    for n in (1, 7, 13, 20, 45):
        assert cr.business_days_between(start, cr.add_business_days(start, n)) == n


@pytest.mark.parametrize(
    ("day", "name"),
    [
        (date(2025, 1, 1), "New Year"),
        (date(2025, 3, 31), "Eid al-Fitr"),
        (date(2025, 4, 1), "Eid al-Fitr"),
        (date(2025, 5, 12), "Vesak"),
    ],
    ids=["new-year", "eid-al-fitr", "eid-al-fitr-day-2", "vesak"],
)
def test_indonesia_holidays(indonesia: Calendar, day: date, name: str) -> None:
    assert not indonesia.is_business_day(day)
    assert name in (indonesia.holiday_name(day) or "")


def test_indonesia_add_business_days_skips_eid(indonesia: Calendar) -> None:
    # Fri Mar 28 2025 + 1: Mon Mar 31 and Tue Apr 1 are Eid al-Fitr.
    assert indonesia.add_business_days(date(2025, 3, 28), 1) == date(2025, 4, 2)


def test_calendars_are_independent(cr: Calendar, indonesia: Calendar) -> None:
    # Apr 1 2025 is a holiday in Indonesia, not in Costa Rica.
    assert cr.is_business_day(date(2025, 4, 1))
    assert not indonesia.is_business_day(date(2025, 4, 1))


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        # 05:59 UTC is 23:59 the evening before in Costa Rica (UTC-6).
        (datetime(2025, 4, 2, 5, 59, tzinfo=timezone.utc), date(2025, 4, 1)),
        (datetime(2025, 4, 2, 6, 0, tzinfo=timezone.utc), date(2025, 4, 2)),
        (datetime(2025, 1, 1, 0, 30, tzinfo=timezone.utc), date(2024, 12, 31)),
        # An explicit offset is honoured too.
        (datetime(2025, 4, 1, 23, 0, tzinfo=timezone(timedelta(hours=-6))), date(2025, 4, 1)),
    ],
    ids=["before-local-midnight", "at-local-midnight", "new-year-utc", "local-offset"],
)
def test_date_of_costa_rica(cr: Calendar, moment: datetime, expected: date) -> None:
    assert cr.date_of(moment) == expected


def test_date_of_jakarta(indonesia: Calendar) -> None:
    # 17:00 UTC is midnight of the next day in Jakarta (UTC+7).
    assert indonesia.date_of(datetime(2025, 4, 1, 16, 59, tzinfo=timezone.utc)) == date(2025, 4, 1)
    assert indonesia.date_of(datetime(2025, 4, 1, 17, 0, tzinfo=timezone.utc)) == date(2025, 4, 2)


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2024, 1, 31), 1, date(2024, 2, 29)),
        (date(2023, 1, 31), 1, date(2023, 2, 28)),
        (date(2024, 8, 31), 6, date(2025, 2, 28)),
        (date(2024, 3, 31), -1, date(2024, 2, 29)),
        (date(2024, 12, 15), 1, date(2025, 1, 15)),
        (date(2025, 1, 10), 0, date(2025, 1, 10)),
        (date(2024, 2, 29), 12, date(2025, 2, 28)),
    ],
    ids=["leap-feb", "plain-feb", "aug31-plus-6", "backwards", "year-end", "zero", "leap-day-plus-year"],
)
def test_add_months_clamps(day: date, months: int, expected: date) -> None:
    assert add_months(day, months) == expected


@pytest.mark.parametrize(
    ("country", "tz"),
    [("XX", "America/Costa_Rica"), ("CR", "Mars/Olympus_Mons")],
    ids=["bad-country", "bad-timezone"],
)
def test_bad_calendar_is_refused(country: str, tz: str) -> None:
    with pytest.raises(Exception):  # noqa: B017,PT011 - holidays/zoneinfo raise assorted types
        Calendar(country, tz)
