"""Ticket jobs (run by RQ through the outbox): they take ids and are safe to run twice.

These are simple Flask-Mail notifications; the email issue replaces them with fully threaded mail.
"""
from flask import current_app
from flask_babel import force_locale, gettext
from flask_mail import Message as MailMessage
from sqlalchemy import select

from ..auth.models import User, UserRole
from ..extensions import db, mail
from .models import Message, QueueMember, Ticket


def _send(recipients, subject, body):
    recipients = [r for r in recipients if r]
    if not recipients:
        return 0
    clean_subject = " ".join((subject or "").split())  # no CR/LF in headers
    mail.send(MailMessage(subject=clean_subject, recipients=recipients, body=body,
                          sender=current_app.config["MAIL_DEFAULT_SENDER"]))
    return len(recipients)


def _ticket_url(ticket):
    return f"{current_app.config['BASE_URL'].rstrip('/')}/tickets/{ticket.number}"


def notify_new_ticket(ticket_id):
    """Tell the agents of the ticket's queue that a new ticket arrived."""
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None:
        return 0
    emails = db.session.execute(
        select(User.email).join(QueueMember, QueueMember.user_id == User.id)
        .where(QueueMember.queue_id == ticket.queue_id, User.active.is_(True))
    ).scalars().all()
    return _send(emails, f"[#{ticket.number}] New ticket: {ticket.subject}",
                 f"A new ticket arrived in {ticket.queue.name}.\n\n{ticket.last_message_preview or ''}\n\n"
                 f"{_ticket_url(ticket)}\n")


def send_agent_reply(message_id):
    """Send an agent's public reply to the customer."""
    msg = db.session.get(Message, message_id)
    if msg is None or msg.kind != "reply":
        return 0
    ticket = db.session.get(Ticket, msg.ticket_id)
    from ..portal.tokens import ticket_link_url

    link = ticket_link_url(ticket.customer_id, ticket.id)
    locale = ticket.customer.language or current_app.config["BABEL_DEFAULT_LOCALE"]
    with force_locale(locale):
        footer = gettext("See this request and answer online (no password needed):")
    return _send([ticket.customer.primary_email], f"[#{ticket.number}] {ticket.subject}",
                 f"{msg.body_text}\n\n-- \n{footer}\n{link}\n")


def notify_customer_reply(message_id):
    """Tell the assignee (or the queue, when unassigned) that the customer replied; on a ticket
    waiting for billing, the billing agents too."""
    msg = db.session.get(Message, message_id)
    if msg is None:
        return 0
    ticket = db.session.get(Ticket, msg.ticket_id)
    if ticket.assignee_id:
        emails = [ticket.assignee.email]
    else:
        emails = db.session.execute(
            select(User.email).join(QueueMember, QueueMember.user_id == User.id)
            .where(QueueMember.queue_id == ticket.queue_id, User.active.is_(True))
        ).scalars().all()
    if ticket.status == "pending_billing":
        emails = sorted(set(emails) | set(db.session.execute(
            select(User.email).join(UserRole, UserRole.user_id == User.id)
            .where(UserRole.role == "billing", User.active.is_(True))
        ).scalars()))
    return _send(emails, f"[#{ticket.number}] Customer replied: {ticket.subject}",
                 f"{msg.body_text[:2000]}\n\n{_ticket_url(ticket)}\n")


def notify_assignment(ticket_id, user_id):
    """Tell an agent a ticket was assigned to them."""
    ticket = db.session.get(Ticket, ticket_id)
    user = db.session.get(User, user_id)
    if ticket is None or user is None or ticket.assignee_id != user_id:
        return 0
    return _send([user.email], f"[#{ticket.number}] Assigned to you: {ticket.subject}", _ticket_url(ticket))
