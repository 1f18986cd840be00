"""Customer rules: find or create by email, edit, merge two records (audited)."""
import functools

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select, update
from sqlalchemy.orm import joinedload

from .. import batchcache, idalloc
from ..auth.i18n import _
from ..errors import DomainError, Forbidden, NotFound
from ..extensions import db
from ..tickets.models import AuditEvent, Message, Ticket
from ..timeutil import utcnow
from .models import CUSTOMER_KINDS, LANGUAGES, Customer, CustomerEmail, Organisation
from .phone import InvalidPhone, normalise_phone


def clean_email(raw):
    """A syntactically valid address, lower-cased, or DomainError."""
    clean = _normalised_email((raw or "").strip())
    if clean is None:
        raise DomainError(_("%(email)s is not a valid email address.", email=repr(raw)), field="email")
    return clean


@functools.lru_cache(maxsize=4096)
def _normalised_email(text):
    """The address validated and lower-cased, None when invalid (remembered: the mail ingest asks
    for the same senders again and again, and validating is not cheap)."""
    try:
        return validate_email(text, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return None


def clean_phone(raw):
    try:
        return normalise_phone(raw)
    except InvalidPhone as exc:
        raise DomainError(_("%(phone)s is not a phone number.", phone=repr((raw or "").strip())),
                          field="phone") from exc


def _email_rows(emails):
    """{address: its CustomerEmail row or None}, in one statement (through the batch cache)."""
    def load(todo):
        found = {r.email: r for r in db.session.execute(
            select(CustomerEmail).where(CustomerEmail.email.in_(todo))
            .options(joinedload(CustomerEmail.customer).selectinload(Customer.emails))).scalars()}
        return {e: found.get(e) for e in todo}

    return batchcache.lookup_many("customer_email", [e.lower() for e in emails], load)


def customer_email_row(email):
    """The CustomerEmail row of this address, or None (in a batch: from its cache, without flushing
    it; an address the batch added is there)."""
    return _email_rows([email])[email.lower()]


def prefetch_emails(emails):
    """Read the customers of many addresses at once for a batch (see helpdesk.batchcache)."""
    if batchcache.is_open() and emails:
        _email_rows(emails)


def find_by_email(email):
    """The customer owning this address (following merges), or None."""
    row = customer_email_row(email)
    if row is None:
        return None
    cust = row.customer
    while cust.merged_into_id:
        cust = db.session.get(Customer, cust.merged_into_id)
    return cust


def find_or_create(*, email, name=None, phone=None, kind="b2c", language=None):
    """Match a customer by email, or create one. Returns (customer, created)."""
    email = clean_email(email)
    cust = find_by_email(email)
    if cust is not None:
        if phone and not cust.phone:
            cust.phone = clean_phone(phone)
        return cust, False
    return _create_customer(name=name or email.split("@")[0], emails=[email], phone=phone, kind=kind,
                            language=language, checked=True), True


def create_customer(*, name, emails, phone=None, kind="b2c", language=None, support_tier="standard",
                    npwp=None, organisation_id=None):
    """A new customer with one or more addresses (the first is primary)."""
    return _create_customer(name=name, emails=emails, phone=phone, kind=kind, language=language,
                            support_tier=support_tier, npwp=npwp, organisation_id=organisation_id)


def _create_customer(*, name, emails, phone=None, kind="b2c", language=None, support_tier="standard",
                     npwp=None, organisation_id=None, checked=False):
    """create_customer(); `checked`: the (single) address is already clean and owned by nobody."""
    name = (name or "").strip()
    if not name:
        raise DomainError(_("A name is required."), field="name")
    if kind not in CUSTOMER_KINDS:
        raise DomainError(_("Unknown customer kind."), field="kind")
    if language not in (None, "", *LANGUAGES):
        raise DomainError(_("Unknown language."), field="language")
    clean = []
    for raw in emails:
        e = raw if checked else clean_email(raw)
        if e not in clean:
            clean.append(e)
    if not clean:
        raise DomainError(_("At least one email address is required."), field="email")
    for e in ([] if checked else clean):
        if find_by_email(e) is not None:
            raise DomainError(_("%(email)s already belongs to another customer.", email=e), field="email")
    cust = Customer(name=name[:200], phone=clean_phone(phone), kind=kind, language=language or None,
                    support_tier=support_tier or "standard", npwp=(npwp or None) if kind == "b2b" else None,
                    organisation_id=organisation_id)
    # The addresses through the relationship: one flush inserts the customer and its addresses, and
    # cust.emails is already the loaded collection (in id order), so no refresh is needed.
    for i, e in enumerate(clean):
        CustomerEmail(customer=cust, email=e, is_primary=(i == 0))
    db.session.add(cust)
    # In a batch of inbound mail the id is handed out now and the rows are written by the batch's
    # flush (a taken address then fails that flush, and the batch is redone message by message).
    if not idalloc.assign(cust):
        db.session.flush()
    for ce in cust.emails:
        batchcache.put("customer_email", ce.email, ce)
    batchcache.put("owned_items", cust.id, [])  # a new customer owns nothing yet
    return cust


def create_organisation(*, name, npwp=None, contacts_see_all_tickets=False):
    org = Organisation(name=name.strip(), npwp=npwp or None, contacts_see_all_tickets=contacts_see_all_tickets)
    db.session.add(org)
    db.session.flush()
    return org


def add_email(customer_id, actor_id, email):
    """Give a customer another address (an address belongs to one customer only)."""
    from ..tickets.services import get_user, search

    get_user(actor_id)
    cust = db.session.get(Customer, customer_id)
    if cust is None or cust.merged_into_id:
        raise NotFound(_("Customer not found."))
    email = clean_email(email)
    if find_by_email(email) is not None:
        raise DomainError(_("%(email)s already belongs to another customer.", email=email), field="email")
    db.session.add(CustomerEmail(customer_id=cust.id, email=email, is_primary=not cust.emails))
    db.session.flush()
    db.session.expire(cust, ["emails"])
    for tid in db.session.execute(select(Ticket.id).where(Ticket.customer_id == cust.id)).scalars():
        search.reindex(db.session, tid)
    return cust


def update_organisation(org_id, actor_id, *, name, npwp=None, contacts_see_all_tickets=False):
    """Rename an organisation, set its NPWP and whether contacts see all its tickets."""
    from ..tickets.services import get_user

    get_user(actor_id)
    org = db.session.get(Organisation, org_id)
    if org is None:
        raise NotFound(_("Organisation not found."))
    if not (name or "").strip():
        raise DomainError(_("A name is required."), field="name")
    org.name, org.npwp = name.strip()[:200], (npwp or "").strip() or None
    org.contacts_see_all_tickets = bool(contacts_see_all_tickets)
    return org


def merge_customers(source_id, target_id, actor_id):
    """Merge source into target: addresses, tickets and history move; the merge is audited."""
    from ..tickets.services import audit, get_user, search

    user = get_user(actor_id)
    if not (user.is_admin or user.has_role("customer_support")):
        raise Forbidden(_("Only admins and customer support can merge customers."))
    if source_id == target_id:
        raise DomainError(_("A customer cannot be merged into itself."))
    source, target = db.session.get(Customer, source_id), db.session.get(Customer, target_id)
    if source is None or target is None or source.merged_into_id or target.merged_into_id:
        raise NotFound(_("Customer not found."))
    n_emails = db.session.execute(update(CustomerEmail).where(CustomerEmail.customer_id == source.id)
                                  .values(customer_id=target.id, is_primary=False)).rowcount
    ticket_ids = db.session.execute(select(Ticket.id).where(Ticket.customer_id == source.id)).scalars().all()
    db.session.execute(update(Ticket).where(Ticket.customer_id == source.id).values(customer_id=target.id))
    db.session.execute(update(Message).where(Message.author_customer_id == source.id)
                       .values(author_customer_id=target.id))
    db.session.execute(update(AuditEvent).where(AuditEvent.actor_customer_id == source.id)
                       .values(actor_customer_id=target.id))
    for field in ("phone", "npwp", "organisation_id", "language"):
        if getattr(target, field) is None and getattr(source, field) is not None:
            setattr(target, field, getattr(source, field))
    from ..subscriptions.services import merge as merge_subscriptions

    merge_subscriptions(source.id, target.id)  # a "no" given under the duplicate record stays a "no"
    source.merged_into_id = target.id
    audit(None, user.id, "customer_merge", f"{source.name} (#{source.id})", f"{target.name} (#{target.id})",
          note=f"{n_emails} address(es), {len(ticket_ids)} ticket(s) moved", object_type="customer",
          object_id=target.id)
    audit(None, user.id, "customer_merge", f"{source.name} (#{source.id})", f"{target.name} (#{target.id})",
          object_type="customer", object_id=source.id)
    db.session.flush()
    db.session.expire_all()
    for tid in ticket_ids:
        search.reindex(db.session, tid)
    return target


def update_customer(customer_id, actor_id, **fields):
    """Edit name, phone, kind, language, tier, NPWP, organisation."""
    from ..tickets.services import get_user

    get_user(actor_id)
    cust = db.session.get(Customer, customer_id)
    if cust is None:
        raise NotFound(_("Customer not found."))
    if "phone" in fields:
        fields["phone"] = clean_phone(fields["phone"])
    for key, val in fields.items():
        if key in ("name", "phone", "kind", "language", "support_tier", "npwp", "organisation_id"):
            setattr(cust, key, val or None if key != "name" else val)
    cust.support_tier = cust.support_tier or "standard"
    cust.kind = cust.kind or "b2c"
    return cust


def customer_ticket_summary(customer_id, exclude_ticket_id=None, limit=10):
    """The customer's other tickets for the sidebar (indexed by customer_id, last activity)."""
    stmt = (select(Ticket).where(Ticket.customer_id == customer_id, Ticket.merged_into_id.is_(None))
            .order_by(Ticket.last_activity_at.desc()).limit(limit + 1))
    rows = [t for t in db.session.execute(stmt).scalars() if t.id != exclude_ticket_id]
    return rows[:limit]


__all__ = ["utcnow"]
