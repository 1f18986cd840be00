"""Sending outbound mail (RQ jobs through the outbox): render an OutboundMail row and send it.

`send_outbound(outbound_id, context=None)` is idempotent: a row already sent (or held) is not
sent. A temporary failure (SMTP down, 4xx) raises, so the outbox records it and RQ retries with
backoff (helpdesk.jobs.RETRY_INTERVALS); a permanent refusal (5xx) marks the row "failed". Mail goes
through Flask-Mail (so MAIL_SUPPRESS_SEND and `mail.record_messages()` work as for every mail),
with the MIME message built here: text and HTML parts from templates/mail/<lang>/<kind>.*, the
stored Message-ID, In-Reply-To, References and the automatic-mail headers.
"""
import smtplib
from datetime import datetime, timedelta, timezone
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from flask import current_app, render_template
from flask_mail import Message as FlaskMailMessage
from markupsafe import Markup, escape
from sqlalchemy import select, update

from ..auth.models import User
from ..customers.models import Customer
from ..extensions import db, mail as flask_mail
from ..tickets import storage
from ..tickets.models import Attachment, Message, Ticket
from ..timeutil import utcnow
from . import outbound
from .models import OutboundMail

TEXT_SEPARATOR = "\n\n" + "-" * 60 + "\n\n"
# Serialising: headers are folded only past RFC 5322's hard limit (998), not at 78. A header that is
# one long token (List-Unsubscribe's <mailto:...?subject=unsubscribe%20TOKEN>) cannot be folded at 78,
# and Python would then RFC 2047-encode it, which no mail client reads as a URL. (The body's transfer
# encoding is chosen when the parts are set, with policy.SMTP: unchanged.)
WIRE = policy.SMTP.clone(max_line_length=998)


class PreparedMail(FlaskMailMessage):
    """A Flask-Mail message whose bytes are a MIME message built beforehand (our own headers)."""

    def __init__(self, email_message, *, sender, to, cc, subject, text, html):
        super().__init__(subject=subject, recipients=list(to), cc=list(cc), sender=sender, body=text, html=html)
        self.email_message = email_message
        self.msgId = email_message["Message-ID"]
        self._raw = email_message.as_bytes(policy=WIRE)

    def as_bytes(self):
        return self._raw

    def as_string(self):
        return self._raw.decode("utf-8", "replace")

    def has_bad_headers(self):  # every header value was made one safe line when it was built
        return False


def _address(addr, name=""):
    name = outbound.clean_header_text(name, 120)
    local, _, domain = addr.rpartition("@")
    return Address(display_name=name, username=local, domain=domain) if name else Address(addr_spec=addr)


def _bracket(ids):
    return " ".join(f"<{i}>" for i in ids if i)


def _money_context(row, extra):
    """The claim, repair quote, invoice and payment a mail names in its context (claim_id, quote_id,
    invoice_id, payment_id) as rows, with the quote's signed links and the portal invoice page."""
    from ..billing.models import Invoice, Payment
    from ..claims.models import CashbackClaim
    from ..repairs.models import RepairQuote

    out = {}
    base = current_app.config["BASE_URL"].rstrip("/")
    claim = db.session.get(CashbackClaim, extra["claim_id"]) if extra.get("claim_id") else None
    if claim is not None:
        out.update(claim=claim, claim_item=claim.item)
    quote = db.session.get(RepairQuote, extra["quote_id"]) if extra.get("quote_id") else None
    payment = db.session.get(Payment, extra["payment_id"]) if extra.get("payment_id") else None
    invoice_id = extra.get("invoice_id") or (payment.invoice_id if payment is not None else None) \
        or (quote.invoice_id if quote is not None else None)
    invoice = db.session.get(Invoice, invoice_id) if invoice_id else None
    if quote is not None:
        out["quote"] = quote
        if row.kind == "repair_quote":
            from ..repairs.services import link_url

            url = link_url(quote)
            out["quote_links"] = {"approve": url + "?d=approve", "decline": url + "?d=decline"}
    if invoice is not None:
        out.update(invoice=invoice, remaining=max(0, (invoice.total or 0) - (invoice.amount_paid or 0)),
                   invoice_url=f"{base}/portal/invoices/{invoice.id}")
        if invoice.source_type == "renewal" and invoice.source_id:  # the item it renews
            from ..warranty.models import OwnedItem

            out["item"] = db.session.get(OwnedItem, invoice.source_id)
    if payment is not None:
        out["payment"] = payment
        if invoice is not None and payment.confirmed_at is not None:  # the balance as of this payment
            key = (payment.confirmed_at, payment.id)
            paid = sum(p.amount for p in invoice.payments
                       if p.status == "confirmed" and p.confirmed_at is not None and (p.confirmed_at, p.id) <= key)
            out["remaining"] = max(0, (invoice.total or 0) - paid)
    return out


def _lead_context(extra):
    """The follow-up task and the lead a mail names in its context (task_id, lead_id), the due time
    in Asia/Jakarta per language ({lang: text}) and the lead's page."""
    from ..leads.models import Lead, LeadTask
    from ..sla.calendar import format_local

    out = {}
    task = db.session.get(LeadTask, extra["task_id"]) if extra.get("task_id") else None
    lead_id = extra.get("lead_id") or (task.lead_id if task is not None else None)
    lead = db.session.get(Lead, lead_id) if lead_id else None
    if task is not None:
        out.update(task=task, task_due={lang: format_local(task.due_at, "Asia/Jakarta", lang)
                                        for lang in outbound.LANGS})
    if lead is not None:
        out.update(lead=lead, lead_url=f"{current_app.config['BASE_URL'].rstrip('/')}/leads/{lead.id}")
    return out


def _offer_context(extra):
    """The offer a mail names in its context (offer_id): the offer, its signed link (`offer_url`),
    who it goes to (`offer_name`) and its lines' totals."""
    from ..sales import services as sales
    from ..sales.models import Offer

    offer = db.session.get(Offer, extra["offer_id"]) if extra.get("offer_id") else None
    if offer is None:
        return {}
    _to, name, _locale = sales.recipient(offer)
    return {"offer": offer, "offer_url": sales.link_url(offer), "offer_name": name or "",
            "offer_line_discounts": (offer.discount_total or 0) - (offer.voucher_discount or 0)}


def _renewal_context(extra):
    """The renewable item and its renewal notice a mail names (item_id, notice_id): `renewal_item`,
    `renewal_notice`, `days_left` (as of the notice's day), `renewal_until` (the day the renewal
    pays until) and `grace_until` (the last day before an unpaid item expires)."""
    from ..sales import renewals
    from ..warranty.models import OwnedItem, RenewalNotice
    from ..warranty.rules import complaint_day

    item = db.session.get(OwnedItem, extra["item_id"]) if extra.get("item_id") else None
    notice = db.session.get(RenewalNotice, extra["notice_id"]) if extra.get("notice_id") else None
    if item is None or notice is None:
        return {}
    term = item.product.term_days if item.product is not None else None
    return {"renewal_item": item, "renewal_notice": notice,
            "days_left": (notice.expires_on - complaint_day(notice.created_at)).days,
            "renewal_until": notice.expires_on + timedelta(days=term) if term else None,
            "grace_until": notice.expires_on + timedelta(days=renewals.grace_days())}


def _context(row, ticket, extra):
    """What the templates of a mail get."""
    cfg = current_app.config
    extra.update(_money_context(row, extra))
    extra.update(_lead_context(extra))
    extra.update(_offer_context(extra))
    extra.update(_renewal_context(extra))
    from ..subscriptions.delivery import mail_context

    extra.update(mail_context(extra))
    customer = db.session.get(Customer, ticket.customer_id) if ticket else None
    if customer is None and extra.get("invoice") is not None:  # an invoice's mail without a ticket
        customer = db.session.get(Customer, extra["invoice"].customer_id)
    if customer is None and extra.get("renewal_item") is not None:  # a renewal mail
        customer = db.session.get(Customer, extra["renewal_item"].customer_id)
    message = db.session.get(Message, row.message_row_id) if row.message_row_id else None
    customer_side = row.user_id is None
    link = None
    if ticket is not None and customer is not None and customer_side and (row.kind != "refused" or extra.get("own")):
        from ..portal.tokens import ticket_link_url

        link = ticket_link_url(customer.id, ticket.id)
    agent = db.session.get(User, message.author_user_id) if message is not None and message.author_user_id else None
    if ticket is not None and row.kind in ("ack", "csat"):
        from ..sla import csat

        if row.kind == "ack":  # when to expect our first answer, as of sending ({lang: text}, {} = no deadline)
            extra["first_answer"] = csat.expected_first_answer_by_lang(ticket)
        elif customer is not None and isinstance(extra.get("cycle"), int):  # the two signed answer links
            extra["csat_links"] = csat.answer_links(customer.id, ticket.id, extra["cycle"])
    return dict(
        extra, kind=row.kind, mail=row, ticket=ticket, customer=customer, message=message, agent=agent,
        user=db.session.get(User, row.user_id) if row.user_id else None,
        number=ticket.number if ticket else None,
        subject=outbound.bare_subject(ticket.subject, ticket.number) if ticket else "",
        queue_name=ticket.queue.name if ticket is not None and ticket.queue is not None else "",
        link=link, desk_url=f"{cfg['BASE_URL'].rstrip('/')}/tickets/{ticket.number}" if ticket else None,
        excerpt=((message.body_text or "")[:2000] if message is not None else ""),
        refusal_reasons=outbound.REFUSAL_REASONS,
        limit_mb=min(cfg.get("MAIL_MAX_ATTACHMENT_BYTES") or cfg["MAX_ATTACHMENT_BYTES"],
                     cfg["MAX_ATTACHMENT_BYTES"]) // (1024 * 1024),
    )


def render_parts(row, ctx):
    """(text, html) of a mail: the shared lead (an agent's reply), then each language's part."""
    langs = [row.locale] if row.locale in outbound.LANGS else list(outbound.LANGS)
    texts = [render_template(f"mail/{lang}/{row.kind}.txt", lang=lang, **ctx).strip() for lang in langs]
    htmls = [(lang, Markup(render_template(f"mail/{lang}/{row.kind}.html", lang=lang, **ctx))) for lang in langs]
    lead_text, lead_html = "", None
    message = ctx.get("message")
    if row.kind == "reply" and message is not None:
        lead_text = (message.body_text or "").strip()
        lead_html = Markup(message.body_html) if message.body_html else \
            Markup("<p>") + Markup("<br>\n").join(escape(line) for line in lead_text.splitlines()) + Markup("</p>")
    text = TEXT_SEPARATOR.join(texts)
    if ctx.get("unsubscribe_url"):  # an announcement: how to change or stop it, in every language of the mail
        lines = {"id": "Atur langganan: {p}\nBerhenti berlangganan: {u}",
                 "en": "Manage subscriptions: {p}\nUnsubscribe: {u}"}
        text += "\n\n-- \n" + "\n".join(lines[lang].format(p=ctx["preferences_url"], u=ctx["unsubscribe_url"])
                                         for lang in langs)
    if lead_text:
        text = f"{lead_text}\n\n-- \n{text}"
    html = render_template("mail/layout.html", parts=htmls, lead_html=lead_html, langs=langs,
                           **{**ctx, "subject": row.subject})
    return text + "\n", html


def _display_names(row, ticket, ctx):
    """{address: name} for the To header: the notified agent, or the ticket's customer."""
    user, customer = ctx.get("user"), ctx.get("customer")
    if user is not None:
        return {user.email.lower(): user.name}
    if customer is None:
        return {}
    addrs = {e.email.lower() for e in customer.emails} | {(getattr(ticket, "reply_to", None) or "").lower()}
    return {a: customer.name for a in addrs if a}


def _attachments(row):
    if row.kind != "reply" or not row.message_row_id:
        return []
    return db.session.execute(
        select(Attachment).where(Attachment.message_id == row.message_row_id, Attachment.scan_status != "infected",
                                 Attachment.scan_status != "pending").order_by(Attachment.id)
    ).scalars().all()


def build_message(row, context=None):
    """The MIME message of an OutboundMail row: (EmailMessage, text, html)."""
    ticket = db.session.get(Ticket, row.ticket_id) if row.ticket_id else None
    from_addr, from_name, mailbox = outbound.sender_for(ticket)
    ctx = _context(row, ticket, dict(context or {}))
    text, html = render_parts(row, ctx)

    msg = EmailMessage(policy=policy.SMTP)
    names = _display_names(row, ticket, ctx)
    msg["From"] = _address(from_addr, from_name)
    msg["To"] = [_address(a, names.get(a.lower(), "")) for a in row.to_addrs or []]
    if row.cc_addrs:
        msg["Cc"] = [_address(a) for a in row.cc_addrs]
    reply_to = outbound.reply_to_for(ticket, mailbox) if row.user_id is None else None
    if reply_to:
        msg["Reply-To"] = _address(reply_to, from_name)
    msg["Subject"] = outbound.clean_header_text(row.subject, outbound.SUBJECT_MAX)
    msg["Date"] = format_datetime(datetime.now(timezone.utc))
    msg["Message-ID"] = f"<{row.message_id}>"
    if row.in_reply_to:
        msg["In-Reply-To"] = f"<{row.in_reply_to}>"
    if row.references:
        msg["References"] = _bracket(row.references.split())
    if row.automatic:
        msg["Auto-Submitted"] = "auto-replied" if row.kind in outbound.AUTO_REPLIED_KINDS else "auto-generated"
        msg["X-Auto-Response-Suppress"] = "All"
    if ctx.get("unsubscribe_url"):  # an announcement: RFC 2369 / RFC 8058 one-click unsubscribe
        msg["List-Unsubscribe"] = f"<{ctx['unsubscribe_mailto']}>, <{ctx['unsubscribe_url']}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        msg["List-Id"] = f"{ctx.get('topic', 'announcements')} <{ctx.get('topic', 'announcements')}." \
                         f"{outbound.message_id_domain(from_addr)}>"
        msg["Precedence"] = "bulk"
    if ticket is not None:
        msg["X-Helpdesk-Ticket"] = str(ticket.number)
    msg.set_content(text, subtype="plain", charset="utf-8")
    msg.add_alternative(html, subtype="html", charset="utf-8")
    for att in _attachments(row):
        data = storage.path_for(att.sha256).read_bytes()
        maintype, _, subtype = (att.content_type or "application/octet-stream").partition("/")
        if not subtype or "\n" in att.content_type:
            maintype, subtype = "application", "octet-stream"
        msg.add_attachment(data, maintype=maintype, subtype=subtype,
                           filename=outbound.clean_header_text(att.filename, 255) or "attachment")
    # last: set_content() and add_alternative() move or drop Content-* headers
    msg["Content-Language"] = row.locale if row.locale in outbound.LANGS else ", ".join(outbound.LANGS)
    return msg, text, html


def _permanent(exc):
    """A 5xx answer that retrying cannot fix (not an authentication problem of ours)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return bool(codes) and all(c >= 500 for c in codes)
    if isinstance(exc, (smtplib.SMTPSenderRefused, smtplib.SMTPDataError)):
        return exc.smtp_code >= 500
    return False


def _note_failure(outbound_id, error, final):
    values = {"attempts": OutboundMail.attempts + 1, "last_error": error[-2000:]}
    if final:
        values["status"] = "failed"
    with db.engine.begin() as conn:
        conn.execute(update(OutboundMail).where(OutboundMail.id == outbound_id, OutboundMail.status != "sent")
                     .values(**values))


def send_outbound(outbound_id, context=None):
    """Render and send one OutboundMail row (the outbox job of queue "mail"). Idempotent."""
    row = db.session.get(OutboundMail, outbound_id)
    if row is None:
        return "missing"
    if row.status in ("sent", "held", "skipped"):
        return row.status
    from ..subscriptions.delivery import still_wanted

    if not still_wanted(context):  # unsubscribed after this announcement was queued
        row.status, row.last_error = "skipped", "unsubscribed before sending"
        return "skipped"
    if row.ticket_id and not row.in_reply_to:
        # queued before the message it answers was linked to the ticket (the ingest's order): thread now
        row.in_reply_to, row.references = outbound.thread_headers(row.ticket_id, before=row.created_at,
                                                                  exclude=row.message_id)
    email_message, text, html = build_message(row, context)
    prepared = PreparedMail(email_message, sender=email_message["From"].addresses[0].addr_spec,
                            to=row.to_addrs or [], cc=row.cc_addrs or [], subject=row.subject, text=text, html=html)
    try:
        flask_mail.send(prepared)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        permanent = _permanent(exc)
        max_attempts = current_app.config.get("JOB_MAX_RETRIES", 5) + 1
        db.session.rollback()
        _note_failure(outbound_id, error, final=permanent or (row_attempts(outbound_id) + 1 >= max_attempts))
        if permanent:
            return "failed"
        raise
    row.status, row.sent_at, row.last_error = "sent", utcnow(), None
    row.attempts = (row.attempts or 0) + 1
    return "sent"


def row_attempts(outbound_id):
    with db.engine.connect() as conn:
        return conn.execute(select(OutboundMail.attempts).where(OutboundMail.id == outbound_id)).scalar() or 0
