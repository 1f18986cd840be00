"""Admin pages of the SLAs: policies, business calendars with company days, rules.

The default calendar (seeded after each truncation) is Mon-Fri 08:00-17:00, Sat 08:00-12:00 WIB with
Indonesian public holidays; the default policy "Standar" gives normal priority 240 business minutes
to first response. Tickets get their time passed in (`now=`), never a patched clock.
"""
import html
import re
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from helpdesk.extensions import db
from helpdesk.sla import admin_services
from helpdesk.sla.models import BusinessCalendar, CalendarDay, SlaPolicy, SlaRule
from helpdesk.tickets import services
from helpdesk.tickets.models import AuditEvent, Ticket
from tests.factories import PASSWORD
from tests.integration.test_mail_admin import admin, flashes  # noqa: F401  (the logged-in admin fixture)

PRIORITIES = ("low", "normal", "high", "urgent")
TARGETS = ("first_response", "next_response", "resolution")


def wib(*args):
    """A WIB wall time as the naive UTC the database stores."""
    return datetime(*args) - timedelta(hours=7)


@pytest.fixture
def desk(make):
    q = make.queue(slug="technical-support", name="Technical Support")
    cust = make.customer()
    db.session.commit()
    return {"q": q, "cust": cust}


def new_ticket(desk, now, priority="normal", channel="web", customer=None):
    t = services.create_ticket(customer_id=(customer or desk["cust"]).id, subject="Hosting down", body_text="Tolong",
                               channel=channel, queue_id=desk["q"].id, priority=priority, now=now)
    db.session.commit()
    return t


def default_calendar():
    return db.session.execute(select(BusinessCalendar).order_by(BusinessCalendar.id).limit(1)).scalar_one()


def default_policy():
    return db.session.execute(select(SlaPolicy).where(SlaPolicy.is_default.is_(True))).scalar_one()


def policy_data(name="Premium", calendar_id=None, targets=None, **overrides):
    data = {"name": name, "calendar_id": str(calendar_id or default_calendar().id), "pause_statuses": ["pending_customer"],
            "warn_percent": "75", "warn_minutes": "", "escalate_notify_user_id": "", "reopen_new_cycle": "y"}
    for p in PRIORITIES:
        for t in TARGETS:
            data[f"{p}_{t}"] = (targets or {}).get(f"{p}_{t}", "")
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def existing_policy_data(policy, **overrides):
    """The edit form as the page shows it for `policy`, with some fields changed."""
    targets = {f"{p}_{t}": str(policy.target(p, t) or "") for p in PRIORITIES for t in TARGETS}
    data = policy_data(policy.name, policy.calendar_id, targets, warn_percent=str(policy.warn_percent or ""),
                       pause_statuses=list(policy.pause_statuses), is_default="y" if policy.is_default else None)
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def calendar_data(name="Gudang", tz="Asia/Jakarta", **overrides):
    data = {"name": name, "tz": tz, "country": "ID", "hours_0": "08:00-17:00", "hours_1": "08:00-17:00",
            "hours_2": "08:00-17:00", "hours_3": "08:00-17:00", "hours_4": "08:00-12:00, 13:00-17:00",
            "hours_5": "", "hours_6": ""}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def page_text(resp):
    """The visible text of a page (tags dropped, entities decoded, spaces collapsed)."""
    body = resp.get_data(as_text=True)
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body)))


def input_value(resp, name):
    m = re.search(r'<input[^>]*\bname="%s"[^>]*>' % re.escape(name), resp.get_data(as_text=True))
    assert m, name
    v = re.search(r'\bvalue="([^"]*)"', m.group(0))
    return html.unescape(v.group(1)) if v else ""


def selected_option(resp, name):
    body = resp.get_data(as_text=True)
    m = re.search(r'<select[^>]*\bname="%s"[^>]*>(.*?)</select>' % re.escape(name), body, flags=re.S)
    assert m, name
    sel = re.search(r'<option[^>]*\bselected[^>]*\bvalue="([^"]*)"|<option[^>]*\bvalue="([^"]*)"[^>]*\bselected',
                    m.group(1))
    return html.unescape(sel.group(1) or sel.group(2)) if sel else None


# ---------------------------------------------------------------- access

def test_sla_pages_are_for_admins_only(app, make, client):
    agent = make.user(roles=["technical_support"])
    db.session.commit()
    assert client.get("/admin/sla/policies").status_code == 302  # anonymous: the login page
    assert "/login" in client.get("/admin/sla/policies").headers["Location"]
    assert client.post("/login", data={"email": agent.email, "password": PASSWORD}).status_code == 302
    for url in ("/admin/sla/policies", "/admin/sla/calendars", "/admin/sla/rules", "/admin/sla/policies/new"):
        assert client.get(url).status_code == 403, url
    before = db.session.execute(select(func.count()).select_from(SlaPolicy)).scalar()
    assert client.post("/admin/sla/policies/new", data=policy_data()).status_code == 403
    assert db.session.execute(select(func.count()).select_from(SlaPolicy)).scalar() == before


def test_admin_menu_links_to_the_sla_pages(app, client, admin):
    text = client.get("/admin/").get_data(as_text=True)
    assert 'href="/admin/sla/policies"' in text
    page = client.get("/admin/sla/policies")
    assert page.status_code == 200
    assert "Standar" in page_text(page) and "Jam kerja kantor" in page_text(page)


# ---------------------------------------------------------------- policies

def test_durations_parse_hours_and_minutes():
    p = admin_services.parse_duration
    assert [p("4j"), p("30m"), p("1j 30m"), p("2h"), p("90"), p("1.5j"), p(" 1 jam 15 menit "), p("")] == \
        [240, 30, 90, 120, 90, 90, 75, None]
    for bad in ("abc", "0", "4x", "j", "1j 2j", "30m 1j", "-5", "1j abc"):
        with pytest.raises(ValueError):
            p(bad)
    assert admin_services.format_duration(90) == "1j 30m" and admin_services.format_duration(240, "h") == "4h"


def test_create_policy_stores_targets_in_business_minutes(app, client, admin):
    resp = client.post("/admin/sla/policies/new", data=policy_data(targets={
        "urgent_first_response": "30m", "urgent_resolution": "4j", "high_first_response": "1j 30m",
        "normal_first_response": "2h", "low_first_response": "480"}, escalate_to_lead="y",
        escalate_notify_user_id=str(admin.id), warn_minutes="15"))
    assert resp.status_code == 303, page_text(resp)[:2000]
    assert "SLA policy Premium saved" in flashes(client)
    policy = db.session.execute(select(SlaPolicy).where(SlaPolicy.name == "Premium")).scalar_one()
    assert policy.targets["urgent"] == {"first_response": 30, "next_response": None, "resolution": 240}
    assert (policy.target("high", "first_response"), policy.target("normal", "first_response"),
            policy.target("low", "first_response"), policy.target("low", "resolution")) == (90, 120, 480, None)
    assert (policy.warn_percent, policy.warn_minutes, policy.escalate_to_lead, policy.escalate_priority,
            policy.escalate_notify_user_id, policy.pause_statuses, policy.is_default) == \
        (75, 15, True, False, admin.id, ["pending_customer"], False)
    assert default_policy().name == "Standar"
    listing = page_text(client.get("/admin/sla/policies"))
    assert "Premium" in listing and "Urgent: 30m" in listing and "High: 1h 30m" in listing
    edit = client.get(f"/admin/sla/policies/{policy.id}")
    assert input_value(edit, "urgent_resolution") == "4h" and input_value(edit, "high_first_response") == "1h 30m"
    assert db.session.execute(select(AuditEvent.action).where(AuditEvent.object_type == "sla_policy",
                                                              AuditEvent.object_id == policy.id)).scalars().all() == ["created"]


def test_invalid_policy_is_shown_again_with_what_was_typed(app, client, admin):
    resp = client.post("/admin/sla/policies/new", data=policy_data(
        name="Emas", targets={"urgent_first_response": "abc", "urgent_resolution": "4j"}, warn_percent="75"))
    assert resp.status_code == 400
    text = page_text(resp)
    assert "abc is not a duration" in text
    assert input_value(resp, "name") == "Emas"
    assert input_value(resp, "urgent_first_response") == "abc" and input_value(resp, "urgent_resolution") == "4j"
    assert 'is-invalid' in re.search(r'<input[^>]*name="urgent_first_response"[^>]*>', resp.get_data(as_text=True)).group(0)
    assert db.session.execute(select(SlaPolicy).where(SlaPolicy.name == "Emas")).scalar_one_or_none() is None


def test_exactly_one_default_policy(app, client, admin):
    standar = default_policy()
    resp = client.post("/admin/sla/policies/new", data=policy_data(
        name="Baru", targets={"normal_first_response": "1j"}, is_default="y"))
    assert resp.status_code == 303
    db.session.expire_all()
    defaults = db.session.execute(select(SlaPolicy.name).where(SlaPolicy.is_default.is_(True))).scalars().all()
    assert defaults == ["Baru"]
    assert db.session.get(SlaPolicy, standar.id).is_default is False
    baru = default_policy()
    # Unticking the only default is refused: there must always be one.
    resp = client.post(f"/admin/sla/policies/{baru.id}", data=existing_policy_data(baru, is_default=None))
    assert resp.status_code == 400
    assert "There must be one default policy" in page_text(resp)
    db.session.expire_all()
    assert db.session.execute(select(SlaPolicy.name).where(SlaPolicy.is_default.is_(True))).scalars().all() == ["Baru"]
    # Making Standar the default again moves the mark.
    standar = db.session.get(SlaPolicy, standar.id)
    assert client.post(f"/admin/sla/policies/{standar.id}",
                       data=existing_policy_data(standar, is_default="y")).status_code == 303
    db.session.expire_all()
    assert db.session.execute(select(SlaPolicy.name).where(SlaPolicy.is_default.is_(True))).scalars().all() == ["Standar"]
    rules_page = page_text(client.get("/admin/sla/rules"))
    assert "Otherwise: Standar" in rules_page


def test_policy_change_applies_to_new_tickets_and_recompute_updates_open_ones(app, client, admin, desk):
    # Monday 09:00 WIB, normal priority, 240 business minutes -> 13:00 WIB
    t = new_ticket(desk, wib(2026, 12, 7, 9, 0))
    assert t.first_response_due == wib(2026, 12, 7, 13, 0)
    policy = default_policy()
    before = policy.updated_at
    resp = client.post(f"/admin/sla/policies/{policy.id}", data=existing_policy_data(policy, normal_first_response="2j"))
    assert resp.status_code == 303
    assert "recomputed" not in flashes(client)
    db.session.expire_all()
    policy = default_policy()
    assert policy.target("normal", "first_response") == 120 and policy.updated_at > before
    assert db.session.get(Ticket, t.id).first_response_due == wib(2026, 12, 7, 13, 0)  # untouched
    t2 = new_ticket(desk, wib(2026, 12, 7, 9, 0))
    assert t2.first_response_due == wib(2026, 12, 7, 11, 0)  # a new ticket takes the new target

    resp = client.post(f"/admin/sla/policies/{policy.id}",
                       data=existing_policy_data(policy, normal_first_response="1j", recompute="y"),
                       follow_redirects=True)
    assert resp.status_code == 200
    assert "2 open tickets recomputed." in page_text(resp)
    db.session.expire_all()
    assert db.session.get(Ticket, t.id).first_response_due == wib(2026, 12, 7, 10, 0)
    assert db.session.get(Ticket, t2.id).first_response_due == wib(2026, 12, 7, 10, 0)


# ---------------------------------------------------------------- calendars

def test_create_calendar_with_split_hours(app, client, admin):
    resp = client.post("/admin/sla/calendars/new", data=calendar_data(tz="Asia/Makassar"))
    assert resp.status_code == 303
    cal = db.session.execute(select(BusinessCalendar).where(BusinessCalendar.name == "Gudang")).scalar_one()
    assert (cal.tz, cal.country, cal.always_open) == ("Asia/Makassar", "ID", False)
    assert cal.hours["4"] == [["08:00", "12:00"], ["13:00", "17:00"]] and cal.hours["5"] == []
    page = client.get(f"/admin/sla/calendars/{cal.id}")
    assert input_value(page, "hours_4") == "08:00-12:00, 13:00-17:00"
    assert selected_option(page, "tz") == "Asia/Makassar"
    listing = page_text(client.get("/admin/sla/calendars"))
    assert "Gudang" in listing and "Asia/Makassar" in listing


def test_unknown_time_zone_is_refused_and_the_input_kept(app, client, admin):
    resp = client.post("/admin/sla/calendars/new", data=calendar_data(name="Mars", tz="Mars/Olympus_Mons",
                                                                      hours_0="07:30-16:00"))
    assert resp.status_code == 400
    assert "Mars/Olympus_Mons is not a known time zone" in page_text(resp)
    assert input_value(resp, "name") == "Mars" and input_value(resp, "hours_0") == "07:30-16:00"
    assert selected_option(resp, "tz") == "Mars/Olympus_Mons"
    assert db.session.execute(select(BusinessCalendar).where(BusinessCalendar.name == "Mars")).scalar_one_or_none() is None


def test_calendar_without_any_hours_is_refused(app, client, admin):
    cal = default_calendar()
    before = (cal.hours, cal.updated_at)
    empty = {f"hours_{d}": "" for d in range(7)}
    resp = client.post(f"/admin/sla/calendars/{cal.id}", data=calendar_data(name="Jam kerja kantor", **empty))
    assert resp.status_code == 400
    assert "This calendar is never open" in page_text(resp)
    assert input_value(resp, "hours_0") == "" and input_value(resp, "name") == "Jam kerja kantor"
    db.session.expire_all()
    assert (default_calendar().hours, default_calendar().updated_at) == before
    # 24x7 needs no hours
    resp = client.post(f"/admin/sla/calendars/{cal.id}", data=calendar_data(name="Jam kerja kantor", always_open="y",
                                                                             **empty))
    assert resp.status_code == 303
    db.session.expire_all()
    assert default_calendar().always_open is True and default_calendar().updated_at > before[1]


def test_bad_hours_text_is_refused_on_its_day(app, client, admin):
    resp = client.post("/admin/sla/calendars/new", data=calendar_data(hours_2="8-17", hours_3="17:00-08:00"))
    assert resp.status_code == 400
    text = page_text(resp)
    assert "Write the hours as 08:00-17:00" in text and "17:00-08:00: the start must be before the end" in text
    assert input_value(resp, "hours_2") == "8-17" and input_value(resp, "hours_3") == "17:00-08:00"


def test_company_day_off_moves_the_due_of_a_new_ticket(app, client, admin, desk):
    # Thursday 10 Dec 2026 16:00 WIB + 240 min: 1 h Thursday, 3 h Friday -> Friday 11:00 WIB
    before = new_ticket(desk, wib(2026, 12, 10, 16, 0))
    assert before.first_response_due == wib(2026, 12, 11, 11, 0)
    cal = default_calendar()
    stamp = cal.updated_at
    resp = client.post(f"/admin/sla/calendars/{cal.id}/days",
                       data={"day-day": "2026-12-11", "day-name": "Ulang tahun perusahaan", "day-closed": "y"},
                       follow_redirects=True)
    assert resp.status_code == 200
    text = page_text(resp)
    assert "2026-12-11 added to the calendar." in text and "Ulang tahun perusahaan" in text
    db.session.expire_all()
    cal = default_calendar()
    assert cal.updated_at > stamp and [(d.day, d.hours) for d in cal.days] == [(date(2026, 12, 11), [])]
    # The Friday is skipped: 1 h Thursday, 3 h Saturday (08-11) -> Saturday 11:00 WIB
    after = new_ticket(desk, wib(2026, 12, 10, 16, 0))
    assert after.first_response_due == wib(2026, 12, 12, 11, 0)
    assert db.session.get(Ticket, before.id).first_response_due == wib(2026, 12, 11, 11, 0)  # new tickets only

    # The same day again is refused, with the input kept.
    resp = client.post(f"/admin/sla/calendars/{cal.id}/days", data={"day-day": "2026-12-11", "day-name": "Lagi",
                                                                       "day-closed": "y"})
    assert resp.status_code == 400
    assert "2026-12-11 is already in this calendar" in page_text(resp) and input_value(resp, "day-name") == "Lagi"

    # Special hours on the Saturday: 08:00-09:00 only -> 1 h Thu, 1 h Sat, 2 h Monday -> Monday 10:00 WIB
    resp = client.post(f"/admin/sla/calendars/{cal.id}/days",
                       data={"day-day": "2026-12-12", "day-name": "Stock opname", "day-hours": "08:00-09:00"})
    assert resp.status_code == 303
    assert new_ticket(desk, wib(2026, 12, 10, 16, 0)).first_response_due == wib(2026, 12, 14, 10, 0)

    # Removing the day off: back to Friday (the Saturday's special hours do not matter then)
    day = db.session.execute(select(CalendarDay).where(CalendarDay.day == date(2026, 12, 11))).scalar_one()
    resp = client.post(f"/admin/sla/calendars/{cal.id}/days/{day.id}/delete")
    assert resp.status_code == 303 and "2026-12-11 removed from the calendar." in flashes(client)
    assert new_ticket(desk, wib(2026, 12, 10, 16, 0)).first_response_due == wib(2026, 12, 11, 11, 0)

    # Open tickets keep their deadlines until recomputed: `before` still has Friday 11:00; after a
    # Friday off and the recompute button it moves to Monday 10:00 (the Saturday has 08:00-09:00 only).
    assert client.post(f"/admin/sla/calendars/{cal.id}/days", data={"day-day": "2026-12-11", "day-closed": "y"}
                       ).status_code == 303
    assert db.session.get(Ticket, before.id).first_response_due == wib(2026, 12, 11, 11, 0)
    resp = client.post(f"/admin/sla/calendars/{cal.id}/recompute", follow_redirects=True)
    assert "4 open tickets recomputed." in page_text(resp)
    db.session.expire_all()
    assert db.session.get(Ticket, before.id).first_response_due == wib(2026, 12, 14, 10, 0)
    actions = db.session.execute(select(AuditEvent.action).where(AuditEvent.object_type == "sla_calendar")
                                 .order_by(AuditEvent.id)).scalars().all()
    assert actions == ["day_added", "day_added", "day_removed", "day_added", "recomputed"]


def test_calendar_page_lists_the_public_holidays_already_skipped(app, client, admin):
    cal = default_calendar()
    next_year = datetime.now().year + 1
    page = page_text(client.get(f"/admin/sla/calendars/{cal.id}"))
    assert f"{next_year}-01-01 — New Year's Day" in page
    page = page_text(client.get(f"/admin/sla/calendars/{cal.id}?lang=id"))
    assert f"{next_year}-01-01 — Tahun Baru Masehi" in page
    cal.country = None
    db.session.commit()
    page = page_text(client.get(f"/admin/sla/calendars/{cal.id}?lang=en"))  # ?lang=id stuck to the session
    assert f"{next_year}-01-01" not in page and "this calendar has no public holidays" in page


# ---------------------------------------------------------------- rules

def test_rules_order_decides_the_policy_of_a_new_ticket(app, client, admin, desk, make):
    for name in ("Premium", "Telepon"):
        assert client.post("/admin/sla/policies/new", data=policy_data(
            name=name, targets={"normal_first_response": "1j" if name == "Premium" else "2j"})).status_code == 303
    premium, telepon = (db.session.execute(select(SlaPolicy).where(SlaPolicy.name == n)).scalar_one()
                        for n in ("Premium", "Telepon"))
    vip = make.customer(support_tier="premium")
    db.session.commit()

    assert client.post("/admin/sla/rules", data={"kind": "tier", "tier": "premium",
                                                 "policy_id": str(premium.id)}).status_code == 303
    assert client.post("/admin/sla/rules", data={"kind": "channel", "channel": "phone",
                                                 "policy_id": str(telepon.id)}).status_code == 303
    page = page_text(client.get("/admin/sla/rules"))
    assert re.search(r"Support tier is premium → Premium .*Channel is Phone → Telepon .*Otherwise: Standar", page)

    t = new_ticket(desk, wib(2026, 12, 7, 9, 0), channel="phone", customer=vip)
    assert t.sla_policy_id == premium.id and t.first_response_due == wib(2026, 12, 7, 10, 0)
    assert new_ticket(desk, wib(2026, 12, 7, 9, 0), channel="web").sla_policy_id == default_policy().id

    phone_rule = db.session.execute(select(SlaRule).where(SlaRule.kind == "channel")).scalar_one()
    assert client.post(f"/admin/sla/rules/{phone_rule.id}/move", data={"direction": "up"}).status_code == 303
    page = page_text(client.get("/admin/sla/rules"))
    assert re.search(r"Channel is Phone → Telepon .*Support tier is premium → Premium", page)
    t = new_ticket(desk, wib(2026, 12, 7, 9, 0), channel="phone", customer=vip)
    assert t.sla_policy_id == telepon.id and t.first_response_due == wib(2026, 12, 7, 11, 0)

    # A queue rule, and a rejected one
    assert client.post("/admin/sla/rules", data={"kind": "queue", "queue": str(desk["q"].id),
                                                 "policy_id": str(premium.id)}).status_code == 303
    assert "Queue is Technical Support → Premium" in page_text(client.get("/admin/sla/rules"))
    resp = client.post("/admin/sla/rules", data={"kind": "channel", "channel": "fax", "policy_id": str(premium.id)})
    assert resp.status_code == 400 and "Choose a channel." in page_text(resp)
    resp = client.post("/admin/sla/rules", data={"kind": "tier", "tier": "  ", "policy_id": str(premium.id)})
    assert resp.status_code == 400 and "Give the value the rule matches." in page_text(resp)

    # Deleting the first rule: the tier rule decides again
    assert client.post(f"/admin/sla/rules/{phone_rule.id}/delete").status_code == 303
    assert [(r.position, r.kind) for r in db.session.execute(select(SlaRule).order_by(SlaRule.position)).scalars()] \
        == [(1, "tier"), (2, "queue")]
    assert new_ticket(desk, wib(2026, 12, 7, 9, 0), channel="phone", customer=vip).sla_policy_id == premium.id
    # An unknown rule: a message, not an error page
    resp = client.post("/admin/sla/rules/999999/move", data={"direction": "down"})
    assert resp.status_code == 303 and "No such rule" in flashes(client)
