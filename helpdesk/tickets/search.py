"""Full-text ticket search: PostgreSQL tsvector + GIN, SQLite FTS5. Never LIKE over all tickets.

The document of a ticket is its number, subject, customer name and addresses, and message texts.
It is rebuilt on write (reindex), never on read.
"""
import re

from sqlalchemy import bindparam, func, literal_column, select, text
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from ..customers.models import Customer, CustomerEmail
from ..dbutil import dialect
from .models import Message, Ticket

MAX_DOC = 200_000
FEW_HITS = 1000  # SQLite: up to this many matches are fetched by id, more are filtered while walking
_TOKEN = re.compile(r"[\w@.+-]+", re.UNICODE)


def compose_document(number, subject, customer_name, emails, bodies):
    """The searchable text from its parts (shared with the bulk loader, which has no ORM objects)."""
    parts = [str(number), subject, customer_name, *emails, *bodies]
    return "\n".join(p for p in parts if p)[:MAX_DOC]


def document(session, ticket_id, bodies=None):
    """The searchable text of one ticket (`bodies`: its message texts, when the caller has them all)."""
    from .. import idalloc

    t = idalloc.get(Ticket, ticket_id)  # (in a batch of mail: its own rows without a lookup each)
    cust = idalloc.get(Customer, t.customer_id)
    if bodies is None:
        bodies = session.execute(select(Message.body_text).where(Message.ticket_id == ticket_id)).scalars()
    return compose_document(t.number, t.subject, cust.name if cust else None,
                            [e.email for e in cust.emails] if cust else [], bodies)


_DEFERRED = "search_reindex"


def reindex(session, ticket_id, bodies=None):
    """Rebuild the search document of one ticket (call after its text changed).

    In a batch of inbound mail (batchcache open) the rebuild waits for `reindex_deferred`, which the
    batch calls after its flush: one statement for all its tickets, and no flush per ticket."""
    from .. import batchcache

    if batchcache.is_open():
        pending = session.info.setdefault(_DEFERRED, {})
        if ticket_id in pending and (pending[ticket_id] is None or bodies is None):
            bodies = None  # the document is read from the database
        elif ticket_id in pending:
            bodies = pending[ticket_id] + list(bodies)
        pending[ticket_id] = None if bodies is None else list(bodies)
        return
    _write(session, [(ticket_id, document(session, ticket_id, bodies))])


def reindex_deferred(session):
    """Rebuild the documents a batch deferred (after its flush); tickets since rolled back are
    skipped."""
    from .. import idalloc

    pending = session.info.pop(_DEFERRED, None)
    if not pending:
        return
    todo = sorted(pending.items())
    held = _load_together(session, [tid for tid, _bodies in todo])  # (held: the session keeps rows weakly)
    texts = _bodies_of(session, [tid for tid, bodies in todo if bodies is None])
    _write(session, [(tid, document(session, tid, texts.get(tid, ()) if bodies is None else bodies))
                     for tid, bodies in todo if idalloc.get(Ticket, tid) is not None])
    del held


def _load_together(session, ticket_ids):
    """The tickets the batch did not make itself (a reply to an older one), and their customers, read
    in two statements (not two each: after the previous batch's commit they are expired). Returns
    them: the caller keeps them while it needs them."""
    from .. import batchcache

    older = [tid for tid in ticket_ids if batchcache.get("assigned", (Ticket, tid)) is None]
    held = []
    for n in range(0, len(older), 500):
        found = session.execute(select(Ticket).where(Ticket.id.in_(older[n:n + 500]))).scalars().all()
        customers = sorted({t.customer_id for t in found if batchcache.get("assigned", (Customer, t.customer_id))
                            is None})
        held += found
        if customers:
            held += session.execute(select(Customer).where(Customer.id.in_(customers))).scalars().all()
    return held


def _bodies_of(session, ticket_ids):
    """{ticket id: [message texts]} in one statement per 500 tickets."""
    out = {}
    for n in range(0, len(ticket_ids), 500):
        for tid, body in session.execute(select(Message.ticket_id, Message.body_text)
                                          .where(Message.ticket_id.in_(ticket_ids[n:n + 500]))
                                          .order_by(Message.ticket_id, Message.id)):
            out.setdefault(tid, []).append(body)
    return out


def discard_deferred(session):
    session.info.pop(_DEFERRED, None)


def forget_deferred_bodies(session):
    """After a savepoint rollback: the bodies kept may be of messages rolled back (and a ticket id
    may be given again), so every deferred document is read back from the database instead."""
    pending = session.info.get(_DEFERRED)
    if pending:
        session.info[_DEFERRED] = dict.fromkeys(pending)


def _write(session, docs):
    if not docs:
        return
    params = [{"id": tid, "doc": doc} for tid, doc in docs]
    if dialect(session) == "postgresql":
        session.execute(text("UPDATE tickets SET search_vector = to_tsvector('simple', :doc) WHERE id = :id"), params)
    else:
        session.execute(text("DELETE FROM ticket_fts WHERE rowid = :id"), [{"id": p["id"]} for p in params])
        session.execute(text("INSERT INTO ticket_fts(rowid, doc) VALUES (:id, :doc)"), params)


def tokens(q):
    """Search words of a query string (letters, digits, email characters)."""
    return _TOKEN.findall(q or "")[:12]


def match_clause(session, q):
    """A WHERE clause on Ticket selecting tickets that contain every word of q (or None).

    PostgreSQL: the tsquery is written into the SQL as a literal, so the planner estimates how
    many tickets match from the column's statistics: a rare word is fetched through the GIN
    index, a common one by walking the list's ordered index and testing each row, whichever is
    cheaper (a parameter would hide the word, and a cached generic plan would guess).

    SQLite has no such estimate for FTS5, so one cheap probe asks whether there are more than
    FEW_HITS matches: if not, the tickets are fetched by id; if so, the match becomes a filter on
    the list's ordered index walk (`+id` keeps SQLite from fetching every match and sorting).
    """
    words = tokens(q)
    if not words:
        return None
    if dialect(session) == "postgresql":
        query = " & ".join("'" + w.lower().replace("'", "") + "'" for w in words)
        tsquery = func.to_tsquery(literal_column("'simple'"), bindparam("tsq", query, literal_execute=True))
        return Ticket.search_vector.op("@@")(tsquery)
    fts = " ".join('"' + w.replace('"', "") + '"' for w in words)
    matches = (select(literal_column("rowid")).select_from(text("ticket_fts"))
               .where(text("ticket_fts MATCH :fts").bindparams(fts=fts)))
    hits = session.execute(matches.limit(FEW_HITS + 1)).scalars().all()
    if len(hits) <= FEW_HITS:
        return Ticket.id.in_(hits)
    return unindexed(Ticket.id).in_(matches)


def unindexed(column):
    """`+column`: the same value of any type, but SQLite serves no condition on it from an index."""
    return UnaryExpression(column, operator=custom_op("+"), type_=column.type)


def number_from_query(q):
    """A ticket number when the query is one ('1234' or '#1234')."""
    m = re.fullmatch(r"\s*#?(\d{1,9})\s*", q or "")
    return int(m.group(1)) if m else None


def email_from_query(q):
    m = re.fullmatch(r"\s*([^@\s]+@[^@\s]+)\s*", q or "")
    return m.group(1).lower() if m else None


def customer_ids_for_email(session, email):
    return select(CustomerEmail.customer_id).where(CustomerEmail.email == email)
