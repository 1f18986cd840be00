"""Lead services (issue #7 §1): capture with deduplication (email case-insensitive, phone in any
writing), merging of duplicates (also under concurrency), who may manage leads, stages, activity,
follow-up tasks and the conversion to a customer. Real database (SQLite, PostgreSQL with DATABASE_URL)."""
import threading
import time
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from helpdesk.customers.models import Customer, CustomerEmail
from helpdesk.errors import DomainError, Forbidden
from helpdesk.extensions import db
from helpdesk.leads import services as leads
from helpdesk.leads.models import Lead, LeadActivity, LeadTask

NOW = datetime(2026, 12, 1, 3, 0)  # 10:00 WIB, naive UTC
LATER = NOW + timedelta(hours=2)


@pytest.fixture
def desk(make):
    users = SimpleNamespace(
        mk=make.user(email="maya@desk.example", name="Maya", roles=["marketing"]),
        mk2=make.user(email="mega@desk.example", name="Mega", roles=["marketing"]),
        admin=make.user(email="ari@desk.example", name="Ari", roles=["admin"]),
        cs=make.user(email="cs@desk.example", roles=["customer_support"]),
        tech=make.user(email="tech@desk.example", roles=["technical_support"]),
        bill=make.user(email="bill@desk.example", roles=["billing"]),
        gone=make.user(email="gone@desk.example", roles=["marketing"], active=False),
    )
    db.session.commit()
    return users


def capture(**kw):
    kw.setdefault("name", "Budi Santoso")
    kw.setdefault("now", NOW)
    lead, created = leads.capture(**kw)
    db.session.commit()
    return lead, created


def lead_count():
    return db.session.execute(select(func.count()).select_from(Lead)).scalar_one()


def log_of(lead_id):
    """[(kind, text, data)] of the lead's log, oldest first."""
    return [(a.kind, a.text, a.data) for a in db.session.execute(
        select(LeadActivity).where(LeadActivity.lead_id == lead_id).order_by(LeadActivity.id)).scalars()]


def customer_count():
    return db.session.execute(select(func.count()).select_from(Customer)).scalar_one()


# ---------------------------------------------------------------- capture

def test_capture_creates_a_lead_with_a_created_entry(desk):
    lead, created = capture(email=" Budi@Example.COM ", phone="0812-3456-7890", company="CV Maju",
                            source="seminar", campaign="EXPO26", product_lines=["website", "ads_seo", "website"],
                            owner_id=desk.mk.id, notes="Wants a shop", actor_id=desk.mk.id, channel="manual")
    assert created is True
    db.session.expire_all()
    lead = db.session.get(Lead, lead.id)
    assert (lead.name, lead.email, lead.phone, lead.company) == ("Budi Santoso", "budi@example.com",
                                                                 "+6281234567890", "CV Maju")
    assert (lead.source, lead.campaign, lead.product_lines) == ("seminar", "EXPO26", ["website", "ads_seo"])
    assert (lead.stage, lead.owner_id, lead.merge_count, lead.notes) == ("new", desk.mk.id, 0, "Wants a shop")
    assert lead.created_at == lead.stage_changed_at == lead.last_activity_at == NOW
    assert log_of(lead.id) == [("created", "Wants a shop",
                                {"channel": "manual", "source": "seminar", "campaign": "EXPO26"})]


def test_a_capture_is_part_of_the_callers_transaction(desk):
    """Rolled back with the rest of the caller's work (on SQLite too, where a savepoint opened before
    the first write would otherwise commit the new lead on its own)."""
    leads.capture(name="Budi", email="budi@example.com", now=NOW)
    db.session.rollback()
    assert lead_count() == 0
    assert db.session.execute(select(func.count()).select_from(LeadActivity)).scalar_one() == 0


def test_the_same_email_in_another_case_is_the_same_lead(desk):
    first, _ = capture(email="budi@example.com")
    again, created = capture(name="Pak Budi", email="BUDI@Example.com", now=LATER)
    assert created is False and again.id == first.id
    assert lead_count() == 1
    db.session.expire_all()
    lead = db.session.get(Lead, first.id)
    assert lead.name == "Budi Santoso" and lead.merge_count == 1 and lead.last_activity_at == LATER
    assert [k for k, _, _ in log_of(lead.id)] == ["created", "merged"]


def test_one_phone_number_written_three_ways_is_one_lead(desk):
    first, created = capture(phone="0812-3456-7890")
    second, created2 = capture(phone="+62 812 3456 7890")
    third, created3 = capture(phone="6281234567890")
    assert (created, created2, created3) == (True, False, False)
    assert first.id == second.id == third.id and lead_count() == 1
    db.session.expire_all()
    lead = db.session.get(Lead, first.id)
    assert lead.phone == "+6281234567890" and lead.merge_count == 2
    assert [k for k, _, _ in log_of(lead.id)] == ["created", "merged", "merged"]


def test_a_duplicate_merges_fills_empty_fields_unions_lines_appends_notes_and_logs_what_came_in(desk):
    first, _ = capture(email="budi@example.com", source="website", product_lines=["website"], notes="First call")
    merged, created = capture(name="Budi S.", email="budi@example.com", phone="0812 3456 7890", company="CV Maju",
                              source="seminar", campaign="EXPO26", product_lines=["domain_hosting", "website"],
                              owner_id=desk.mk.id, notes="Met at the expo", actor_id=desk.mk2.id,
                              channel="import", now=LATER)
    assert created is False and merged.id == first.id
    assert lead_count() == 1
    db.session.expire_all()
    lead = db.session.get(Lead, first.id)
    # empty fields filled; what the lead already had stays (name, source)
    assert (lead.name, lead.source) == ("Budi Santoso", "website")
    assert (lead.phone, lead.company, lead.campaign, lead.owner_id) == ("+6281234567890", "CV Maju", "EXPO26",
                                                                       desk.mk.id)
    assert lead.product_lines == ["website", "domain_hosting"]
    assert lead.notes == "First call\n\nMet at the expo"
    assert lead.merge_count == 1 and lead.updated_at == LATER
    kind, text, data = log_of(lead.id)[-1]
    assert kind == "merged" and text == "Met at the expo"
    assert data["channel"] == "import"
    assert sorted(data["filled"]) == sorted(["company", "phone", "campaign", "owner_id", "product_lines"])
    came = data["came_in"]
    assert came["name"] == "Budi S." and came["email"] == "budi@example.com" and came["phone"] == "+6281234567890"
    assert came["source"] == "seminar" and came["product_lines"] == ["domain_hosting", "website"]
    entry = db.session.execute(select(LeadActivity).where(LeadActivity.kind == "merged")).scalar_one()
    assert entry.actor_user_id == desk.mk2.id


def test_a_capture_matching_one_lead_by_email_and_another_by_phone_goes_to_the_emails_lead(desk):
    by_phone, _ = capture(name="Phone person", phone="0812-3456-7890")
    by_email, _ = capture(name="Email person", email="sari@example.com")
    got, created = capture(name="Sari", email="Sari@example.com", phone="+62 812 3456 7890", now=LATER)
    assert created is False and got.id == by_email.id
    assert lead_count() == 2
    db.session.expire_all()
    # the phone stays with the lead that has it: the email's lead does not take it
    assert db.session.get(Lead, by_email.id).phone is None
    assert db.session.get(Lead, by_email.id).merge_count == 1
    assert db.session.get(Lead, by_phone.id).merge_count == 0
    assert "phone" not in log_of(by_email.id)[-1][2]["filled"]


@pytest.mark.parametrize("contact", [
    {"email": "not-an-address"},
    {"phone": "call me maybe"},
    {"email": "budi@example.com", "phone": "12"},
    {},
    {"email": "  ", "phone": " "},
])
def test_invalid_or_missing_contact_details_are_refused(desk, contact):
    with pytest.raises(DomainError):
        leads.capture(name="Budi", **contact)
    db.session.rollback()
    assert lead_count() == 0


@pytest.mark.parametrize("bad", [{"source": "billboard"}, {"product_lines": ["website", "spaceships"]},
                                 {"name": "   "}])
def test_unknown_source_or_product_line_and_no_name_are_refused(desk, bad):
    kw = {"name": "Budi", "email": "budi@example.com", **bad}
    with pytest.raises(DomainError):
        leads.capture(**kw)
    db.session.rollback()
    assert lead_count() == 0


def test_the_owner_must_be_an_active_marketing_agent(desk):
    for owner in (desk.cs, desk.gone):
        with pytest.raises(DomainError):
            leads.capture(name="Budi", email="budi@example.com", owner_id=owner.id)
        db.session.rollback()
    assert lead_count() == 0


# ---------------------------------------------------------------- concurrency

def _capture_in_a_thread(app, barrier, results, errors, **kw):
    with app.app_context():
        try:
            if barrier is not None:
                barrier.wait(timeout=30)
            lead, created = leads.capture(now=NOW, **kw)
            db.session.commit()
            results.append((lead.id, created))
        except Exception as exc:  # pragma: no cover - reported by the test
            errors.append(repr(exc))
        finally:
            db.session.remove()


def test_two_captures_of_one_person_at_the_same_moment_make_one_lead(app, desk):
    """Two threads, each with its own session and connection, lined up by a barrier: exactly one
    lead, created once and merged once (on PostgreSQL the unique index makes the later insert wait
    and fail, and it merges; on SQLite the write lock orders them)."""
    barrier, results, errors = threading.Barrier(2), [], []
    threads = [threading.Thread(target=_capture_in_a_thread, args=(app, barrier, results, errors),
                                kwargs=dict(name=f"Budi {n}", email=email, phone=phone, product_lines=[line]))
               for n, (email, phone, line) in enumerate([("budi@example.com", "0812-3456-7890", "website"),
                                                         ("BUDI@example.com", "+62 812 3456 7890", "ads_seo")])]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert len(results) == 2 and len({lead_id for lead_id, _ in results}) == 1
    assert sorted(created for _, created in results) == [False, True]
    db.session.expire_all()
    [lead] = db.session.execute(select(Lead)).scalars().all()
    assert lead.merge_count == 1 and sorted(lead.product_lines) == ["ads_seo", "website"]
    assert sorted(k for k, _, _ in log_of(lead.id)) == ["created", "merged"]


def test_a_capture_that_loses_the_insert_race_merges_into_the_winner(app, desk, monkeypatch):
    """Deterministic race: another session has inserted the person but not committed yet, so this
    capture finds no lead, its insert waits for the other transaction and then hits the unique
    index: it merges into the committed lead instead of failing."""
    inserted, errors, other = threading.Event(), [], {}
    lookups = []  # (thread, found) of every find_match: the real function, only counted
    real_find = leads.find_match

    def counted(email, phone):
        found = real_find(email, phone)
        lookups.append((threading.get_ident(), found is not None))
        return found

    monkeypatch.setattr(leads, "find_match", counted)

    def first():
        with app.app_context():
            try:
                lead, _ = leads.capture(name="First", email="budi@example.com", now=NOW)
                db.session.flush()
                other["id"] = lead.id
                inserted.set()
                time.sleep(1.0)  # the second capture is now waiting on our insert
                db.session.commit()
            except Exception as exc:  # pragma: no cover
                errors.append(repr(exc))
                inserted.set()
            finally:
                db.session.remove()

    t = threading.Thread(target=first)
    t.start()
    assert inserted.wait(timeout=30)
    lead, created = leads.capture(name="Second", email="budi@example.com", phone="0812-3456-7890",
                                  now=LATER)
    db.session.commit()
    t.join(timeout=60)
    assert errors == []
    assert created is False and lead.id == other["id"]
    # this capture looked twice: before its insert (nothing yet) and after the unique index refused it
    assert [found for tid, found in lookups if tid == threading.get_ident()] == [False, True]
    db.session.expire_all()
    assert lead_count() == 1
    stored = db.session.get(Lead, other["id"])
    assert (stored.name, stored.phone, stored.merge_count) == ("First", "+6281234567890", 1)
    assert [k for k, _, _ in log_of(stored.id)] == ["created", "merged"]


# ---------------------------------------------------------------- who may manage leads

def _state(lead_id):
    db.session.expire_all()
    lead = db.session.get(Lead, lead_id)
    return ({c.name: getattr(lead, c.name) for c in Lead.__table__.columns}, log_of(lead_id),
            [(t.title, t.owner_id, t.done_at) for t in db.session.execute(select(LeadTask)).scalars()],
            customer_count())


def _operations(lead_id, task_id):
    return {
        "update": lambda uid: leads.update(lead_id, uid, name="Budi Baru", email="budi@example.com",
                                           phone="0812-3456-7890", source="seminar", company="CV Baru", now=LATER),
        "change_stage": lambda uid: leads.change_stage(lead_id, uid, "contacted", now=LATER),
        "lost": lambda uid: leads.change_stage(lead_id, uid, "lost", "Too expensive", now=LATER),
        "add_activity": lambda uid: leads.add_activity(lead_id, uid, "call", "Called him", now=LATER),
        "add_task": lambda uid: leads.add_task(lead_id, uid, "Send the offer", LATER, now=NOW),
        "complete_task": lambda uid: leads.complete_task(task_id, uid, now=LATER),
        "convert": lambda uid: leads.convert(lead_id, uid, now=LATER),
    }


@pytest.fixture
def worked_lead(desk):
    lead, _ = capture(email="budi@example.com", phone="0812-3456-7890", owner_id=desk.mk.id)
    task = leads.add_task(lead.id, desk.mk.id, "Call back", LATER, now=NOW)
    db.session.commit()
    return lead.id, task.id


@pytest.mark.parametrize("who", ["cs", "tech", "bill", "gone", None])
@pytest.mark.parametrize("op", ["update", "change_stage", "lost", "add_activity", "add_task", "complete_task",
                                "convert"])
def test_other_roles_are_forbidden_and_nothing_changes(desk, worked_lead, who, op):
    lead_id, task_id = worked_lead
    before = _state(lead_id)
    uid = getattr(desk, who).id if who else None
    with pytest.raises(Forbidden):
        _operations(lead_id, task_id)[op](uid)
    db.session.commit()  # whatever the service left in the session would be written now
    assert _state(lead_id) == before


@pytest.mark.parametrize("who", ["mk", "mk2", "admin"])
@pytest.mark.parametrize("op", ["update", "change_stage", "lost", "add_activity", "add_task", "complete_task",
                                "convert"])
def test_marketing_and_admins_manage_leads(desk, worked_lead, who, op):
    lead_id, task_id = worked_lead
    before = _state(lead_id)
    user = getattr(desk, who)
    _operations(lead_id, task_id)[op](user.id)
    db.session.commit()
    after = _state(lead_id)
    assert after != before
    newest = db.session.execute(select(LeadActivity).where(LeadActivity.lead_id == lead_id)
                                .order_by(LeadActivity.id.desc()).limit(1)).scalar_one()
    assert newest.actor_user_id == user.id


def test_update_refuses_an_email_or_phone_of_another_lead(desk):
    mine, _ = capture(email="budi@example.com")
    capture(name="Sari", email="sari@example.com", phone="0813-1111-2222")
    for kw in ({"email": "SARI@example.com"}, {"email": "budi@example.com", "phone": "+62 813 1111 2222"}):
        with pytest.raises(DomainError):
            leads.update(mine.id, desk.mk.id, name="Budi", source="other", **kw)
        db.session.rollback()
    db.session.expire_all()
    assert db.session.get(Lead, mine.id).phone is None


# ---------------------------------------------------------------- stages

def test_stages_set_their_timestamps_and_lost_needs_a_reason(desk):
    lead, _ = capture(email="budi@example.com")
    t1, t2, t3 = NOW + timedelta(hours=1), NOW + timedelta(hours=2), NOW + timedelta(hours=3)
    leads.change_stage(lead.id, desk.mk.id, "contacted", now=t1)
    leads.change_stage(lead.id, desk.mk.id, "offer_sent", now=t2)
    db.session.commit()
    with pytest.raises(DomainError):
        leads.change_stage(lead.id, desk.mk.id, "lost", "   ", now=t3)
    db.session.rollback()
    with pytest.raises(DomainError):
        leads.change_stage(lead.id, desk.mk.id, "maybe", now=t3)
    db.session.rollback()
    db.session.expire_all()
    lead = db.session.get(Lead, lead.id)
    assert (lead.stage, lead.contacted_at, lead.offer_sent_at, lead.lost_at) == ("offer_sent", t1, t2, None)
    leads.change_stage(lead.id, desk.mk.id, "lost", "Chose a competitor", now=t3)
    db.session.commit()
    db.session.expire_all()
    lead = db.session.get(Lead, lead.id)
    assert (lead.stage, lead.lost_reason, lead.lost_at, lead.stage_changed_at) == ("lost", "Chose a competitor",
                                                                                 t3, t3)
    stages = [(d["from"], d["to"], text) for k, text, d in log_of(lead.id) if k == "stage"]
    assert stages == [("new", "contacted", None), ("contacted", "offer_sent", None),
                      ("offer_sent", "lost", "Chose a competitor")]
    # back to an open stage: the reason goes, the first lost time stays in history only as lost_at
    leads.change_stage(lead.id, desk.mk.id, "contacted", now=t3 + timedelta(hours=1))
    db.session.commit()
    db.session.expire_all()
    lead = db.session.get(Lead, lead.id)
    assert lead.stage == "contacted" and lead.lost_reason is None and lead.contacted_at == t1


def test_won_converts_the_lead(desk):
    lead, _ = capture(email="budi@example.com", company="CV Maju")
    leads.change_stage(lead.id, desk.mk.id, "won", now=LATER)
    db.session.commit()
    db.session.expire_all()
    lead = db.session.get(Lead, lead.id)
    assert lead.stage == "won" and lead.won_at == LATER and lead.customer_id is not None
    customer = db.session.get(Customer, lead.customer_id)
    assert customer.name == "Budi Santoso" and customer.kind == "b2b"
    assert [k for k, _, _ in log_of(lead.id)][-2:] == ["stage", "converted"]


# ---------------------------------------------------------------- conversion

def test_conversion_links_the_customer_with_the_leads_email(desk, make):
    customer = make.customer(name="Budi (customer)", email="budi@example.com")
    db.session.commit()
    n = customer_count()
    lead, _ = capture(email="BUDI@example.com", phone="0812-3456-7890")
    got = leads.convert(lead.id, desk.mk.id, now=LATER)
    db.session.commit()
    assert got.id == customer.id and customer_count() == n
    db.session.expire_all()
    assert db.session.get(Lead, lead.id).customer_id == customer.id
    assert log_of(lead.id)[-1] == ("converted", None, {"customer_id": customer.id, "linked": True})
    assert [x.id for x in leads.leads_of_customer(customer.id)] == [lead.id]


def test_conversion_by_phone_when_no_customer_has_the_email(desk, make):
    customer = make.customer(name="Sari", email="sari.lama@example.com")
    customer.phone = "+6281234567890"
    db.session.commit()
    n = customer_count()
    lead, _ = capture(email="sari.baru@example.com", phone="0812 3456 7890")
    got = leads.convert(lead.id, desk.mk.id, now=LATER)
    db.session.commit()
    assert got.id == customer.id and customer_count() == n
    # and a lead with a phone only
    other, _ = capture(name="Sari again", phone="+62 812-3456-7890", email=None)
    assert other.id == lead.id  # the same person: merged, not a second lead


def test_conversion_of_a_phone_only_lead_finds_the_customer_by_phone(desk, make):
    customer = make.customer(name="Sari", email="sari@example.com")
    customer.phone = "+6281234567890"
    db.session.commit()
    lead, _ = capture(name="Sari", phone="081234567890")
    assert leads.convert(lead.id, desk.mk.id, now=LATER).id == customer.id
    db.session.commit()


@pytest.mark.parametrize("company, kind", [("CV Maju", "b2b"), (None, "b2c")])
def test_conversion_makes_a_new_customer_otherwise_and_twice_is_the_same_customer(desk, company, kind):
    n = customer_count()
    lead, _ = capture(email="Budi@Example.com", phone="0812-3456-7890", company=company)
    first = leads.convert(lead.id, desk.mk.id, now=LATER)
    db.session.commit()
    second = leads.convert(lead.id, desk.admin.id, now=LATER + timedelta(hours=1))
    db.session.commit()
    assert first.id == second.id and customer_count() == n + 1
    db.session.expire_all()
    customer = db.session.get(Customer, first.id)
    assert (customer.name, customer.kind, customer.phone) == ("Budi Santoso", kind, "+6281234567890")
    assert [e.email for e in customer.emails] == ["budi@example.com"]
    assert [k for k, _, _ in log_of(lead.id)].count("converted") == 1
    assert log_of(lead.id)[-1][2] == {"customer_id": first.id, "linked": False}


def test_a_lead_without_email_and_no_matching_customer_cannot_be_converted(desk):
    lead, _ = capture(name="Sari", phone="0812-3456-7890")
    n = customer_count()
    with pytest.raises(DomainError):
        leads.convert(lead.id, desk.mk.id, now=LATER)
    db.session.rollback()
    with pytest.raises(DomainError):  # nor won (which converts)
        leads.change_stage(lead.id, desk.mk.id, "won", now=LATER)
    db.session.rollback()
    db.session.expire_all()
    lead = db.session.get(Lead, lead.id)
    assert lead.customer_id is None and lead.stage == "new" and customer_count() == n
    assert db.session.execute(select(func.count()).select_from(CustomerEmail)).scalar_one() == n


# ---------------------------------------------------------------- activity and tasks

def test_a_call_on_a_new_lead_moves_it_to_contacted_a_note_does_not(desk):
    lead, _ = capture(email="budi@example.com")
    leads.add_activity(lead.id, desk.mk.id, "note", "Looks promising", now=LATER)
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Lead, lead.id).stage == "new"
    with pytest.raises(DomainError):
        leads.add_activity(lead.id, desk.mk.id, "call", "   ", now=LATER)
    db.session.rollback()
    with pytest.raises(DomainError):
        leads.add_activity(lead.id, desk.mk.id, "telepathy", "Hmm", now=LATER)
    db.session.rollback()
    t = LATER + timedelta(minutes=5)
    leads.add_activity(lead.id, desk.mk.id, "call", "Called, wants an offer", now=t)
    db.session.commit()
    db.session.expire_all()
    lead = db.session.get(Lead, lead.id)
    assert (lead.stage, lead.contacted_at, lead.last_activity_at) == ("contacted", t, t)
    assert [(k, x) for k, x, _ in log_of(lead.id)][1:] == [("note", "Looks promising"),
                                                          ("call", "Called, wants an offer"), ("stage", None)]
    # a later contact does not move it again
    leads.add_activity(lead.id, desk.mk.id, "meeting", "Met at the office", now=t + timedelta(days=1))
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Lead, lead.id).contacted_at == t


def test_a_task_belongs_to_the_lead_owner_else_its_creator_and_completing_it_is_logged(desk):
    owned, _ = capture(email="budi@example.com", owner_id=desk.mk.id)
    unowned, _ = capture(name="Sari", email="sari@example.com")
    a = leads.add_task(owned.id, desk.admin.id, "Send the offer", LATER, now=NOW)
    b = leads.add_task(unowned.id, desk.mk2.id, "Call back", LATER, now=NOW)
    c = leads.add_task(unowned.id, desk.admin.id, "Visit", LATER, owner_id=desk.mk.id, now=NOW)
    db.session.commit()
    assert (a.owner_id, b.owner_id, c.owner_id) == (desk.mk.id, desk.mk2.id, desk.mk.id)
    assert (a.created_by_id, b.created_by_id) == (desk.admin.id, desk.mk2.id)
    with pytest.raises(DomainError):  # a task is owned by a marketing agent
        leads.add_task(unowned.id, desk.mk.id, "Visit", LATER, owner_id=desk.cs.id, now=NOW)
    db.session.rollback()
    for bad in ({"title": "  ", "due_at": LATER}, {"title": "Call", "due_at": None}):
        with pytest.raises(DomainError):
            leads.add_task(unowned.id, desk.mk.id, now=NOW, **bad)
        db.session.rollback()
    assert log_of(owned.id)[-1] == ("task", "Send the offer", {"task_id": a.id, "due_at": LATER.isoformat()})
    done_at = LATER + timedelta(minutes=3)
    leads.complete_task(a.id, desk.mk.id, now=done_at)
    db.session.commit()
    leads.complete_task(a.id, desk.mk2.id, now=done_at + timedelta(hours=1))  # already done: unchanged
    db.session.commit()
    db.session.expire_all()
    task = db.session.get(LeadTask, a.id)
    assert (task.done_at, task.done_by_id) == (done_at, desk.mk.id)
    assert [(k, x, d) for k, x, d in log_of(owned.id) if k == "task_done"] == [
        ("task_done", "Send the offer", {"task_id": a.id})]
    assert [t.id for t in leads.tasks_of(unowned.id)] == sorted([b.id, c.id])
    assert [t.id for t in leads.tasks_of(owned.id)] == [a.id]
