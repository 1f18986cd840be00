"""Cashback claims through the services (helpdesk/claims/services.py), issue #6 §4 and §7:
every permitted and forbidden step per role, separation of duties, the claim window, one live claim
per ticket, the amount ceiling, the payout, and the audit and mail rows each step leaves."""
from datetime import date
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from helpdesk.auth.models import ROLES
from helpdesk.claims import services as claims
from helpdesk.claims.models import CashbackClaim
from helpdesk.errors import Conflict, DomainError, Forbidden, NotFound
from helpdesk.extensions import db
from helpdesk.jobs import OutboxJob
from helpdesk.mail.models import OutboundMail
from helpdesk.tickets import services as tickets
from helpdesk.tickets.models import AuditEvent
from helpdesk.warranty import services as warranty
from helpdesk.warranty.models import IssueCategory, OwnedItem, Product
from tests.factories import wib

CREATED = wib(2026, 11, 14, 10, 0)   # the complaint day: 14 November 2026 (Jakarta)
NOW = wib(2026, 11, 20, 10, 0)       # inside the window (the hosting's cashback runs to 2 December)
TODAY = date(2026, 11, 20)
ACTIVATED = date(2026, 11, 3)        # 30 cashback days from day 1: the last day is 2 December
LAST_DAY = date(2026, 12, 2)
PAID = 600_000                       # what the customer paid for the hosting


# ---------------------------------------------------------------- the desk

@pytest.fixture
def desk(app, make):
    q = make.queue(slug="technical-support", name="Technical Support")
    hosting = Product(code="HOST-1G", name="Hosting 1 GB", product_line="domain_hosting", price=PAID,
                      warranty_days=30, cashback_days=30)
    down = IssueCategory(code="site_down", name_id="Situs tidak bisa dibuka", name_en="Site down", is_defect=True,
                         product_line="domain_hosting")
    db.session.add_all([hosting, down])
    db.session.flush()
    w = SimpleNamespace(
        q=q, hosting=hosting, down=down,
        # the people who move a claim along when the step under test is someone else's
        cs=make.user(roles=["customer_support"], queues=[q]),
        tech=make.user(roles=["technical_support"], queues=[q]),
        bill=make.user(roles=["billing"], queues=[q]),
        bill2=make.user(roles=["billing"], queues=[q]),
    )
    w.ticket, w.item, w.customer = claim_ticket(make, w)
    db.session.commit()
    return w


def claim_ticket(make, w, *, activated=ACTIVATED, amount_paid=PAID, language="en", created=CREATED, host=None):
    """A customer, their hosting (activated on `activated`) and a site-down ticket about it opened
    at `created` (the ticket links the item by its domain; technical support sets the category)."""
    customer = make.customer(language=language)
    host = host or f"toko{customer.id}.co.id"
    item = warranty.create_item(customer_id=customer.id, product_id=w.hosting.id, purchase_date=activated,
                                activation_date=activated, identifier=host, amount_paid=amount_paid)
    ticket = tickets.create_ticket(customer_id=customer.id, subject="Situs mati", body_text=f"{host} tidak bisa dibuka",
                                   channel="email", queue_id=w.q.id, now=created)
    assert ticket.owned_item_id == item.id
    warranty.set_category(ticket.id, w.tech.id, w.down.id, now=created)
    db.session.flush()
    return ticket, item, customer


def field(exc_info):
    """The form field a DomainError names."""
    return exc_info.value.details.get("field")


def claim_events(claim_id):
    return db.session.execute(select(AuditEvent).where(AuditEvent.object_type == "claim",
                                                       AuditEvent.object_id == claim_id)
                              .order_by(AuditEvent.id)).scalars().all()


def mails(ticket_id, kind=None):
    q = select(OutboundMail).where(OutboundMail.ticket_id == ticket_id).order_by(OutboundMail.id)
    if kind:
        q = q.where(OutboundMail.kind == kind)
    return db.session.execute(q).scalars().all()


def mail_context(row):
    """The template context the mail was queued with (the outbox job's second argument)."""
    for job in db.session.execute(select(OutboxJob).where(OutboxJob.queue == "mail")).scalars():
        if job.args and job.args[0] == row.id:
            return job.args[1] if len(job.args) > 1 else {}
    return None


def claim_mail_kinds(ticket_id):
    return [m.kind for m in mails(ticket_id) if m.kind.startswith("claim_") and m.kind != "claim_for_billing"]


def advance(w, to):
    """The desk's claim brought to `to` by the desk's own people (committed)."""
    claim = claims.request_claim(w.ticket.id, w.cs.id, "Pelanggan minta cashback", now=NOW)
    if to in ("verified", "approved", "paid"):
        claims.verify(claim.id, w.tech.id, "Server mati, dikonfirmasi", now=NOW)
    if to in ("approved", "paid"):
        claims.approve(claim.id, w.bill.id, 500_000, now=NOW)
    if to == "paid":
        claims.mark_paid(claim.id, w.bill2.id, "TRF-0001", TODAY, now=NOW)
    db.session.commit()
    assert claim.status == to
    return claim


def snapshot(w, claim):
    """What a step may change: the claim's status, its audit trail, the ticket's claims and mails."""
    db.session.flush()
    if claim is not None:
        db.session.refresh(claim)
    count = db.session.execute(select(func.count()).select_from(CashbackClaim)
                               .where(CashbackClaim.ticket_id == w.ticket.id)).scalar_one()
    audits = db.session.execute(select(func.count()).select_from(AuditEvent)
                                .where(AuditEvent.object_type == "claim")).scalar_one()
    return (claim.status if claim else None, count, audits, len(mails(w.ticket.id)))


# ---------------------------------------------------------------- every step × every role

# step: (the claim's status before, the call, the status after, the roles that may take it)
STEPS = {
    "request": (None, lambda w, c, uid: claims.request_claim(w.ticket.id, uid, "Minta cashback", now=NOW),
                "requested", set(ROLES)),  # any agent who sees the ticket
    "verify": ("requested", lambda w, c, uid: claims.verify(c.id, uid, "Kerusakan dikonfirmasi", now=NOW),
               "verified", {"technical_support"}),
    "reject_at_verification": ("requested", lambda w, c, uid: claims.reject(c.id, uid, "Tidak ada kerusakan", now=NOW),
                               "rejected", {"technical_support"}),
    "approve": ("verified", lambda w, c, uid: claims.approve(c.id, uid, 400_000, now=NOW),
                "approved", {"billing"}),
    "reject_at_approval": ("verified", lambda w, c, uid: claims.reject(c.id, uid, "Bukan kerusakan kami", now=NOW),
                           "rejected", {"billing"}),
    "mark_paid": ("approved", lambda w, c, uid: claims.mark_paid(c.id, uid, "TRF-42", TODAY, now=NOW),
                  "paid", {"billing"}),
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("step", list(STEPS))
def test_each_step_by_each_role(desk, make, step, role):
    before, call, after, allowed = STEPS[step]
    w = desk
    claim = advance(w, before) if before else None
    actor = make.user(roles=[role], queues=[w.q])
    db.session.commit()
    state = snapshot(w, claim)
    if role in allowed:
        result = call(w, claim, actor.id)
        db.session.commit()
        assert result.status == after
        last = claim_events(result.id)[-1]
        assert (last.old_value, last.new_value, last.actor_user_id) == (before, after, actor.id)
    else:
        with pytest.raises(Forbidden):
            call(w, claim, actor.id)
        # a forbidden step changes nothing: no status change, no audit row, no claim, no mail
        assert snapshot(w, claim) == state
        db.session.rollback()


def test_admin_alone_is_neither_technical_support_nor_billing(desk, make):
    """Admin does not imply the other roles: an admin verifies nothing (the table above, spelled out)."""
    claim = advance(desk, "requested")
    admin = make.user(roles=["admin"])  # sees every ticket without a queue
    db.session.commit()
    with pytest.raises(Forbidden):
        claims.verify(claim.id, admin.id, "ok", now=NOW)
    both = make.user(roles=["admin", "technical_support"])
    claims.verify(claim.id, both.id, "ok", now=NOW)
    assert claim.status == "verified"


def test_an_agent_who_cannot_see_the_ticket_cannot_request(desk, make):
    elsewhere = make.user(roles=["customer_support"], queues=[make.queue()])
    db.session.commit()
    with pytest.raises(NotFound):
        claims.request_claim(desk.ticket.id, elsewhere.id, now=NOW)
    assert claims.live_claim(desk.ticket.id) is None


def test_an_inactive_billing_agent_cannot_approve(desk, make):
    claim = advance(desk, "verified")
    gone = make.user(roles=["billing"], queues=[desk.q], active=False)
    db.session.commit()
    with pytest.raises(Forbidden):
        claims.approve(claim.id, gone.id, 100_000, now=NOW)
    assert claim.status == "verified"


def test_steps_out_of_order_are_conflicts(desk):
    w = desk
    claim = advance(w, "requested")
    with pytest.raises(Conflict):
        claims.approve(claim.id, w.bill.id, 100_000, now=NOW)
    with pytest.raises(Conflict):
        claims.mark_paid(claim.id, w.bill.id, "TRF-1", TODAY, now=NOW)
    claims.verify(claim.id, w.tech.id, "Dikonfirmasi", now=NOW)
    with pytest.raises(Conflict):
        claims.verify(claim.id, w.tech.id, "Lagi", now=NOW)
    claims.approve(claim.id, w.bill.id, 100_000, now=NOW)
    with pytest.raises(Conflict):
        claims.reject(claim.id, w.bill2.id, "Terlambat", now=NOW)
    claims.mark_paid(claim.id, w.bill2.id, "TRF-1", TODAY, now=NOW)
    with pytest.raises(Conflict):
        claims.mark_paid(claim.id, w.bill2.id, "TRF-2", TODAY, now=NOW)
    with pytest.raises(Conflict):
        claims.reject(claim.id, w.bill2.id, "Terlambat", now=NOW)
    assert claim.status == "paid" and claim.payment_reference == "TRF-1"


def test_verify_and_reject_need_a_note(desk):
    w = desk
    claim = advance(w, "requested")
    for blank in (None, "", "   "):
        with pytest.raises(DomainError) as exc:
            claims.verify(claim.id, w.tech.id, blank, now=NOW)
        assert field(exc) == "note"
        with pytest.raises(DomainError):
            claims.reject(claim.id, w.tech.id, blank, now=NOW)
    assert claim.status == "requested" and len(claim_events(claim.id)) == 1


# ---------------------------------------------------------------- separation of duties

def test_the_verifier_with_billing_cannot_approve_or_reject_but_another_billing_agent_can(desk, make):
    w = desk
    both = make.user(roles=["technical_support", "billing"], queues=[w.q])
    db.session.commit()
    claim = advance(w, "requested")
    claims.verify(claim.id, both.id, "Saya cek sendiri: rusak", now=NOW)
    db.session.commit()
    state = snapshot(w, claim)
    with pytest.raises(Forbidden):
        claims.approve(claim.id, both.id, 100_000, now=NOW)
    with pytest.raises(Forbidden):
        claims.reject(claim.id, both.id, "Saya berubah pikiran", now=NOW)
    assert snapshot(w, claim) == state
    claims.approve(claim.id, w.bill.id, 100_000, now=NOW)
    assert (claim.status, claim.approved_by_id, claim.verified_by_id) == ("approved", w.bill.id, both.id)


def test_another_billing_agent_can_reject_what_a_dual_role_agent_verified(desk, make):
    w = desk
    both = make.user(roles=["technical_support", "billing"], queues=[w.q])
    db.session.commit()
    claim = advance(w, "requested")
    claims.verify(claim.id, both.id, "Rusak", now=NOW)
    claims.reject(claim.id, w.bill2.id, "Kerusakan karena plugin pelanggan", now=NOW)
    assert (claim.status, claim.rejected_stage, claim.rejected_by_id) == ("rejected", "approval", w.bill2.id)


def test_a_dual_role_agent_may_approve_what_someone_else_verified(desk, make):
    w = desk
    both = make.user(roles=["technical_support", "billing"], queues=[w.q])
    db.session.commit()
    claim = advance(w, "verified")  # verified by w.tech
    claims.approve(claim.id, both.id, 100_000, now=NOW)
    assert claim.status == "approved"


# ---------------------------------------------------------------- the window and one live claim

def test_request_on_the_last_day_of_the_window_in_jakarta(desk):
    w = desk
    assert w.ticket.cashback_until == LAST_DAY and w.ticket.complaint_date == date(2026, 11, 14)
    late = wib(2026, 12, 2, 23, 59)  # still 2 December in Jakarta
    assert claims.claimable(w.ticket, late)
    claim = claims.request_claim(w.ticket.id, w.cs.id, now=late)
    assert (claim.status, claim.cashback_until, claim.requested_at) == ("requested", LAST_DAY, late)


def test_no_request_after_the_window_even_when_utc_is_still_the_last_day(desk):
    w = desk
    after = wib(2026, 12, 3, 0, 1)  # 17:01 UTC on 2 December, but 3 December in Jakarta
    assert after.date() == LAST_DAY and not claims.claimable(w.ticket, after)
    with pytest.raises(DomainError) as exc:
        claims.request_claim(w.ticket.id, w.cs.id, now=after)
    assert type(exc.value) is DomainError
    with pytest.raises(DomainError):
        claims.request_claim_by_customer(w.ticket.id, w.customer.id, now=after)
    assert claims.claims_of(w.ticket.id) == [] and claim_events(0) == []
    assert claim_mail_kinds(w.ticket.id) == []


def test_no_request_when_the_item_was_activated_before_the_window(desk, make):
    w = desk
    # activated 1 September: the cashback window ended on 30 September, before the complaint
    ticket, item, _c = claim_ticket(make, w, activated=date(2026, 9, 1))
    db.session.commit()
    cashback = ticket.eligibility["cashback"]
    assert ticket.cashback_until is None and (cashback["eligible"], cashback["until"]) == (False, "2026-09-30")
    assert not claims.claimable(ticket, NOW)
    with pytest.raises(DomainError):
        claims.request_claim(ticket.id, w.cs.id, now=NOW)
    assert claims.live_claim(ticket.id) is None


def test_no_request_on_a_ticket_without_an_item(desk, make):
    w = desk
    ticket = make.ticket(queue=w.q, customer=w.customer, subject="Pertanyaan umum", body="Halo")
    db.session.commit()
    assert ticket.owned_item_id is None and not claims.claimable(ticket, NOW)
    with pytest.raises(DomainError):
        claims.request_claim(ticket.id, w.cs.id, now=NOW)


def test_one_live_claim_per_ticket_and_a_new_one_after_a_rejection(desk):
    w = desk
    first = claims.request_claim(w.ticket.id, w.cs.id, now=NOW)
    db.session.commit()
    with pytest.raises(Conflict):
        claims.request_claim(w.ticket.id, w.tech.id, now=NOW)
    with pytest.raises(Conflict):
        claims.request_claim_by_customer(w.ticket.id, w.customer.id, now=NOW)
    claims.reject(first.id, w.tech.id, "Situs berjalan normal", now=NOW)
    db.session.commit()
    assert claims.live_claim(w.ticket.id) is None
    second = claims.request_claim_by_customer(w.ticket.id, w.customer.id, "Masih mati", now=NOW)
    db.session.commit()
    assert claims.live_claim(w.ticket.id).id == second.id
    assert [c.id for c in claims.claims_of(w.ticket.id)] == [second.id, first.id]
    assert (first.rejected_stage, first.reject_reason) == ("verification", "Situs berjalan normal")
    # a paid claim is still the live one: no second cashback on the same ticket
    claims.verify(second.id, w.tech.id, "Rusak", now=NOW)
    claims.approve(second.id, w.bill.id, 100_000, now=NOW)
    claims.mark_paid(second.id, w.bill.id, "TRF-9", TODAY, now=NOW)
    db.session.commit()
    with pytest.raises(Conflict):
        claims.request_claim(w.ticket.id, w.cs.id, now=NOW)


def test_the_customer_requests_only_on_their_own_ticket(desk, make):
    w = desk
    stranger = make.customer()
    db.session.commit()
    with pytest.raises(NotFound):
        claims.request_claim_by_customer(w.ticket.id, stranger.id, now=NOW)
    claim = claims.request_claim_by_customer(w.ticket.id, w.customer.id, "Tolong", now=NOW)
    db.session.commit()
    (event,) = claim_events(claim.id)
    assert (event.actor_user_id, event.actor_customer_id, event.new_value) == (None, w.customer.id, "requested")
    assert (claim.requested_by_id, claim.requested_by_customer_id) == (None, w.customer.id)


# ---------------------------------------------------------------- the amount

def test_the_amount_cannot_exceed_what_was_paid_for_the_item(desk):
    w = desk
    claim = advance(w, "verified")
    for bad in (PAID + 1, 0, -5, True, 100_000.0):
        with pytest.raises(DomainError) as exc:
            claims.approve(claim.id, w.bill.id, bad, now=NOW)
        assert field(exc) == "amount"
    assert claim.status == "verified"
    claims.approve(claim.id, w.bill.id, PAID, now=NOW)  # the whole price is allowed
    assert (claim.status, claim.amount, claim.item_paid) == ("approved", PAID, PAID)
    assert claim_events(claim.id)[-1].note == "Rp 600.000"


def test_billing_enters_the_price_when_the_item_has_none_and_it_is_kept(desk, make):
    w = desk
    ticket, item, _c = claim_ticket(make, w, amount_paid=None)
    db.session.commit()
    claim = claims.request_claim(ticket.id, w.cs.id, now=NOW)
    claims.verify(claim.id, w.tech.id, "Rusak", now=NOW)
    db.session.commit()
    with pytest.raises(DomainError) as exc:
        claims.approve(claim.id, w.bill.id, 300_000, now=NOW)
    assert field(exc) == "item_paid"
    with pytest.raises(DomainError) as exc:
        claims.approve(claim.id, w.bill.id, 300_000, item_paid=0, now=NOW)
    assert field(exc) == "item_paid"
    with pytest.raises(DomainError) as exc:
        claims.approve(claim.id, w.bill.id, 300_000, item_paid=250_000, now=NOW)
    assert field(exc) == "amount"
    # a refused approval does not keep the price that was typed with it
    db.session.flush()
    assert db.session.get(OwnedItem, item.id).amount_paid is None
    claims.approve(claim.id, w.bill.id, 300_000, item_paid=450_000, now=NOW)
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(OwnedItem, item.id).amount_paid == 450_000
    assert (claim.amount, claim.item_paid) == (300_000, 450_000)


def test_an_entered_price_does_not_override_the_items_own(desk):
    w = desk
    claim = advance(w, "verified")
    with pytest.raises(DomainError):
        claims.approve(claim.id, w.bill.id, PAID + 100_000, item_paid=PAID + 100_000, now=NOW)
    claims.approve(claim.id, w.bill.id, PAID, item_paid=1, now=NOW)
    assert claim.item_paid == PAID and db.session.get(OwnedItem, w.item.id).amount_paid == PAID


# ---------------------------------------------------------------- the payout

def test_mark_paid_needs_a_reference_and_a_date_not_in_the_future(desk):
    w = desk
    claim = advance(w, "approved")
    with pytest.raises(DomainError) as exc:
        claims.mark_paid(claim.id, w.bill.id, "  ", TODAY, now=NOW)
    assert field(exc) == "reference"
    with pytest.raises(DomainError) as exc:
        claims.mark_paid(claim.id, w.bill.id, "TRF-1", None, now=NOW)
    assert field(exc) == "paid_on"
    with pytest.raises(DomainError) as exc:
        claims.mark_paid(claim.id, w.bill.id, "TRF-1", date(2026, 11, 21), now=NOW)
    assert field(exc) == "paid_on"
    assert claim.status == "approved"
    # 00:30 in Jakarta on the 21st is still the 20th in UTC: the 21st is today, not the future
    just_after_midnight = wib(2026, 11, 21, 0, 30)
    claims.mark_paid(claim.id, w.bill.id, " TRF-1 ", date(2026, 11, 21), now=just_after_midnight)
    assert (claim.status, claim.payment_reference, claim.paid_on, claim.paid_by_id) == (
        "paid", "TRF-1", date(2026, 11, 21), w.bill.id)


def test_the_verifier_with_billing_may_still_pay_out_an_approved_claim(desk, make):
    """Separation of duties is about the decision: paying out what someone else approved is allowed."""
    w = desk
    both = make.user(roles=["technical_support", "billing"], queues=[w.q])
    db.session.commit()
    claim = advance(w, "requested")
    claims.verify(claim.id, both.id, "Rusak", now=NOW)
    claims.approve(claim.id, w.bill.id, 200_000, now=NOW)
    claims.mark_paid(claim.id, both.id, "TRF-7", TODAY, now=NOW)
    assert claim.status == "paid"


# ---------------------------------------------------------------- audit and mail

def test_every_step_is_audited_with_old_and_new_status_and_the_actor(desk):
    w = desk
    claim = advance(w, "paid")
    events = claim_events(claim.id)
    assert [(e.action, e.old_value, e.new_value, e.actor_user_id) for e in events] == [
        ("claim", None, "requested", w.cs.id),
        ("claim", "requested", "verified", w.tech.id),
        ("claim", "verified", "approved", w.bill.id),
        ("claim", "approved", "paid", w.bill2.id),
    ]
    assert {e.ticket_id for e in events} == {w.ticket.id}
    assert [e.note for e in events] == ["Pelanggan minta cashback", "Server mati, dikonfirmasi", "Rp 500.000",
                                        "TRF-0001"]


def test_rejections_are_audited_with_the_reason(desk):
    w = desk
    first = claims.request_claim(w.ticket.id, w.cs.id, now=NOW)
    claims.reject(first.id, w.tech.id, "Tidak bisa direproduksi", now=NOW)
    second = claims.request_claim(w.ticket.id, w.cs.id, now=NOW)
    claims.verify(second.id, w.tech.id, "Rusak", now=NOW)
    claims.reject(second.id, w.bill.id, "Di luar ketentuan", now=NOW)
    db.session.commit()
    assert [(e.old_value, e.new_value, e.actor_user_id, e.note) for e in claim_events(first.id)][-1] == (
        "requested", "rejected", w.tech.id, "Tidak bisa direproduksi")
    assert [(e.old_value, e.new_value, e.actor_user_id, e.note) for e in claim_events(second.id)][-1] == (
        "verified", "rejected", w.bill.id, "Di luar ketentuan")
    assert (second.rejected_stage, first.rejected_stage) == ("approval", "verification")


@pytest.mark.parametrize("language", ["en", "id", None])
def test_each_step_mails_the_customer_in_their_language(desk, make, language):
    w = desk
    ticket, _item, customer = claim_ticket(make, w, language=language)
    db.session.commit()
    claim = claims.request_claim(ticket.id, w.cs.id, now=NOW)
    claims.verify(claim.id, w.tech.id, "Rusak", now=NOW)
    claims.approve(claim.id, w.bill.id, 250_000, now=NOW)
    claims.mark_paid(claim.id, w.bill.id, "TRF-3", TODAY, now=NOW)
    db.session.commit()
    rows = [m for m in mails(ticket.id) if m.kind != "claim_for_billing" and m.kind.startswith("claim_")]
    assert [m.kind for m in rows] == ["claim_requested", "claim_verified", "claim_approved", "claim_paid"]
    for row in rows:
        assert row.to_addrs == [customer.primary_email]
        assert row.locale == language  # None: the customer's language is unknown, both languages
        assert row.user_id is None and row.automatic is False
        assert f"[#{ticket.number}]" in row.subject and row.subject.strip()
        assert mail_context(row) == {"claim_id": claim.id}


def test_a_rejection_mails_the_customer(desk):
    w = desk
    claim = advance(w, "requested")
    claims.reject(claim.id, w.tech.id, "Tidak ada kerusakan", now=NOW)
    db.session.commit()
    assert claim_mail_kinds(w.ticket.id) == ["claim_requested", "claim_rejected"]
    (row,) = mails(w.ticket.id, "claim_rejected")
    assert (row.to_addrs, row.locale) == ([w.customer.primary_email], "en")


def test_verification_tells_every_active_billing_agent(desk, make):
    w = desk
    make.user(roles=["billing"], active=False)     # gone: not told
    make.user(roles=["technical_support"], queues=[w.q])  # not billing: not told
    both = make.user(roles=["technical_support", "billing"])
    db.session.commit()
    claim = advance(w, "requested")
    assert mails(w.ticket.id, "claim_for_billing") == []  # nothing for billing before verification
    claims.verify(claim.id, w.tech.id, "Rusak", now=NOW)
    db.session.commit()
    rows = mails(w.ticket.id, "claim_for_billing")
    assert sorted((r.user_id, tuple(r.to_addrs)) for r in rows) == sorted(
        (u.id, (u.email,)) for u in (w.bill, w.bill2, both))
    assert all(r.locale in ("id", "en") and mail_context(r) == {"claim_id": claim.id} for r in rows)
    # the other steps do not tell billing again
    claims.approve(claim.id, w.bill.id, 100_000, now=NOW)
    claims.mark_paid(claim.id, w.bill2.id, "TRF-5", TODAY, now=NOW)
    db.session.commit()
    assert len(mails(w.ticket.id, "claim_for_billing")) == 3


def test_billing_queue_and_verification_queue(desk, make):
    w = desk
    waiting = advance(w, "requested")
    t2, _i, _c = claim_ticket(make, w)
    db.session.commit()
    other = claims.request_claim(t2.id, w.cs.id, now=NOW)
    claims.verify(other.id, w.tech.id, "Rusak", now=NOW)
    db.session.commit()
    assert [c.id for c in claims.waiting_verification()] == [waiting.id]
    assert [c.id for c in claims.for_billing()] == [other.id]
    claims.approve(other.id, w.bill.id, 10_000, now=NOW)
    db.session.commit()
    assert [c.id for c in claims.for_billing()] == [other.id]  # approved: still billing's, to pay
    claims.mark_paid(other.id, w.bill.id, "TRF-8", TODAY, now=NOW)
    db.session.commit()
    assert claims.for_billing() == []


def test_claim_mail_goes_to_the_reply_to_the_customer_gave(desk):
    w = desk
    w.ticket.reply_to = "finance@tokobatik.example"
    db.session.commit()
    claim = advance(w, "requested")
    claims.reject(claim.id, w.tech.id, "Tidak ada kerusakan", now=NOW)
    db.session.commit()
    assert [m.to_addrs for m in mails(w.ticket.id) if m.kind.startswith("claim_")] == [
        ["finance@tokobatik.example"], ["finance@tokobatik.example"]]


def test_an_anonymised_customer_gets_no_claim_mail(desk):
    w = desk
    w.customer.anonymised_at = NOW
    db.session.commit()
    claim = advance(w, "verified")
    assert claim_mail_kinds(w.ticket.id) == []
    rows = mails(w.ticket.id, "claim_for_billing")  # billing is still told
    assert sorted(r.user_id for r in rows) == sorted([w.bill.id, w.bill2.id])
    assert all(mail_context(r) == {"claim_id": claim.id} for r in rows)
