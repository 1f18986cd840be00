"""Leads: capture (with deduplication), stages, activity, follow-up tasks, conversion.

- `capture(...)` is the one way a lead comes in (the public offer form, the support form's
  buying/offer category, marketing's manual entry, a CSV row, the API). The email (lower case) and
  the phone (+62...) identify a person: a capture that matches an existing lead by either is merged
  into it (empty fields filled, product lines added, the notes appended, and a "merged" entry in
  its log with everything that came in), never created twice. A unique index on each makes that
  hold under concurrency too: a capture that loses the race merges. Returns (lead, created).
- Marketing (and admins) manage leads: `update`, `change_stage` (lost needs a reason; won converts),
  `add_activity`, `add_task` / `complete_task`, `convert` (to the customer with the lead's email,
  or a new customer: a converted lead is never a duplicate customer).
- `due_tasks(now)` / `remind(task_id)`: the reminder sweep (helpdesk.leads.jobs).
"""
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from ..auth.i18n import _
from ..auth.models import User
from ..customers import services as customers
from ..errors import DomainError, Forbidden, NotFound
from ..extensions import db
from ..timeutil import utcnow
from .models import LEAD_SOURCES, LEAD_STAGES, PRODUCT_LINES, Lead, LeadActivity, LeadTask

MANAGER_ROLES = ("marketing", "admin")
NAME_MAX, COMPANY_MAX, NOTES_MAX = 200, 200, 5000


# ---------------------------------------------------------------- who

def manager(actor_id):
    """The acting user if they may manage leads (marketing or admin), else Forbidden."""
    user = db.session.get(User, actor_id) if actor_id else None
    if user is None or not user.active or not any(user.has_role(r) for r in MANAGER_ROLES):
        raise Forbidden(_("Only marketing can manage leads."))
    return user


def owner_or_none(owner_id):
    """A marketing agent who can own leads (None for none)."""
    if not owner_id:
        return None
    user = db.session.get(User, owner_id)
    if user is None or not user.active or not user.has_role("marketing"):
        raise DomainError(_("The owner must be an active marketing agent."), field="owner_id")
    return user.id


# ---------------------------------------------------------------- contact details

def clean_contact(email, phone):
    """(email lower-cased or None, phone E.164 or None); DomainError when given but invalid, or when
    neither is given."""
    email = customers.clean_email(email) if (email or "").strip() else None
    phone = customers.clean_phone(phone) if (phone or "").strip() else None
    if email is None and phone is None:
        raise DomainError(_("Give an email address or a phone number."), field="email")
    return email, phone


def clean_lines(lines):
    out = []
    for line in lines or ():
        line = (line or "").strip()
        if line not in PRODUCT_LINES:
            raise DomainError(_("Unknown product line: %(line)s", line=line), field="product_lines")
        if line not in out:
            out.append(line)
    return out


def find_match(email, phone):
    """The existing lead with this email, else with this phone (None when new)."""
    conditions = []
    if email:
        conditions.append(Lead.email == email)
    if phone:
        conditions.append(Lead.phone == phone)
    if not conditions:
        return None
    found = db.session.execute(select(Lead).where(or_(*conditions)).order_by(Lead.id)).scalars().all()
    by_email = next((f for f in found if email and f.email == email), None)
    return by_email or (found[0] if found else None)


def _log(lead, kind, text=None, actor_id=None, data=None, now=None):
    now = now or utcnow()
    entry = LeadActivity(lead_id=lead.id, created_at=now, actor_user_id=actor_id, kind=kind, text=text, data=data)
    db.session.add(entry)
    lead.last_activity_at = now
    return entry


# ---------------------------------------------------------------- capture

def capture(*, name, email=None, phone=None, company=None, source="other", campaign=None, product_lines=(),
            owner_id=None, notes=None, actor_id=None, channel="manual", now=None):
    """A lead from any channel, deduplicated. Returns (lead, created)."""
    now = now or utcnow()
    name = (name or "").strip()[:NAME_MAX]
    if not name:
        raise DomainError(_("A name is required."), field="name")
    if source not in LEAD_SOURCES:
        raise DomainError(_("Unknown source."), field="source")
    email, phone = clean_contact(email, phone)
    fields = {"name": name, "email": email, "phone": phone, "company": (company or "").strip()[:COMPANY_MAX] or None,
              "source": source, "campaign": (campaign or "").strip()[:80] or None,
              "product_lines": clean_lines(product_lines), "owner_id": owner_or_none(owner_id),
              "notes": (notes or "").strip()[:NOTES_MAX] or None}
    existing = find_match(email, phone)
    if existing is None:
        _begin_for_real()
        try:
            with db.session.begin_nested():
                lead = Lead(**fields, stage="new", created_at=now, updated_at=now, stage_changed_at=now,
                            last_activity_at=now)
                db.session.add(lead)
                db.session.flush()
        except IntegrityError:  # the same person captured at the same moment elsewhere: merge into it
            existing = find_match(email, phone)
            if existing is None:
                raise
        else:
            _log(lead, "created", fields["notes"], actor_id,
                 {"channel": channel, "source": source, "campaign": fields["campaign"]}, now)
            return lead, True
    _merge_into(existing, fields, actor_id, channel, now)
    return existing, False


def _begin_for_real():
    """SQLite (pysqlite) opens a transaction only at the first write: a SAVEPOINT before it would be
    the transaction itself, and releasing it would commit the new lead at once (kept even when the
    caller rolls back). Begin the transaction first there."""
    conn = db.session.connection()
    if conn.dialect.name == "sqlite" and not conn.connection.dbapi_connection.in_transaction:
        conn.exec_driver_sql("BEGIN")


def _merge_into(lead, fields, actor_id, channel, now):
    """What a duplicate capture brings: empty fields are filled, product lines added, notes appended;
    the log keeps everything it said."""
    filled = []
    for key in ("company", "email", "phone", "campaign", "owner_id"):
        if fields.get(key) and not getattr(lead, key):
            if key in ("email", "phone") and _taken(key, fields[key], lead.id):
                continue
            setattr(lead, key, fields[key])
            filled.append(key)
    new_lines = [ln for ln in fields["product_lines"] if ln not in (lead.product_lines or [])]
    if new_lines:
        lead.product_lines = list(lead.product_lines or []) + new_lines
        filled.append("product_lines")
    if fields.get("notes"):
        lead.notes = ((lead.notes + "\n\n") if lead.notes else "") + fields["notes"]
        lead.notes = lead.notes[-NOTES_MAX:]
    lead.merge_count = (lead.merge_count or 0) + 1
    lead.updated_at = now
    came = {k: v for k, v in fields.items() if v not in (None, [], "")}
    _log(lead, "merged", fields.get("notes"), actor_id, {"channel": channel, "came_in": came, "filled": filled}, now)
    db.session.flush()


def _taken(key, value, lead_id):
    column = Lead.email if key == "email" else Lead.phone
    return db.session.execute(select(Lead.id).where(column == value, Lead.id != lead_id)).first() is not None


# ---------------------------------------------------------------- marketing's work

def get_lead(lead_id):
    lead = db.session.get(Lead, lead_id)
    if lead is None:
        raise NotFound(_("Lead not found."))
    return lead


def update(lead_id, actor_id, *, name, company=None, email=None, phone=None, source, campaign=None,
           product_lines=(), owner_id=None, notes=None, now=None):
    """Marketing edits a lead; a changed email or phone must not belong to another lead."""
    now = now or utcnow()
    user = manager(actor_id)
    lead = get_lead(lead_id)
    name = (name or "").strip()[:NAME_MAX]
    if not name:
        raise DomainError(_("A name is required."), field="name")
    if source not in LEAD_SOURCES:
        raise DomainError(_("Unknown source."), field="source")
    email, phone = clean_contact(email, phone)
    for key, value in (("email", email), ("phone", phone)):
        if value and _taken(key, value, lead.id):
            raise DomainError(_("Another lead already has this %(what)s.", what=key), field=key)
    changes = {}
    new = {"name": name, "company": (company or "").strip()[:COMPANY_MAX] or None, "email": email, "phone": phone,
           "source": source, "campaign": (campaign or "").strip()[:80] or None,
           "product_lines": clean_lines(product_lines), "owner_id": owner_or_none(owner_id),
           "notes": (notes or "").strip()[:NOTES_MAX] or None}
    for key, value in new.items():
        if getattr(lead, key) != value:
            changes[key] = [getattr(lead, key), value]
            setattr(lead, key, value)
    if changes:
        lead.updated_at = now
        _log(lead, "edited", None, user.id, {"changes": {k: [str(a) if a is not None else None,
                                                               str(b) if b is not None else None]
                                                           for k, (a, b) in changes.items()}}, now)
    return lead


def change_stage(lead_id, actor_id, stage, reason=None, now=None):
    """new → contacted → offer sent → won / lost (lost needs a reason; won converts the lead)."""
    user = manager(actor_id)
    return set_stage(get_lead(lead_id), stage, user.id, reason, now)


def set_stage(lead, stage, actor_id=None, reason=None, now=None):
    """The stage change itself, for marketing (change_stage) and for the sales side (an offer sent,
    an offer accepted by the customer: actor_id None)."""
    now = now or utcnow()
    if stage not in LEAD_STAGES:
        raise DomainError(_("Unknown stage."), field="stage")
    if stage == lead.stage:
        return lead
    reason = (reason or "").strip()[:500] or None
    if stage == "lost" and not reason:
        raise DomainError(_("Say why the lead was lost."), field="reason")
    old = lead.stage
    lead.stage, lead.stage_changed_at, lead.updated_at = stage, now, now
    stamp = {"contacted": "contacted_at", "offer_sent": "offer_sent_at", "won": "won_at", "lost": "lost_at"}.get(stage)
    if stamp and getattr(lead, stamp) is None:
        setattr(lead, stamp, now)
    lead.lost_reason = reason if stage == "lost" else None
    _log(lead, "stage", reason, actor_id, {"from": old, "to": stage}, now)
    if stage == "won" and lead.customer_id is None:
        to_customer(lead, actor_id, now)
    return lead


ACTIVITY_KINDS = ("note", "call", "email", "meeting", "chat")


def add_activity(lead_id, actor_id, kind, text, now=None):
    """A contact or a note in the lead's log; a contact moves a new lead to contacted."""
    now = now or utcnow()
    user = manager(actor_id)
    lead = get_lead(lead_id)
    if kind not in ACTIVITY_KINDS:
        raise DomainError(_("Unknown activity."), field="kind")
    text = (text or "").strip()[:NOTES_MAX]
    if not text:
        raise DomainError(_("Write what happened."), field="text")
    entry = _log(lead, kind, text, user.id, None, now)
    if kind != "note" and lead.stage == "new":
        change_stage(lead.id, user.id, "contacted", now=now)
    return entry


def add_task(lead_id, actor_id, title, due_at, owner_id=None, now=None):
    """A follow-up due at `due_at` (UTC), for its owner (the lead's owner, else the creator)."""
    now = now or utcnow()
    user = manager(actor_id)
    lead = get_lead(lead_id)
    title = (title or "").strip()[:300]
    if not title:
        raise DomainError(_("Say what to do."), field="title")
    if due_at is None:
        raise DomainError(_("Choose when it is due."), field="due_at")
    owner = owner_or_none(owner_id) or lead.owner_id or user.id
    task = LeadTask(lead_id=lead.id, title=title, due_at=due_at, owner_id=owner, created_by_id=user.id,
                    created_at=now)
    db.session.add(task)
    db.session.flush()
    _log(lead, "task", title, user.id, {"task_id": task.id, "due_at": due_at.isoformat()}, now)
    return task


def complete_task(task_id, actor_id, now=None):
    now = now or utcnow()
    user = manager(actor_id)
    task = db.session.get(LeadTask, task_id)
    if task is None:
        raise NotFound(_("Task not found."))
    if task.done_at is None:
        task.done_at, task.done_by_id = now, user.id
        _log(get_lead(task.lead_id), "task_done", task.title, user.id, {"task_id": task.id}, now)
    return task


def convert(lead_id, actor_id, now=None):
    """Marketing converts the lead to a customer (see to_customer). Returns the customer."""
    user = manager(actor_id)
    return to_customer(get_lead(lead_id), user.id, now)


def to_customer(lead, actor_id=None, now=None):
    """The lead becomes a customer: the customer with the lead's email, else the one with its phone,
    else a new one (never a duplicate). Returns the customer."""
    from ..customers.models import Customer

    now = now or utcnow()
    if lead.customer_id is not None:
        return db.session.get(Customer, lead.customer_id)
    customer = customers.find_by_email(lead.email) if lead.email else None
    linked = customer is not None
    if customer is None and lead.phone:
        customer = db.session.execute(select(Customer).where(Customer.phone == lead.phone,
                                                             Customer.merged_into_id.is_(None))
                                      .order_by(Customer.id).limit(1)).scalar_one_or_none()
        linked = customer is not None
    if customer is None:
        if not lead.email:
            raise DomainError(_("A lead needs an email address to become a customer."), field="email")
        customer = customers.create_customer(name=lead.name, emails=[lead.email], phone=lead.phone,
                                             kind="b2b" if lead.company else "b2c")
    lead.customer_id = customer.id
    lead.updated_at = now
    from ..subscriptions.services import carry_over

    carry_over(lead.id, customer.id, now)  # what the prospect subscribed to (or refused) stays true
    _log(lead, "converted", None, actor_id, {"customer_id": customer.id, "linked": linked}, now)
    return customer


def leads_of_customer(customer_id):
    """The leads that became this customer (their history shows on the customer page)."""
    return db.session.execute(select(Lead).where(Lead.customer_id == customer_id).order_by(Lead.id)).scalars().all()


def activity(lead_id):
    return db.session.execute(select(LeadActivity).where(LeadActivity.lead_id == lead_id)
                              .order_by(LeadActivity.id.desc())).scalars().all()


def tasks_of(lead_id):
    return db.session.execute(select(LeadTask).where(LeadTask.lead_id == lead_id)
                              .order_by(LeadTask.done_at.is_not(None), LeadTask.due_at)).scalars().all()


# ---------------------------------------------------------------- reminders

def due_tasks(now, limit=500):
    """Undone tasks due by `now` whose owner was not reminded yet (a partial index)."""
    return db.session.execute(select(LeadTask.id).where(LeadTask.done_at.is_(None), LeadTask.reminded_at.is_(None),
                                                        LeadTask.due_at <= now)
                              .order_by(LeadTask.due_at, LeadTask.id).limit(limit)).scalars().all()
