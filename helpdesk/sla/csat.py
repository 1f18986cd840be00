"""What the customer sees and what the customer says.

- The expected first answer: the ticket's first_response_due (set by the SLA policy) in the
  customer's words and time zone ("Senin, 7 Desember 2026, 13.00 WIB"), for the acknowledgement
  mail and the web form's confirmation page. Customers have no time zone of their own: the policy
  calendar's zone is used. No policy (or first response already met): no sentence.
- CSAT, "How did we do?": when a ticket is resolved (tickets.services._set_status calls
  on_resolved) its customer gets one question by mail, with two signed links (good / bad). The
  link's GET only shows the question (mail scanners prefetch links); the POST records the
  answer. The portal shows the same question on the customer's resolved ticket.
- One answer per ticket and resolution cycle (the n-th time the ticket was resolved); a later
  answer replaces the earlier one. A bad answer tells the queue lead (the bell and a mail), once
  per cycle: on the change to bad, and not again if a notification was already given for it.

Services take ids and `now`; they never touch the request.
"""
from flask import current_app
from flask_babel import force_locale, gettext
from sqlalchemy import func, select

from ..errors import DomainError, NotFound
from ..extensions import db
from ..timeutil import utcnow
from . import calendar as bcal
from .models import BusinessCalendar, CsatResponse, Notification, SlaPolicy

RATINGS = ("good", "bad")
COMMENT_MAX = 2000
LINK_SALT = "helpdesk.csat.answer"
DEFAULT_LINK_MAX_AGE = 30 * 24 * 3600  # CSAT_LINK_MAX_AGE (seconds)
LANGS = ("id", "en")


# ---------------------------------------------------------------- the expected first answer

def policy_tz(ticket):
    """The time zone of the ticket's policy calendar, else Asia/Jakarta."""
    tz = None
    if ticket.sla_policy_id:
        tz = db.session.execute(select(BusinessCalendar.tz).join(SlaPolicy, SlaPolicy.calendar_id == BusinessCalendar.id)
                                .where(SlaPolicy.id == ticket.sla_policy_id)).scalar_one_or_none()
    return tz or "Asia/Jakarta"


def expected_first_answer(ticket, locale="id"):
    """"Senin, 7 Desember 2026, 13.00 WIB": when the customer can expect our first answer; None
    when the ticket has no first-response deadline (no policy, or already answered)."""
    if ticket is None or ticket.first_response_due is None:
        return None
    return bcal.format_local(ticket.first_response_due, policy_tz(ticket), locale if locale in LANGS else "id")


def expected_first_answer_by_lang(ticket):
    """{lang: text} for every language of the mails ({} when there is no deadline)."""
    if ticket is None or ticket.first_response_due is None:
        return {}
    tz = policy_tz(ticket)
    return {lang: bcal.format_local(ticket.first_response_due, tz, lang) for lang in LANGS}


# ---------------------------------------------------------------- signed answer links

def _serializer():
    from ..webform.tokens import _serializer as serializer

    return serializer(LINK_SALT)


def make_token(customer_id, ticket_id, cycle, rating=None):
    """A signed answer link's token: one ticket, one customer, one resolution cycle (and the
    preselected rating)."""
    data = {"c": customer_id, "t": ticket_id, "y": cycle}
    if rating in RATINGS:
        data["r"] = rating
    return _serializer().dumps(data)


def load_token(token, max_age=None):
    """(customer_id, ticket_id, cycle, rating or None) of a genuine, fresh token; else
    webform.tokens.InvalidToken (.expired tells an expired one)."""
    from ..webform.tokens import InvalidToken, _load

    if max_age is None:
        max_age = current_app.config.get("CSAT_LINK_MAX_AGE") or DEFAULT_LINK_MAX_AGE
    data = _load(token, LINK_SALT, max_age)
    if not isinstance(data, dict) or not all(isinstance(data.get(k), int) and not isinstance(data.get(k), bool)
                                             for k in ("c", "t", "y")):
        raise InvalidToken()
    rating = data.get("r")
    return data["c"], data["t"], data["y"], rating if rating in RATINGS else None


def answer_url(customer_id, ticket_id, cycle, rating=None):
    """The absolute answer link for mails (BASE_URL + /portal/csat/<token>)."""
    return current_app.config["BASE_URL"].rstrip("/") + "/portal/csat/" + make_token(customer_id, ticket_id, cycle,
                                                                                    rating)


def answer_links(customer_id, ticket_id, cycle):
    return {r: answer_url(customer_id, ticket_id, cycle, r) for r in RATINGS}


# ---------------------------------------------------------------- cycles and answers

def resolution_cycle(ticket_id):
    """How many times the ticket was resolved (the audit trail): 1 after the first resolution, 2
    after a reopen and a second one; 0 when never resolved."""
    from ..tickets.models import AuditEvent

    return db.session.execute(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.ticket_id == ticket_id, AuditEvent.action == "status",
        AuditEvent.new_value == "resolved")).scalar_one()


def answer_for(ticket_id, cycle):
    return db.session.execute(select(CsatResponse).where(CsatResponse.ticket_id == ticket_id,
                                                         CsatResponse.cycle == cycle)).scalar_one_or_none()


def answers(ticket_id):
    """Every answer of a ticket, newest cycle first (the agent's ticket page)."""
    return db.session.execute(select(CsatResponse).where(CsatResponse.ticket_id == ticket_id)
                              .order_by(CsatResponse.cycle.desc())).scalars().all()


def on_resolved(ticket, now=None):
    """The ticket was just resolved (its audit event added): ask its customer "How did we do?" by
    mail, through the outbox. Returns the OutboundMail row, or None (no customer address, an
    anonymised customer, the budget or a bouncing address)."""
    from ..customers.models import Customer
    from ..mail import outbound

    customer = db.session.get(Customer, ticket.customer_id) if ticket.customer_id else None
    if customer is None or customer.anonymised_at is not None:
        return None
    to = outbound.customer_address(ticket, customer)
    if not to:
        return None
    cycle = max(resolution_cycle(ticket.id), 1)
    locale = outbound.mail_locale(customer.language)
    subject = outbound.render_subject("csat", locale, ticket=ticket,
                                      subject=outbound.bare_subject(ticket.subject, ticket.number))
    return outbound.queue_mail("csat", ticket=ticket, to=[to], subject=subject, locale=locale, automatic=True,
                               context={"cycle": cycle}, now=now)


def record(ticket_id, customer_id, cycle, rating, comment=None, now=None):
    """The customer's answer for one resolution cycle of their ticket: inserted, or replacing the
    earlier one. A change to bad tells the queue lead. Returns the CsatResponse."""
    from sqlalchemy.exc import IntegrityError

    from ..tickets.models import Ticket

    now = now or utcnow()
    if rating not in RATINGS:
        raise DomainError(_t("Please choose good or bad."), field="rating")
    comment = (comment or "").strip()[:COMMENT_MAX] or None
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None or ticket.customer_id != customer_id or not isinstance(cycle, int) or cycle < 1 \
            or cycle > resolution_cycle(ticket.id):
        raise NotFound(_t("Ticket not found."))
    mine = select(CsatResponse).where(CsatResponse.ticket_id == ticket.id, CsatResponse.cycle == cycle)
    row = db.session.execute(mine.with_for_update()).scalar_one_or_none()
    old = None
    if row is None:
        row = CsatResponse(ticket_id=ticket.id, cycle=cycle, customer_id=customer_id, rating=rating,
                           comment=comment, queue_id=ticket.queue_id, agent_id=ticket.assignee_id,
                           created_at=now, updated_at=now)
        try:
            with db.session.begin_nested():
                db.session.add(row)
        except IntegrityError:  # a concurrent first answer: this one replaces it
            row = db.session.execute(mine.with_for_update()).scalar_one()
            old = row.rating
    else:
        old = row.rating
    if old is not None:
        row.rating, row.comment, row.updated_at = rating, comment, now
        row.queue_id, row.agent_id = ticket.queue_id, ticket.assignee_id
    db.session.flush()
    if rating == "bad" and old != "bad":
        _tell_lead(ticket, row, now)
    return row


def _t(message, **values):
    from ..auth.i18n import _

    return _(message, **values)


def _tell_lead(ticket, row, now):
    """The bell and a mail for the queue's lead, unless this cycle's bad answer was already told."""
    from ..auth.models import User
    from ..mail import outbound
    from . import notifications

    queue = ticket.queue
    lead = db.session.get(User, queue.lead_id) if queue is not None and queue.lead_id else None
    if lead is None or not lead.active:
        return
    told = db.session.execute(select(Notification.id).where(
        Notification.ticket_id == ticket.id, Notification.kind == "csat_bad", Notification.user_id == lead.id,
        Notification.created_at >= row.created_at).limit(1)).first()
    if told is not None:
        return
    locale = outbound.agent_locale(lead)
    with force_locale(locale):
        body = gettext("Bad rating on #%(number)s: %(comment)s", number=ticket.number,
                       comment=row.comment or gettext("(no comment)"))
    notifications.notify([lead.id], ticket.id, "csat_bad", body, now=now)
    subject = outbound.render_subject("csat_bad", locale, ticket=ticket,
                                      subject=outbound.bare_subject(ticket.subject, ticket.number))
    outbound.queue_mail("csat_bad", ticket=ticket, to=[lead.email], subject=subject, locale=locale, automatic=True,
                        internal=True, user_id=lead.id, context={"cycle": row.cycle, "comment": row.comment or ""},
                        now=now)


# ---------------------------------------------------------------- what the pages show

def portal_question(ticket, customer_id):
    """For the customer's own resolved (or closed) ticket: (cycle, token, answer or None); else None."""
    if ticket is None or customer_id is None or ticket.customer_id != customer_id \
            or ticket.status not in ("resolved", "closed"):
        return None
    cycle = resolution_cycle(ticket.id)
    if cycle < 1:
        return None
    return cycle, make_token(customer_id, ticket.id, cycle), answer_for(ticket.id, cycle)
