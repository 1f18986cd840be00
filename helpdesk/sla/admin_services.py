"""Admin rules of the SLAs: policies, business calendars (with company days), the matching rules.

Services take ids and primitives (the acting admin's id and `now` included), raise DomainError and
only flush: the view owns the commit. A rejected input raises DomainError with
`errors={field name: message}` (every problem of the form at once) or `field=` for one.
Every change bumps the calendar's or policy's `updated_at` (sla.services caches calendars by
(id, updated_at)) and is recorded in the audit trail.
"""
import re
from datetime import date, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select, update

from ..auth.i18n import _
from ..errors import DomainError, NotFound
from ..extensions import db
from ..tickets.models import CHANNELS, PRIORITIES, Queue
from ..tickets.services import audit
from . import calendar as bcal
from . import services as sla
from .models import RULE_KINDS, TARGETS, BusinessCalendar, CalendarDay, SlaPolicy, SlaRule

PAUSABLE = ("pending_customer", "pending_billing")
COMMON_ZONES = ("Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura", "Asia/Singapore", "Asia/Kuala_Lumpur",
                "Asia/Bangkok", "Asia/Ho_Chi_Minh", "Asia/Manila", "Asia/Hong_Kong", "Asia/Shanghai", "Asia/Tokyo",
                "Asia/Seoul", "Asia/Kolkata", "Asia/Dubai", "Australia/Perth", "Australia/Sydney",
                "Pacific/Auckland", "Europe/London", "Europe/Amsterdam", "Europe/Berlin", "America/New_York",
                "America/Chicago", "America/Los_Angeles", "UTC")
COUNTRIES = ("ID",)
WEEKDAYS = range(7)  # 0 = Monday
MAX_TARGET_MINUTES = 366 * 24 * 60

_HOUR_UNITS = ("j", "jam", "h", "hr", "hrs", "hour", "hours")
_MINUTE_UNITS = ("m", "min", "mins", "mnt", "menit", "minute", "minutes")
_DURATION_PART = re.compile(r"(\d+(?:[.,]\d+)?)\s*([a-z]+)?")
_INTERVAL = re.compile(r"^(\d{1,2})[:.](\d{2})\s*[-–—]\s*(\d{1,2})[:.](\d{2})$")


# ---------------------------------------------------------------- parsing

def parse_duration(text):
    """Business minutes from "4j", "4h", "90m", "1j 30m", "1.5j" or plain minutes ("240"); None when empty.
    Raises ValueError for anything else, zero included."""
    raw = (text or "").strip().lower()
    if not raw:
        return None
    total, pos, seen = 0.0, 0, set()
    for m in _DURATION_PART.finditer(raw):
        if raw[pos:m.start()].strip():
            raise ValueError(raw)
        number, unit = float(m.group(1).replace(",", ".")), m.group(2) or ""
        if unit in _HOUR_UNITS and not seen:
            total += number * 60
            seen.add("h")
        elif unit in _MINUTE_UNITS + ("",) and "m" not in seen:
            total += number
            seen.add("m")
        else:
            raise ValueError(raw)
        pos = m.end()
    if not seen or raw[pos:].strip():
        raise ValueError(raw)
    minutes = round(total)
    if minutes < 1 or minutes > MAX_TARGET_MINUTES or abs(total - minutes) > 1e-9:
        raise ValueError(raw)
    return minutes


def format_duration(minutes, hour_unit="j"):
    """240 -> "4j", 90 -> "1j 30m", 45 -> "45m" ("h" for English pages); "" for None."""
    if not minutes:
        return ""
    hours, mins = divmod(int(minutes), 60)
    parts = ([f"{hours}{hour_unit}"] if hours else []) + ([f"{mins}m"] if mins else [])
    return " ".join(parts)


def parse_intervals(text):
    """"08:00-12:00, 13:00-17:00" -> [["08:00", "12:00"], ["13:00", "17:00"]]; "" -> [] (closed).
    Raises ValueError with a message for the admin."""
    out = []
    for part in re.split(r"[,;]", text or ""):
        part = part.strip()
        if not part:
            continue
        m = _INTERVAL.match(part)
        if not m:
            raise ValueError(_("Write the hours as 08:00-17:00 (several separated by commas), or leave "
                               "the day empty when closed."))
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if h1 > 23 or m1 > 59 or m2 > 59 or end > 24 * 60:
            raise ValueError(_("%(value)s is not a time of day.", value=part))
        if start >= end:
            raise ValueError(_("%(value)s: the start must be before the end.", value=part))
        out.append([f"{h1:02d}:{m1:02d}", f"{h2:02d}:{m2:02d}"])
    out.sort()
    for a, b in zip(out, out[1:]):
        if b[0] < a[1]:
            raise ValueError(_("%(a)s and %(b)s overlap.", a="-".join(a), b="-".join(b)))
    return out


def format_intervals(intervals):
    return ", ".join(f"{s}-{e}" for s, e in intervals or ())


# ---------------------------------------------------------------- helpers

def _get(model, row_id, message):
    row = db.session.get(model, row_id) if row_id else None
    if row is None:
        raise NotFound(message)
    return row


def _bump(row, now):
    """A strictly later updated_at (the calendar cache key), even when `now` repeats."""
    row.updated_at = max(now, (row.updated_at or now) + timedelta(microseconds=1))


def _name(value, field, model, row_id):
    name = (value or "").strip()
    errors = {}
    if not name:
        errors[field] = _("A name is required.")
    elif len(name) > 80:
        errors[field] = _("At most 80 characters.")
    else:
        clash = db.session.execute(select(model.id).where(func.lower(model.name) == name.lower(),
                                                          model.id != (row_id or 0))).first()
        if clash:
            errors[field] = _("%(name)s is already taken.", name=name)
    return name, errors


def _raise(errors):
    if errors:
        first = next(iter(errors.values()))
        raise DomainError(first, errors=errors)


# ---------------------------------------------------------------- policies

def get_policy(policy_id):
    return _get(SlaPolicy, policy_id, _("No such SLA policy."))


def list_policies():
    return db.session.execute(select(SlaPolicy).order_by(SlaPolicy.is_default.desc(), SlaPolicy.name)).scalars().all()


def default_policy():
    return db.session.execute(select(SlaPolicy).where(SlaPolicy.is_default.is_(True))
                              .order_by(SlaPolicy.id).limit(1)).scalar_one_or_none()


def save_policy(policy_id, actor_id, now, *, name, calendar_id, targets, pause_statuses=(), warn_percent=None,
                warn_minutes=None, escalate_priority=False, escalate_to_lead=False, escalate_notify_user_id=None,
                reopen_new_cycle=True, is_default=False, recompute=False):
    """Create (policy_id None) or update a policy. `targets`: {priority: {target: "4j" | 240 | "" | None}};
    error fields are named "<priority>_<target>". Returns (policy, number of open tickets recomputed or None)."""
    from ..auth.models import User

    policy = get_policy(policy_id) if policy_id else None
    name, errors = _name(name, "name", SlaPolicy, policy_id)
    if not calendar_id or db.session.get(BusinessCalendar, calendar_id) is None:
        errors["calendar_id"] = _("Choose a calendar.")
    parsed = {}
    for priority in PRIORITIES:
        for target in TARGETS:
            raw = ((targets or {}).get(priority) or {}).get(target)
            try:
                minutes = raw if isinstance(raw, int) and not isinstance(raw, bool) else parse_duration(raw)
                if minutes is not None and minutes < 1:
                    raise ValueError(raw)
            except ValueError:
                errors[f"{priority}_{target}"] = _("%(value)s is not a duration: write 4j, 90m, 1j 30m or minutes.",
                                                   value=raw)
                continue
            parsed.setdefault(priority, {})[target] = minutes
    pauses = list(dict.fromkeys(pause_statuses or ()))
    if set(pauses) - set(PAUSABLE):
        errors["pause_statuses"] = _("Only these statuses can pause the clock: %(list)s.", list=", ".join(PAUSABLE))
    if warn_percent is not None and not 1 <= warn_percent <= 99:
        errors["warn_percent"] = _("A percentage between 1 and 99.")
    if warn_minutes is not None and not 1 <= warn_minutes <= MAX_TARGET_MINUTES:
        errors["warn_minutes"] = _("A number of minutes above 0.")
    if escalate_notify_user_id:
        user = db.session.get(User, escalate_notify_user_id)
        if user is None or not user.active:
            errors["escalate_notify_user_id"] = _("Choose an active agent.")
    current_default = default_policy()
    if not is_default and (current_default is None or (policy is not None and current_default.id == policy.id)):
        if current_default is not None:
            errors["is_default"] = _("There must be one default policy: make another policy the default instead.")
        else:
            is_default = True  # the first policy is the default
    _raise(errors)

    created = policy is None
    if created:
        policy = SlaPolicy(created_at=now, updated_at=now)
        db.session.add(policy)
    old = None if created else _policy_summary(policy)
    policy.name = name
    policy.calendar_id = calendar_id
    policy.targets = parsed
    policy.pause_statuses = pauses
    policy.warn_percent = warn_percent
    policy.warn_minutes = warn_minutes
    policy.escalate_priority = bool(escalate_priority)
    policy.escalate_to_lead = bool(escalate_to_lead)
    policy.escalate_notify_user_id = escalate_notify_user_id or None
    policy.reopen_new_cycle = bool(reopen_new_cycle)
    if not created:
        _bump(policy, now)
    if is_default and not policy.is_default:
        db.session.execute(update(SlaPolicy).where(SlaPolicy.is_default.is_(True)).values(is_default=False))
    policy.is_default = bool(is_default)
    db.session.flush()
    new = _policy_summary(policy)
    if created:
        audit(None, actor_id, "created", new=new, object_type="sla_policy", object_id=policy.id)
    elif new != old:
        audit(None, actor_id, "updated", old=old, new=new, object_type="sla_policy", object_id=policy.id)
    recomputed = None
    if recompute and not created:
        recomputed = sla.recompute_open(policy.id, now)
        audit(None, actor_id, "recomputed", new=str(recomputed), object_type="sla_policy", object_id=policy.id)
    return policy, recomputed


def _policy_summary(policy):
    targets = "; ".join(f"{p}: " + "/".join(str(((policy.targets or {}).get(p) or {}).get(t) or "-") for t in TARGETS)
                        for p in PRIORITIES)
    return (f"{policy.name} cal={policy.calendar_id} {targets} pause={','.join(policy.pause_statuses or [])} "
            f"warn={policy.warn_percent}%/{policy.warn_minutes}m default={policy.is_default}")[:300]


# ---------------------------------------------------------------- calendars

def get_calendar(calendar_id):
    return _get(BusinessCalendar, calendar_id, _("No such calendar."))


def list_calendars():
    return db.session.execute(select(BusinessCalendar).order_by(BusinessCalendar.name)).scalars().all()


def _spec(cal_row, days=None, **changes):
    days = cal_row.days if days is None else days
    spec = {"tz": cal_row.tz, "hours": cal_row.hours, "always_open": cal_row.always_open, "country": cal_row.country,
            "closed": [d.day for d in days if not d.hours], "special": {d.day: d.hours for d in days if d.hours}}
    spec.update(changes)
    return spec


def _validate(spec, field):
    """Calendar.from_spec as the last word: a calendar that is never open is rejected."""
    try:
        bcal.Calendar.from_spec(spec)
    except ValueError as exc:
        if "no open hours" in str(exc):
            raise DomainError(_("This calendar is never open: give at least one day working hours, "
                                "or choose 24x7."), field=field) from exc
        raise DomainError(_("The calendar is not valid: %(error)s", error=str(exc)), field=field) from exc


def save_calendar(calendar_id, actor_id, now, *, name, tz, always_open=False, hours=None, country="ID"):
    """Create or update a calendar. `hours`: {weekday 0..6: "08:00-17:00, ..." text or a list of pairs};
    error fields: name, tz, country, hours_<weekday>. Returns the calendar."""
    cal = get_calendar(calendar_id) if calendar_id else None
    name, errors = _name(name, "name", BusinessCalendar, calendar_id)
    tz = (tz or "").strip()
    try:
        if not tz or "\x00" in tz:
            raise ValueError(tz)
        ZoneInfo(tz)
    except (ValueError, ZoneInfoNotFoundError, OSError):
        errors["tz"] = _("%(zone)s is not a known time zone.", zone=tz or "''")
    country = (country or "").strip().upper() or None
    if country and country not in COUNTRIES:
        errors["country"] = _("Unknown country for public holidays.")
    week = {}
    for wd in WEEKDAYS:
        raw = (hours or {}).get(wd, (hours or {}).get(str(wd)))
        try:
            week[str(wd)] = raw if isinstance(raw, list) else parse_intervals(raw)
        except ValueError as exc:
            errors[f"hours_{wd}"] = str(exc)
    _raise(errors)
    spec_days = cal.days if cal is not None else []
    _validate({"tz": tz, "hours": week, "always_open": bool(always_open), "country": country,
               "closed": [d.day for d in spec_days if not d.hours],
               "special": {d.day: d.hours for d in spec_days if d.hours}}, "hours_0")

    created = cal is None
    if created:
        cal = BusinessCalendar(created_at=now, updated_at=now)
        db.session.add(cal)
    old = None if created else _calendar_summary(cal)
    cal.name, cal.tz, cal.always_open, cal.hours, cal.country = name, tz, bool(always_open), week, country
    if not created:
        _bump(cal, now)
    db.session.flush()
    new = _calendar_summary(cal)
    if created:
        audit(None, actor_id, "created", new=new, object_type="sla_calendar", object_id=cal.id)
    elif new != old:
        audit(None, actor_id, "updated", old=old, new=new, object_type="sla_calendar", object_id=cal.id)
    return cal


def _calendar_summary(cal):
    week = " ".join(f"{wd}={format_intervals((cal.hours or {}).get(str(wd))) or '-'}" for wd in WEEKDAYS)
    return f"{cal.name} {cal.tz} 24x7={cal.always_open} country={cal.country} {week}"[:300]


def add_day(calendar_id, actor_id, now, *, day, name="", closed=True, hours=""):
    """A company day off (closed) or a day with special hours. Error fields: day, name, hours."""
    cal = get_calendar(calendar_id)
    errors = {}
    if not isinstance(day, date):
        errors["day"] = _("Choose a date.")
    elif db.session.execute(select(CalendarDay.id).where(CalendarDay.calendar_id == cal.id,
                                                         CalendarDay.day == day)).first():
        errors["day"] = _("%(day)s is already in this calendar: remove it first.", day=day.isoformat())
    name = (name or "").strip()
    if len(name) > 120:
        errors["name"] = _("At most 120 characters.")
    intervals = []
    if not closed:
        try:
            intervals = parse_intervals(hours)
        except ValueError as exc:
            errors["hours"] = str(exc)
        else:
            if not intervals:
                errors["hours"] = _("Give the special hours, or mark the day as closed.")
    _raise(errors)
    row = CalendarDay(calendar_id=cal.id, day=day, name=name or None, hours=intervals)
    _validate(_spec(cal, list(cal.days) + [row]), "day")
    cal.days.append(row)
    _bump(cal, now)
    db.session.flush()
    audit(None, actor_id, "day_added", new=f"{day.isoformat()} {format_intervals(intervals) or 'closed'} {name}",
          object_type="sla_calendar", object_id=cal.id)
    return row


def remove_day(calendar_id, day_id, actor_id, now):
    cal = get_calendar(calendar_id)
    row = db.session.get(CalendarDay, day_id) if day_id else None
    if row is None or row.calendar_id != cal.id:
        raise NotFound(_("That day is not in this calendar (any more)."))
    cal.days.remove(row)
    _bump(cal, now)
    db.session.flush()
    audit(None, actor_id, "day_removed", old=f"{row.day.isoformat()} {row.name or ''}", object_type="sla_calendar",
          object_id=cal.id)
    return row


def recompute_calendar(calendar_id, actor_id, now):
    """The open tickets of every policy on this calendar take its current hours and days.
    Returns how many tickets were recomputed."""
    cal = get_calendar(calendar_id)
    policy_ids = db.session.execute(select(SlaPolicy.id).where(SlaPolicy.calendar_id == cal.id)
                                    .order_by(SlaPolicy.id)).scalars().all()
    count = sum(sla.recompute_open(pid, now) for pid in policy_ids)
    audit(None, actor_id, "recomputed", new=str(count), object_type="sla_calendar", object_id=cal.id)
    return count


def upcoming_holidays(cal, today, language="id"):
    """The public holidays of this year and the next from `today` on, as [(date, name)] (none without a country)."""
    if not cal.country:
        return []
    return [(d, n) for d, n in bcal.public_holidays(cal.country, [today.year, today.year + 1], language).items()
            if d >= today]


# ---------------------------------------------------------------- rules

def list_rules():
    return db.session.execute(select(SlaRule).order_by(SlaRule.position, SlaRule.id)).scalars().all()


def add_rule(actor_id, *, kind, value, policy_id):
    """A rule at the end of the list. Error fields: kind, value, policy_id."""
    errors = {}
    value = (value or "").strip()
    if kind not in RULE_KINDS:
        errors["kind"] = _("Choose what the rule matches.")
    elif not value:
        errors["value"] = _("Give the value the rule matches.")
    elif len(value) > 80:
        errors["value"] = _("At most 80 characters.")
    elif kind == "queue" and (not value.isdigit() or db.session.get(Queue, int(value)) is None):
        errors["value"] = _("Choose a queue.")
    elif kind == "channel" and value not in CHANNELS:
        errors["value"] = _("Choose a channel.")
    if not policy_id or db.session.get(SlaPolicy, policy_id) is None:
        errors["policy_id"] = _("Choose a policy.")
    _raise(errors)
    position = (db.session.execute(select(func.max(SlaRule.position))).scalar() or 0) + 1
    rule = SlaRule(kind=kind, value=value, policy_id=policy_id, position=position)
    db.session.add(rule)
    db.session.flush()
    audit(None, actor_id, "rule_added", new=f"{position}. {kind}={value} -> policy {policy_id}",
          object_type="sla_rule", object_id=rule.id)
    return rule


def _rule(rule_id):
    return _get(SlaRule, rule_id, _("No such rule (any more)."))


def delete_rule(rule_id, actor_id):
    rule = _rule(rule_id)
    db.session.delete(rule)
    db.session.flush()
    audit(None, actor_id, "rule_deleted", old=f"{rule.kind}={rule.value} -> policy {rule.policy_id}",
          object_type="sla_rule", object_id=rule_id)
    _renumber(list_rules())


def _renumber(rules):
    for i, r in enumerate(rules, 1):
        r.position = i
    db.session.flush()


def move_rule(rule_id, direction, actor_id):
    """Swap a rule with the one above ("up") or below ("down"); a no-op at either end."""
    rule = _rule(rule_id)
    if direction not in ("up", "down"):
        raise DomainError(_("Move a rule up or down."))
    rules = list_rules()
    i = rules.index(rule)
    j = i - 1 if direction == "up" else i + 1
    if 0 <= j < len(rules):
        rules[i], rules[j] = rules[j], rules[i]
        _renumber(rules)
        audit(None, actor_id, "rule_moved", old=str(i + 1), new=str(j + 1), object_type="sla_rule", object_id=rule.id)
    return rule
