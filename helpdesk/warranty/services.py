"""Products and guarantees: owned items (with their bundles), contracts, and each ticket's
eligibility decision, evaluated by the pure rules in warranty/rules.py and stored as a snapshot.

- `create_item` computes the item's warranty end, cashback end and (for bundled items) free-until,
  and creates the items its product bundles (a website brings its domain and hosting, free for
  the entitlement's days).
- `on_created(ticket, now, text)` (called by tickets.services.create_ticket): the complaint day is
  the creation day in Asia/Jakarta; the ticket is linked to an item when the text names one of the
  customer's domains or sites, or when the customer has exactly one active item in the category's
  product line; then it is evaluated.
- `evaluate_ticket` stores the decision on the ticket (charge, charge_until, cashback_until,
  eligibility) and appends it to the ticket's decision history.
- `effective_tier(customer, day)`: the support tier of a running contract, else the customer's own.
"""
import re

from sqlalchemy import select

from .. import batchcache, bulkrows
from ..auth.i18n import _
from ..customers.models import Customer
from ..errors import DomainError, Forbidden, NotFound
from ..extensions import db
from ..timeutil import utcnow
from . import rules
from .models import ContractPlan, EligibilityDecision, IssueCategory, OwnedItem, Product, ServiceContract

_HOST = re.compile(r"(?<![\w.-])((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24})(?![\w-])", re.I)


# ---------------------------------------------------------------- from rows to the engine's inputs

def product_terms(product):
    return rules.ProductTerms(
        code=product.code, name=product.name, product_line=product.product_line,
        warranty_days=product.warranty_days or 0, cashback_days=product.cashback_days or 0,
        cashback_categories=frozenset(product.cashback_categories or ()),
        bundle=tuple(rules.BundleEntitlement(b["target"], int(b.get("free_days") or rules.DEFAULT_BUNDLE_DAYS))
                     for b in (product.bundle or ())))


def item_terms(item):
    return rules.Item(id=item.id, product=product_terms(item.product), purchase_date=item.purchase_date,
                      activation_date=item.activation_date, status=item.status,
                      bundle_free_until=item.bundle_free_until, identifier=item.identifier,
                      reference=item.reference)


def contract_terms(contract):
    plan = contract.plan
    return rules.Contract(id=contract.id, plan_name=plan.name, start=contract.start, end=contract.end,
                          covers_lines=frozenset(plan.covers_lines or ()),
                          covers_products=frozenset(plan.covers_products or ()), support_tier=plan.support_tier)


def contracts_of(customer_id):
    """The customer's contracts that were not cancelled (the engine picks the one running that day)."""
    return db.session.execute(select(ServiceContract).where(ServiceContract.customer_id == customer_id,
                                                            ServiceContract.cancelled_at.is_(None))
                              .order_by(ServiceContract.id)).scalars().all()


def local_today(now=None):
    return rules.complaint_day(now or utcnow())


def effective_tier(customer, day):
    """The support tier on `day`: the best-covering running contract's plan tier, else the customer's own."""
    terms = [contract_terms(c) for c in contracts_of(customer.id)]
    running = [c for c in terms if c.runs_on(day)]
    if running:
        best = max(running, key=lambda c: (c.end, str(c.id)))
        return best.support_tier or customer.support_tier
    return customer.support_tier


# ---------------------------------------------------------------- items

def _clean_identifier(value):
    """Lower case; a URL becomes its host (without www.), so mentions of the domain find it."""
    value = (value or "").strip().lower()
    if re.match(r"^[a-z][a-z0-9+.-]*://", value):
        value = value.split("://", 1)[1].split("/", 1)[0]
    if value.startswith("www."):
        value = value[4:]
    return value[:255] or None


def _computed(item):
    terms = item_terms(item)
    item.warranty_end = terms.warranty_end
    item.cashback_end = terms.cashback_end


def _bundle_product(target):
    """The catalogue product a bundle entitlement gives: the product with that code, else the first
    active product of that product line."""
    product = db.session.execute(select(Product).where(Product.code == target)).scalar_one_or_none()
    if product is None:
        product = db.session.execute(select(Product).where(Product.product_line == target, Product.active.is_(True))
                                     .order_by(Product.price, Product.id).limit(1)).scalar_one_or_none()
    return product


def create_item(*, customer_id, product_id, purchase_date, activation_date=None, reference=None, identifier=None,
                status="active", with_bundle=True, amount_paid=None, expires_on=None, server=None):
    """A new owned item (and, for a bundling product, its bundled items). Returns the item.
    `expires_on`: the last paid day of a renewable item (None: one-off)."""
    if db.session.get(Customer, customer_id) is None:
        raise NotFound(_("Customer not found."))
    product = db.session.get(Product, product_id)
    if product is None:
        raise DomainError(_("Unknown product."), field="product")
    if status not in rules.ITEM_STATUSES:
        raise DomainError(_("Unknown item status."), field="status")
    if activation_date is not None and activation_date < purchase_date:
        raise DomainError(_("The activation date cannot be before the purchase date."), field="activation_date")
    if amount_paid is not None and (isinstance(amount_paid, bool) or not isinstance(amount_paid, int)
                                    or amount_paid < 0):
        raise DomainError(_("Enter the amount in whole rupiah."), field="amount_paid")
    item = OwnedItem(customer_id=customer_id, product=product, product_id=product.id, purchase_date=purchase_date,
                     activation_date=activation_date, reference=(reference or None), status=status,
                     amount_paid=amount_paid, expires_on=expires_on,
                     identifier=_clean_identifier(identifier), server=((server or "").strip().lower()[:255] or None))
    _computed(item)
    db.session.add(item)
    db.session.flush()
    if with_bundle:
        start = activation_date or purchase_date
        for entitlement in product_terms(product).bundle:
            bundled = _bundle_product(entitlement.target)
            if bundled is None:
                continue
            child = OwnedItem(customer_id=customer_id, product=bundled, product_id=bundled.id,
                              purchase_date=purchase_date, activation_date=activation_date,
                              reference=item.reference, identifier=item.identifier, status=status,
                              server=item.server,
                              bundle_parent_id=item.id, bundle_free_until=entitlement.free_until(start))
            if bundled.term_days:  # a renewable item that came free: it renews, paid, when the free period ends
                child.expires_on = child.bundle_free_until
            _computed(child)
            db.session.add(child)
        db.session.flush()
    return item


SERVER_ROLES = ("technical_support", "admin")


def set_server(item_id, actor_id, server, now=None):
    """Technical support sets (or clears) the server an item runs on, audited (object_type "item");
    its bundled items on the same server move with it. Returns the item."""
    from ..auth.models import User
    from ..tickets.services import audit

    user = db.session.get(User, actor_id)
    if user is None or not any(user.has_role(r) for r in SERVER_ROLES):
        raise Forbidden(_("Only technical support can set an item's server."))
    item = db.session.get(OwnedItem, item_id)
    if item is None:
        raise NotFound(_("Item not found."))
    new = (server or "").strip().lower()[:255] or None
    if new is not None and (any(c.isspace() for c in new) or "/" in new):
        raise DomainError(_("Enter a server name such as srv1.example.co.id."), field="server")
    old = item.server
    if new == old:
        return item
    children = db.session.execute(select(OwnedItem).where(OwnedItem.bundle_parent_id == item.id,
                                                          OwnedItem.server == old)).scalars().all() if old else []
    for it in [item] + children:
        it.server = new
        audit(None, actor_id, "item_server", old, new, object_type="item", object_id=it.id, at=now or utcnow())
    return item


def item_label(item):
    """"Hosting 1 GB · kopimerapi.com (#12)" for the audit trail; None for no item."""
    if item is None:
        return None
    return " · ".join(p for p in (item.product.name, item.identifier) if p) + f" (#{item.id})"


def items_of(customer_id):
    return db.session.execute(select(OwnedItem).where(OwnedItem.customer_id == customer_id)
                              .order_by(OwnedItem.purchase_date.desc(), OwnedItem.id)).scalars().all()


def prefetch_items(customer_ids):
    """Read the items of many customers at once for a batch of inbound mail (helpdesk.batchcache),
    as `guess_item` would one customer at a time."""
    if batchcache.is_open() and customer_ids:
        batchcache.lookup_many("owned_items", list(customer_ids), _items_of_many)


def _items_of_many(customer_ids):
    found = {cid: [] for cid in customer_ids}
    for item in db.session.execute(select(OwnedItem).where(OwnedItem.customer_id.in_(customer_ids))
                                   .order_by(OwnedItem.purchase_date.desc(), OwnedItem.id)).scalars():
        found[item.customer_id].append(item)
    return found


# ---------------------------------------------------------------- tickets

def mentioned_hosts(text):
    """Domain names written in a text, lower case (www. dropped)."""
    out = []
    for m in _HOST.finditer(text or ""):
        host = m.group(1).lower()
        host = host[4:] if host.startswith("www.") else host
        if host not in out:
            out.append(host)
    return out


def guess_item(customer_id, text, category=None):
    """The customer's item a new ticket is about: one whose identifier the text names; else the only
    active item in the category's product line. None when unsure."""
    # (a batch of inbound mail reads each sender's items once; no autoflush: the new ticket need not
    # be written for this read)
    with db.session.no_autoflush:
        items = [i for i in batchcache.lookup("owned_items", customer_id, lambda: items_of(customer_id))
                 if i.status != "cancelled"]
    if not items:  # (most senders: no need to read the text for domain names)
        return None
    hosts = set(mentioned_hosts(text))
    named = [i for i in items if i.identifier and i.identifier in hosts]
    if category is not None and category.product_line:
        # a website and its bundled hosting share the domain: the category's line decides
        named = [i for i in named if i.product.product_line == category.product_line] or named
    if len(named) == 1:
        return named[0]
    if named:
        return None  # several items carry that name (a website and its hosting): an agent decides
    if category is not None and category.product_line:
        active = [i for i in items if i.status == "active" and i.product.product_line == category.product_line]
        if len(active) == 1:
            return active[0]
    return None


def evaluate_ticket(ticket, trigger, actor_id=None, now=None):
    """Evaluate the ticket's eligibility now and store it (on the ticket and in its history)."""
    now = now or utcnow()
    item = db.session.get(OwnedItem, ticket.owned_item_id) if ticket.owned_item_id else None
    category = db.session.get(IssueCategory, ticket.issue_category_id) if ticket.issue_category_id else None
    decision = rules.evaluate(
        item_terms(item) if item is not None else None,
        [contract_terms(c) for c in contracts_of(item.customer_id)] if item is not None else (),
        ticket.complaint_date,
        rules.Category(category.code, category.is_defect) if category is not None else None)
    ticket.charge = decision.charge.code
    ticket.charge_until = decision.charge.until
    ticket.cashback_until = decision.cashback.until if decision.cashback.eligible else None
    ticket.eligibility = decision.as_dict()
    row = dict(ticket_id=ticket.id, created_at=now, actor_user_id=actor_id, trigger=trigger,
               charge=decision.charge.code, rule=decision.charge.rule, cashback_eligible=decision.cashback.eligible,
               snapshot=decision.snapshot())
    if not bulkrows.add(EligibilityDecision, **row):  # (a batch of inbound mail writes them together)
        db.session.add(EligibilityDecision(**row))
    return decision


def on_created(ticket, now, text=""):
    """Intake: the complaint day, a guessed item, the first decision."""
    ticket.complaint_date = rules.complaint_day(now)
    if ticket.owned_item_id is None:
        item = guess_item(ticket.customer_id, f"{ticket.subject}\n{text or ''}")
        if item is not None:
            ticket.owned_item_id = item.id
    evaluate_ticket(ticket, "intake", now=now)


def history(ticket_id):
    return db.session.execute(select(EligibilityDecision).where(EligibilityDecision.ticket_id == ticket_id)
                              .order_by(EligibilityDecision.id)).scalars().all()


def plans():
    return db.session.execute(select(ContractPlan).order_by(ContractPlan.name)).scalars().all()


def add_contract(*, customer_id, plan_id, start, end=None, reference=None):
    """A service contract from `start` for the plan's coverage (or until `end`), both days included."""
    plan = db.session.get(ContractPlan, plan_id)
    if plan is None:
        raise DomainError(_("Unknown contract plan."), field="plan")
    end = end or rules.window_end(start, plan.coverage_days)
    if end < start:
        raise DomainError(_("The contract cannot end before it starts."), field="end")
    contract = ServiceContract(customer_id=customer_id, plan_id=plan.id, plan=plan, start=start, end=end,
                               reference=reference or None)
    db.session.add(contract)
    db.session.flush()
    return contract


# ---------------------------------------------------------------- agents change the inputs

def _ticket_for(actor_id, ticket_id):
    from ..tickets.services import get_ticket_for

    return get_ticket_for(actor_id, ticket_id)


def set_item(ticket_id, actor_id, item_id, now=None):
    """Link the ticket to one of its customer's items (None unlinks), then evaluate again."""
    from ..tickets.services import audit

    user, ticket = _ticket_for(actor_id, ticket_id)
    item = db.session.get(OwnedItem, item_id) if item_id else None
    if item_id and (item is None or item.customer_id != ticket.customer_id):
        raise DomainError(_("That item does not belong to this customer."), field="item")
    if ticket.owned_item_id != (item.id if item else None):
        old = db.session.get(OwnedItem, ticket.owned_item_id) if ticket.owned_item_id else None
        audit(ticket.id, user.id, "owned_item", item_label(old), item_label(item))
        ticket.owned_item_id = item.id if item else None
        evaluate_ticket(ticket, "item", user.id, now)
    return ticket


def set_category(ticket_id, actor_id, category_id, now=None):
    """Set the ticket's issue category, then evaluate again."""
    from ..tickets.services import audit

    user, ticket = _ticket_for(actor_id, ticket_id)
    category = db.session.get(IssueCategory, category_id) if category_id else None
    if category_id and (category is None or not category.active):
        raise DomainError(_("Unknown issue category."), field="category")
    if ticket.issue_category_id != (category.id if category else None):
        audit(ticket.id, user.id, "issue_category", ticket.issue_category_id, category.code if category else None)
        ticket.issue_category_id = category.id if category else None
        evaluate_ticket(ticket, "category", user.id, now)
    return ticket


def set_complaint_date(ticket_id, actor_id, day, reason, now=None):
    """Only technical support changes the complaint day, and only with a reason (audited)."""
    from ..errors import Forbidden
    from ..tickets.services import audit

    user, ticket = _ticket_for(actor_id, ticket_id)
    if not user.has_role("technical_support"):
        raise Forbidden(_("Only technical support can change the complaint date."))
    reason = (reason or "").strip()
    if not reason:
        raise DomainError(_("Give the reason for the new complaint date."), field="reason")
    if day is None:
        raise DomainError(_("Choose a date."), field="complaint_date")
    if day != ticket.complaint_date:
        audit(ticket.id, user.id, "complaint_date", ticket.complaint_date, day, note=reason[:500])
        ticket.complaint_date = day
        evaluate_ticket(ticket, "complaint_date", user.id, now)
    return ticket
