"""Request parsing for the JSON API: bodies, fields, query parameters and uploads.

Everything here turns client input into primitives for the services, or raises a DomainError
subclass with a clear message (and the offending field), which the API maps to a JSON error.
"""
import base64
import binascii

from flask import current_app, request
from sqlalchemy import select

from ..errors import DomainError
from ..extensions import db
from ..tickets.models import Queue


class BadRequest(DomainError):
    """The request is malformed: not JSON, a missing field, a value of the wrong type or range."""

    status_code = 400


class PayloadTooLarge(DomainError):
    """An uploaded file is larger than MAX_ATTACHMENT_BYTES."""

    status_code = 413


_MISSING = object()
_TYPE_NAMES = {str: "a string", int: "an integer", list: "a list", dict: "an object", bool: "true or false"}


def json_body(allowed):
    """The request body as a JSON object; unknown keys are refused so typos do not pass silently."""
    data = request.get_json(force=True, silent=True)
    if not isinstance(data, dict):
        raise BadRequest("The request body must be a JSON object.")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise BadRequest(f"Unknown field(s): {', '.join(unknown)}. Allowed: {', '.join(sorted(allowed))}.",
                         field=unknown[0])
    return data


def get_field(data, name, kind, *, required=False, default=None, choices=None, nullable=False):
    """One field of a JSON object, checked for presence, type(s) (bool is not an int) and choices."""
    value = data.get(name, _MISSING)
    if value is _MISSING:
        if required:
            raise BadRequest(f"The field '{name}' is required.", field=name)
        return default
    if value is None and nullable:
        return None
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise BadRequest(f"The field '{name}' must be {' or '.join(_TYPE_NAMES[k] for k in kinds)}.", field=name)
    if choices is not None and value not in choices:
        raise BadRequest(f"The field '{name}' must be one of: {', '.join(choices)}.", field=name)
    return value


def queue_id_from(value, field="queue"):
    """A queue's id from its id (an integer or digits) or its slug."""
    if isinstance(value, bool) or not isinstance(value, (int, str)) or value == "":
        raise BadRequest(f"The field '{field}' must be a queue id or slug.", field=field)
    if isinstance(value, int) or value.isdigit():
        stmt = select(Queue.id).where(Queue.id == int(value))
    else:
        stmt = select(Queue.id).where(Queue.slug == value)
    qid = db.session.execute(stmt).scalar()
    if qid is None:
        raise BadRequest(f"Unknown queue {value!r}.", field=field)
    return qid


def assignee_from(value, user_id, field="assignee"):
    """An assignee id from an id, "me" (the token's user) or null (unassign)."""
    if value is None:
        return None
    if value == "me":
        return user_id
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise BadRequest(f"The field '{field}' must be an agent id, \"me\" or null.", field=field)


def attachments_from(data, field="attachments"):
    """(filename, content_type, bytes) for each {filename, content_type, content_base64} item."""
    items = get_field(data, field, list, default=[])
    limit = current_app.config["MAX_ATTACHMENT_BYTES"]
    out = []
    for i, item in enumerate(items):
        where = f"{field}[{i}]"
        if not isinstance(item, dict):
            raise BadRequest(f"{where} must be an object with filename and content_base64.", field=field)
        filename = get_field(item, "filename", str, required=True).strip()
        content_type = get_field(item, "content_type", str, default="application/octet-stream")
        encoded = get_field(item, "content_base64", str, required=True)
        if not filename:
            raise BadRequest(f"{where}.filename must not be empty.", field=field)
        try:
            content = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadRequest(f"{where}.content_base64 is not valid base64.", field=field) from exc
        if len(content) > limit:
            raise PayloadTooLarge(f"The file {filename!r} is larger than the limit of {limit} bytes.", field=field)
        out.append((filename, content_type, content))
    return out


def query_choice(name, choices, default=""):
    """A query parameter that must be one of `choices` (or absent)."""
    value = (request.args.get(name) or "").strip()
    if value and value not in choices:
        raise BadRequest(f"The parameter '{name}' must be one of: {', '.join(choices)}.", field=name)
    return value or default


def query_int(name, default, low, high):
    """An integer query parameter within [low, high]."""
    raw = (request.args.get(name) or "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise BadRequest(f"The parameter '{name}' must be an integer from {low} to {high}.", field=name)
    return int(raw)
