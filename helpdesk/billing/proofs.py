"""The customer's proof of transfer (portal): a pending payment with the uploaded file, for billing to
confirm (services.confirm_payment) or reject.

- `submit_proof(customer_id, invoice_id, amount=, paid_on=, reference=, filename=, data=)`: the
  customer's own open invoice only (another's: NotFound); an image (PNG, JPEG, WebP, GIF) or a PDF,
  recognised by its first bytes (not by the name or the browser's type), up to 5 MB; stored once
  by SHA-256 in the attachment store (helpdesk/tickets/storage.py; Payment.proof_path is the hash).
  Billing users get a bell notification. With a ClamAV daemon configured, a file with a virus is
  refused before it is stored (`_scan`).
"""
import logging
import os

from sqlalchemy import func, select

from ..auth.i18n import _
from ..errors import DomainError, NotFound
from ..extensions import db
from ..tickets import storage
from ..timeutil import utcnow
from ..warranty import rules
from . import money, services
from .models import Payment

log = logging.getLogger(__name__)
MAX_PROOF_BYTES = 5 * 1024 * 1024
MAX_PENDING = 5  # pending proofs of one invoice
ALLOWED = {".pdf": "application/pdf", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
           ".webp": "image/webp", ".gif": "image/gif"}


def sniff(data):
    """The content type of a proof from its first bytes, or None."""
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    return None


def _name(filename, ctype):
    base = os.path.basename((filename or "").replace("\\", "/")).strip()[:200] or "proof"
    ext = {v: k for k, v in ALLOWED.items()}[ctype] if ctype != "image/jpeg" else ".jpg"
    if not base.lower().endswith(tuple(k for k, v in ALLOWED.items() if v == ctype)):
        base += ext
    return base


def submit_proof(customer_id, invoice_id, *, amount, paid_on, reference, filename, data, now=None):
    now = now or utcnow()
    invoice = services.get_invoice(invoice_id)
    if invoice.customer_id != customer_id:
        raise NotFound(_("Invoice not found."))
    if invoice.status not in ("unpaid", "partially_paid"):
        raise DomainError(_("This invoice is not open for payment."))
    try:
        money.check_amount(amount, allow_zero=False)
    except (money.MoneyError, TypeError):
        raise DomainError(_("Enter the amount in whole rupiah, more than zero."), field="amount") from None
    if paid_on is None:
        raise DomainError(_("Enter the payment date."), field="paid_on")
    if paid_on > rules.complaint_day(now):
        raise DomainError(_("The payment date cannot be in the future."), field="paid_on")
    if not data:
        raise DomainError(_("Choose the proof of transfer (an image or a PDF)."), field="proof")
    if len(data) > MAX_PROOF_BYTES:
        raise DomainError(_("The file is larger than 5 MB."), field="proof")
    ctype = sniff(data)
    if ctype is None:
        raise DomainError(_("The proof must be an image (PNG, JPEG, WebP, GIF) or a PDF."), field="proof")
    _scan(data)
    pending = db.session.execute(select(func.count()).select_from(Payment).where(
        Payment.invoice_id == invoice.id, Payment.status == "pending", Payment.source == "portal")).scalar_one()
    if pending >= MAX_PENDING:
        raise DomainError(_("We already have several proofs of this invoice to check. Please wait for our "
                            "confirmation."))
    digest = storage.save_bytes(data)
    payment = Payment(invoice_id=invoice.id, amount=amount, method="bank_transfer", source="portal",
                      reference=(reference or "").strip()[:120] or None, paid_on=paid_on, status="pending",
                      proof_path=digest, proof_name=_name(filename, ctype), proof_content_type=ctype,
                      customer_id=customer_id, recorded_at=now)
    db.session.add(payment)
    db.session.flush()
    services._audit(invoice, None, "payment_recorded", None, money.format_rupiah(amount),
                    note=f"portal {payment.reference or ''}".strip(), actor_customer_id=customer_id)
    _tell_billing(invoice, payment, now)
    return payment


def _scan(data):
    """With a ClamAV daemon configured (CLAMD_SOCKET / CLAMD_HOST), a file with a virus is refused
    before it is stored; billing never downloads it. When the daemon cannot be reached, the proof is
    accepted (the customer's payment must not wait on it) and the fact is logged."""
    from flask import current_app

    from ..mail import clamd

    scanner = clamd.from_config(current_app.config)
    if scanner is None:
        return
    try:
        found = scanner.scan(data)
    except clamd.ClamdError as exc:  # unreachable, or a refusal (e.g. over its size limit)
        log.warning("proof of transfer not scanned: %s", exc)
        return
    if found:
        log.warning("proof of transfer refused: %s", found)
        raise DomainError(_("This file contains a virus (%(name)s) and was not accepted. Please send a "
                            "clean screenshot or PDF of the transfer.", name=found), field="proof")


def _tell_billing(invoice, payment, now):
    from ..mail.outbound import users_with_role
    from ..sla import notifications

    body = _("Proof of transfer for invoice %(number)s: %(amount)s", number=invoice.number,
             amount=money.format_rupiah(payment.amount))
    return notifications.notify([u.id for u in users_with_role("billing")], invoice.ticket_id, "payment_proof",
                                body, now=now)


def pending_of(invoice_id, customer_id):
    """The customer's proofs of this invoice waiting for billing."""
    return db.session.execute(select(Payment).where(Payment.invoice_id == invoice_id, Payment.status == "pending",
                                                    Payment.customer_id == customer_id)
                              .order_by(Payment.id)).scalars().all()
