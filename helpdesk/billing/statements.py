"""Bank statements (billing only): import a CSV, preview its credits with their matched invoices,
confirm the matched payments in one action, match an unmatched line by hand, or ignore it.

- `import_statement(actor_id, filename, data)` -> (statement, new_lines, already): the same file
  twice (its sha256) is the same statement (already=True, nothing new); each credit is kept once
  (its fingerprint, helpdesk.billing.transfer), so an overlapping file only adds its new lines.
  Each new credit is matched (transfer amount, else an invoice number in the text).
- `confirm_matched(statement_id, actor_id)`: each matched line becomes a confirmed Payment (source
  "bank", method bank_transfer, the line as its reference) through services.confirm_payment (the
  customer's confirmation mail, the PAID_HOOKS). A line whose invoice is no longer open goes back to
  unmatched.
- `match_by_hand(line_id, actor_id, invoice_number)`, `ignore(line_id, actor_id)`.
"""
import hashlib

from sqlalchemy import select

from ..auth.i18n import _
from ..errors import Conflict, DomainError, NotFound
from ..extensions import db
from ..timeutil import utcnow
from . import services, transfer
from .models import BankStatement, BankStatementLine, Invoice

OPEN = ("unpaid", "partially_paid")


def _billing(actor_id):
    return services._billing_user(actor_id, _("Only billing can import bank statements."))


def _open_indexes():
    rows = db.session.execute(select(Invoice.id, Invoice.number, Invoice.transfer_amount)
                              .where(Invoice.status.in_(OPEN))).all()
    by_amount, by_number = {}, {}
    for inv_id, number, amount in rows:
        by_number[number] = inv_id
        if amount is not None:
            by_amount.setdefault(amount, []).append(inv_id)
    return by_amount, by_number


def import_statement(actor_id, filename, data, now=None):
    _billing(actor_id)
    now = now or utcnow()
    if not data:
        raise DomainError(_("The file is empty."), field="file")
    if len(data) > transfer.MAX_BYTES:
        raise DomainError(_("The file is larger than 5 MB."), field="file")
    digest = hashlib.sha256(data).hexdigest()
    existing = db.session.execute(select(BankStatement).where(BankStatement.sha256 == digest)).scalar_one_or_none()
    if existing is not None:
        return existing, 0, True
    try:
        lines = transfer.parse_statement(data)
    except transfer.StatementError:
        raise DomainError(_("This file is not a bank statement we can read: it needs a date, a description and "
                            "an amount (or debit and credit) column."), field="file") from None
    credit_lines = transfer.credits(lines)
    statement = BankStatement(sha256=digest, filename=(filename or "")[:255] or None, uploaded_by_id=actor_id,
                              created_at=now, lines_total=len(lines), credits=len(credit_lines))
    db.session.add(statement)
    db.session.flush()
    pairs = transfer.fingerprints(credit_lines)
    known = set()
    prints = [fp for _ln, fp in pairs]
    for i in range(0, len(prints), 500):
        known.update(db.session.execute(select(BankStatementLine.fingerprint).where(
            BankStatementLine.fingerprint.in_(prints[i:i + 500]))).scalars())
    by_amount, by_number = _open_indexes()
    new = 0
    for ln, fp in pairs:
        if fp in known:
            continue
        invoice_id, rule = transfer.match(ln, by_amount, by_number)
        db.session.add(BankStatementLine(statement_id=statement.id, fingerprint=fp, booked_on=ln.booked_on,
                                         amount=ln.amount, description=ln.description or None,
                                         reference=ln.reference or None, invoice_id=invoice_id, match_rule=rule,
                                         status="matched" if invoice_id else "unmatched"))
        new += 1
    db.session.flush()
    return statement, new, False


def get_statement(statement_id):
    statement = db.session.get(BankStatement, statement_id)
    if statement is None:
        raise NotFound(_("Bank statement not found."))
    return statement


def recent_statements(limit=50):
    return db.session.execute(select(BankStatement).order_by(BankStatement.id.desc()).limit(limit)).scalars().all()


def lines_of(statement_id):
    """[(line, invoice or None)] of a statement, in file order."""
    return db.session.execute(select(BankStatementLine, Invoice).outerjoin(
        Invoice, Invoice.id == BankStatementLine.invoice_id).where(BankStatementLine.statement_id == statement_id)
        .order_by(BankStatementLine.id)).all()


def open_unmatched(limit=200):
    """Unmatched lines of every statement (billing matches them by hand or ignores them)."""
    return db.session.execute(select(BankStatementLine).where(BankStatementLine.status == "unmatched")
                              .order_by(BankStatementLine.booked_on, BankStatementLine.id).limit(limit)).scalars().all()


def _reference_of(line):
    return (line.reference or line.description or "")[:120] or None


def _confirm_line(line, invoice, actor_id, now):
    payment = services.record_payment(invoice.id, actor_id, amount=line.amount, method="bank_transfer",
                                      paid_on=min(line.booked_on, services.rules.complaint_day(now)),
                                      reference=_reference_of(line),
                                      note=(line.description or "")[:500] or None, now=now)
    payment.source = "bank"
    db.session.flush()
    services.confirm_payment(payment.id, actor_id, now=now)
    line.status, line.payment_id = "confirmed", payment.id
    return payment


def confirm_matched(statement_id, actor_id, now=None):
    """Confirm every matched line of the statement. Returns (confirmed, back_to_unmatched)."""
    _billing(actor_id)
    now = now or utcnow()
    get_statement(statement_id)
    lines = db.session.execute(select(BankStatementLine).where(
        BankStatementLine.statement_id == statement_id, BankStatementLine.status == "matched")
        .order_by(BankStatementLine.id).with_for_update()).scalars().all()
    done, dropped = 0, 0
    for line in lines:
        invoice = db.session.get(Invoice, line.invoice_id) if line.invoice_id else None
        if invoice is None or invoice.status not in OPEN:
            line.status, line.invoice_id, line.match_rule = "unmatched", None, None
            dropped += 1
            continue
        _confirm_line(line, invoice, actor_id, now)
        done += 1
    db.session.flush()
    return done, dropped


def _line(line_id):
    line = db.session.execute(select(BankStatementLine).where(BankStatementLine.id == line_id)
                              .with_for_update()).scalar_one_or_none()
    if line is None:
        raise NotFound(_("Statement line not found."))
    return line


def match_by_hand(line_id, actor_id, invoice_number, now=None):
    """Billing names the invoice of an unmatched (or ignored) line: a confirmed payment at once."""
    _billing(actor_id)
    now = now or utcnow()
    line = _line(line_id)
    if line.status not in ("unmatched", "ignored"):
        raise Conflict(_("This line was already handled."))
    numbers = transfer.invoice_numbers(invoice_number or "")
    number = numbers[0] if numbers else (invoice_number or "").strip()
    if not number:
        raise DomainError(_("Enter the invoice number."), field="invoice")
    invoice = services.by_number(number)
    if invoice is None:
        raise DomainError(_("No invoice %(number)s.", number=number), field="invoice")
    if invoice.status not in OPEN:
        raise DomainError(_("Invoice %(number)s is not open.", number=invoice.number), field="invoice")
    line.invoice_id, line.match_rule = invoice.id, "manual"
    return _confirm_line(line, invoice, actor_id, now)


def ignore(line_id, actor_id):
    _billing(actor_id)
    line = _line(line_id)
    if line.status != "unmatched":
        raise Conflict(_("This line was already handled."))
    line.status = "ignored"
    return line
