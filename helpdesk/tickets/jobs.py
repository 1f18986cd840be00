"""Ticket mail jobs of the first release, kept so that outbox rows queued before the upgrade still run.

New code records threaded mail directly with helpdesk.mail.outbound (one OutboundMail row and one
"mail" job per mail, sent by helpdesk.mail.jobs.send_outbound). Each function here only records
that mail now; it is sent by the job queued with it. They take ids and are safe to run twice.
"""
from ..extensions import db
from ..mail import outbound
from .models import Message, Ticket


def notify_new_ticket(ticket_id):
    """Tell the agents of the ticket's queue that a new ticket arrived."""
    return len(outbound.queue_new_ticket_notifications(ticket_id))


def send_agent_reply(message_id):
    """Send an agent's public reply to the customer (once: a reply already given a mail is skipped)."""
    msg = db.session.get(Message, message_id)
    if msg is None or msg.email_message_id:
        return 0
    return 1 if outbound.queue_agent_reply(message_id) is not None else 0


def notify_customer_reply(message_id):
    """Tell the assignee (or the queue) that the customer replied; billing too when pending billing."""
    return len(outbound.queue_customer_reply_notifications(message_id))


def notify_assignment(ticket_id, user_id):
    """Tell an agent a ticket was assigned to them (if it still is)."""
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None or ticket.assignee_id != user_id:
        return 0
    return 1 if outbound.queue_assignment_notification(ticket_id, user_id) is not None else 0
