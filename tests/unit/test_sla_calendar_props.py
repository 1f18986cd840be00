"""Property tests for helpdesk/sla/calendar.py: the arithmetic laws on a
Jakarta calendar with Indonesian holidays and on DST-zone calendars, plus a
brute-force minute-by-minute oracle that reads the calendar spec directly."""
import functools
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpdesk.sla.calendar import (
    Calendar, add, between, elapsed, is_open, next_close, next_open, public_holidays,
)

PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EPS = timedelta(microseconds=1)

WEEKDAYS_SPLIT = {d: [["08:00", "12:00"], ["13:00", "17:00"]] for d in range(5)}
SPECS = {
    # Jakarta, ID public holidays, company days off, special hours (incl. an open Sunday)
    "jakarta": {"tz": "Asia/Jakarta", "country": "ID",
                "hours": WEEKDAYS_SPLIT | {5: [["08:00", "12:00"]]},
                "closed": ["2026-12-31", "2027-01-04", "2026-06-02"],
                "special": {"2026-12-24": [["08:00", "12:00"]], "2026-12-27": [["10:00", "14:00"]],
                            "2027-03-10": [], "2026-08-17": [["09:00", "10:00"]]}},
    # Berlin office hours (never touch the 02:00/03:00 DST switch), German holidays
    "berlin": {"tz": "Europe/Berlin", "country": "DE",
               "hours": {d: [["08:00", "17:00"]] for d in range(5)},
               "closed": ["2026-12-28"], "special": {"2026-12-24": [["08:00", "12:00"]]}},
    # night shifts straddling the DST switches: nonexistent and repeated wall times
    "berlin_night": {"tz": "Europe/Berlin", "country": None,
                     "hours": {6: [["01:00", "02:30"], ["02:45", "04:00"]], 5: [["22:00", "24:00"]],
                               0: [["00:00", "02:10"], ["09:00", "10:00"]], 4: [["02:00", "03:00"]]}},
    "new_york": {"tz": "America/New_York", "country": "US",
                 "hours": {d: [["00:00", "24:00"]] for d in range(1, 5)}
                 | {6: [["01:30", "02:30"], ["03:00", "05:00"]], 0: [["00:00", "01:00"]]}},
}
CALS = {name: Calendar.from_spec(spec) for name, spec in SPECS.items()}
ORACLE_SAFE = ["jakarta", "berlin"]  # hours never touch a DST switch: wall-time oracle is exact

BASE = datetime(2025, 6, 1)
TRANSITIONS = [datetime(2026, 3, 29, 1), datetime(2026, 10, 25, 1), datetime(2027, 3, 28, 1),
               datetime(2026, 3, 8, 7), datetime(2026, 11, 1, 6), datetime(2027, 3, 14, 7)]


def instants():
    """Whole-minute naive-UTC instants: anywhere in 2025-06..2028, or within 3 days of a DST switch."""
    anywhere = st.integers(0, 3 * 366 * 1440).map(lambda m: BASE + timedelta(minutes=m))
    near_dst = st.builds(lambda t, m: t + timedelta(minutes=m),
                         st.sampled_from(TRANSITIONS), st.integers(-3 * 1440, 3 * 1440))
    return st.one_of(anywhere, near_dst)


cal_names = st.sampled_from(sorted(CALS))
durations = st.integers(0, 20_000)  # minutes; up to ~2 months of office hours


@functools.lru_cache(maxsize=None)
def _holidays(country, year):
    return frozenset(public_holidays(country, year)) if country else frozenset()


def oracle_open(name, t):
    """Open per the spec, computed independently from the module: local wall time, precedence
    special > closed > public holiday > weekly hours."""
    spec = SPECS[name]
    local = t.replace(tzinfo=timezone.utc).astimezone(ZoneInfo(spec["tz"])).replace(tzinfo=None)
    day = local.date()
    key = day.isoformat()
    if key in spec.get("special", {}):
        ivs = spec["special"][key]
    elif key in spec.get("closed", ()) or day in _holidays(spec.get("country"), day.year):
        ivs = []
    else:
        ivs = spec["hours"].get(day.weekday(), [])
    since_midnight = local - datetime(day.year, day.month, day.day)

    def clock(s):
        h, m = map(int, s.split(":"))
        return timedelta(hours=h, minutes=m)
    return any(clock(s) <= since_midnight < clock(e) for s, e in ivs)


@PROPS
@given(cal_names, instants(), durations)
def test_add_moves_forward_by_exactly_d_business_minutes(name, t, d):
    cal = CALS[name]
    r = add(cal, t, d)
    assert r >= t
    assert elapsed(cal, t, r) == timedelta(minutes=d)
    assert between(cal, t, r) == d
    if d == 0:
        assert r == t
    else:
        # the result ends an open stretch: the instant just before it is open,
        # and it is the first instant at which d minutes have elapsed
        assert is_open(cal, r - EPS)
        assert next_open(cal, r - EPS) == r - EPS
        assert elapsed(cal, t, r - EPS) < timedelta(minutes=d)
        # counting starts at the next opening when t is closed
        assert add(cal, next_open(cal, t), d) == r


@PROPS
@given(cal_names, instants(), durations, durations)
def test_add_is_associative(name, t, a, b):
    cal = CALS[name]
    assert add(cal, add(cal, t, a), b) == add(cal, t, a + b)


@PROPS
@given(cal_names, instants(), st.integers(0, 10 * 1440), st.integers(0, 10 * 1440))
def test_elapsed_is_additive_and_bounded_by_clock_time(name, a, x, y):
    cal = CALS[name]
    b, c = a + timedelta(minutes=x), a + timedelta(minutes=x + y)
    assert elapsed(cal, a, c) == elapsed(cal, a, b) + elapsed(cal, b, c)
    assert timedelta(0) <= elapsed(cal, a, b) <= b - a
    assert elapsed(cal, b, a) == timedelta(0)


@PROPS
@given(cal_names, instants(), st.integers(0, 59), st.integers(0, 1000))
def test_open_next_open_next_close_agree(name, t, second, d):
    cal = CALS[name]
    t = t + timedelta(seconds=second)
    o = next_open(cal, t)
    assert o >= t
    assert is_open(cal, o)
    assert is_open(cal, t) == (o == t)
    assert elapsed(cal, t, o) == timedelta(0)
    c = next_close(cal, t)
    assert c > o and not is_open(cal, c) and is_open(cal, c - EPS)
    assert elapsed(cal, o, c) == c - o
    # second-granular durations are exact too
    assert elapsed(cal, t, add(cal, t, timedelta(seconds=d))) == timedelta(seconds=d)


@settings(PROPS, max_examples=40)
@given(st.sampled_from(ORACLE_SAFE), instants(), st.integers(0, 3 * 1440))
def test_elapsed_matches_a_minute_by_minute_oracle(name, a, window):
    """Holidays, days off, out-of-hours and special hours are skipped exactly as the spec says."""
    cal = CALS[name]
    b = a + timedelta(minutes=window)
    expected = sum(oracle_open(name, a + timedelta(minutes=i)) for i in range(window))
    assert elapsed(cal, a, b) == timedelta(minutes=expected)
    assert is_open(cal, a) == oracle_open(name, a)


@PROPS
@given(st.sampled_from(ORACLE_SAFE), instants(), st.integers(1, 20_000))
def test_result_never_lands_in_closed_time(name, t, d):
    r = add(CALS[name], t, d)
    assert oracle_open(name, r - EPS)
    assert oracle_open(name, r - timedelta(minutes=1))


@pytest.mark.parametrize("name", sorted(n for n, spec in SPECS.items() if spec["country"]))
def test_holiday_days_are_skipped_whole(name):
    """Every public holiday (without special hours) contributes no business time."""
    cal, spec = CALS[name], SPECS[name]
    hols = [d for d in public_holidays(spec["country"], 2026) if d.isoformat() not in spec.get("special", {})]
    zone = ZoneInfo(spec["tz"])
    for d in hols:
        start = datetime(d.year, d.month, d.day, tzinfo=zone).astimezone(timezone.utc).replace(tzinfo=None)
        nxt = d + timedelta(days=1)
        end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=zone).astimezone(timezone.utc).replace(tzinfo=None)
        assert elapsed(cal, start, end) == timedelta(0), d
    assert isinstance(hols[0], date)


@st.composite
def random_calendars(draw):
    """Arbitrary weekly hours (quarter-hour grid, possibly overlapping or touching midnight) in DST zones."""
    def day_hours():
        pair = st.tuples(st.integers(0, 95), st.integers(1, 96)).filter(lambda p: p[0] < p[1])
        return st.lists(pair.map(lambda p: [f"{p[0] // 4:02d}:{p[0] % 4 * 15:02d}",
                                            f"{p[1] // 4:02d}:{p[1] % 4 * 15:02d}"]), max_size=3)
    hours = draw(st.fixed_dictionaries({}, optional={d: day_hours() for d in range(7)}))
    if not any(hours.values()):
        hours[6] = [["02:00", "03:00"]]
    tz = draw(st.sampled_from(["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Jakarta"]))
    return Calendar(tz=tz, hours=hours, country=None)


@settings(PROPS, max_examples=80)
@given(random_calendars(), instants(), st.integers(0, 5000), st.integers(0, 5000))
def test_laws_hold_for_arbitrary_hours_in_dst_zones(cal, t, a, b):
    r = add(cal, t, a)
    assert r >= t and elapsed(cal, t, r) == timedelta(minutes=a)
    assert add(cal, r, b) == add(cal, t, a + b)
    if a:
        assert is_open(cal, r - EPS)
    assert is_open(cal, t) == (next_open(cal, t) == t)


@PROPS
@given(cal_names, st.lists(st.tuples(instants(), durations), min_size=2, max_size=12))
def test_a_shared_calendar_answers_like_a_fresh_one(name, asks):
    """A calendar object keeps the intervals it worked out (one SLA batch asks it the same day over
    and over): asked in any order, it answers exactly as a new calendar of the same spec does."""
    shared = Calendar.from_spec(SPECS[name])
    for t, d in asks:
        fresh = Calendar.from_spec(SPECS[name])
        assert add(shared, t, d) == add(fresh, t, d)
        assert elapsed(shared, t, t + timedelta(minutes=d)) == elapsed(fresh, t, t + timedelta(minutes=d))
        assert (is_open(shared, t), next_open(shared, t)) == (is_open(fresh, t), next_open(fresh, t))
