"""Portal rules: sign-in links, which tickets a customer sees, the public thread, attachments.

Services take ids (the acting customer's id included), raise domain errors and only flush: the
view commits. A ticket the customer may not see is NotFound, never Forbidden (do not reveal it).
"""
import secrets

from sqlalchemy import or_, select

from werkzeug.security import check_password_hash

from ..auth.i18n import _
from ..auth.services import MIN_PASSWORD, hash_password
from ..customers import services as customers
from ..customers.models import LANGUAGES, Customer, CustomerEmail, Organisation
from ..errors import DomainError, Forbidden, NotFound
from ..extensions import db
from ..jobs import enqueue
from ..tickets import search
from ..tickets import services as tickets
from ..tickets.models import Attachment, Message, Ticket
from ..timeutil import utcnow
from . import tokens


def _new_nonce():
    return secrets.token_hex(16)


def active_customer(customer_id):
    """The customer, unless unknown, merged away or anonymised (then None)."""
    customer = db.session.get(Customer, customer_id) if customer_id else None
    if customer is None or customer.merged_into_id or customer.anonymised_at:
        return None
    return customer


def request_sign_in_link(email):
    """Queue a sign-in link mail when `email` belongs to a customer; nothing otherwise.

    Returns nothing either way: the caller shows the same answer, so accounts cannot be enumerated.
    """
    try:
        email = customers.clean_email(email)
    except DomainError:
        return
    customer = customers.find_by_email(email)
    if customer is None or active_customer(customer.id) is None:
        return
    if not customer.login_nonce:
        customer.login_nonce = _new_nonce()
    enqueue("helpdesk.portal.jobs.send_sign_in_link", customer.id, email, queue="mail")


def check_sign_in_token(token):
    """The customer a sign-in link is for (without using it up), or DomainError."""
    try:
        customer_id, nonce = tokens.load_sign_in_token(token)
    except tokens.InvalidToken as exc:
        raise DomainError(_("This sign-in link has expired. Please ask for a new one.") if exc.expired
                          else _("This sign-in link is not valid. Please ask for a new one.")) from None
    customer = active_customer(customer_id)
    if customer is None or not customer.login_nonce or not secrets.compare_digest(customer.login_nonce, nonce):
        raise DomainError(_("This sign-in link was already used. Please ask for a new one."))
    return customer


def sign_in(token, now=None):
    """Use up a sign-in link: rotate the nonce (single use), note the time. Returns the customer."""
    customer = check_sign_in_token(token)
    customer.login_nonce = _new_nonce()
    customer.last_login_at = now or utcnow()
    return customer


def authenticate(email, password, now=None):
    """The customer with this address and portal password, else None (the same for every failure)."""
    try:
        customer = customers.find_by_email(customers.clean_email(email))
    except DomainError:
        customer = None
    customer = active_customer(customer.id) if customer is not None else None
    if customer is None or not customer.password_hash:
        # Spend the time of a real check, so timing does not tell which addresses have a password.
        check_password_hash(hash_password("x" * MIN_PASSWORD), password or "")
        return None
    if not check_password_hash(customer.password_hash, password or ""):
        return None
    customer.last_login_at = now or utcnow()
    return customer


def set_password(customer_id, password):
    """Set (or, with an empty password, remove) the customer's optional portal password."""
    customer = _customer_or_404(customer_id)
    if password and len(password) < MIN_PASSWORD:
        raise DomainError(_("The password must be at least %(n)d characters long.", n=MIN_PASSWORD),
                          field="password")
    customer.password_hash = hash_password(password) if password else None
    return customer


# ---------------------------------------------------------------- what a customer sees

def _org_sharing(customer):
    """The organisation id whose tickets this contact sees, or None."""
    if customer.organisation_id is None:
        return None
    org = db.session.get(Organisation, customer.organisation_id)
    return org.id if org is not None and org.contacts_see_all_tickets else None


def visibility_clause(customer):
    """SQL condition: the customer's own tickets, and their organisation's when it shares them."""
    org_id = _org_sharing(customer)
    if org_id is None:
        return Ticket.customer_id == customer.id
    members = select(Customer.id).where(Customer.organisation_id == org_id)
    return or_(Ticket.customer_id == customer.id, Ticket.customer_id.in_(members))


def list_tickets(customer_id):
    """(open tickets, closed tickets) the customer sees, latest activity first."""
    customer = _customer_or_404(customer_id)
    rows = db.session.execute(
        select(Ticket).where(visibility_clause(customer), Ticket.merged_into_id.is_(None))
        .order_by(Ticket.last_activity_at.desc(), Ticket.id.desc()).limit(500)
    ).scalars().all()
    done = ("resolved", "closed")
    return [t for t in rows if t.status not in done], [t for t in rows if t.status in done]


def _customer_or_404(customer_id):
    customer = active_customer(customer_id)
    if customer is None:
        raise NotFound(_("Ticket not found."))
    return customer


def can_see(customer, ticket):
    if ticket.customer_id == customer.id:
        return True
    org_id = _org_sharing(customer)
    return org_id is not None and ticket.customer.organisation_id == org_id


def get_ticket(customer_id, number):
    """The ticket with this number (following merges) if the customer sees it, else NotFound."""
    customer = _customer_or_404(customer_id)
    ticket = tickets.resolve_number(number)
    if ticket is None or not can_see(customer, ticket):
        raise NotFound(_("Ticket not found."))
    return ticket


def get_ticket_by_id(customer_id, ticket_id):
    """For a signed ticket link: the ticket if it still belongs to that customer, else NotFound."""
    customer = _customer_or_404(customer_id)
    ticket = db.session.get(Ticket, ticket_id)
    while ticket is not None and ticket.merged_into_id:
        ticket = db.session.get(Ticket, ticket.merged_into_id)
    if ticket is None or ticket.customer_id != customer.id:
        raise NotFound(_("Ticket not found."))
    return ticket


def public_thread(ticket_id):
    """The ticket's public messages (never internal notes), oldest first."""
    return db.session.execute(
        select(Message).where(Message.ticket_id == ticket_id, Message.kind == "reply").order_by(Message.id)
    ).scalars().all()


def get_attachment(customer_id, attachment_id, ticket_id=None):
    """An attachment of a public message on a ticket the customer sees (that ticket only, when
    ticket_id is given), else NotFound."""
    customer = _customer_or_404(customer_id)
    att = db.session.get(Attachment, attachment_id)
    msg = db.session.get(Message, att.message_id) if att is not None and att.message_id else None
    ticket = db.session.get(Ticket, att.ticket_id) if att is not None else None
    if msg is None or msg.kind != "reply" or ticket is None or not can_see(customer, ticket) \
            or (ticket_id is not None and ticket.id != ticket_id):
        raise NotFound(_("File not found."))
    return att


def _own_ticket(customer_id, number):
    """A ticket the customer opened: colleagues of a B2B organisation may read it, not act on it."""
    ticket = get_ticket(customer_id, number)
    if ticket.customer_id != customer_id:
        raise Forbidden(_("Only the person who opened this request can answer it or change it."))
    return ticket


def reply(customer_id, number, *, body_text, files=None):
    """A portal reply on the customer's own ticket (the workflow applies). Returns (ticket, message)."""
    ticket = _own_ticket(customer_id, number)
    if not (body_text or "").strip() and not files:
        raise DomainError(_("The message is empty."), field="body")
    return tickets.add_customer_message(ticket.id, customer_id, body_text=body_text, files=files, channel="web")


def set_status(customer_id, number, status):
    """"This is solved" (resolved) or reopen (open) on the customer's own ticket."""
    ticket = _own_ticket(customer_id, number)
    return tickets.customer_change_status(ticket.id, customer_id, status)


# ---------------------------------------------------------------- profile

def update_profile(customer_id, *, name, phone=None, language=None):
    """The customer edits their name, phone (normalised to +62...) and language."""
    customer = _customer_or_404(customer_id)
    name = (name or "").strip()
    if not name:
        raise DomainError(_("Please tell us your name."), field="name")
    if language not in (None, "", *LANGUAGES):
        raise DomainError(_("Unknown language."), field="language")
    customer.name = name[:200]
    customer.phone = customers.clean_phone(phone) if (phone or "").strip() else None
    customer.language = language or None
    return customer


def request_email_confirmation(customer_id, email):
    """Mail a confirmation link to a new address; it is added only once confirmed.

    An address that already belongs to a customer gets no mail, with the same answer to the caller
    (which addresses other customers use is not told). Returns the cleaned address.
    """
    customer = _customer_or_404(customer_id)
    email = customers.clean_email(email)
    if customers.find_by_email(email) is None:
        enqueue("helpdesk.portal.jobs.send_email_confirmation", customer.id, email, queue="mail")
    return email


def confirm_email(token, now=None):
    """Add the address of a confirmation link to its customer (once). Returns (customer, email)."""
    try:
        customer_id, email = tokens.load_email_token(token)
    except tokens.InvalidToken as exc:
        raise DomainError(_("This confirmation link has expired. Please add the address again.") if exc.expired
                          else _("This confirmation link is not valid.")) from None
    customer = _customer_or_404(customer_id)
    owner = customers.find_by_email(email)
    if owner is not None and owner.id == customer.id:
        return customer, email  # confirmed before: nothing to do
    if owner is not None:
        raise DomainError(_("This address already belongs to another account."))
    db.session.add(CustomerEmail(customer_id=customer.id, email=email, is_primary=not customer.emails,
                                 verified_at=now or utcnow()))
    db.session.flush()
    db.session.expire(customer, ["emails"])
    for tid in db.session.execute(select(Ticket.id).where(Ticket.customer_id == customer.id)).scalars():
        search.reindex(db.session, tid)
    return customer, email
