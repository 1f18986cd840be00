"""Full-text ticket search: PostgreSQL tsvector + GIN, SQLite FTS5. Never LIKE over all tickets.

The document of a ticket is its number, subject, customer name and addresses, and message texts.
It is rebuilt on write (reindex), never on read.
"""
import re

from sqlalchemy import literal_column, select, text

from ..customers.models import Customer, CustomerEmail
from ..dbutil import dialect
from .models import Message, Ticket

MAX_DOC = 200_000
_TOKEN = re.compile(r"[\w@.+-]+", re.UNICODE)


def document(session, ticket_id):
    """The searchable text of one ticket."""
    t = session.get(Ticket, ticket_id)
    parts = [str(t.number), t.subject]
    cust = session.get(Customer, t.customer_id)
    if cust is not None:
        parts.append(cust.name)
        parts.extend(e.email for e in cust.emails)
    parts.extend(session.execute(select(Message.body_text).where(Message.ticket_id == ticket_id)).scalars())
    return "\n".join(p for p in parts if p)[:MAX_DOC]


def reindex(session, ticket_id):
    """Rebuild the search document of one ticket (call after its text changed)."""
    doc = document(session, ticket_id)
    if dialect(session) == "postgresql":
        session.execute(text("UPDATE tickets SET search_vector = to_tsvector('simple', :doc) WHERE id = :id"),
                        {"doc": doc, "id": ticket_id})
    else:
        session.execute(text("DELETE FROM ticket_fts WHERE rowid = :id"), {"id": ticket_id})
        session.execute(text("INSERT INTO ticket_fts(rowid, doc) VALUES (:id, :doc)"), {"id": ticket_id, "doc": doc})


def tokens(q):
    """Search words of a query string (letters, digits, email characters)."""
    return _TOKEN.findall(q or "")[:12]


def match_clause(session, q):
    """A WHERE clause on Ticket selecting tickets that contain every word of q (or None)."""
    words = tokens(q)
    if not words:
        return None
    if dialect(session) == "postgresql":
        query = " & ".join("'" + w.lower().replace("'", "") + "'" for w in words)
        return Ticket.search_vector.op("@@")(text("to_tsquery('simple', :tsq)").bindparams(tsq=query))
    fts = " ".join('"' + w.replace('"', "") + '"' for w in words)
    sub = (select(literal_column("rowid")).select_from(text("ticket_fts"))
           .where(text("ticket_fts MATCH :fts").bindparams(fts=fts)))
    return Ticket.id.in_(sub)


def number_from_query(q):
    """A ticket number when the query is one ('1234' or '#1234')."""
    m = re.fullmatch(r"\s*#?(\d{1,9})\s*", q or "")
    return int(m.group(1)) if m else None


def email_from_query(q):
    m = re.fullmatch(r"\s*([^@\s]+@[^@\s]+)\s*", q or "")
    return m.group(1).lower() if m else None


def customer_ids_for_email(session, email):
    return select(CustomerEmail.customer_id).where(CustomerEmail.email == email)
