"""Table tests for helpdesk/sla/calendar.py (business-time arithmetic)."""
import time as _time
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from helpdesk.sla.calendar import (
    Calendar, add, between, elapsed, format_local, is_open, next_close, next_open,
    open_intervals, public_holidays,
)

JKT = ZoneInfo("Asia/Jakarta")
BER = ZoneInfo("Europe/Berlin")


def loc(y, mo, d, h=0, mi=0, zone=JKT):
    """A local wall time as the naive UTC the API speaks."""
    return datetime(y, mo, d, h, mi, tzinfo=zone).astimezone(timezone.utc).replace(tzinfo=None)


STD = Calendar()                       # Jakarta, Mon–Fri 08–17, Sat 08–12, ID holidays
NOHOL = Calendar(country=None)


@pytest.mark.parametrize("cal,start,minutes,expected", [
    # Friday 16:30 + 60 → Saturday 08:30 (Sat 08:00–12:00)
    (STD, loc(2026, 11, 27, 16, 30), 60, loc(2026, 11, 28, 8, 30)),
    # Saturday 11:30 + 60 → Monday 08:30 (Sunday closed)
    (STD, loc(2026, 11, 28, 11, 30), 60, loc(2026, 11, 30, 8, 30)),
    # Nyepi (Thu 19 March 2026) is skipped
    (STD, loc(2026, 3, 18, 16, 30), 60, loc(2026, 3, 20, 8, 30)),
    (NOHOL, loc(2026, 3, 18, 16, 30), 60, loc(2026, 3, 19, 8, 30)),
    # Idul Fitri (Sat 21 March 2026) is skipped: Friday → Monday
    (STD, loc(2026, 3, 20, 16, 30), 60, loc(2026, 3, 23, 8, 30)),
    (NOHOL, loc(2026, 3, 20, 16, 30), 60, loc(2026, 3, 21, 8, 30)),
    # Christmas (Fri 25 Dec 2026)
    (STD, loc(2026, 12, 24, 16, 30), 60, loc(2026, 12, 26, 8, 30)),
    # lands exactly on a closing: stays there, does not jump to the next opening
    (STD, loc(2026, 11, 27, 16, 0), 60, loc(2026, 11, 27, 17, 0)),
    # start outside hours: counting begins at the next opening
    (STD, loc(2026, 11, 29, 10, 0), 30, loc(2026, 11, 30, 8, 30)),     # Sunday
    (STD, loc(2026, 11, 30, 7, 0), 60, loc(2026, 11, 30, 9, 0)),       # before opening
    (STD, loc(2026, 11, 30, 20, 0), 90, loc(2026, 12, 1, 9, 30)),      # after closing
    # zero minutes: the start itself, even out of hours
    (STD, loc(2026, 11, 29, 10, 0), 0, loc(2026, 11, 29, 10, 0)),
    # fractional minutes and timedelta
    (STD, loc(2026, 11, 30, 9, 0), 0.5, loc(2026, 11, 30, 9, 0) + timedelta(seconds=30)),
    (STD, loc(2026, 11, 27, 16, 30), timedelta(hours=1), loc(2026, 11, 28, 8, 30)),
    # four full weeks without holidays (49 h each) from Monday 08:00 end on the 4th Saturday's closing
    (STD, loc(2026, 11, 2, 8, 0), 4 * 49 * 60, loc(2026, 11, 28, 12, 0)),
    # 24x7: plain clock time, holidays ignored
    (Calendar(always_open=True), loc(2026, 11, 27, 16, 30), 60, loc(2026, 11, 27, 17, 30)),
    (Calendar(always_open=True), loc(2026, 12, 24, 23, 30), 60, loc(2026, 12, 25, 0, 30)),
    # special hours: Christmas Eve only until 12:00
    (Calendar(special={"2026-12-24": [["08:00", "12:00"]]}), loc(2026, 12, 24, 11, 30), 60, loc(2026, 12, 26, 8, 30)),
    # special hours override a public holiday
    (Calendar(special={"2026-12-25": [["09:00", "11:00"]]}), loc(2026, 12, 24, 16, 30), 60, loc(2026, 12, 25, 9, 30)),
    # special empty list = closed on an ordinary Monday
    (Calendar(special={"2026-11-30": []}), loc(2026, 11, 28, 11, 30), 60, loc(2026, 12, 1, 8, 30)),
    # company closed day (Monday 30 Nov)
    (Calendar(closed=["2026-11-30"]), loc(2026, 11, 28, 11, 30), 60, loc(2026, 12, 1, 8, 30)),
    (Calendar(closed=[date(2026, 11, 30), date(2026, 12, 1)]), loc(2026, 11, 28, 11, 30), 60, loc(2026, 12, 2, 8, 30)),
    # split shifts with a lunch break
    (Calendar(hours={d: [["08:00", "12:00"], ["13:00", "17:00"]] for d in range(5)}),
     loc(2026, 11, 30, 11, 30), 60, loc(2026, 11, 30, 13, 30)),
])
def test_add(cal, start, minutes, expected):
    assert add(cal, start, minutes) == expected


@pytest.mark.parametrize("cal,a,b,minutes", [
    # weekend: Fri 16:00 → Mon 09:00 = 60 (Fri) + 240 (Sat) + 0 (Sun) + 60 (Mon)
    (STD, loc(2026, 11, 27, 16, 0), loc(2026, 11, 30, 9, 0), 360),
    # Idul Fitri Saturday contributes nothing
    (STD, loc(2026, 3, 20, 16, 0), loc(2026, 3, 23, 9, 0), 120),
    (NOHOL, loc(2026, 3, 20, 16, 0), loc(2026, 3, 23, 9, 0), 360),
    # entirely out of hours
    (STD, loc(2026, 11, 28, 12, 0), loc(2026, 11, 30, 8, 0), 0),
    # reversed / equal bounds
    (STD, loc(2026, 11, 30, 10, 0), loc(2026, 11, 30, 9, 0), 0),
    (STD, loc(2026, 11, 30, 10, 0), loc(2026, 11, 30, 10, 0), 0),
    # 24x7
    (Calendar(always_open=True), loc(2026, 12, 24, 16, 0), loc(2026, 12, 26, 16, 0), 2880),
])
def test_between(cal, a, b, minutes):
    assert between(cal, a, b) == minutes
    assert elapsed(cal, a, b) == timedelta(minutes=minutes)


def test_open_and_next_open_and_next_close():
    assert is_open(STD, loc(2026, 11, 30, 8, 0))
    assert is_open(STD, loc(2026, 11, 30, 16, 59))
    assert not is_open(STD, loc(2026, 11, 30, 17, 0))           # closing is exclusive
    assert not is_open(STD, loc(2026, 11, 30, 7, 59))
    assert not is_open(STD, loc(2026, 11, 29, 10, 0))           # Sunday
    assert not is_open(STD, loc(2026, 12, 25, 10, 0))           # Christmas
    assert is_open(NOHOL, loc(2026, 12, 25, 10, 0))
    assert is_open(Calendar(always_open=True), loc(2026, 12, 25, 3, 0))
    assert next_open(STD, loc(2026, 11, 30, 10, 0)) == loc(2026, 11, 30, 10, 0)
    assert next_open(STD, loc(2026, 11, 28, 12, 0)) == loc(2026, 11, 30, 8, 0)
    assert next_open(STD, loc(2026, 12, 24, 18, 0)) == loc(2026, 12, 26, 8, 0)
    assert next_close(STD, loc(2026, 11, 30, 10, 0)) == loc(2026, 11, 30, 17, 0)
    assert next_close(STD, loc(2026, 11, 28, 13, 0)) == loc(2026, 11, 30, 17, 0)
    with pytest.raises(ValueError):
        next_close(Calendar(always_open=True), loc(2026, 11, 30, 10, 0))


def test_open_intervals_are_clipped_and_skip_closed_days():
    got = list(open_intervals(STD, loc(2026, 12, 24, 16, 0), loc(2026, 12, 28, 9, 0)))
    assert got == [(loc(2026, 12, 24, 16, 0), loc(2026, 12, 24, 17, 0)),
                   (loc(2026, 12, 26, 8, 0), loc(2026, 12, 26, 12, 0)),
                   (loc(2026, 12, 28, 8, 0), loc(2026, 12, 28, 9, 0))]


def test_hours_ending_at_midnight_join_the_next_day():
    cal = Calendar(country=None, hours={d: [["00:00", "24:00"]] for d in range(5)})
    got = list(open_intervals(cal, loc(2026, 11, 30), loc(2026, 12, 7)))
    assert got == [(loc(2026, 11, 30), loc(2026, 12, 5))]       # Mon 00:00 .. Sat 00:00 in one piece
    assert add(cal, loc(2026, 12, 4, 23, 0), 120) == loc(2026, 12, 7, 1, 0)


def test_dst_zone_hours_are_local_wall_time():
    cal = Calendar(tz="Europe/Berlin", country=None,
                   hours={d: [["08:00", "17:00"]] for d in range(5)} | {6: [["01:00", "04:00"]]})
    # Friday before spring-forward (CET) → Monday after (CEST), 08:30 local both times
    assert add(cal, loc(2026, 3, 27, 16, 30, BER), 60 + 120) == loc(2026, 3, 30, 8, 30, BER)
    assert loc(2026, 3, 30, 8, 30, BER) == datetime(2026, 3, 30, 6, 30)
    # 29 March 2026: 02:00 CET jumps to 03:00 CEST, so Sunday 01:00–04:00 lasts 2 hours
    assert between(cal, datetime(2026, 3, 28), datetime(2026, 3, 30)) == 120
    # 25 October 2026: 03:00 CEST falls back to 02:00 CET, so the same hours last 4 hours
    assert between(cal, datetime(2026, 10, 24), datetime(2026, 10, 26)) == 240
    assert not is_open(cal, datetime(2026, 10, 25, 3, 0))       # 04:00 CET: closed
    assert is_open(cal, datetime(2026, 10, 25, 2, 59))


def test_efficient_for_long_durations():
    start = loc(2026, 1, 1, 9, 0)
    t0 = _time.perf_counter()
    end = add(STD, start, 365 * 8 * 60)
    assert elapsed(STD, start, end) == timedelta(minutes=365 * 8 * 60)
    assert _time.perf_counter() - t0 < 2.0


def test_calendar_without_any_opening_raises_instead_of_looping():
    with pytest.raises(ValueError):
        Calendar(hours={})
    # only a special day in the past is open: the lookahead gives up
    cal = Calendar(hours={}, special={"2020-01-06": [["08:00", "09:00"]]})
    with pytest.raises(ValueError, match="no open hours"):
        add(cal, loc(2026, 1, 1), 10)
    with pytest.raises(ValueError, match="no open hours"):
        next_open(cal, loc(2026, 1, 1))


def test_spec_round_trip_and_defaults():
    spec = {"tz": "Asia/Makassar", "hours": {"0": [["08:00", "17:00"]], "5": [["08:00", "12:00"]]},
            "always_open": False, "country": "ID", "closed": ["2026-12-31"],
            "special": {"2026-12-24": [["08:00", "12:00"]]}}
    cal = Calendar.from_spec(spec)
    assert cal.zone == ZoneInfo("Asia/Makassar")
    assert cal.closed == frozenset({date(2026, 12, 31)})
    assert Calendar.from_spec(cal.to_spec()) == cal
    assert cal.to_spec()["hours"]["1"] == [] and cal.to_spec()["hours"]["0"] == [["08:00", "17:00"]]
    default = Calendar.from_spec({})
    assert default == Calendar() and default.tz == "Asia/Jakarta" and default.country == "ID"
    assert default.to_spec()["hours"]["5"] == [["08:00", "12:00"]] and default.to_spec()["hours"]["6"] == []
    assert hash(default) == hash(Calendar())


@pytest.mark.parametrize("spec", [
    {"hours": {"0": [["17:00", "08:00"]]}},
    {"hours": {"0": [["08:00", "25:00"]]}},
    {"hours": {"0": [["8am", "5pm"]]}},
    {"hours": {"7": [["08:00", "17:00"]]}},
    {"tz": "Mars/Olympus"},
    {"closed": ["30/11/2026"]},
    {"timezone": "Asia/Jakarta"},
])
def test_bad_specs_are_rejected(spec):
    with pytest.raises(ValueError):
        Calendar.from_spec(spec)


def test_arguments_are_checked():
    with pytest.raises(ValueError):
        add(STD, datetime(2026, 11, 30, 3, 0, tzinfo=timezone.utc), 10)
    with pytest.raises(ValueError):
        add(STD, loc(2026, 11, 30, 10), -1)
    with pytest.raises(TypeError):
        add(STD, loc(2026, 11, 30, 10), "10")


def test_public_holidays_for_indonesia():
    h = public_holidays("ID", 2026)
    assert h[date(2026, 3, 21)] == "Eid al-Fitr"
    assert date(2026, 12, 25) in h and date(2026, 8, 17) in h
    assert date(2026, 11, 30) not in h
    assert set(public_holidays("ID", [2026, 2027])) > set(h)


@pytest.mark.parametrize("dt,tz,locale,expected", [
    (loc(2026, 11, 30, 9, 30), "Asia/Jakarta", "id", "Senin, 30 November 2026, 09.30 WIB"),
    (loc(2026, 11, 30, 9, 30), "Asia/Jakarta", "en", "Monday, 30 November 2026, 09:30 WIB"),
    (datetime(2026, 11, 30, 2, 30), "Asia/Makassar", "id", "Senin, 30 November 2026, 10.30 WITA"),
    (datetime(2026, 11, 30, 2, 30), "Asia/Jayapura", "id", "Senin, 30 November 2026, 11.30 WIT"),
    (datetime(2026, 11, 29, 20, 0), "Asia/Jakarta", "id", "Senin, 30 November 2026, 03.00 WIB"),
    (datetime(2026, 7, 1, 12, 0), "Europe/Berlin", "en", "Wednesday, 1 July 2026, 14:00 CEST"),
    (datetime(2026, 1, 1, 12, 0), "Europe/Berlin", "en", "Thursday, 1 January 2026, 13:00 CET"),
])
def test_format_local(dt, tz, locale, expected):
    assert format_local(dt, tz, locale) == expected
