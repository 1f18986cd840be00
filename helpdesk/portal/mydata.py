""""My data" (UU PDP, Law 27/2022): the customer's export archive and deletion requests.

Services take ids, raise domain errors and only flush: the caller commits. The export is built
purely from the customer's id: their profile, their own tickets with the public thread only (never
internal notes, no audit trail) and the files of those public messages.
Approving a deletion anonymises the customer and keeps the tickets, their messages, statuses and
the audit trail (the message texts are kept as written).
"""
import io
import json
import zipfile

from sqlalchemy import select

from ..auth.i18n import _
from ..customers.models import Customer, CustomerEmail, DataRequest, Organisation
from ..errors import DomainError, NotFound
from ..extensions import db
from ..tickets import search, storage
from ..tickets.models import Attachment, Ticket
from ..tickets.services import audit
from ..timeutil import utcnow
from .services import _customer_or_404, public_thread


def _iso(value):
    return value.isoformat() if value is not None else None


def _profile(customer):
    org = db.session.get(Organisation, customer.organisation_id) if customer.organisation_id else None
    return {
        "id": customer.id, "name": customer.name, "phone": customer.phone, "kind": customer.kind,
        "language": customer.language, "support_tier": customer.support_tier, "npwp": customer.npwp,
        "organisation": org.name if org is not None else None, "created_at": _iso(customer.created_at),
        "last_login_at": _iso(customer.last_login_at), "has_password": bool(customer.password_hash),
        "emails": [{"email": e.email, "primary": e.is_primary, "verified_at": _iso(e.verified_at),
                    "added_at": _iso(e.created_at)} for e in customer.emails],
    }


def _safe_name(name, taken):
    """A file name without folders, unique inside its ticket's folder."""
    base = (name or "file").replace("\\", "/").rsplit("/", 1)[-1].strip().lstrip(".") or "file"
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        stem, dot, ext = base.rpartition(".")
        candidate = f"{stem}-{n}.{ext}" if dot and stem else f"{base}-{n}"
    taken.add(candidate)
    return candidate


def build_export(customer_id):
    """The customer's data as ZIP bytes: profile.json, tickets.json, attachments/<number>/<file>."""
    customer = _customer_or_404(customer_id)
    own = db.session.execute(select(Ticket).where(Ticket.customer_id == customer.id)
                             .order_by(Ticket.number)).scalars().all()
    out = io.BytesIO()
    tickets_doc = []
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for ticket in own:
            messages = public_thread(ticket.id)
            files = db.session.execute(
                select(Attachment).where(Attachment.message_id.in_([m.id for m in messages]))
                .order_by(Attachment.id)).scalars().all() if messages else []
            by_message, taken = {}, set()
            for att in files:
                path = storage.path_for(att.sha256)
                name = _safe_name(att.filename, taken)
                if path.exists():
                    archive.writestr(f"attachments/{ticket.number}/{name}", path.read_bytes())
                by_message.setdefault(att.message_id, []).append(
                    {"filename": att.filename, "path": f"attachments/{ticket.number}/{name}",
                     "size": att.size, "content_type": att.content_type})
            tickets_doc.append({
                "number": ticket.number, "subject": ticket.subject, "status": ticket.status,
                "channel": ticket.channel, "created_at": _iso(ticket.created_at),
                "resolved_at": _iso(ticket.resolved_at), "closed_at": _iso(ticket.closed_at),
                "messages": [{"from": "you" if m.author_customer_id == customer.id else "support",
                              "channel": m.channel, "created_at": _iso(m.created_at), "text": m.body_text,
                              "attachments": by_message.get(m.id, [])} for m in messages],
            })
        archive.writestr("profile.json", json.dumps(_profile(customer), ensure_ascii=False, indent=2))
        archive.writestr("tickets.json", json.dumps(tickets_doc, ensure_ascii=False, indent=2))
    return out.getvalue()


# ---------------------------------------------------------------- deletion requests

def pending_deletion(customer_id):
    """The customer's pending deletion request, or None."""
    return db.session.execute(select(DataRequest).where(
        DataRequest.customer_id == customer_id, DataRequest.kind == "deletion",
        DataRequest.status == "pending")).scalars().first()


def request_deletion(customer_id, now=None):
    """The customer asks for deletion: one pending request (asking again returns it)."""
    customer = _customer_or_404(customer_id)
    existing = pending_deletion(customer.id)
    if existing is not None:
        return existing
    req = DataRequest(customer_id=customer.id, kind="deletion", status="pending", requested_at=now or utcnow())
    db.session.add(req)
    db.session.flush()
    audit(None, None, "data_request", None, "deletion requested", object_type="customer", object_id=customer.id,
          actor_customer_id=customer.id)
    return req


def pending_requests():
    """Pending requests for the admin page, oldest first."""
    return db.session.execute(select(DataRequest).where(DataRequest.status == "pending")
                              .order_by(DataRequest.requested_at, DataRequest.id)).scalars().all()


def _pending_or_error(request_id):
    req = db.session.get(DataRequest, request_id)
    if req is None:
        raise NotFound(_("Request not found."))
    if req.status != "pending":
        raise DomainError(_("This request was already decided."))
    return req


def anonymise(customer_id, actor_id, now=None):
    """Remove the customer's personal data; tickets, messages, statuses and audit stay."""
    customer = db.session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(_("Customer not found."))
    customer.name = f"Deleted customer #{customer.id}"
    customer.phone = customer.npwp = customer.password_hash = customer.login_nonce = None
    customer.anonymised_at = now or utcnow()
    for n, email in enumerate(db.session.execute(select(CustomerEmail).where(
            CustomerEmail.customer_id == customer.id).order_by(CustomerEmail.id)).scalars(), start=1):
        email.email = f"deleted-{customer.id}-{n}@invalid"
        email.verified_at = None
    db.session.flush()
    db.session.expire(customer, ["emails"])
    for tid in db.session.execute(select(Ticket.id).where(Ticket.customer_id == customer.id)).scalars().all():
        search.reindex(db.session, tid)
    audit(None, actor_id, "anonymise", None, "anonymised", object_type="customer", object_id=customer.id)
    return customer


def decide(request_id, actor_id, approve, note=None, now=None):
    """An admin approves (the customer is anonymised) or rejects a pending deletion request."""
    req = _pending_or_error(request_id)
    now = now or utcnow()
    req.status = "approved" if approve else "rejected"
    req.decided_at = now
    req.decided_by_user_id = actor_id
    req.note = (note or "").strip()[:500] or None
    audit(None, actor_id, "data_request", "pending", req.status, note=req.note, object_type="customer",
          object_id=req.customer_id)
    if approve:
        anonymise(req.customer_id, actor_id, now)
    return req
