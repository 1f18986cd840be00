"""A campaign's segment: which leads or customers it is meant for (pure rules and SQL).

Segments (Campaign.segment, JSON):
- leads: {"sources": [...], "campaigns": [...], "interests": [product lines], "stages": [...]}
- customers: {"product_lines": [...], "product_ids": [...], "kind": "b2b" | "b2c" | ""}

Within one filter the values are alternatives (OR); the filters together narrow (AND); an empty
filter does not narrow. The recipients are the segment intersected with the topic's audience
(helpdesk.subscriptions.services.customer_audience / lead_audience): opted in, mailable, not
bouncing. A lead's interests are a JSON list: matched as text (`'%"website"%'`) on the column cast
to a string, which reads the same on SQLite and PostgreSQL (the values are checked identifiers).
"""
from sqlalchemy import String, cast, exists, func, or_, select

from ..customers.models import Customer
from ..leads.models import LEAD_SOURCES, LEAD_STAGES, PRODUCT_LINES, Lead
from ..subscriptions import services as subs
from ..warranty.models import OwnedItem, Product

CUSTOMER_KINDS = ("b2b", "b2c")


def _strings(values, allowed=None, limit=80):
    out = []
    for v in values or ():
        v = str(v or "").strip()[:limit]
        if v and (allowed is None or v in allowed) and v not in out:
            out.append(v)
    return out


def normalize(audience, raw):
    """The clean segment of an audience (unknown values dropped, duplicates removed)."""
    raw = raw or {}
    if audience == "leads":
        return {"sources": _strings(raw.get("sources"), LEAD_SOURCES),
                "campaigns": [c.lower() for c in _strings(raw.get("campaigns"))],
                "interests": _strings(raw.get("interests"), PRODUCT_LINES),
                "stages": _strings(raw.get("stages"), LEAD_STAGES)}
    ids = []
    for v in raw.get("product_ids") or ():
        try:
            v = int(v)
        except (TypeError, ValueError):
            continue
        if v > 0 and v not in ids:
            ids.append(v)
    kind = raw.get("kind") if raw.get("kind") in CUSTOMER_KINDS else ""
    return {"product_lines": _strings(raw.get("product_lines"), PRODUCT_LINES), "product_ids": ids, "kind": kind}


def lead_conditions(segment):
    seg = normalize("leads", segment)
    where = []
    if seg["sources"]:
        where.append(Lead.source.in_(seg["sources"]))
    if seg["campaigns"]:
        where.append(func.lower(Lead.campaign).in_(seg["campaigns"]))
    if seg["interests"]:
        text = cast(Lead.product_lines, String)
        where.append(or_(*[text.like(f'%"{line}"%') for line in seg["interests"]]))
    if seg["stages"]:
        where.append(Lead.stage.in_(seg["stages"]))
    return where


def customer_conditions(segment):
    seg = normalize("customers", segment)
    where = []
    if seg["kind"]:
        where.append(Customer.kind == seg["kind"])
    owns = select(OwnedItem.id).where(OwnedItem.customer_id == Customer.id, OwnedItem.status == "active")
    if seg["product_lines"]:
        where.append(exists(owns.join(Product, Product.id == OwnedItem.product_id)
                            .where(Product.product_line.in_(seg["product_lines"]))))
    if seg["product_ids"]:
        where.append(exists(owns.where(OwnedItem.product_id.in_(seg["product_ids"]))))
    return where


def recipients(topic, audience, segment):
    """SELECT (id, email, language, name) of the segment's opted-in, mailable recipients, by id."""
    if audience == "leads":
        return subs.lead_audience(topic).where(*lead_conditions(segment)).order_by(Lead.id)
    return subs.customer_audience(topic).where(*customer_conditions(segment)).order_by(Customer.id)


def id_column(audience):
    return Lead.id if audience == "leads" else Customer.id


def describe(audience, segment):
    """[(filter name, [values])] of the non-empty filters (for the pages)."""
    seg = normalize(audience, segment)
    return [(k, v if isinstance(v, list) else [v]) for k, v in seg.items() if v]

