"""JSON API v1 (token auth): thin views that parse JSON, call the ticket services, commit, answer JSON."""
from flask import Blueprint, current_app, jsonify, request, session, url_for

from ..customers import services as customer_services
from ..errors import DomainError, Forbidden, NotFound
from ..extensions import db
from ..tickets import listing, services, states
from ..tickets.models import CHANNELS, PRIORITIES, Attachment, Ticket
from ..tickets.views import send_attachment
from . import auth, parsing, serializers
from .openapi import SCHEMAS, document

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
