"""The OpenAPI 3.1 document of API v1, served at /api/v1/openapi.json.

tests/integration/test_api.py checks that every route of the `api` blueprint is described here and
that nothing here lacks a route, so a new endpoint cannot ship undocumented.
"""
import copy

from ..leads.models import LEAD_SOURCES, LEAD_STAGES, PRODUCT_LINES
from ..tickets.models import CHANNELS, PRIORITIES
from ..tickets.states import STATUSES
from ..warranty.rules import CHARGE_CODES


def _ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema, description):
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(name):
    return {"$ref": f"#/components/responses/{name}"}


def _nullable(schema):
    return {"oneOf": [schema, {"type": "null"}]}


DATETIME = {"type": "string", "format": "date-time", "description": "UTC, ISO 8601 with a Z."}
NULL_DATETIME = {"type": ["string", "null"], "format": "date-time", "description": "UTC, ISO 8601 with a Z."}
STATUS = {"type": "string", "enum": list(STATUSES)}
PRIORITY = {"type": "string", "enum": list(PRIORITIES)}
CHANNEL = {"type": "string", "enum": list(CHANNELS)}
QUEUE_REF = {"oneOf": [{"type": "integer"}, {"type": "string"}], "description": "A queue id or slug."}

NUMBER_PARAM = {"name": "number", "in": "path", "required": True, "schema": {"type": "integer"},
                "description": "The ticket number (an old number of a merged ticket leads to the merged one)."}

LIST_PARAMS = [
    {"name": "status", "in": "query", "schema": {"type": "string", "enum": ["any", *STATUSES]},
     "description": "One status, or `any`. Default: the open statuses (new, open, pending_customer, "
                    "pending_billing)."},
    {"name": "queue", "in": "query", "schema": {"type": "string"}, "description": "A queue id or slug."},
    {"name": "assignee", "in": "query", "schema": {"type": "string"},
     "description": "An agent id, `me`, or `none` for unassigned tickets."},
    {"name": "channel", "in": "query", "schema": CHANNEL},
    {"name": "priority", "in": "query", "schema": PRIORITY},
    {"name": "tag", "in": "query", "schema": {"type": "string"}},
    {"name": "q", "in": "query", "schema": {"type": "string"},
     "description": "Full-text search: ticket number (`1234` or `#1234`), words of the subject or messages, "
                    "customer name or email."},
    {"name": "sort", "in": "query",
     "schema": {"type": "string", "enum": ["-last_activity", "last_activity", "-created", "created"],
                "default": "-last_activity"}},
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 25}},
    {"name": "cursor", "in": "query", "schema": {"type": "string"},
     "description": "Opaque keyset cursor; follow the `next` URL of the previous page instead of building it."},
]

LEAD_ID_PARAM = {"name": "lead_id", "in": "path", "required": True, "schema": {"type": "integer"}}

LEAD_LIST_PARAMS = [
    {"name": "stage", "in": "query", "schema": {"type": "string", "enum": list(LEAD_STAGES)}},
    {"name": "source", "in": "query", "schema": {"type": "string", "enum": list(LEAD_SOURCES)}},
    {"name": "campaign", "in": "query", "schema": {"type": "string"},
     "description": "The campaign or promo code (any letter case)."},
    {"name": "owner", "in": "query", "schema": {"type": "string"},
     "description": "An agent id, `me`, or `none` for leads without an owner."},
    {"name": "updated_since", "in": "query", "schema": {"type": "string", "format": "date-time"},
     "description": "Only leads changed (created, merged into, edited) at or after this time; ISO 8601, "
                    "UTC when no zone is given."},
    {"name": "q", "in": "query", "schema": {"type": "string"},
     "description": "Words of the name, company, email, phone or campaign."},
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 25}},
    {"name": "cursor", "in": "query", "schema": {"type": "string"},
     "description": "Opaque keyset cursor; follow the `next` URL of the previous page instead of building it."},
]

LEAD_SOURCE = {"type": "string", "enum": list(LEAD_SOURCES)}
PRODUCT_LINE = {"type": "string", "enum": list(PRODUCT_LINES)}

SCHEMAS = {
    "Error": {
        "type": "object", "required": ["error"],
        "properties": {"error": {
            "type": "object", "required": ["code", "message"],
            "properties": {
                "code": {"type": "integer", "description": "The HTTP status code."},
                "message": {"type": "string", "description": "What went wrong, in plain words."},
                "field": {"type": "string", "description": "The request field at fault, when there is one."},
                "details": {"type": "object", "description": "More facts, e.g. `new_message_ids` on a conflict."},
            }}},
    },
    "QueueRef": {"type": "object", "required": ["id", "slug", "name"],
                 "properties": {"id": {"type": "integer"}, "slug": {"type": "string"}, "name": {"type": "string"}}},
    "AgentRef": {"type": "object", "required": ["id", "name", "email"],
                 "properties": {"id": {"type": "integer"}, "name": {"type": "string"}, "email": {"type": "string"}}},
    "CustomerRef": {"type": "object", "required": ["id", "name", "email"],
                    "properties": {"id": {"type": "integer"}, "name": {"type": "string"},
                                   "email": {"type": ["string", "null"]}}},
    "Ticket": {
        "type": "object",
        "required": ["number", "subject", "status", "priority", "channel", "queue", "assignee", "customer", "tags",
                     "message_count", "created_at", "last_activity_at", "url"],
        "properties": {
            "number": {"type": "integer"}, "subject": {"type": "string"}, "status": STATUS,
            "priority": PRIORITY, "channel": CHANNEL, "queue": _ref("QueueRef"),
            "assignee": _nullable(_ref("AgentRef")), "customer": _ref("CustomerRef"),
            "tags": {"type": "array", "items": {"type": "string"}},
            "message_count": {"type": "integer"},
            "last_message_preview": {"type": ["string", "null"]},
            "customer_replied": {"type": "boolean",
                                 "description": "The customer wrote while the ticket was pending billing."},
            "created_at": DATETIME, "last_activity_at": DATETIME, "first_response_at": NULL_DATETIME,
            "last_customer_message_at": NULL_DATETIME, "last_agent_message_at": NULL_DATETIME,
            "resolved_at": NULL_DATETIME, "closed_at": NULL_DATETIME,
            "eligibility": _nullable(_ref("Eligibility")),
            "url": {"type": "string", "format": "uri", "description": "This ticket in the API."},
        },
    },
    "Eligibility": {
        "type": "object", "required": ["charge", "rule", "until", "explanation", "cashback"],
        "description": "Who pays for the service and whether the cashback guarantee can be claimed, as last "
                       "evaluated (at intake and whenever the linked item, the issue category or the complaint "
                       "date changed). Null when the ticket was never evaluated.",
        "properties": {
            "charge": {"type": "string", "enum": list(CHARGE_CODES)},
            "rule": {"type": "string", "description": "The rule that decided, e.g. warranty_period, contract:12."},
            "until": {"type": ["string", "null"], "format": "date", "description": "The last free day."},
            "explanation": _ref("TwoLanguages"),
            "cashback": {
                "type": "object", "required": ["eligible", "until", "days_left", "reason"],
                "properties": {
                    "eligible": {"type": "boolean"},
                    "until": {"type": ["string", "null"], "format": "date",
                              "description": "The last day of the cashback window (Asia/Jakarta)."},
                    "days_left": {"type": ["integer", "null"],
                                  "description": "Whole days after the complaint day (0 on the last day)."},
                    "reason": _ref("TwoLanguages"),
                },
            },
        },
    },
    "TwoLanguages": {"type": "object", "required": ["id", "en"],
                     "properties": {"id": {"type": "string"}, "en": {"type": "string"}}},
    "TicketDetail": {
        "allOf": [_ref("Ticket"), {
            "type": "object", "required": ["messages", "allowed_statuses", "linked_ticket"],
            "properties": {
                "linked_ticket": {"type": ["integer", "null"],
                                  "description": "The closed ticket this one follows up, if any."},
                "allowed_statuses": {"type": "array", "items": STATUS,
                                     "description": "The statuses the workflow allows from the current one."},
                "messages": {"type": "array", "items": _ref("Message")},
            }}],
    },
    "TicketList": {
        "type": "object", "required": ["items", "next"],
        "properties": {"items": {"type": "array", "items": _ref("Ticket")},
                       "next": {"type": ["string", "null"], "format": "uri",
                                "description": "Absolute URL of the next page, or null on the last page."}},
    },
    "Lead": {
        "type": "object",
        "required": ["id", "name", "email", "phone", "source", "stage", "product_lines", "created_at", "url"],
        "description": "A prospect. One person is one lead: the email (lower case) and the phone (E.164) "
                       "are each unique among leads.",
        "properties": {
            "id": {"type": "integer"}, "name": {"type": "string"}, "company": {"type": ["string", "null"]},
            "email": {"type": ["string", "null"], "description": "Lower case."},
            "phone": {"type": ["string", "null"], "description": "E.164, e.g. +6281234567890."},
            "source": LEAD_SOURCE,
            "campaign": {"type": ["string", "null"], "description": "The campaign or promo code."},
            "product_lines": {"type": "array", "items": PRODUCT_LINE},
            "stage": {"type": "string", "enum": list(LEAD_STAGES)},
            "lost_reason": {"type": ["string", "null"]},
            "owner": _nullable(_ref("AgentRef")),
            "customer_id": {"type": ["integer", "null"], "description": "The customer a won lead became."},
            "notes": {"type": ["string", "null"]},
            "merge_count": {"type": "integer", "description": "How many later captures were merged into it."},
            "created_at": DATETIME, "updated_at": DATETIME, "stage_changed_at": DATETIME,
            "last_activity_at": DATETIME,
            "url": {"type": "string", "format": "uri", "description": "This lead in the API."},
        },
    },
    "LeadActivity": {
        "type": "object", "required": ["id", "kind", "created_at"],
        "properties": {
            "id": {"type": "integer"},
            "kind": {"type": "string", "description": "created, merged, edited, stage, note, call, email, "
                                                      "meeting, chat, task, task_done or converted."},
            "text": {"type": ["string", "null"]},
            "data": {"type": ["object", "null"], "description": "Facts of the entry; for `merged`: the `channel`, "
                                                               "what `came_in` and which fields were `filled`."},
            "actor": _nullable(_ref("AgentRef")), "created_at": DATETIME,
        },
    },
    "LeadDetail": {
        "allOf": [_ref("Lead"), {
            "type": "object", "required": ["activity"],
            "properties": {"activity": {"type": "array", "items": _ref("LeadActivity"),
                                        "description": "The lead's log, newest first."}}}],
    },
    "LeadList": {
        "type": "object", "required": ["items", "next"],
        "properties": {"items": {"type": "array", "items": _ref("Lead")},
                       "next": {"type": ["string", "null"], "format": "uri",
                                "description": "Absolute URL of the next page, or null on the last page."}},
    },
    "LeadCreate": {
        "type": "object", "required": ["name"], "additionalProperties": False,
        "description": "Give an email address or a phone number (or both).",
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "company": {"type": ["string", "null"]},
            "email": {"type": ["string", "null"], "format": "email"},
            "phone": {"type": ["string", "null"], "description": "Any common way of writing it (0812-…, "
                                                                 "+62 812 …); normalised to +62…"},
            "source": {**LEAD_SOURCE, "default": "other"},
            "campaign": {"type": ["string", "null"], "maxLength": 80, "description": "Campaign or promo code."},
            "product_lines": {"type": "array", "items": PRODUCT_LINE},
            "notes": {"type": ["string", "null"], "description": "Appended to the notes on a merge."},
        },
    },
    "LeadCaptureResult": {
        "type": "object", "required": ["lead", "result"],
        "properties": {"lead": _ref("Lead"),
                       "result": {"type": "string", "enum": ["created", "merged"],
                                  "description": "`merged`: the same person (by email or phone) was already a "
                                                 "lead; empty fields were filled, product lines added and the "
                                                 "notes appended."}},
    },
    "Author": {"type": "object", "required": ["type", "id", "name"],
               "properties": {"type": {"type": "string", "enum": ["agent", "customer"]},
                              "id": {"type": "integer"}, "name": {"type": "string"}}},
    "Attachment": {
        "type": "object", "required": ["id", "filename", "size", "content_type", "url"],
        "properties": {"id": {"type": "integer"}, "filename": {"type": "string"}, "size": {"type": "integer"},
                       "content_type": {"type": "string"},
                       "url": {"type": "string", "format": "uri", "description": "Downloads the file (token needed)."}},
    },
    "Message": {
        "type": "object", "required": ["id", "kind", "author", "body_text", "created_at", "attachments"],
        "properties": {
            "id": {"type": "integer"},
            "kind": {"type": "string", "enum": ["reply", "note"],
                     "description": "`reply` is public (sent to the customer); `note` is internal."},
            "author": _nullable(_ref("Author")), "channel": {"type": ["string", "null"]},
            "body_text": {"type": "string"},
            "body_html": {"type": ["string", "null"], "description": "Sanitised HTML."},
            "created_at": DATETIME,
            "attachments": {"type": "array", "items": _ref("Attachment")},
        },
    },
    "AttachmentUpload": {
        "type": "object", "required": ["filename", "content_base64"], "additionalProperties": False,
        "properties": {"filename": {"type": "string", "minLength": 1},
                       "content_type": {"type": "string", "default": "application/octet-stream"},
                       "content_base64": {"type": "string", "contentEncoding": "base64",
                                          "description": "The file's bytes, base64-encoded. Each file is limited "
                                                         "to MAX_ATTACHMENT_BYTES (413 beyond it)."}},
    },
    "TicketCreate": {
        "type": "object", "required": ["customer", "queue", "subject", "body"], "additionalProperties": False,
        "properties": {
            "customer": {"type": "object", "required": ["email"], "additionalProperties": False,
                         "description": "Found by email, or created with this name and phone.",
                         "properties": {"email": {"type": "string", "format": "email"},
                                        "name": {"type": "string"},
                                        "phone": {"type": "string", "description": "Normalised to +62…"}}},
            "queue": QUEUE_REF,
            "channel": {**CHANNEL, "default": "web"},
            "subject": {"type": "string", "minLength": 1},
            "body": {"type": "string", "description": "The customer's words (the first message)."},
            "body_html": {"type": "string", "description": "Optional HTML version; sanitised."},
            "priority": {**PRIORITY, "default": "normal"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "assignee": {"oneOf": [{"type": "integer"}, {"const": "me"}, {"type": "null"}]},
            "attachments": {"type": "array", "items": _ref("AttachmentUpload")},
        },
    },
    "TicketUpdate": {
        "type": "object", "additionalProperties": False, "minProperties": 1,
        "description": "All changes apply together or not at all, in this order: status, priority, tags, "
                       "queue, assignee (so the assignee may be an agent of the new queue).",
        "properties": {
            "status": {**STATUS, "description": "Checked against the workflow (409 when illegal). Only the "
                                                "billing role releases a ticket from pending_billing (403)."},
            "priority": PRIORITY,
            "tags": {"type": "array", "items": {"type": "string"}, "description": "Replaces the tags."},
            "queue": {**QUEUE_REF, "description": "Transfer to this queue (id or slug); needs `note`."},
            "note": {"type": "string", "description": "The handover note, required with `queue`."},
            "assignee": {"oneOf": [{"type": "integer"}, {"const": "me"}, {"type": "null"}],
                         "description": "An agent of the ticket's queue, `me`, or null to unassign."},
        },
        "dependentRequired": {"queue": ["note"]},
    },
    "MessageCreate": {
        "type": "object", "additionalProperties": False,
        "properties": {
            "kind": {"type": "string", "enum": ["reply", "note"], "default": "reply"},
            "body": {"type": "string"},
            "body_html": {"type": "string", "description": "Optional HTML version; sanitised."},
            "status": {**STATUS, "description": "Also move the ticket to this status (checked by the workflow). "
                                                "A reply on a new ticket opens it."},
            "attachments": {"type": "array", "items": _ref("AttachmentUpload")},
            "seen_last_message_id": {"type": "integer",
                                     "description": "The last message id the caller has seen: if someone else "
                                                    "wrote since, the answer is 409 with `new_message_ids`."},
            "force": {"type": "boolean", "default": False, "description": "Send despite such a conflict."},
        },
    },
}

RESPONSES = {
    "BadRequest": _json(_ref("Error"), "The request is malformed or breaks a rule (the message says which)."),
    "Unauthorized": {
        **_json(_ref("Error"), "No token, or an invalid, revoked or inactive user's token."),
        "headers": {"WWW-Authenticate": {"schema": {"type": "string"},
                                         "description": "`Bearer realm=\"helpdesk API\"`"}},
    },
    "Forbidden": _json(_ref("Error"), "The agent may see the ticket but not do this (e.g. billing release)."),
    "NotFound": _json(_ref("Error"), "No such ticket, or one the agent may not see."),
    "Conflict": _json(_ref("Error"), "An illegal status transition, or someone else wrote meanwhile."),
    "TooLarge": _json(_ref("Error"), "The request or one of its files is too large."),
}

AUTH_ERRORS = {"401": _error("Unauthorized")}


def _op(op_id, summary, responses, **extra):
    return {"operationId": op_id, "summary": summary, "responses": {**responses, **AUTH_ERRORS}, **extra}


PATHS = {
    "/tickets": {
        "get": _op("listTickets", "List the tickets the agent may see",
                   {"200": _json(_ref("TicketList"), "One page of tickets."), "400": _error("BadRequest")},
                   parameters=LIST_PARAMS,
                   description="Agents see the tickets of their queues and those assigned to them; admins "
                               "see all. Follow `next` until it is null to walk every match exactly once."),
        "post": _op("createTicket", "Open a ticket on behalf of a customer",
                    {"201": {**_json(_ref("TicketDetail"), "The new ticket."),
                             "headers": {"Location": {"schema": {"type": "string", "format": "uri"}}}},
                     "400": _error("BadRequest"), "403": _error("Forbidden"), "413": _error("TooLarge")},
                    requestBody={"required": True,
                                 "content": {"application/json": {"schema": _ref("TicketCreate")}}},
                    description="The customer is matched by email or created. Agents create tickets in "
                                "their own queues only (admins in any)."),
    },
    "/tickets/{number}": {
        "parameters": [NUMBER_PARAM],
        "get": _op("getTicket", "A ticket with its messages",
                   {"200": _json(_ref("TicketDetail"), "The ticket, its replies and internal notes."),
                    "404": _error("NotFound")}),
        "patch": _op("updateTicket", "Change status, priority, tags, queue or assignee",
                     {"200": _json(_ref("TicketDetail"), "The ticket after the change."),
                      "400": _error("BadRequest"), "403": _error("Forbidden"), "404": _error("NotFound"),
                      "409": _error("Conflict")},
                     requestBody={"required": True,
                                  "content": {"application/json": {"schema": _ref("TicketUpdate")}}}),
    },
    "/tickets/{number}/messages": {
        "parameters": [NUMBER_PARAM],
        "post": _op("addMessage", "Reply to the customer or add an internal note",
                    {"201": {**_json(_ref("Message"), "The new message."),
                             "headers": {"Location": {"schema": {"type": "string", "format": "uri"},
                                                      "description": "The ticket."}}},
                     "400": _error("BadRequest"), "403": _error("Forbidden"), "404": _error("NotFound"),
                     "409": _error("Conflict"), "413": _error("TooLarge")},
                    requestBody={"required": True,
                                 "content": {"application/json": {"schema": _ref("MessageCreate")}}}),
    },
    "/attachments/{attachment_id}": {
        "parameters": [{"name": "attachment_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
        "get": _op("downloadAttachment", "Download an attachment",
                   {"200": {"description": "The file, always as a download (`Content-Disposition: attachment`, "
                                           "`nosniff`; HTML, SVG and XML are served as octet-stream).",
                            "content": {"application/octet-stream": {"schema": {"type": "string",
                                                                                "format": "binary"}}}},
                    "404": _error("NotFound")}),
    },
    "/leads": {
        "get": _op("listLeads", "List leads",
                   {"200": _json(_ref("LeadList"), "One page of leads, most recent activity first."),
                    "400": _error("BadRequest"), "403": _error("Forbidden")},
                   parameters=LEAD_LIST_PARAMS,
                   description="Marketing agents and admins only (403 for other agents). Follow `next` until "
                               "it is null to walk every match exactly once."),
        "post": _op("createLead", "Capture a lead, deduplicated",
                    {"201": {**_json(_ref("LeadCaptureResult"), "A new lead (`result`: `created`)."),
                             "headers": {"Location": {"schema": {"type": "string", "format": "uri"}}}},
                     "200": _json(_ref("LeadCaptureResult"),
                                  "Merged into the lead with the same email or phone (`result`: `merged`)."),
                     "400": _error("BadRequest"), "403": _error("Forbidden")},
                    requestBody={"required": True,
                                 "content": {"application/json": {"schema": _ref("LeadCreate")}}},
                    description="For the SMS gateway, the chat widget and the social-media inbox. Marketing "
                                "agents and admins only. The same person sent twice, even with the phone "
                                "written differently, is one lead."),
    },
    "/leads/{lead_id}": {
        "parameters": [LEAD_ID_PARAM],
        "get": _op("getLead", "A lead with its activity log",
                   {"200": _json(_ref("LeadDetail"), "The lead."), "403": _error("Forbidden"),
                    "404": _error("NotFound")}),
    },
    "/openapi.json": {
        "get": {"operationId": "getOpenApi", "summary": "This document", "security": [],
                "responses": {"200": _json({"type": "object"}, "The OpenAPI 3.1 document.")}},
    },
}

# ---------------------------------------------------------------- invoices (billing and admins)

INVOICE_SOURCES = ("repair", "order", "renewal")
INVOICE_STATUS = {"type": "string", "enum": ["unpaid", "partially_paid", "paid", "void"]}
RUPIAH = {"type": "integer", "description": "Whole rupiah."}
DATE = {"type": "string", "format": "date", "description": "A calendar day (Asia/Jakarta)."}

INVOICE_NUMBER_PARAM = {
    "name": "invoice_number", "in": "path", "required": True,
    "schema": {"type": "string", "examples": ["INV/2026/000123"]},
    "description": "The invoice number. Its slashes may be sent as they are (`/invoices/INV/2026/000123`) or "
                   "URL-encoded (`/invoices/INV%2F2026%2F000123`)."}

INVOICE_LIST_PARAMS = [
    {"name": "status", "in": "query",
     "schema": {"type": "string", "enum": ["open", "unpaid", "partially_paid", "paid", "void"]},
     "description": "One status, or `open` for unpaid and partly paid invoices."},
    {"name": "customer", "in": "query", "schema": {"type": "integer"}, "description": "A customer id."},
    {"name": "source", "in": "query", "schema": {"type": "string", "enum": list(INVOICE_SOURCES)},
     "description": "What the invoice bills: a repair quote, an order, or a renewal."},
    {"name": "due_before", "in": "query", "schema": {"type": "string", "format": "date"},
     "description": "Only invoices due before this day (YYYY-MM-DD), e.g. today's date for the overdue ones "
                    "(with `status=open`)."},
    {"name": "updated_since", "in": "query", "schema": {"type": "string", "format": "date-time"},
     "description": "Only invoices created, paid or voided, or with a payment recorded, confirmed or rejected, at "
                    "or after this time; ISO 8601, UTC when no zone is given."},
    {"name": "number", "in": "query", "schema": {"type": "string"}, "description": "One invoice number."},
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 25}},
    {"name": "cursor", "in": "query", "schema": {"type": "string"},
     "description": "Opaque keyset cursor; follow the `next` URL of the previous page instead of building it."},
]

SCHEMAS.update({
    "Invoice": {
        "type": "object",
        "required": ["id", "number", "status", "source", "customer", "bill_to", "issued_on", "due_on", "subtotal",
                     "discount", "tax_rate_bp", "tax", "total", "amount_paid", "balance", "transfer_code",
                     "transfer_amount", "created_at", "url"],
        "description": "Money is whole rupiah: total = subtotal - discount + tax.",
        "properties": {
            "id": {"type": "integer"},
            "number": {"type": "string", "description": "INV/<year>/<6 digits>, gapless per year."},
            "status": INVOICE_STATUS,
            "source": _nullable({"type": "object", "required": ["type", "id"],
                                 "properties": {"type": {"type": "string", "enum": list(INVOICE_SOURCES)},
                                                "id": {"type": ["integer", "null"]}}}),
            "customer": _nullable(_ref("CustomerRef")),
            "bill_to": {"type": "object", "required": ["name", "company", "npwp"],
                        "properties": {"name": {"type": "string"}, "company": {"type": ["string", "null"]},
                                       "npwp": {"type": ["string", "null"], "description": "B2B invoices only."}}},
            "locale": {"type": ["string", "null"], "description": "The invoice's language: id or en."},
            "issued_on": DATE, "due_on": DATE,
            "subtotal": {**RUPIAH, "description": "The lines before their discounts."},
            "discount": {**RUPIAH, "description": "Line discounts and the voucher."},
            "tax_rate_bp": {"type": "integer", "description": "Basis points: 1100 = PPN 11 %."},
            "tax": RUPIAH, "total": RUPIAH,
            "amount_paid": {**RUPIAH, "description": "The confirmed payments."},
            "balance": {**RUPIAH, "description": "What is left to pay (0 on a void invoice)."},
            "transfer_code": {"type": ["integer", "null"],
                              "description": "The unique code (1-999) added to a bank transfer."},
            "transfer_amount": {"type": ["integer", "null"],
                                "description": "What to transfer: the balance plus the unique code."},
            "created_at": DATETIME, "paid_at": NULL_DATETIME, "voided_at": NULL_DATETIME,
            "url": {"type": "string", "format": "uri", "description": "This invoice in the API."},
        },
    },
    "InvoiceLine": {
        "type": "object", "required": ["position", "description", "quantity", "unit_price", "discount", "amount"],
        "properties": {
            "position": {"type": "integer"}, "kind": {"type": "string", "description": "service, part or product."},
            "description": {"type": "string"}, "product_id": {"type": ["integer", "null"]},
            "quantity": {"type": "integer"}, "unit_price": RUPIAH, "discount": RUPIAH,
            "amount": {**RUPIAH, "description": "quantity x unit price - discount (0 when covered)."},
            "covered_reason": {"type": ["string", "null"], "description": "Why a line costs nothing."},
        },
    },
    "Payment": {
        "type": "object", "required": ["id", "amount", "method", "reference", "paid_on", "status"],
        "properties": {
            "id": {"type": "integer"}, "amount": RUPIAH, "method": {"type": "string"},
            "reference": {"type": ["string", "null"]}, "paid_on": DATE,
            "status": {"type": "string", "enum": ["pending", "confirmed", "rejected"],
                       "description": "Only confirmed payments count towards the invoice."},
            "source": {"type": "string", "description": "billing (entered), portal (the customer's proof of "
                                                        "transfer) or bank (a statement line)."},
            "recorded_at": DATETIME, "confirmed_at": NULL_DATETIME,
        },
    },
    "InvoiceDetail": {
        "allOf": [_ref("Invoice"), {
            "type": "object", "required": ["lines", "payments", "void_reason"],
            "properties": {"void_reason": {"type": ["string", "null"]},
                           "lines": {"type": "array", "items": _ref("InvoiceLine")},
                           "payments": {"type": "array", "items": _ref("Payment"),
                                        "description": "Every payment recorded, in order."}}}],
    },
    "InvoiceList": {
        "type": "object", "required": ["items", "next"],
        "properties": {"items": {"type": "array", "items": _ref("Invoice")},
                       "next": {"type": ["string", "null"], "format": "uri",
                                "description": "Absolute URL of the next page, or null on the last page."}},
    },
})

PATHS.update({
    "/invoices": {
        "get": _op("listInvoices", "List invoices",
                   {"200": _json(_ref("InvoiceList"), "One page of invoices, newest first."),
                    "400": _error("BadRequest"), "403": _error("Forbidden")},
                   parameters=INVOICE_LIST_PARAMS,
                   description="Billing agents and admins only (403 for other agents). Follow `next` until it is "
                               "null to walk every match exactly once."),
    },
    "/invoices/{invoice_number}": {
        "parameters": [INVOICE_NUMBER_PARAM],
        "get": _op("getInvoice", "An invoice with its lines, totals and payments",
                   {"200": _json(_ref("InvoiceDetail"), "The invoice."), "403": _error("Forbidden"),
                    "404": _error("NotFound")},
                   description="Billing agents and admins only (403 for other agents)."),
    },
})

DOCUMENT = {
    "openapi": "3.1.0",
    "info": {
        "title": "Helpdesk API",
        "version": "1.0.0",
        "description": "Token-authenticated JSON API of the helpdesk. Create a token with "
                       "`flask users create-token EMAIL` and send `Authorization: Bearer <token>`. Session "
                       "cookies are ignored. Errors answer `{\"error\": {\"code\", \"message\"}}`; a broken "
                       "business rule is a 400 (bad input), 403, 404 or 409, never a 5xx. Permissions are "
                       "those of the agent desk.",
    },
    "servers": [{"url": "/api/v1"}],
    "security": [{"bearerAuth": []}],
    "paths": PATHS,
    "components": {
        "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                           "description": "A token from `flask users create-token EMAIL`."}},
        "schemas": SCHEMAS,
        "responses": RESPONSES,
    },
}


def document():
    """A fresh copy of the document (callers may add to it)."""
    return copy.deepcopy(DOCUMENT)
