"""Which maintenance notice is due (pure rules: no database, no clock of its own).

A published window goes through these notices, each fanned out once per recipient:

- "announce": from `starts_at - announce_days` (at once when it is published later than that: "as
  early as possible"), until the window ends;
- "updated" / "extended": after an edit of an announced window (`revision > notified_revision`),
  to those already notified, until the window ends;
- "reminder": from `starts_at - reminder_hours` until the start, once the announcement is out;
  a customer whose announcement itself went out inside that period gets no reminder;
- "completed": after `ends_at`, to those notified (a window never announced just closes);
- "cancelled": after a cancellation, to those already notified.

`due(w, now, reminder_hours)` takes anything with the window's fields (a MaintenanceWindow, a
SimpleNamespace in the unit tests) and returns the notices to work on now, in order.
"""
from datetime import timedelta

NOTICE_KINDS = ("announce", "reminder", "completed", "extended", "updated", "cancelled")
MAX_ANNOUNCE_DAYS = 60  # the form's limit; the sweep looks this far ahead for windows to announce


def announce_time(starts_at, announce_days):
    return starts_at - timedelta(days=announce_days or 0)


def reminder_time(starts_at, reminder_hours):
    return starts_at - timedelta(hours=reminder_hours or 0)


def phase(w, now):
    """upcoming | ongoing | past (by the clock; a cancelled window is still placed in time)."""
    if now < w.starts_at:
        return "upcoming"
    if now < w.ends_at:
        return "ongoing"
    return "past"


def revision_kind(old, new):
    """The notice an edit of an announced window sends: None when nothing customers read changed;
    "extended" when only the end moved later; "updated" for any other change.
    `old` / `new`: dicts with starts_at, ends_at, impact, title_id, title_en, description_id, description_en."""
    changed = {k for k in new if old.get(k) != new.get(k)}
    if not changed:
        return None
    if changed == {"ends_at"} and new["ends_at"] > old["ends_at"]:
        return "extended"
    return "updated"


def due(w, now, reminder_hours):
    """The notices of window `w` to work on at `now`, in the order the sweep handles them."""
    if w.status == "cancelled":
        return ["cancelled"] if w.cancel_notified_at is None else []
    if w.status != "scheduled":
        return []
    if now >= w.ends_at:
        return ["completed"] if w.completed_at is None else []
    out = []
    if now >= announce_time(w.starts_at, w.announce_days) and w.announced_at is None:
        out.append("announce")
        return out  # the rest waits until everybody has the announcement
    if w.announced_at is None:
        return out
    if (w.revision or 0) > (w.notified_revision or 0):
        out.append(w.revision_kind or "updated")
    if w.reminded_at is None and now >= reminder_time(w.starts_at, reminder_hours):
        out.append("reminder")  # after the start: the sweep closes it without mail (skip_reminder)
    return out


def reminder_too_late(w, now):
    """The start has passed: a reminder no longer makes sense."""
    return now >= w.starts_at


def announced_inside_reminder_period(announce_sent_at, starts_at, reminder_hours):
    """A customer's announcement went out in the reminder period: no separate reminder for them."""
    return announce_sent_at is not None and announce_sent_at >= reminder_time(starts_at, reminder_hours)
