"""Cashback guarantee claims.

1. `request_claim` by an agent who sees the ticket, or `request_claim_by_customer` in the portal:
   only while the ticket's cashback guarantee can still be claimed (today in Asia/Jakarta is on or
   before the window's last day), on a ticket linked to an item, one live claim per ticket.
2. `verify` by technical support (the defect is confirmed, with a note), or `reject` with a reason.
3. `approve` by billing, not by the person who verified it: the amount cannot exceed what was
   paid for the item (the item's amount paid, else what billing enters, which is kept on the
   item). Or `reject` with a reason.
4. `mark_paid` by billing, with the payment reference and date.

Each step is audited (object_type "claim", on the ticket) and mails the customer in their language
(kinds claim_requested, claim_verified, claim_approved, claim_paid, claim_rejected); a verified
claim also tells billing (claim_for_billing).
"""
from sqlalchemy import select

from ..auth.i18n import _
from ..auth.models import User
from ..billing import money
from ..errors import Conflict, DomainError, Forbidden, NotFound
from ..extensions import db
from ..timeutil import utcnow
from ..warranty import rules
from ..warranty.models import OwnedItem
from .models import OPEN_CLAIM_STATUSES, CashbackClaim

NOTE_MAX = 2000


def _audit(claim, actor_id, old, new, note=None, actor_customer_id=None):
    from ..tickets.services import audit

    return audit(claim.ticket_id, actor_id, "claim", old, new, note=note, object_type="claim", object_id=claim.id,
                 actor_customer_id=actor_customer_id)


def _ticket_for(actor_id, ticket_id):
    from ..tickets.services import get_ticket_for

    return get_ticket_for(actor_id, ticket_id)


def _note(text, required, message):
    text = (text or "").strip()[:NOTE_MAX]
    if required and not text:
        raise DomainError(message, field="note")
    return text or None


def live_claim(ticket_id):
    """The ticket's claim that is not rejected (in progress or paid), or None."""
    return db.session.execute(select(CashbackClaim).where(CashbackClaim.ticket_id == ticket_id,
                                                          CashbackClaim.status != "rejected")).scalar_one_or_none()


def claims_of(ticket_id):
    return db.session.execute(select(CashbackClaim).where(CashbackClaim.ticket_id == ticket_id)
                              .order_by(CashbackClaim.id.desc())).scalars().all()


def claimable(ticket, now=None):
    """True while the ticket's cashback guarantee can be claimed today (Asia/Jakarta)."""
    if ticket.cashback_until is None or ticket.owned_item_id is None:
        return False
    return rules.complaint_day(now or utcnow()) <= ticket.cashback_until


def _new_claim(ticket, now, *, user_id=None, customer_id=None, note=None):
    if ticket.merged_into_id is not None:
        raise DomainError(_("This ticket was merged into another one."))
    if not claimable(ticket, now):
        raise DomainError(_("The cashback guarantee cannot be claimed for this ticket."))
    if live_claim(ticket.id) is not None:
        raise Conflict(_("This ticket already has a cashback claim."))
    claim = CashbackClaim(ticket_id=ticket.id, customer_id=ticket.customer_id, owned_item_id=ticket.owned_item_id,
                          status="requested", cashback_until=ticket.cashback_until, requested_at=now,
                          requested_by_id=user_id, requested_by_customer_id=customer_id, request_note=note,
                          updated_at=now)
    db.session.add(claim)
    db.session.flush()
    _audit(claim, user_id, None, "requested", note=note, actor_customer_id=customer_id)
    _mail_customer(claim, "claim_requested", now)
    return claim


def request_claim(ticket_id, actor_id, note=None, now=None):
    """An agent asks for the cashback on the customer's behalf."""
    now = now or utcnow()
    user, ticket = _ticket_for(actor_id, ticket_id)
    return _new_claim(ticket, now, user_id=user.id, note=_note(note, False, ""))


def request_claim_by_customer(ticket_id, customer_id, note=None, now=None):
    """The customer asks for the cashback in the portal (their own ticket only)."""
    from ..portal.services import get_ticket_by_id

    now = now or utcnow()
    ticket = get_ticket_by_id(customer_id, ticket_id)
    return _new_claim(ticket, now, customer_id=customer_id, note=_note(note, False, ""))


def get_claim(claim_id):
    claim = db.session.get(CashbackClaim, claim_id)
    if claim is None:
        raise NotFound(_("Claim not found."))
    return claim


def _role_user(actor_id, role, message):
    user = db.session.get(User, actor_id) if actor_id else None
    if user is None or not user.active or not user.has_role(role):
        raise Forbidden(message)
    return user


def _expect(claim, *statuses):
    if claim.status not in statuses:
        raise Conflict(_("This claim is no longer waiting for that step."))


def verify(claim_id, actor_id, note, now=None):
    """Technical support confirms the defect (a note is required)."""
    now = now or utcnow()
    user = _role_user(actor_id, "technical_support", _("Only technical support can verify a claim."))
    claim = get_claim(claim_id)
    _expect(claim, "requested")
    note = _note(note, True, _("Describe the defect you confirmed."))
    claim.status, claim.verified_at, claim.verified_by_id, claim.verify_note = "verified", now, user.id, note
    claim.updated_at = now
    _audit(claim, user.id, "requested", "verified", note=note)
    _mail_customer(claim, "claim_verified", now)
    _tell_billing(claim, now)
    return claim


def paid_for_item(claim):
    """What the customer paid for the claim's item (rupiah), or None when nobody has entered it."""
    item = db.session.get(OwnedItem, claim.owned_item_id)
    return item.amount_paid if item is not None else None


def approve(claim_id, actor_id, amount, item_paid=None, note=None, now=None):
    """Billing approves the cashback amount (≤ what was paid for the item). `item_paid` is needed when
    the item has no amount paid yet; it is then kept on the item."""
    now = now or utcnow()
    user = _role_user(actor_id, "billing", _("Only billing can approve a claim."))
    claim = get_claim(claim_id)
    _expect(claim, "verified")
    if claim.verified_by_id == user.id:
        raise Forbidden(_("You verified this claim, so someone else in billing must approve it."))
    try:
        money.check_amount(amount, allow_zero=False)
    except money.MoneyError:
        raise DomainError(_("Enter the amount in whole rupiah, more than zero."), field="amount") from None
    paid = paid_for_item(claim)
    entered = paid is None
    if entered:
        if item_paid is None:
            raise DomainError(_("Enter what the customer paid for the item."), field="item_paid")
        try:
            money.check_amount(item_paid, allow_zero=False)
        except money.MoneyError:
            raise DomainError(_("Enter the amount in whole rupiah, more than zero."), field="item_paid") from None
        paid = item_paid
    if amount > paid:
        raise DomainError(_("The cashback cannot be more than the %(paid)s paid for the item.",
                            paid=money.format_rupiah(paid)), field="amount")
    if entered:  # kept on the item once the approval stands (a refused one leaves the item as it was)
        db.session.get(OwnedItem, claim.owned_item_id).amount_paid = item_paid
    claim.status, claim.approved_at, claim.approved_by_id = "approved", now, user.id
    claim.amount, claim.item_paid, claim.updated_at = amount, paid, now
    _audit(claim, user.id, "verified", "approved", note=f"{money.format_rupiah(amount)}"
           + (f" · {note.strip()}" if note and note.strip() else ""))
    _mail_customer(claim, "claim_approved", now)
    return claim


def mark_paid(claim_id, actor_id, reference, paid_on, now=None):
    """Billing records that the cashback was paid out (reference and date)."""
    now = now or utcnow()
    user = _role_user(actor_id, "billing", _("Only billing can pay a claim."))
    claim = get_claim(claim_id)
    _expect(claim, "approved")
    reference = (reference or "").strip()[:120]
    if not reference:
        raise DomainError(_("Enter the payment reference."), field="reference")
    if paid_on is None:
        raise DomainError(_("Enter the payment date."), field="paid_on")
    if paid_on > rules.complaint_day(now):
        raise DomainError(_("The payment date cannot be in the future."), field="paid_on")
    claim.status, claim.paid_at, claim.paid_by_id = "paid", now, user.id
    claim.payment_reference, claim.paid_on, claim.updated_at = reference, paid_on, now
    _audit(claim, user.id, "approved", "paid", note=reference)
    _mail_customer(claim, "claim_paid", now)
    return claim


def reject(claim_id, actor_id, reason, now=None):
    """Technical support rejects a requested claim (no defect); billing rejects a verified one.
    The reason is required and goes to the customer."""
    now = now or utcnow()
    user = db.session.get(User, actor_id) if actor_id else None
    claim = get_claim(claim_id)
    if claim.status == "requested":
        _role_user(actor_id, "technical_support", _("Only technical support can reject a claim at verification."))
        stage = "verification"
    elif claim.status == "verified":
        _role_user(actor_id, "billing", _("Only billing can reject a verified claim."))
        if claim.verified_by_id == actor_id:
            raise Forbidden(_("You verified this claim, so someone else in billing must decide on it."))
        stage = "approval"
    else:
        raise Conflict(_("This claim can no longer be rejected."))
    reason = _note(reason, True, _("Give the reason."))
    old = claim.status
    claim.status, claim.rejected_at, claim.rejected_by_id = "rejected", now, user.id
    claim.rejected_stage, claim.reject_reason, claim.updated_at = stage, reason, now
    _audit(claim, user.id, old, "rejected", note=reason)
    _mail_customer(claim, "claim_rejected", now)
    return claim


def for_billing(limit=200):
    """Claims waiting for billing: verified (to approve) and approved (to pay), the oldest first."""
    return db.session.execute(select(CashbackClaim).where(CashbackClaim.status.in_(("verified", "approved")))
                              .order_by(CashbackClaim.updated_at, CashbackClaim.id).limit(limit)).scalars().all()


def waiting_verification(limit=200):
    return db.session.execute(select(CashbackClaim).where(CashbackClaim.status == "requested")
                              .order_by(CashbackClaim.requested_at, CashbackClaim.id).limit(limit)).scalars().all()


# ---------------------------------------------------------------- mail

def _mail_customer(claim, kind, now):
    from ..mail import outbound
    from ..tickets.models import Ticket

    ticket = db.session.get(Ticket, claim.ticket_id)
    if ticket is None:
        return None
    return outbound.queue_customer_mail(kind, customer_id=claim.customer_id, ticket=ticket,
                                        context={"claim_id": claim.id}, now=now)


def _tell_billing(claim, now):
    """Every active billing agent hears that a verified claim waits for them."""
    from ..mail import outbound
    from ..tickets.models import Ticket

    return outbound.notify_agents("claim_for_billing", db.session.get(Ticket, claim.ticket_id),
                                  outbound.users_with_role("billing"), context={"claim_id": claim.id}, now=now)


STATUS_OPEN = OPEN_CLAIM_STATUSES
