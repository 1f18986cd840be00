"""Business-time arithmetic for SLAs: pure code, no database, no Flask.

Conventions
-----------
* Every public function takes and returns **naive UTC** datetimes (the
  project's database convention). Internally instants are converted to the
  calendar's zone with :mod:`zoneinfo`.
* A :class:`Calendar` says when the desk is open: weekly working hours in
  *local wall time*, public holidays of a country (looked up lazily per year
  from the ``holidays`` package), company days off, special hours for single
  dates, or "always open" (24x7, holidays ignored).
* Precedence for one local date: ``special`` hours (an empty list = closed)
  > ``closed`` company days > public holidays > weekly ``hours``.
* Open time is the union of half-open UTC intervals ``[opening, closing)``.
  An instant exactly at a closing is *not* open.
* Durations are exact: they are kept as :class:`datetime.timedelta`
  (integer microseconds), so ``elapsed(cal, t, add(cal, t, d)) == d`` holds
  exactly. ``minutes`` arguments may be int, float (rounded to the
  microsecond) or timedelta.

DST: interval bounds are local wall times. A wall time that does not exist
(spring-forward gap) or exists twice (fall-back) is resolved with ``fold=0``
and normalised through UTC; an interval that becomes empty that way is
dropped, overlapping ones are merged. Everything (``is_open``, ``add``,
``elapsed``) is derived from the same interval stream, so the arithmetic
properties hold in DST zones too.

Public API::

    Calendar(tz="Asia/Jakarta", hours=DEFAULT_HOURS, always_open=False,
             country="ID", closed=(), special={})
    Calendar.from_spec(spec: dict) -> Calendar      # JSON-friendly
    Calendar.to_spec() -> dict
    Calendar.intervals_for(day: date) -> tuple[tuple[time, time | None], ...]
    public_holidays(country="ID", years=..., language=None) -> dict[date, str]
    is_open(cal, t) -> bool
    next_open(cal, t) -> datetime
    next_close(cal, t) -> datetime
    add(cal, start, minutes) -> datetime
    elapsed(cal, a, b) -> timedelta
    between(cal, a, b) -> float                      # business minutes
    open_intervals(cal, start, end) -> Iterator[tuple[datetime, datetime]]
    format_local(dt_utc, tz="Asia/Jakarta", locale="id") -> str
"""
from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Iterator, Mapping
from zoneinfo import ZoneInfo

__all__ = [
    "Calendar", "DEFAULT_HOURS", "LOOKAHEAD_DAYS", "public_holidays",
    "is_open", "next_open", "next_close", "add", "elapsed", "between",
    "open_intervals", "format_local",
]

#: How far ahead (in local days, ~3 years) to look for an opening before a
#: calendar is declared to have no open hours at all (ValueError).
LOOKAHEAD_DAYS = 3 * 366

_DAY_MIN = 24 * 60
_ZERO = timedelta(0)

# Weekly hours in minutes after local midnight, index 0 = Monday.
#: Mon–Fri 08:00–17:00, Sat 08:00–12:00, Sun closed.
DEFAULT_HOURS = {
    0: [("08:00", "17:00")], 1: [("08:00", "17:00")], 2: [("08:00", "17:00")],
    3: [("08:00", "17:00")], 4: [("08:00", "17:00")], 5: [("08:00", "12:00")],
    6: [],
}

Intervals = tuple[tuple[int, int], ...]  # (start_min, end_min), 0 <= s < e <= 1440


# -- parsing -----------------------------------------------------------------

def _parse_clock(value) -> int:
    """'HH:MM' (or a ``datetime.time``) as minutes after midnight; '24:00' = 1440."""
    if isinstance(value, time):
        if value.second or value.microsecond:
            raise ValueError(f"working hours must be whole minutes: {value!r}")
        return value.hour * 60 + value.minute
    if isinstance(value, str):
        parts = value.strip().split(":")
        if len(parts) == 2 and all(p.isdigit() for p in parts):
            h, m = int(parts[0]), int(parts[1])
            if (0 <= h <= 23 and 0 <= m <= 59) or (h == 24 and m == 0):
                return h * 60 + m
    raise ValueError(f"bad clock time {value!r} (expected 'HH:MM', 00:00..24:00)")


def _format_clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _parse_intervals(raw) -> Intervals:
    """A list of (start, end) pairs as sorted, merged minute intervals."""
    out = []
    for pair in raw or ():
        if len(pair) != 2:
            raise ValueError(f"an interval is a [start, end] pair, got {pair!r}")
        s, e = _parse_clock(pair[0]), _parse_clock(pair[1])
        if s >= e:
            raise ValueError(f"interval start must be before end: {pair!r}")
        out.append((s, e))
    out.sort()
    merged: list[tuple[int, int]] = []
    for s, e in out:
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return tuple(merged)


def _parse_date(value) -> date:
    if isinstance(value, datetime):
        raise ValueError(f"expected a date, got a datetime {value!r}")
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def _parse_hours(raw) -> tuple[Intervals, ...]:
    if raw is None:
        raw = DEFAULT_HOURS
    if isinstance(raw, Mapping):
        week: list[Intervals] = [()] * 7
        for key, ivs in raw.items():
            wd = int(key)
            if not 0 <= wd <= 6:
                raise ValueError(f"weekday must be 0 (Mon) .. 6 (Sun), got {key!r}")
            week[wd] = _parse_intervals(ivs)
        return tuple(week)
    week = [_parse_intervals(ivs) for ivs in raw]
    if len(week) != 7:
        raise ValueError("hours as a sequence needs 7 entries (Mon..Sun)")
    return tuple(week)


# -- holidays ----------------------------------------------------------------

def public_holidays(country: str = "ID", years=None, language: str | None = None) -> dict[date, str]:
    """Public holidays of ``country`` for ``years`` (an int or an iterable of
    ints; default: the current year) as ``{date: name}``, from the
    ``holidays`` package. ``language`` is passed through (e.g. "id", "en_US")."""
    import holidays  # local import: only calendars with a country need it

    if years is None:
        years = datetime.now(timezone.utc).year
    if isinstance(years, int):
        years = [years]
    kwargs = {"years": list(years)}
    if language:
        kwargs["language"] = language
    return dict(sorted(holidays.country_holidays(country, **kwargs).items()))


@functools.lru_cache(maxsize=256)
def _holiday_dates(country: str, year: int) -> frozenset[date]:
    return frozenset(public_holidays(country, year))


# -- the calendar ------------------------------------------------------------

@dataclass(frozen=True)
class Calendar:
    """When the desk is open. All fields are normalised in ``__post_init__``.

    tz:          IANA zone name of the local wall clock (default Asia/Jakarta).
    hours:       weekly hours: a mapping weekday (0=Mon..6=Sun, int or str)
                 -> list of ("HH:MM", "HH:MM") intervals ("24:00" allowed as
                 an end), or a 7-item sequence; missing weekday = closed.
                 Stored as a 7-tuple of ((start_min, end_min), ...).
    always_open: 24x7: every instant is open, holidays/hours are ignored.
    country:     ISO country code for public holidays (None = none).
    closed:      company days off (local dates, date or 'YYYY-MM-DD').
    special:     local date -> intervals overriding everything else for that
                 date (empty list = closed). Stored as sorted tuple of pairs.
    """

    tz: str = "Asia/Jakarta"
    hours: tuple = field(default=None)
    always_open: bool = False
    country: str | None = "ID"
    closed: frozenset = frozenset()
    special: tuple = ()

    def __post_init__(self):
        set_ = functools.partial(object.__setattr__, self)
        try:
            ZoneInfo(self.tz)
        except (ValueError, KeyError) as exc:  # ZoneInfoNotFoundError is a KeyError
            raise ValueError(f"unknown time zone {self.tz!r}") from exc
        set_("always_open", bool(self.always_open))
        set_("country", (self.country or None) and str(self.country).upper())
        set_("hours", _parse_hours(self.hours))
        set_("closed", frozenset(_parse_date(d) for d in (self.closed or ())))
        special = self.special or ()
        items = special.items() if isinstance(special, Mapping) else special
        set_("special", tuple(sorted((_parse_date(d), _parse_intervals(ivs)) for d, ivs in items)))
        if not self.always_open and not any(self.hours) and not any(ivs for _, ivs in self.special):
            raise ValueError("calendar has no open hours at all")

    # construction from / to plain JSON data
    @classmethod
    def from_spec(cls, spec: Mapping | None) -> "Calendar":
        """Build from JSON-able data::

            {"tz": "Asia/Jakarta",
             "hours": {"0": [["08:00", "17:00"]], ..., "5": [["08:00", "12:00"]]},
             "always_open": false, "country": "ID",
             "closed": ["2026-12-31"],
             "special": {"2026-12-24": [["08:00", "12:00"]]}}

        Missing keys take the defaults (``hours`` missing = DEFAULT_HOURS).
        Unknown keys raise ValueError."""
        spec = dict(spec or {})
        unknown = set(spec) - {"tz", "hours", "always_open", "country", "closed", "special"}
        if unknown:
            raise ValueError(f"unknown calendar keys: {sorted(unknown)}")
        return cls(
            tz=spec.get("tz") or "Asia/Jakarta",
            hours=spec.get("hours"),
            always_open=spec.get("always_open", False),
            country=spec.get("country", "ID"),
            closed=spec.get("closed") or (),
            special=spec.get("special") or {},
        )

    def to_spec(self) -> dict:
        """The JSON-able inverse of :meth:`from_spec`."""
        def ivs(x):
            return [[_format_clock(s), _format_clock(e)] for s, e in x]
        return {
            "tz": self.tz,
            "hours": {str(wd): ivs(x) for wd, x in enumerate(self.hours)},
            "always_open": self.always_open,
            "country": self.country,
            "closed": sorted(d.isoformat() for d in self.closed),
            "special": {d.isoformat(): ivs(x) for d, x in self.special},
        }

    @functools.cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    @functools.cached_property
    def _special_map(self) -> dict[date, Intervals]:
        return dict(self.special)

    def _is_holiday(self, day: date) -> bool:
        return bool(self.country) and day in _holiday_dates(self.country, day.year)

    def _day_minutes(self, day: date) -> Intervals:
        sp = self._special_map.get(day)
        if sp is not None:
            return sp
        if day in self.closed or self._is_holiday(day):
            return ()
        return self.hours[day.weekday()]

    def intervals_for(self, day: date) -> tuple[tuple[time, time | None], ...]:
        """The local opening intervals of one local date (end None = 24:00).
        For 24x7 calendars: the whole day."""
        if self.always_open:
            return ((time(0), None),)
        return tuple(
            (time(s // 60, s % 60), None if e == _DAY_MIN else time(e // 60, e % 60))
            for s, e in self._day_minutes(day)
        )

    @functools.cached_property
    def _runs(self) -> dict:
        return {}  # first local day -> _Run (see _stream)

    @functools.cached_property
    def _utc_days(self) -> dict:
        return {}  # local date -> (its intervals in UTC, its midnight in UTC): worked out once

    def _utc_day(self, day: date) -> tuple[tuple[tuple[datetime, datetime], ...], datetime]:
        """One local date's intervals as naive-UTC [start, end) pairs, and its midnight in UTC."""
        known = self._utc_days.get(day)
        if known is None:
            if len(self._utc_days) > 4096:
                self._utc_days.clear()
            midnight = _wall_to_utc(datetime(day.year, day.month, day.day), self.zone)
            known = self._utc_days[day] = (tuple(self._utc_intervals(day)), midnight)
        return known

    def _utc_intervals(self, day: date) -> list[tuple[datetime, datetime]]:
        """One local date's intervals as naive-UTC [start, end) pairs."""
        midnight = datetime(day.year, day.month, day.day)
        out = []
        for s, e in self._day_minutes(day):
            us = _wall_to_utc(midnight + timedelta(minutes=s), self.zone)
            ue = _wall_to_utc(midnight + timedelta(minutes=e), self.zone)
            if ue > us:
                out.append((us, ue))
        return out


def _wall_to_utc(wall: datetime, zone: ZoneInfo) -> datetime:
    """Naive local wall time -> naive UTC (fold=0 for gaps and repeats)."""
    return wall.replace(tzinfo=zone, fold=0).astimezone(timezone.utc).replace(tzinfo=None)


def _utc_to_local_date(t: datetime, zone: ZoneInfo) -> date:
    return t.replace(tzinfo=timezone.utc).astimezone(zone).date()


def _check(t: datetime, name: str = "t") -> datetime:
    if not isinstance(t, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(t).__name__}")
    if t.tzinfo is not None:
        raise ValueError(f"{name} must be a naive UTC datetime, got tzinfo={t.tzinfo}")
    return t


def _duration(minutes) -> timedelta:
    if isinstance(minutes, timedelta):
        d = minutes
    elif isinstance(minutes, bool) or not isinstance(minutes, (int, float)):
        raise TypeError(f"minutes must be int, float or timedelta, got {type(minutes).__name__}")
    else:
        d = timedelta(minutes=minutes)
    if d < _ZERO:
        raise ValueError(f"business duration must not be negative: {minutes!r}")
    return d


# -- the interval stream -----------------------------------------------------

def _stream(cal: Calendar, t: datetime) -> Iterator[tuple[datetime, datetime]]:
    """Merged, strictly increasing, disjoint naive-UTC open intervals
    [s, e) with e > t, in order; the first one may begin before t.

    The intervals from a local day on are worked out once per calendar
    object and kept (`_Run`): the SLA clocks of a batch of tickets created
    the same day all start from the same day. Raises ValueError when no open
    time is found within LOOKAHEAD_DAYS."""
    day = _utc_to_local_date(t, cal.zone) - timedelta(days=2)
    runs = cal._runs
    run = runs.get(day)
    if run is None:
        if len(runs) > 64:  # (a long-lived process: the days it has been asked about lately)
            runs.clear()
        run = runs[day] = _Run(_intervals_from(cal, day, t))
    return run.after(t)


class _Run:
    """The intervals of `_intervals_from` for one first day, kept as they are produced (a
    calendar object is shared by the threads of a process: one extends the list at a time)."""

    def __init__(self, source):
        self.source, self.known, self.error, self.lock = source, [], None, threading.Lock()

    def _extend(self, n):
        """Whether interval n is known (produced now if need be)."""
        with self.lock:
            while len(self.known) <= n:
                if self.error is not None:
                    raise self.error
                try:
                    self.known.append(next(self.source))
                except StopIteration:
                    return False
                except Exception as exc:  # e.g. no open time ahead: the same answer every time
                    self.error = exc
                    raise
            return True

    def after(self, t):
        known = self.known
        i = 0
        while i < len(known) or self._extend(i):
            s, e = known[i]
            i += 1
            if e > t:
                yield s, e


def _intervals_from(cal: Calendar, day: date, t: datetime) -> Iterator[tuple[datetime, datetime]]:
    """Merged, strictly increasing, disjoint naive-UTC open intervals from local day `day` on
    (`t`: only for the error message).

    Days are generated with one day of lag so intervals of neighbouring days
    that touch or overlap after DST normalisation are merged. Raises
    ValueError when no open time is found within LOOKAHEAD_DAYS."""
    pending: list[tuple[datetime, datetime]] = []
    last_end: datetime | None = None
    idle_days = 0
    while True:
        fresh, horizon = cal._utc_day(day)
        if fresh:
            idle_days = 0
            pending.extend(fresh)
            pending.sort()
            merged: list[tuple[datetime, datetime]] = []
            for s, e in pending:
                if merged and s <= merged[-1][1]:
                    if e > merged[-1][1]:
                        merged[-1] = (merged[-1][0], e)
                else:
                    merged.append((s, e))
            pending = merged
        else:
            idle_days += 1
            if idle_days > LOOKAHEAD_DAYS:
                raise ValueError(
                    f"calendar has no open hours within {LOOKAHEAD_DAYS} days after {t.isoformat()}")
        # Intervals of later days start after this day's local midnight; an
        # interval ending before (this day's midnight) can no longer merge.
        while pending and pending[0][1] < horizon:
            s, e = pending.pop(0)
            if last_end is not None and s < last_end:  # pathological zone jumps
                s = last_end
            if e > s:
                yield s, e
                last_end = e
        day += timedelta(days=1)


# -- public functions --------------------------------------------------------

def is_open(cal: Calendar, t: datetime) -> bool:
    """Whether the naive-UTC instant ``t`` is within business hours."""
    _check(t)
    if cal.always_open:
        return True
    s, _e = next(_stream(cal, t))
    return s <= t


def next_open(cal: Calendar, t: datetime) -> datetime:
    """``t`` itself when open, else the next opening (naive UTC)."""
    _check(t)
    if cal.always_open:
        return t
    s, _e = next(_stream(cal, t))
    return max(s, t)


def next_close(cal: Calendar, t: datetime) -> datetime:
    """The end of the open stretch containing ``t`` or, when closed, of the
    next one (naive UTC). For 24x7 calendars: ValueError (never closes)."""
    _check(t)
    if cal.always_open:
        raise ValueError("an always-open calendar never closes")
    _s, e = next(_stream(cal, t))
    return e


def add(cal: Calendar, start: datetime, minutes) -> datetime:
    """The instant at which ``minutes`` business minutes have elapsed since
    ``start`` (naive UTC in and out).

    * ``add(cal, t, 0) == t``, even when ``t`` is out of hours.
    * If ``start`` is out of hours, counting begins at the next opening.
    * For a positive duration the result lies inside an open interval or
      exactly at its closing (it never jumps to the next opening): e.g.
      16:00 + 60 min with a 17:00 closing is 17:00, not the next morning.
    * ``add(add(t, a), b) == add(t, a + b)`` and
      ``elapsed(t, add(t, d)) == d`` exactly (timedelta arithmetic).

    ``minutes``: int, float (rounded to the microsecond) or timedelta; not
    negative. Iterates per open interval (days), never per minute."""
    _check(start, "start")
    left = _duration(minutes)
    if left == _ZERO or cal.always_open:
        return start + left
    for s, e in _stream(cal, start):
        s = max(s, start)
        span = e - s
        if left <= span:
            return s + left
        left -= span
    raise AssertionError("unreachable")  # pragma: no cover


def elapsed(cal: Calendar, a: datetime, b: datetime) -> timedelta:
    """Exact business time between ``a`` and ``b`` (zero if ``b <= a``)."""
    _check(a, "a")
    _check(b, "b")
    if b <= a:
        return _ZERO
    if cal.always_open:
        return b - a
    total = _ZERO
    for s, e in open_intervals(cal, a, b):
        total += e - s
    return total


def between(cal: Calendar, a: datetime, b: datetime) -> float:
    """Business minutes between ``a`` and ``b`` (0.0 if ``b <= a``). A float;
    exact for whole minutes. Use :func:`elapsed` for exact arithmetic."""
    return elapsed(cal, a, b) / timedelta(minutes=1)


def open_intervals(cal: Calendar, start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
    """The open stretches within [start, end), clipped, as naive-UTC pairs."""
    _check(start, "start")
    _check(end, "end")
    if end <= start:
        return
    if cal.always_open:
        yield start, end
        return
    for s, e in _stream(cal, start):
        if s >= end:
            return
        yield max(s, start), min(e, end)


# -- formatting --------------------------------------------------------------

#: Indonesian zone abbreviations (tzdata only has numeric ones for these).
ZONE_ABBREVIATIONS = {
    "Asia/Jakarta": "WIB", "Asia/Pontianak": "WIB",
    "Asia/Makassar": "WITA", "Asia/Ujung_Pandang": "WITA",
    "Asia/Jayapura": "WIT",
}


def zone_abbreviation(local: datetime, tz: str) -> str:
    """WIB/WITA/WIT for Indonesian zones, else the zone's tzname()."""
    return ZONE_ABBREVIATIONS.get(tz) or local.tzname() or tz


def format_local(dt_utc: datetime, tz: str = "Asia/Jakarta", locale: str = "id") -> str:
    """A naive-UTC instant as customers read it, in their zone and language:
    weekday, day, month name, year, 24-hour time (the locale's separator)
    and zone abbreviation, e.g. ``"Senin, 30 November 2026, 09.30 WIB"``
    ('id') or ``"Monday, 30 November 2026, 09:30 WIB"`` ('en')."""
    from babel import Locale
    from babel.dates import format_date, format_time

    _check(dt_utc, "dt_utc")
    local = dt_utc.replace(tzinfo=timezone.utc).astimezone(ZoneInfo(tz))
    loc = Locale.parse(locale.replace("-", "_"))
    short = loc.time_formats["short"].pattern
    sep = "." if "H.mm" in short else ":"
    day = format_date(local.date(), "EEEE, d MMMM y", locale=loc)
    clock = format_time(local.time(), f"HH{sep}mm", locale=loc)
    return f"{day}, {clock} {zone_abbreviation(local, tz)}"
