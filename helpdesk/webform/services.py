"""Web form rules: which queue a topic lands in, matching the customer, opening the ticket.

The topic is the customer's words; TOPIC_QUEUES maps it to a queue slug. "Domain or hosting" goes
to Technical Support: most such requests are DNS, mailbox or server problems; a renewal question
is moved to Billing by the agent. A missing queue falls back to Customer Support, then to the
first queue, so a fresh install without every queue still takes tickets.
"""
from sqlalchemy import select

from ..auth.i18n import _
from ..customers import services as customers
from ..errors import DomainError
from ..extensions import db
from ..leads import services as leads
from ..mail import outbound
from ..tickets import services as tickets
from ..tickets.models import Queue

TOPIC_QUEUES = {
    "website": "technical-support",
    "domain_hosting": "technical-support",
    "billing": "billing",
    "buying": "marketing",
    "other": "customer-support",
}
TOPICS = tuple(TOPIC_QUEUES)
FALLBACK_QUEUE = "customer-support"
LEAD_TOPICS = ("buying",)  # the "buying / request an offer" topic also captures a lead


def queue_for(topic):
    """The queue a topic lands in (with the fallbacks above)."""
    if topic not in TOPIC_QUEUES:
        raise DomainError(_("Please choose what your question is about."), field="topic")
    for slug in (TOPIC_QUEUES[topic], FALLBACK_QUEUE):
        queue = db.session.execute(select(Queue).where(Queue.slug == slug)).scalar_one_or_none()
        if queue is not None:
            return queue
    queue = db.session.execute(select(Queue).order_by(Queue.id).limit(1)).scalar_one_or_none()
    if queue is None:
        raise DomainError(_("The form cannot take requests right now. Please email us instead."))
    return queue


def compose_body(message, website=None, phone=None):
    """The customer's message, with the website and phone they gave as lines for the agent."""
    extra = [f"Website: {website.strip()}" if (website or "").strip() else None,
             f"Phone: {phone}" if phone else None]
    extra = [line for line in extra if line]
    body = (message or "").strip()
    return body + ("\n\n---\n" + "\n".join(extra) if extra else "")


def submit(*, name, email, topic, subject, message, phone=None, website=None, files=None, language=None):
    """Open a web ticket for the customer with this email (matched, or created). Only flushes.

    A known customer's record is never changed from the public form (a stranger may type anyone's
    address): the phone typed is kept in the message only. Returns the ticket.
    """
    phone = customers.clean_phone(phone)
    queue = queue_for(topic)
    customer, created = customers.find_or_create(email=email, name=(name or "").strip() or None,
                                                 language=language)
    if created and phone:
        customer.phone = phone
    ticket = tickets.create_ticket(customer_id=customer.id, subject=subject, channel="web", queue_id=queue.id,
                                   body_text=compose_body(message, website, phone), files=files, actor_id=None)
    outbound.queue_acknowledgement(ticket.id, customers.clean_email(email))
    if topic in LEAD_TOPICS:
        _capture_lead(ticket, name=name, email=email, phone=phone, subject=subject, message=message)
    return ticket


def _capture_lead(ticket, *, name, email, phone, subject, message):
    """A buying/offer request is also a lead for marketing (created, or merged into the person's
    lead), with the ticket's number, subject and body as its notes."""
    notes = f"#{ticket.number} {(subject or '').strip()}\n\n{(message or '').strip()}".strip()
    return leads.capture(name=name, email=email, phone=phone, source="website", notes=notes,
                         channel="support_form")
