"""JSON shapes of the API's objects (described in openapi.py: keep the two in step)."""
from flask import url_for
from sqlalchemy import select

from ..extensions import db
from ..tickets import states
from ..tickets.models import Message, Ticket


def iso(dt):
    """A naive UTC datetime as ISO 8601 with a Z, or None."""
    return None if dt is None else dt.isoformat(timespec="seconds") + "Z"


def _user(user):
    return None if user is None else {"id": user.id, "name": user.name, "email": user.email}


def ticket_summary(ticket):
    """A ticket as it appears in a list (no messages)."""
    return {
        "number": ticket.number,
        "subject": ticket.subject,
        "status": ticket.status,
        "priority": ticket.priority,
        "channel": ticket.channel,
        "queue": {"id": ticket.queue.id, "slug": ticket.queue.slug, "name": ticket.queue.name},
        "assignee": _user(ticket.assignee),
        "customer": {"id": ticket.customer.id, "name": ticket.customer.name,
                     "email": ticket.customer.primary_email},
        "tags": ticket.tag_names,
        "message_count": ticket.message_count,
        "last_message_preview": ticket.last_message_preview,
        "customer_replied": ticket.customer_replied,
        "created_at": iso(ticket.created_at),
        "last_activity_at": iso(ticket.last_activity_at),
        "first_response_at": iso(ticket.first_response_at),
        "last_customer_message_at": iso(ticket.last_customer_message_at),
        "last_agent_message_at": iso(ticket.last_agent_message_at),
        "resolved_at": iso(ticket.resolved_at),
        "closed_at": iso(ticket.closed_at),
        # the latest eligibility decision (warranty.rules.Decision.as_dict()); None: never evaluated
        "eligibility": ticket.eligibility,
        "url": url_for("api.get_ticket", number=ticket.number, _external=True),
    }


def attachment_json(att):
    """Metadata of an attachment, with the API URL that downloads it."""
    return {"id": att.id, "filename": att.filename, "size": att.size, "content_type": att.content_type,
            "url": url_for("api.download_attachment", attachment_id=att.id, _external=True)}


def message_json(msg):
    """A public reply or an internal note, with its author and attachments."""
    if msg.author_user_id is not None:
        author = {"type": "agent", "id": msg.author_user.id, "name": msg.author_user.name}
    elif msg.author_customer_id is not None:
        author = {"type": "customer", "id": msg.author_customer.id, "name": msg.author_customer.name}
    else:
        author = None
    return {"id": msg.id, "kind": msg.kind, "author": author, "channel": msg.channel,
            "body_text": msg.body_text, "body_html": msg.body_html, "created_at": iso(msg.created_at),
            "attachments": [attachment_json(a) for a in msg.attachments]}


def ticket_detail(ticket):
    """A ticket with its whole thread (replies and notes) and the statuses it may move to."""
    messages = db.session.execute(select(Message).where(Message.ticket_id == ticket.id).order_by(Message.id)
                                  ).scalars().all()
    linked = db.session.get(Ticket, ticket.linked_ticket_id) if ticket.linked_ticket_id else None
    return {**ticket_summary(ticket),
            "linked_ticket": linked.number if linked else None,
            "allowed_statuses": states.allowed_targets(ticket.status),
            "messages": [message_json(m) for m in messages]}


def lead_json(lead):
    """A lead (prospect) as the API shows it (schema Lead in openapi.py)."""
    return {
        "id": lead.id, "name": lead.name, "company": lead.company, "email": lead.email, "phone": lead.phone,
        "source": lead.source, "campaign": lead.campaign, "product_lines": list(lead.product_lines or []),
        "stage": lead.stage, "lost_reason": lead.lost_reason, "owner": _user(lead.owner),
        "customer_id": lead.customer_id, "notes": lead.notes, "merge_count": lead.merge_count or 0,
        "created_at": iso(lead.created_at), "updated_at": iso(lead.updated_at),
        "stage_changed_at": iso(lead.stage_changed_at), "last_activity_at": iso(lead.last_activity_at),
        "url": url_for("api.get_lead", lead_id=lead.id, _external=True),
    }


def lead_activity_json(entry):
    """One entry of a lead's log."""
    return {"id": entry.id, "kind": entry.kind, "text": entry.text, "data": entry.data,
            "actor": _user(entry.actor), "created_at": iso(entry.created_at)}


def _day(d):
    return None if d is None else d.isoformat()


def invoice_json(invoice, customer=None):
    """An invoice as it appears in a list (schema Invoice in openapi.py): no lines or payments."""
    return {
        "id": invoice.id, "number": invoice.number, "status": invoice.status,
        "source": {"type": invoice.source_type, "id": invoice.source_id} if invoice.source_type else None,
        "customer": None if customer is None else {"id": customer.id, "name": customer.name,
                                                   "email": customer.primary_email},
        "bill_to": {"name": invoice.bill_to_name, "company": invoice.bill_to_company, "npwp": invoice.npwp},
        "locale": invoice.locale,
        "issued_on": _day(invoice.issued_on), "due_on": _day(invoice.due_on),
        "subtotal": invoice.subtotal, "discount": invoice.discount, "tax_rate_bp": invoice.tax_rate_bp,
        "tax": invoice.tax, "total": invoice.total, "amount_paid": invoice.amount_paid,
        "balance": 0 if invoice.status == "void" else max(0, invoice.total - invoice.amount_paid),
        "transfer_code": invoice.transfer_code, "transfer_amount": invoice.transfer_amount,
        "created_at": iso(invoice.created_at), "paid_at": iso(invoice.paid_at), "voided_at": iso(invoice.voided_at),
        "url": url_for("api.get_invoice", invoice_number=invoice.number, _external=True),
    }


def invoice_line_json(line):
    return {"position": line.position, "kind": line.kind, "description": line.description,
            "product_id": line.product_id, "quantity": line.quantity, "unit_price": line.unit_price,
            "discount": line.discount, "amount": line.amount, "covered_reason": line.covered_reason}


def payment_json(payment):
    return {"id": payment.id, "amount": payment.amount, "method": payment.method, "reference": payment.reference,
            "paid_on": _day(payment.paid_on), "status": payment.status, "source": payment.source,
            "recorded_at": iso(payment.recorded_at), "confirmed_at": iso(payment.confirmed_at)}


def invoice_detail(invoice, customer=None):
    """An invoice with its lines and payments (schema InvoiceDetail)."""
    return {**invoice_json(invoice, customer), "void_reason": invoice.void_reason,
            "lines": [invoice_line_json(ln) for ln in invoice.lines],
            "payments": [payment_json(p) for p in invoice.payments]}
