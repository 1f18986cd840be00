"""Which maintenance notice is due (helpdesk.maintenance.schedule): pure rules, no database."""
from datetime import datetime, timedelta
from types import SimpleNamespace

from helpdesk.maintenance import schedule

START = datetime(2027, 2, 10, 1, 0)
END = START + timedelta(hours=4)


def win(**kw):
    base = dict(status="scheduled", starts_at=START, ends_at=END, announce_days=3, announced_at=None,
                reminded_at=None, completed_at=None, cancel_notified_at=None, revision=0, notified_revision=0,
                revision_kind=None)
    base.update(kw)
    return SimpleNamespace(**base)


def test_announcement_from_n_days_before_and_at_once_when_late():
    assert schedule.due(win(), START - timedelta(days=3, seconds=1), 3) == []
    assert schedule.due(win(), START - timedelta(days=3), 3) == ["announce"]
    assert schedule.due(win(), START - timedelta(minutes=5), 3) == ["announce"]  # published late: at once
    assert schedule.due(win(), START + timedelta(hours=1), 3) == ["announce"]  # even during the window
    assert schedule.due(win(announce_days=0), START - timedelta(hours=1), 3) == []


def test_reminder_after_the_announcement_and_only_before_the_start():
    told = win(announced_at=START - timedelta(days=3))
    assert schedule.due(told, START - timedelta(hours=3, seconds=1), 3) == []
    assert schedule.due(told, START - timedelta(hours=3), 3) == ["reminder"]
    assert schedule.due(win(announced_at=told.announced_at, reminded_at=START - timedelta(hours=3)),
                        START - timedelta(hours=1), 3) == []
    assert schedule.reminder_too_late(told, START) and not schedule.reminder_too_late(told, START - timedelta(1))
    assert schedule.announced_inside_reminder_period(START - timedelta(hours=1), START, 3)
    assert not schedule.announced_inside_reminder_period(START - timedelta(days=3), START, 3)
    # the announcement still going out: the reminder waits
    assert schedule.due(win(), START - timedelta(hours=2), 3) == ["announce"]


def test_completion_updates_and_cancellation():
    told = dict(announced_at=START - timedelta(days=3), reminded_at=START - timedelta(hours=3))
    assert schedule.due(win(**told), END - timedelta(seconds=1), 3) == []
    assert schedule.due(win(**told), END, 3) == ["completed"]
    assert schedule.due(win(completed_at=END, **told), END + timedelta(hours=1), 3) == []
    assert schedule.due(win(revision=2, notified_revision=1, revision_kind="extended", **told), START, 3) == ["extended"]
    assert schedule.due(win(revision=1, revision_kind="updated", **told), START - timedelta(days=1), 3) == ["updated"]
    assert schedule.due(win(revision=1, revision_kind="updated", **told), END, 3) == ["completed"]
    assert schedule.due(win(status="cancelled", **told), START, 3) == ["cancelled"]
    assert schedule.due(win(status="cancelled", cancel_notified_at=START, **told), START, 3) == []
    assert schedule.due(win(status="draft"), START, 3) == []


def test_revision_kind_and_phase():
    old = dict(starts_at=START, ends_at=END, impact="downtime", title_id="a", title_en="b", description_id="",
               description_en="")
    assert schedule.revision_kind(old, dict(old)) is None
    assert schedule.revision_kind(old, dict(old, ends_at=END + timedelta(hours=1))) == "extended"
    assert schedule.revision_kind(old, dict(old, ends_at=END - timedelta(hours=1))) == "updated"
    assert schedule.revision_kind(old, dict(old, ends_at=END + timedelta(hours=1), impact="degraded")) == "updated"
    assert schedule.revision_kind(old, dict(old, title_en="c")) == "updated"
    assert [schedule.phase(win(), t) for t in (START - timedelta(1), START, END)] == ["upcoming", "ongoing", "past"]
