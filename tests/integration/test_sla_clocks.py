"""SLA clocks on real tickets: every transition, with the time passed in (never patched).

The default policy (seeded by the migration, and again after each test's truncation) runs on the
office calendar: Mon-Fri 08:00-17:00, Sat 08:00-12:00 WIB (UTC+7), Indonesian public holidays.
Normal priority: first response 240, next response 240, resolution 1620 business minutes.
"""

import pytest
from sqlalchemy import select

from helpdesk.extensions import db
from helpdesk.sla import services as sla
from helpdesk.sla.models import SlaClock, SlaPolicy, SlaRule
from helpdesk.tickets import services
from tests.factories import wib



@pytest.fixture
def desk(make):
    q = make.queue(slug="technical-support", name="Technical Support")
    agent = make.user(roles=["technical_support"], queues=[q])
    cust = make.customer()
    db.session.commit()
    return {"q": q, "agent": agent, "cust": cust}


def new_ticket(desk, now, priority="normal", channel="web", queue=None, customer=None):
    t = services.create_ticket(customer_id=(customer or desk["cust"]).id, subject="Hosting down", body_text="Tolong",
                               channel=channel, queue_id=(queue or desk["q"]).id, priority=priority, now=now)
    db.session.commit()
    return t


def clocks(ticket):
    return {(c.target, c.cycle): c for c in db.session.execute(
        select(SlaClock).where(SlaClock.ticket_id == ticket.id).order_by(SlaClock.id)).scalars()}


def test_creation_starts_first_response_and_resolution_in_business_time(app, desk):
    # Friday 16:00 WIB + 240 business minutes: 1 h Friday, 3 h Saturday (08-11) -> Sat 11:00 WIB
    t = new_ticket(desk, wib(2026, 12, 4, 16, 0))
    c = clocks(t)
    assert set(c) == {("first_response", 1), ("resolution", 1)}
    assert t.first_response_due == wib(2026, 12, 5, 11, 0)
    # 1620 min = 27 h: Fri 1 h, Sat 4 h, Mon 9 h, Tue 9 h, Wed 4 h -> Wed 12:00 WIB
    assert t.resolution_due == wib(2026, 12, 9, 12, 0)
    assert t.next_sla_due == t.first_response_due
    # warning at 75 % of the target: 180 business minutes -> Sat 10:00
    assert c[("first_response", 1)].warn_at == wib(2026, 12, 5, 10, 0)
    assert c[("first_response", 1)].alert_at == c[("first_response", 1)].warn_at


def test_created_out_of_hours_starts_at_the_next_opening(app, desk):
    t = new_ticket(desk, wib(2026, 12, 6, 20, 0), priority="urgent")  # Sunday evening
    assert t.first_response_due == wib(2026, 12, 7, 8, 30)  # Monday 08:00 + 30 min


def test_public_holiday_is_skipped(app, desk):
    # Christmas (Fri 25 Dec 2026) is a public holiday: Thursday 16:00 + 240 min -> Sat 26 Dec 11:00
    t = new_ticket(desk, wib(2026, 12, 24, 16, 0))
    assert t.first_response_due == wib(2026, 12, 26, 11, 0)


def test_first_public_reply_stops_first_response_met_and_note_does_not(app, desk):
    t = new_ticket(desk, wib(2026, 12, 7, 9, 0))
    services.add_agent_message(t.id, desk["agent"].id, body_text="catatan", kind="note", now=wib(2026, 12, 7, 9, 30))
    db.session.commit()
    assert clocks(t)[("first_response", 1)].state == "running"
    services.add_agent_message(t.id, desk["agent"].id, body_text="Kami cek", now=wib(2026, 12, 7, 10, 0))
    db.session.commit()
    fr = clocks(t)[("first_response", 1)]
    assert (fr.state, fr.elapsed_seconds, fr.margin_seconds) == ("met", 3600, 3 * 3600)
    assert t.first_response_due is None and fr.alert_at is None
    assert t.next_sla_due == t.resolution_due


def test_late_reply_is_breached_by_business_time(app, desk):
    t = new_ticket(desk, wib(2026, 12, 7, 9, 0), priority="urgent")  # due 09:30
    services.add_agent_message(t.id, desk["agent"].id, body_text="Maaf", now=wib(2026, 12, 7, 10, 15))
    db.session.commit()
    fr = clocks(t)[("first_response", 1)]
    assert fr.state == "breached" and fr.margin_seconds == -45 * 60


def test_customer_reply_starts_next_response_and_agent_answer_stops_it(app, desk):
    t = new_ticket(desk, wib(2026, 12, 7, 9, 0))
    services.add_agent_message(t.id, desk["agent"].id, body_text="Kami cek", now=wib(2026, 12, 7, 9, 10))
    services.add_customer_message(t.id, desk["cust"].id, body_text="Masih error", now=wib(2026, 12, 7, 16, 0))
    db.session.commit()
    nr = clocks(t)[("next_response", 1)]
    assert nr.state == "running"
    assert t.next_response_due == wib(2026, 12, 8, 11, 0)  # 1 h Monday + 3 h Tuesday
    # a second customer message does not start a second one
    services.add_customer_message(t.id, desk["cust"].id, body_text="Halo?", now=wib(2026, 12, 7, 16, 30))
    db.session.commit()
    assert len([c for c in clocks(t) if c[0] == "next_response"]) == 1
    services.add_agent_message(t.id, desk["agent"].id, body_text="Sudah", now=wib(2026, 12, 8, 8, 30))
    db.session.commit()
    nr = clocks(t)[("next_response", 1)]
    assert nr.state == "met" and nr.elapsed_seconds == 90 * 60
    assert t.next_response_due is None


def test_customer_message_before_first_response_starts_nothing(app, desk):
    t = new_ticket(desk, wib(2026, 12, 7, 9, 0))
    services.add_customer_message(t.id, desk["cust"].id, body_text="Tambahan", now=wib(2026, 12, 7, 9, 5))
    db.session.commit()
    assert set(clocks(t)) == {("first_response", 1), ("resolution", 1)}


def test_pending_customer_pauses_resolution_across_a_weekend_and_resume_keeps_the_remaining_time(app, desk):
    t = new_ticket(desk, wib(2026, 12, 4, 9, 0))  # Friday; resolution due Wed 09:00 + ... (27 business hours)
    due_before = t.resolution_due
    # Friday 10:00 the agent asks the customer (pending_customer): paused with the remaining time
    services.add_agent_message(t.id, desk["agent"].id, body_text="Kirim log?", status="pending_customer",
                               now=wib(2026, 12, 4, 10, 0))
    db.session.commit()
    res = clocks(t)[("resolution", 1)]
    assert res.state == "paused" and t.resolution_due is None and res.alert_at is None
    # the customer answers Monday 09:00: paused business time = Fri 10-17 (7 h) + Sat 4 h + Mon 1 h = 12 h
    services.add_customer_message(t.id, desk["cust"].id, body_text="Ini lognya", now=wib(2026, 12, 7, 9, 0))
    db.session.commit()
    res = clocks(t)[("resolution", 1)]
    assert res.state == "running" and res.paused_seconds == 12 * 3600
    assert t.status == "open"
    # 26 business hours were left at the pause: from Monday 09:00 -> Mon 8 h, Tue 9 h, Wed 9 h = Wed 17:00
    assert t.resolution_due == wib(2026, 12, 9, 17, 0)
    assert t.resolution_due > due_before


def test_pause_across_idul_fitri(app, desk):
    # Idul Fitri 2026 (21-22 March, Sat-Sun) and Nyepi (Thu 19 March) are public holidays.
    t = new_ticket(desk, wib(2026, 3, 18, 16, 0))  # Wednesday
    services.add_agent_message(t.id, desk["agent"].id, body_text="Mohon kirim data", status="pending_customer",
                               now=wib(2026, 3, 18, 16, 30))
    services.add_customer_message(t.id, desk["cust"].id, body_text="Ini", now=wib(2026, 3, 23, 9, 0))
    db.session.commit()
    res = clocks(t)[("resolution", 1)]
    # paused: Wed 16:30-17 (30 min), Thu Nyepi closed, Fri 9 h, Sat/Sun Idul Fitri closed, Mon 1 h
    assert res.paused_seconds == (30 + 9 * 60 + 60) * 60


def test_pending_billing_does_not_pause_unless_the_policy_says_so(app, desk, make):
    billing = make.user(roles=["billing"], queues=[desk["q"]])
    db.session.commit()
    t = new_ticket(desk, wib(2026, 12, 7, 9, 0))
    services.change_status(t.id, desk["agent"].id, "pending_billing", now=wib(2026, 12, 7, 10, 0))
    db.session.commit()
    assert clocks(t)[("resolution", 1)].state == "running"
    policy = db.session.get(SlaPolicy, t.sla_policy_id)
    policy.pause_statuses = ["pending_customer", "pending_billing"]
    services.change_status(t.id, billing.id, "open", now=wib(2026, 12, 7, 11, 0))
    services.change_status(t.id, desk["agent"].id, "pending_billing", now=wib(2026, 12, 7, 12, 0))
    db.session.commit()
    assert clocks(t)[("resolution", 1)].state == "paused"


def test_priority_change_recomputes_from_the_original_start(app, desk):
    t = new_ticket(desk, wib(2026, 12, 7, 9, 0))
    assert t.first_response_due == wib(2026, 12, 7, 13, 0)
    services.change_priority(t.id, desk["agent"].id, "urgent", now=wib(2026, 12, 7, 9, 20))
    db.session.commit()
    assert t.first_response_due == wib(2026, 12, 7, 9, 30)  # 30 min from 09:00, not from 09:20
    assert t.resolution_due == wib(2026, 12, 7, 13, 0)
    assert clocks(t)[("first_response", 1)].target_minutes == 30


def test_resolve_stops_everything_and_reopen_starts_a_new_cycle(app, desk):
    t = new_ticket(desk, wib(2026, 12, 7, 9, 0))
    services.add_agent_message(t.id, desk["agent"].id, body_text="Beres", status="resolved", now=wib(2026, 12, 7, 11, 0))
    db.session.commit()
    c = clocks(t)
    assert c[("resolution", 1)].state == "met" and c[("resolution", 1)].elapsed_seconds == 2 * 3600
    assert (t.first_response_due, t.resolution_due, t.next_sla_due) == (None, None, None)
    services.add_customer_message(t.id, desk["cust"].id, body_text="Error lagi", now=wib(2026, 12, 8, 9, 0))
    db.session.commit()
    assert t.status == "open" and t.sla_cycle == 2
    c = clocks(t)
    assert c[("resolution", 2)].state == "running" and c[("resolution", 2)].started_at == wib(2026, 12, 8, 9, 0)
    assert c[("next_response", 2)].state == "running"
    # 27 business hours from Tuesday 09:00: Tue 8 h, Wed 9 h, Thu 9 h, Fri 1 h -> Friday 09:00
    assert t.resolution_due == wib(2026, 12, 11, 9, 0)


def test_merge_cancels_the_source_clocks(app, desk):
    a = new_ticket(desk, wib(2026, 12, 7, 9, 0))
    b = new_ticket(desk, wib(2026, 12, 7, 9, 5))
    services.merge(b.id, a.id, desk["agent"].id, now=wib(2026, 12, 7, 9, 30))
    db.session.commit()
    assert {c.state for c in clocks(b).values()} == {"cancelled"}
    assert b.next_sla_due is None


def test_rules_pick_the_policy_by_tier_then_queue_then_channel(app, desk, make):
    default = db.session.execute(select(SlaPolicy).where(SlaPolicy.is_default.is_(True))).scalar_one()
    premium = SlaPolicy(name="Premium", calendar_id=default.calendar_id, targets={"normal": {"first_response": 15}},
                        pause_statuses=["pending_customer"])
    phone = SlaPolicy(name="Telepon", calendar_id=default.calendar_id, targets={"normal": {"first_response": 60}},
                      pause_statuses=["pending_customer"])
    db.session.add_all([premium, phone])
    db.session.flush()
    db.session.add_all([SlaRule(position=1, kind="tier", value="premium", policy_id=premium.id),
                        SlaRule(position=2, kind="channel", value="phone", policy_id=phone.id)])
    vip = make.customer()
    vip.support_tier = "premium"
    db.session.commit()
    assert new_ticket(desk, wib(2026, 12, 7, 9, 0), customer=vip, channel="phone").sla_policy_id == premium.id
    assert new_ticket(desk, wib(2026, 12, 7, 9, 0), channel="phone").sla_policy_id == phone.id
    t = new_ticket(desk, wib(2026, 12, 7, 9, 0))
    assert t.sla_policy_id == default.id
    # a policy without a resolution target measures only what it has
    only = new_ticket(desk, wib(2026, 12, 7, 9, 0), customer=vip)
    assert set(clocks(only)) == {("first_response", 1)} and only.resolution_due is None


def test_no_policy_no_clocks(app, desk):
    db.session.execute(SlaPolicy.__table__.update().values(is_default=False))
    db.session.commit()
    t = new_ticket(desk, wib(2026, 12, 7, 9, 0))
    assert t.sla_policy_id is None and clocks(t) == {} and t.next_sla_due is None


def test_policy_change_recomputes_open_tickets_on_request(app, desk):
    t = new_ticket(desk, wib(2026, 12, 7, 9, 0))
    policy = db.session.get(SlaPolicy, t.sla_policy_id)
    policy.targets = {**policy.targets, "normal": {"first_response": 60, "next_response": 60, "resolution": 600}}
    db.session.commit()
    assert t.first_response_due == wib(2026, 12, 7, 13, 0)  # unchanged until asked
    assert sla.recompute_open(policy.id, now=wib(2026, 12, 7, 9, 10)) == 1
    db.session.commit()
    assert t.first_response_due == wib(2026, 12, 7, 10, 0)
