"""JSON API v1 (token auth): thin views that parse JSON, call the ticket services, commit, answer JSON."""
from datetime import datetime, timezone

from flask import Blueprint, current_app, jsonify, request, session, url_for
from sqlalchemy import and_, func, or_, select

from ..customers import services as customer_services
from ..errors import DomainError, Forbidden, NotFound
from ..extensions import db
from ..leads import services as lead_services
from ..leads.models import LEAD_SOURCES, LEAD_STAGES, Lead
from ..tickets import listing, services, states
from ..tickets.models import CHANNELS, PRIORITIES, Attachment, Ticket
from ..tickets.views import send_attachment
from . import auth, parsing, serializers
from .openapi import INVOICE_SOURCES, SCHEMAS, document

bp = Blueprint("api", __name__, url_prefix="/api/v1")

PUBLIC_ENDPOINTS = {"api.openapi"}
MAX_LIMIT = 100


def _fields(schema):
    """The properties a request-body schema of openapi.py allows: the document is the one list."""
    return set(SCHEMAS[schema]["properties"])


@bp.before_request
def _authenticate():
    """Every endpoint but the OpenAPI document needs a bearer token."""
    if request.endpoint not in PUBLIC_ENDPOINTS:
        return auth.authenticate()
    return None


@bp.after_request
def _no_cookies(resp):
    """API answers never set a cookie and are never cached by intermediaries."""
    session.modified = False
    resp.headers.setdefault("Cache-Control", "no-store")
    return resp


@bp.errorhandler(DomainError)
def _domain_error(exc):
    """A broken rule or bad input: roll back and answer {"error": {code, message[, field, details]}}."""
    db.session.rollback()
    body = {"code": exc.status_code, "message": exc.message}
    details = dict(exc.details)
    if "field" in details:
        body["field"] = details.pop("field")
    if details:
        body["details"] = details
    return jsonify({"error": body}), exc.status_code


def _ticket(number):
    """The visible ticket with this number (an old number of a merged ticket leads to the merged one)."""
    ticket = services.resolve_number(number)
    if ticket is None:
        raise NotFound("Ticket not found.")
    services.get_ticket_for(auth.current_user_id(), ticket.id)
    return ticket


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3.1 description of this API (no token needed)."""
    return jsonify(document())


@bp.get("/tickets")
def list_tickets():
    """Tickets the agent may see, filtered, newest activity first, with keyset pagination."""
    user = services.get_user(auth.current_user_id())
    params = listing.ListParams(
        status=parsing.query_choice("status", ("any", *states.STATUSES)),
        priority=parsing.query_choice("priority", PRIORITIES),
        channel=parsing.query_choice("channel", CHANNELS),
        sort=parsing.query_choice("sort", tuple(listing.SORTS), default="-last_activity"),
        tag=(request.args.get("tag") or "").strip(),
        q=(request.args.get("q") or "").strip(),
        cursor=(request.args.get("cursor") or "").strip(),
        page_size=parsing.query_int("limit", min(current_app.config["PAGE_SIZE"], MAX_LIMIT), 1, MAX_LIMIT),
    )
    if params.cursor and listing.decode_cursor(params.cursor) is None:
        raise parsing.BadRequest("The parameter 'cursor' is not a cursor this API returned.", field="cursor")
    assignee = (request.args.get("assignee") or "").strip()
    if assignee == "me":
        assignee = str(user.id)
    if assignee and assignee != "none" and not assignee.isdigit():
        raise parsing.BadRequest("The parameter 'assignee' must be an agent id, \"me\" or \"none\".",
                                 field="assignee")
    params.assignee = assignee
    queue = (request.args.get("queue") or "").strip()
    if queue:
        params.queue_id = parsing.queue_id_from(queue)
        params.view = f"queue:{params.queue_id}"
    page = listing.list_tickets(params, user, services.visibility_clause(user))
    next_url = None
    if page.next_cursor:
        args = {k: v for k, v in request.args.items() if k != "cursor"}
        next_url = url_for("api.list_tickets", _external=True, **args, cursor=page.next_cursor)
    return jsonify({"items": [serializers.ticket_summary(t) for t in page.items], "next": next_url})


@bp.post("/tickets")
def create_ticket():
    """Open a ticket on behalf of a customer found (or created) by email."""
    data = parsing.json_body(_fields("TicketCreate"))
    customer = parsing.get_field(data, "customer", dict, required=True)
    unknown = sorted(set(customer) - set(SCHEMAS["TicketCreate"]["properties"]["customer"]["properties"]))
    if unknown:
        raise parsing.BadRequest(f"Unknown customer field(s): {', '.join(unknown)}.", field="customer")
    user_id = auth.current_user_id()
    cust, _new = customer_services.find_or_create(
        email=parsing.get_field(customer, "email", str, required=True),
        name=parsing.get_field(customer, "name", str), phone=parsing.get_field(customer, "phone", str))
    ticket = services.create_ticket(
        customer_id=cust.id, actor_id=user_id,
        queue_id=parsing.queue_id_from(parsing.get_field(data, "queue", (int, str), required=True)),
        channel=parsing.get_field(data, "channel", str, default="web", choices=CHANNELS),
        subject=parsing.get_field(data, "subject", str, required=True),
        body_text=parsing.get_field(data, "body", str, default=""),
        body_html=parsing.get_field(data, "body_html", str),
        priority=parsing.get_field(data, "priority", str, default="normal", choices=PRIORITIES),
        tags=_tags(data) or (),
        assignee_id=parsing.assignee_from(data.get("assignee"), user_id),
        files=parsing.attachments_from(data))
    db.session.commit()
    return _created(serializers.ticket_detail(ticket), ticket.number)


@bp.get("/tickets/<int:number>")
def get_ticket(number):
    """One ticket with its replies, internal notes and attachment metadata."""
    return jsonify(serializers.ticket_detail(_ticket(number)))


@bp.patch("/tickets/<int:number>")
def update_ticket(number):
    """Change status, priority, tags, queue (with a handover note) and assignee, all or nothing."""
    ticket = _ticket(number)  # visibility first: an invisible ticket is 404 whatever the body
    data = parsing.json_body(_fields("TicketUpdate"))
    if "note" in data and "queue" not in data:
        raise parsing.BadRequest("'note' is the handover note of a queue change; send it with 'queue'.",
                                 field="note")
    if not data:
        raise parsing.BadRequest("Nothing to change: send status, priority, tags, queue or assignee.")
    user_id = auth.current_user_id()
    if "status" in data:
        services.change_status(ticket.id, user_id, parsing.get_field(data, "status", str, choices=states.STATUSES))
    if "priority" in data:
        services.change_priority(ticket.id, user_id, parsing.get_field(data, "priority", str, choices=PRIORITIES))
    if "tags" in data:
        services.set_tags(ticket.id, user_id, _tags(data))
    if "queue" in data:
        services.transfer(ticket.id, user_id, parsing.queue_id_from(data["queue"]),
                          parsing.get_field(data, "note", str, default=""))
    if "assignee" in data:
        if not services.can_see(services.get_user(user_id), ticket):
            raise Forbidden("You cannot assign a ticket in a queue you are not a member of.", field="assignee")
        services.assign(ticket.id, user_id, parsing.assignee_from(data["assignee"], user_id))
    db.session.commit()
    return jsonify(serializers.ticket_detail(db.session.get(Ticket, ticket.id)))


@bp.post("/tickets/<int:number>/messages")
def add_message(number):
    """A public reply to the customer or an internal note, optionally changing the status."""
    ticket = _ticket(number)
    data = parsing.json_body(_fields("MessageCreate"))
    msg = services.add_agent_message(
        ticket.id, auth.current_user_id(),
        kind=parsing.get_field(data, "kind", str, default="reply", choices=("reply", "note")),
        body_text=parsing.get_field(data, "body", str, default=""),
        body_html=parsing.get_field(data, "body_html", str),
        status=parsing.get_field(data, "status", str, choices=states.STATUSES),
        files=parsing.attachments_from(data),
        seen_last_message_id=parsing.get_field(data, "seen_last_message_id", int),
        force=parsing.get_field(data, "force", bool, default=False))
    db.session.commit()
    return _created(serializers.message_json(msg), ticket.number)


@bp.get("/attachments/<int:attachment_id>")
def download_attachment(attachment_id):
    """The file itself, as a download with safe headers, for agents who may see its ticket."""
    att = db.session.get(Attachment, attachment_id)
    if att is None:
        raise NotFound("Attachment not found.")
    try:
        services.get_ticket_for(auth.current_user_id(), att.ticket_id)
    except NotFound as exc:
        raise NotFound("Attachment not found.") from exc
    return send_attachment(att)


# ---------------------------------------------------------------- leads (marketing and admins)

LEAD_SORT = (Lead.last_activity_at.desc(), Lead.id.desc())


def _lead_manager():
    """The token's user if they manage leads (marketing or admin), else 403."""
    return lead_services.manager(auth.current_user_id())


def _since(name):
    """An ISO 8601 date-time query parameter as naive UTC (a zone-less value is UTC), or None."""
    raw = (request.args.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise parsing.BadRequest(f"The parameter '{name}' must be an ISO 8601 date-time, "
                                 "e.g. 2026-11-29T08:00:00Z.", field=name) from None
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def _lead_conditions(user):
    conds = []
    stage = parsing.query_choice("stage", LEAD_STAGES)
    if stage:
        conds.append(Lead.stage == stage)
    source = parsing.query_choice("source", LEAD_SOURCES)
    if source:
        conds.append(Lead.source == source)
    campaign = (request.args.get("campaign") or "").strip()
    if campaign:
        conds.append(func.lower(Lead.campaign) == campaign.lower())
    owner = (request.args.get("owner") or "").strip()
    if owner == "none":
        conds.append(Lead.owner_id.is_(None))
    elif owner:
        if owner != "me" and not owner.isdigit():
            raise parsing.BadRequest("The parameter 'owner' must be an agent id, \"me\" or \"none\".", field="owner")
        conds.append(Lead.owner_id == (user.id if owner == "me" else int(owner)))
    since = _since("updated_since")
    if since is not None:
        conds.append(Lead.updated_at >= since)
    q = (request.args.get("q") or "").strip().lower()
    if q:
        conds.append(or_(*(func.lower(col).contains(q, autoescape=True)
                           for col in (Lead.name, Lead.company, Lead.email, Lead.phone, Lead.campaign))))
    return conds


@bp.get("/leads")
def list_leads():
    """Leads, filtered, most recent activity first, with keyset pagination (like the tickets)."""
    user = _lead_manager()
    conds = _lead_conditions(user)
    limit = parsing.query_int("limit", min(current_app.config["PAGE_SIZE"], MAX_LIMIT), 1, MAX_LIMIT)
    cursor = (request.args.get("cursor") or "").strip()
    if cursor:
        cur = listing.decode_cursor(cursor)
        if cur is None:
            raise parsing.BadRequest("The parameter 'cursor' is not a cursor this API returned.", field="cursor")
        at, last_id = cur
        conds.append(or_(Lead.last_activity_at < at, and_(Lead.last_activity_at == at, Lead.id < last_id)))
    rows = db.session.execute(select(Lead).where(*conds).order_by(*LEAD_SORT).limit(limit + 1)).scalars().all()
    next_url = None
    if len(rows) > limit:
        rows = rows[:limit]
        args = {k: v for k, v in request.args.items() if k != "cursor"}
        next_url = url_for("api.list_leads", _external=True, **args,
                           cursor=listing.encode_cursor(rows[-1].last_activity_at, rows[-1].id))
    return jsonify({"items": [serializers.lead_json(lead) for lead in rows], "next": next_url})


@bp.post("/leads")
def create_lead():
    """Capture a lead (the SMS gateway, the chat widget, the social-media inbox): created (201) or
    merged into the same person's lead (200), found by email or phone."""
    user = _lead_manager()
    data = parsing.json_body(_fields("LeadCreate"))
    lines = parsing.get_field(data, "product_lines", list, default=[])
    if not all(isinstance(line, str) for line in lines):
        raise parsing.BadRequest("The field 'product_lines' must be a list of strings.", field="product_lines")
    text = {name: parsing.get_field(data, name, str, nullable=True)
            for name in ("company", "email", "phone", "campaign", "notes")}
    lead, created = lead_services.capture(
        name=parsing.get_field(data, "name", str, required=True),
        source=parsing.get_field(data, "source", str, default="other", choices=LEAD_SOURCES),
        product_lines=lines, actor_id=user.id, channel="api", **text)
    db.session.commit()
    resp = jsonify({"lead": serializers.lead_json(lead), "result": "created" if created else "merged"})
    resp.status_code = 201 if created else 200
    if created:
        resp.headers["Location"] = url_for("api.get_lead", lead_id=lead.id, _external=True)
    return resp


@bp.get("/leads/<int:lead_id>")
def get_lead(lead_id):
    """One lead with its activity log (newest first)."""
    _lead_manager()
    lead = lead_services.get_lead(lead_id)
    return jsonify({**serializers.lead_json(lead),
                    "activity": [serializers.lead_activity_json(a) for a in lead_services.activity(lead.id)]})


def _created(body, number):
    """A 201 answer whose Location is the ticket."""
    resp = jsonify(body)
    resp.status_code = 201
    resp.headers["Location"] = url_for("api.get_ticket", number=number, _external=True)
    return resp


def _tags(data):
    tags = parsing.get_field(data, "tags", list)
    if tags is not None and not all(isinstance(t, str) for t in tags):
        raise parsing.BadRequest("The field 'tags' must be a list of strings.", field="tags")
    return tags


# ---------------------------------------------------------------- invoices (billing and admins)

INVOICE_OPEN = ("unpaid", "partially_paid")


def _invoice_reader():
    """The token's user if they may read invoices (billing or admin), else 403."""
    user = services.get_user(auth.current_user_id())
    if not (user.has_role("billing") or user.has_role("admin")):
        raise Forbidden("Invoices are for the billing team and admins.")
    return user


def _date_param(name):
    """A YYYY-MM-DD query parameter, or None."""
    from datetime import date

    raw = (request.args.get(name) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise parsing.BadRequest(f"The parameter '{name}' must be a date, e.g. 2026-12-31.", field=name) from None


def _invoice_conditions():
    from ..billing.models import INVOICE_STATUSES, Invoice, Payment

    conds = []
    status = parsing.query_choice("status", ("open", *INVOICE_STATUSES))
    if status == "open":
        conds.append(Invoice.status.in_(INVOICE_OPEN))
    elif status:
        conds.append(Invoice.status == status)
    customer = (request.args.get("customer") or "").strip()
    if customer:
        if not customer.isdigit():
            raise parsing.BadRequest("The parameter 'customer' must be a customer id.", field="customer")
        conds.append(Invoice.customer_id == int(customer))
    source = parsing.query_choice("source", INVOICE_SOURCES)
    if source:
        conds.append(Invoice.source_type == source)
    due_before = _date_param("due_before")
    if due_before is not None:
        conds.append(Invoice.due_on < due_before)
    since = _since("updated_since")
    if since is not None:
        paid = select(Payment.id).where(Payment.invoice_id == Invoice.id,
                                        or_(Payment.recorded_at >= since, Payment.confirmed_at >= since))
        conds.append(or_(Invoice.created_at >= since, Invoice.paid_at >= since, Invoice.voided_at >= since,
                         paid.exists()))
    number = (request.args.get("number") or "").strip()
    if number:
        conds.append(Invoice.number == number.upper())
    return conds


def _invoice_cursor(invoice_id):
    """An opaque keyset cursor: the last invoice id of the page."""
    import base64

    return base64.urlsafe_b64encode(f"invoice|{invoice_id}".encode()).decode().rstrip("=")


def _invoice_after(cursor):
    """The invoice id of a cursor `_invoice_cursor` made, or a 400."""
    import base64

    try:
        kind, _sep, value = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().partition("|")
        if kind == "invoice" and value.isdigit():
            return int(value)
    except (ValueError, UnicodeDecodeError):
        pass
    raise parsing.BadRequest("The parameter 'cursor' is not a cursor this API returned.", field="cursor")


@bp.get("/invoices")
def list_invoices():
    """Invoices, filtered, newest first, with keyset pagination (like the tickets)."""
    from sqlalchemy.orm import selectinload

    from ..billing.models import Invoice
    from ..customers.models import Customer

    _invoice_reader()
    conds = _invoice_conditions()
    limit = parsing.query_int("limit", min(current_app.config["PAGE_SIZE"], MAX_LIMIT), 1, MAX_LIMIT)
    cursor = (request.args.get("cursor") or "").strip()
    if cursor:
        conds.append(Invoice.id < _invoice_after(cursor))
    rows = db.session.execute(select(Invoice).where(*conds).order_by(Invoice.id.desc()).limit(limit + 1)
                              ).scalars().all()
    next_url = None
    if len(rows) > limit:
        rows = rows[:limit]
        args = {k: v for k, v in request.args.items() if k != "cursor"}
        next_url = url_for("api.list_invoices", _external=True, **args, cursor=_invoice_cursor(rows[-1].id))
    ids = {inv.customer_id for inv in rows}
    customers = {c.id: c for c in db.session.execute(
        select(Customer).options(selectinload(Customer.emails)).where(Customer.id.in_(ids))).scalars()} if ids else {}
    return jsonify({"items": [serializers.invoice_json(inv, customers.get(inv.customer_id)) for inv in rows],
                    "next": next_url})


@bp.get("/invoices/<path:invoice_number>")
def get_invoice(invoice_number):
    """One invoice by its number (INV/2026/000123, the slashes as they are or URL-encoded), with its
    lines, totals and payments."""
    from urllib.parse import unquote

    from ..billing import services as billing
    from ..customers.models import Customer

    _invoice_reader()
    number = unquote(invoice_number).strip().upper()
    invoice = billing.by_number(number)
    if invoice is None:
        raise NotFound("Invoice not found.")
    return jsonify(serializers.invoice_detail(invoice, db.session.get(Customer, invoice.customer_id)))

