"""SLA rules: which policy a ticket gets, and its clocks.

The ticket services call the `on_*` hooks when something changes (creation, a public agent reply,
a customer message, a status or priority change, a merge); each hook updates the clock runs
(SlaClock) and the ticket's deadline columns in the caller's transaction. Read paths never
compute a deadline. Every function that depends on the time takes `now`.

- Start: first response and resolution start at creation, in business time.
- Priority change: running deadlines are recomputed from each run's start.
- Pause: a status in the policy's pause_statuses (default pending_customer) pauses the resolution
  clock; on resume the business time spent paused is added, so the remaining time is preserved.
- Stop: the first public agent reply stops first response; a customer reply (once first response
  is met) starts a next response, which the agent's answer stops; resolving stops every clock; a
  reopen starts a new resolution cycle (policy.reopen_new_cycle).
"""
from datetime import timedelta

from sqlalchemy import select

from .. import batchcache
from ..extensions import db
from . import calendar as bcal
from .models import BusinessCalendar, CalendarDay, SlaClock, SlaPolicy, SlaRule

DONE = ("resolved", "closed")
LIVE = ("running", "paused")
DEFAULT_PAUSE = ["pending_customer"]
DEFAULT_TARGETS = {  # business minutes, the policy a fresh install starts with
    "urgent": {"first_response": 30, "next_response": 60, "resolution": 4 * 60},
    "high": {"first_response": 60, "next_response": 120, "resolution": 8 * 60},
    "normal": {"first_response": 4 * 60, "next_response": 4 * 60, "resolution": 3 * 9 * 60},
    "low": {"first_response": 8 * 60, "next_response": 8 * 60, "resolution": 5 * 9 * 60},
}
DEFAULT_HOURS = {"0": [["08:00", "17:00"]], "1": [["08:00", "17:00"]], "2": [["08:00", "17:00"]],
                 "3": [["08:00", "17:00"]], "4": [["08:00", "17:00"]], "5": [["08:00", "12:00"]], "6": []}

_calendars = {}  # (calendar id, updated_at) -> Calendar: holidays are looked up once per process


def calendar_for(cal_row):
    """The business calendar (sla.calendar.Calendar) of a BusinessCalendar row, cached per version."""
    key = (cal_row.id, cal_row.updated_at)
    cal = _calendars.get(key)
    if cal is None:
        days = db.session.execute(select(CalendarDay.day, CalendarDay.hours)
                                  .where(CalendarDay.calendar_id == cal_row.id)).all()
        cal = bcal.Calendar.from_spec({
            "tz": cal_row.tz, "hours": cal_row.hours, "always_open": cal_row.always_open,
            "country": cal_row.country, "closed": [d for d, h in days if not h],
            "special": {d: h for d, h in days if h}})
        if len(_calendars) > 64:
            _calendars.clear()
        _calendars[key] = cal
    return cal


def policy_calendar(policy):
    # Read without autoflush (the ticket being created need not be written first); a batch of
    # inbound mail builds each calendar once.
    def load():
        with db.session.no_autoflush:
            return calendar_for(db.session.get(BusinessCalendar, policy.calendar_id))

    return batchcache.lookup("sla_calendar", policy.calendar_id, load)


# ---------------------------------------------------------------- which policy

def choose_policy(ticket, customer=None):
    """The policy of a new ticket: the first rule (by position) matching the customer's support tier,
    the queue or the channel; else the default policy; None when there is none."""
    # (a batch of inbound mail reads the rules once)
    with db.session.no_autoflush:
        rules = batchcache.lookup("sla", "rules", lambda: db.session.execute(
            select(SlaRule.kind, SlaRule.value, SlaRule.policy_id).order_by(SlaRule.position, SlaRule.id)).all())
    if rules:
        tier = None
        for kind, value, policy_id in rules:
            if kind == "tier":
                if tier is None:
                    from ..customers.models import Customer
                    from ..warranty.services import effective_tier, local_today

                    customer = customer or db.session.get(Customer, ticket.customer_id)
                    # a running service contract's tier, else the customer's own
                    tier = (effective_tier(customer, local_today(ticket.created_at)) if customer else "") or ""
                if tier == value:
                    return db.session.get(SlaPolicy, policy_id)
            elif kind == "queue" and str(ticket.queue_id) == value:
                return db.session.get(SlaPolicy, policy_id)
            elif kind == "channel" and ticket.channel == value:
                return db.session.get(SlaPolicy, policy_id)
    with db.session.no_autoflush:
        return batchcache.lookup("sla", "default", lambda: db.session.execute(
            select(SlaPolicy).where(SlaPolicy.is_default.is_(True)).order_by(SlaPolicy.id).limit(1))
            .scalar_one_or_none())


# ---------------------------------------------------------------- one clock run

def _seconds(td):
    return int(td.total_seconds())


def schedule(clock, policy, cal):
    """Deadline, warning time and next alert of a running clock, from its start, target and pauses."""
    if clock.state != "running":
        clock.due_at = clock.warn_at = clock.alert_at = None
        return
    target = clock.target_minutes * 60
    clock.due_at = bcal.add(cal, clock.started_at, timedelta(seconds=target + clock.paused_seconds))
    warn = None
    if policy.warn_percent:
        warn = target * min(max(policy.warn_percent, 1), 100) // 100
    if policy.warn_minutes:
        left = max(target - policy.warn_minutes * 60, 0)
        warn = left if warn is None else min(warn, left)
    clock.warn_at = bcal.add(cal, clock.started_at, timedelta(seconds=warn + clock.paused_seconds)) \
        if warn is not None and warn < target else None
    if clock.breached_at is not None:
        clock.alert_at = None
    elif clock.warn_at is not None and clock.warned_at is None:
        clock.alert_at = clock.warn_at
    else:
        clock.alert_at = clock.due_at


def _start(ticket, policy, cal, target, now, cycle=None):
    minutes = policy.target(ticket.priority, target)
    if not minutes:
        return None
    clock = SlaClock(ticket_id=ticket.id, policy_id=policy.id, target=target, cycle=cycle or ticket.sla_cycle or 1,
                     state="running", started_at=now, target_minutes=minutes, paused_seconds=0)
    schedule(clock, policy, cal)
    db.session.add(clock)
    started = batchcache.get("sla_clocks", ticket.id)
    if started is not None:
        started.append(clock)
    return clock


def _stop(clock, ticket, cal, now, state=None):
    """Stop a run: its verdict, business time and margin, and who it was for (the report's groups)."""
    if clock.state == "paused":
        _resume(clock, cal, now, reschedule=False)
    due = bcal.add(cal, clock.started_at, timedelta(seconds=clock.target_minutes * 60 + clock.paused_seconds))
    clock.elapsed_seconds = max(_seconds(bcal.elapsed(cal, clock.started_at, now)) - clock.paused_seconds, 0)
    if now <= due:
        clock.margin_seconds = _seconds(bcal.elapsed(cal, now, due))
    else:
        clock.margin_seconds = -_seconds(bcal.elapsed(cal, due, now))
    clock.state = state or ("met" if now <= due else "breached")
    clock.due_at = due
    clock.stopped_at = now
    clock.alert_at = None
    clock.queue_id, clock.priority, clock.assignee_id = ticket.queue_id, ticket.priority, ticket.assignee_id


def _pause(clock, now):
    clock.state, clock.paused_at = "paused", now
    clock.due_at = clock.warn_at = clock.alert_at = None  # no deadline while paused


def _resume(clock, cal, now, reschedule=True, policy=None):
    clock.paused_seconds += _seconds(bcal.elapsed(cal, clock.paused_at, now))
    clock.state, clock.paused_at = "running", None
    if reschedule:
        schedule(clock, policy, cal)


# ---------------------------------------------------------------- the ticket's clocks

def live_clocks(ticket_id):
    """The running and paused clocks of a ticket, oldest first.

    In a batch of inbound mail the batch keeps each ticket's clocks once read (or, for a ticket it
    made, from the start), with those it starts: no read flushes the batch's pending rows."""
    if not batchcache.is_open():
        return _live_clocks(ticket_id)
    known = batchcache.get("sla_clocks", ticket_id)
    if known is None:
        with db.session.no_autoflush:  # (a clock the batch started is in `known`, never only pending)
            known = _live_clocks(ticket_id)
        batchcache.put("sla_clocks", ticket_id, known)
    return [c for c in known if c.state in LIVE]


def _live_clocks(ticket_id):
    return db.session.execute(select(SlaClock).where(SlaClock.ticket_id == ticket_id, SlaClock.state.in_(LIVE))
                              .order_by(SlaClock.id)).scalars().all()


def history(ticket_id):
    """Every clock run of a ticket, oldest first (the ticket page's SLA history)."""
    return db.session.execute(select(SlaClock).where(SlaClock.ticket_id == ticket_id)
                              .order_by(SlaClock.id)).scalars().all()


def _refresh(ticket, clocks):
    """The ticket's deadline columns from its live clocks (NULL when stopped or paused)."""
    due = {c.target: c.due_at for c in clocks if c.state == "running"}
    ticket.first_response_due = due.get("first_response")
    ticket.next_response_due = due.get("next_response")
    ticket.resolution_due = due.get("resolution")
    running = [d for d in due.values() if d is not None]
    ticket.next_sla_due = min(running) if running else None


def _context(ticket):
    """(policy, calendar, live clocks) of a ticket with a policy, else None."""
    if not ticket.sla_policy_id:
        return None
    with db.session.no_autoflush:  # (a policy is written before a ticket can name it: nothing to flush first)
        policy = db.session.get(SlaPolicy, ticket.sla_policy_id)
    if policy is None:
        return None
    return policy, policy_calendar(policy), live_clocks(ticket.id)


def on_created(ticket, now, customer=None):
    """A new ticket: its policy, and the first-response and resolution clocks from `now`."""
    policy = choose_policy(ticket, customer)
    if policy is None:
        return
    ticket.sla_policy_id = policy.id
    ticket.sla_cycle = 1
    cal = policy_calendar(policy)
    if batchcache.get("new_ticket", ticket.id) is not None:
        batchcache.put("sla_clocks", ticket.id, [])  # made in this batch: its clocks are all here
    clocks = [c for c in (_start(ticket, policy, cal, "first_response", now, 1),
                          _start(ticket, policy, cal, "resolution", now, 1)) if c is not None]
    _refresh(ticket, clocks)


def on_agent_reply(ticket, now):
    """A public agent reply: stops first response and the running next response."""
    ctx = _context(ticket)
    if ctx is None:
        return
    policy, cal, clocks = ctx
    for c in clocks:
        if c.target in ("first_response", "next_response"):
            _stop(c, ticket, cal, now)
    _refresh(ticket, clocks)


def on_customer_message(ticket, now):
    """A customer reply starts a next-response clock, once first response is met (one at a time)."""
    ctx = _context(ticket)
    if ctx is None or ticket.status in DONE:
        return
    policy, cal, clocks = ctx
    if any(c.target in ("first_response", "next_response") for c in clocks):
        return
    clock = _start(ticket, policy, cal, "next_response", now)
    if clock is not None:
        clocks.append(clock)
    _refresh(ticket, clocks)


def on_status(ticket, old, new, now):
    """Pause, resume, stop, or a new resolution cycle on reopen."""
    ctx = _context(ticket)
    if ctx is None or old == new:
        return
    policy, cal, clocks = ctx
    pause = set(policy.pause_statuses or ())
    if new in DONE:
        for c in clocks:
            _stop(c, ticket, cal, now)
        clocks = []
    elif old in DONE:
        if policy.reopen_new_cycle and not any(c.target == "resolution" for c in clocks):
            ticket.sla_cycle = (ticket.sla_cycle or 1) + 1
            clock = _start(ticket, policy, cal, "resolution", now)
            if clock is not None:
                clocks.append(clock)
    for c in clocks:
        if c.target != "resolution":
            continue
        if new in pause and c.state == "running":
            _pause(c, now)
        elif new not in pause and c.state == "paused":
            _resume(c, cal, now, policy=policy)
    _refresh(ticket, clocks)


def on_priority(ticket, now):
    """A priority change: every live clock takes the new priority's target, counted from its start."""
    ctx = _context(ticket)
    if ctx is None:
        return
    policy, cal, clocks = ctx
    for c in clocks:
        minutes = policy.target(ticket.priority, c.target)
        if minutes:
            c.target_minutes = minutes
            schedule(c, policy, cal)
    _refresh(ticket, clocks)


def on_merged(ticket, now):
    """A ticket merged into another: its clocks stop without a verdict (the target ticket carries on)."""
    ctx = _context(ticket)
    if ctx is None:
        return
    _policy, cal, clocks = ctx
    for c in clocks:
        _stop(c, ticket, cal, now, state="cancelled")
    _refresh(ticket, [])


def recompute_open(policy_id, now):
    """After a policy change: the live clocks of its open tickets take the new targets and calendar.
    Returns how many tickets were recomputed."""
    from ..tickets.models import Ticket

    _calendars.clear()
    ids = db.session.execute(select(SlaClock.ticket_id).where(SlaClock.policy_id == policy_id,
                                                               SlaClock.state.in_(LIVE)).distinct()).scalars().all()
    for tid in ids:
        ticket = db.session.get(Ticket, tid)
        if ticket is not None:
            on_priority(ticket, now)
    return len(ids)


# ---------------------------------------------------------------- defaults

def ensure_default(now=None):
    """The standard calendar (Mon-Fri 08-17, Sat 08-12 WIB, Indonesian holidays) and a default policy,
    when there is no policy at all. Returns the default policy."""
    existing = db.session.execute(select(SlaPolicy).where(SlaPolicy.is_default.is_(True)).limit(1)).scalar_one_or_none()
    if existing is not None:
        return existing
    cal = db.session.execute(select(BusinessCalendar).order_by(BusinessCalendar.id).limit(1)).scalar_one_or_none()
    if cal is None:
        cal = BusinessCalendar(name="Jam kerja kantor", tz="Asia/Jakarta", hours=DEFAULT_HOURS, country="ID")
        db.session.add(cal)
        db.session.flush()
    policy = SlaPolicy(name="Standar", calendar_id=cal.id, targets=DEFAULT_TARGETS, pause_statuses=DEFAULT_PAUSE,
                       warn_percent=75, is_default=True)
    db.session.add(policy)
    db.session.flush()
    return policy
