"""Queue lists: views, filters, sorting, keyset pagination and cheap counts.

Every list query walks an index in order and stops after one page; the sidebar counts come from
the ticket_counts table and a list's own count is capped (it reads at most cap + 1 matches). The
number of statements per page does not grow with the number of tickets (tests/integration/
test_query_budget.py checks that, and that the plans use indexes).
"""
import base64
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Column, and_, func, literal_column, or_, select, tuple_
from sqlalchemy.orm import joinedload
from sqlalchemy.sql.visitors import replacement_traverse

from ..extensions import db
from ..warranty.rules import CHARGE_CODES
from . import counts as counts_mod
from . import search
from .models import CHANNELS, DONE_STATUSES, PRIORITIES, Queue, Tag, Ticket, ticket_tags
from .states import OPEN_STATUSES, STATUSES

SORTS = {
    "-last_activity": (Ticket.last_activity_at, True),
    "last_activity": (Ticket.last_activity_at, False),
    "-created": (Ticket.created_at, True),
    "created": (Ticket.created_at, False),
    # Due soonest: only tickets with a running SLA clock (next_sla_due set; paused and stopped
    # clocks leave it NULL), over ix_tickets_open_sla / ix_tickets_open_queue_sla (sla_conditions).
    "sla_due": (Ticket.next_sla_due, False),
}
COUNT_CAP = 1000
# Filters and searches count less far: a count walks the list's index until it has cap + 1
# matches, and with a selective filter that can mean tens of thousands of rows at 1,000 cap.
FILTERED_COUNT_CAP = 200


@dataclass
class ListParams:
    """What the user asked for: a view and filters (all strings, validated here)."""

    view: str = "all"  # mine | unassigned | all | queue:<slug>
    status: str = ""  # "" = open statuses, "any", or one status
    priority: str = ""
    assignee: str = ""  # "" | "none" | user id
    tag: str = ""
    channel: str = ""
    charge: str = ""  # a charge decision (warranty.rules.CHARGE_CODES)
    q: str = ""
    sort: str = "-last_activity"
    cursor: str = ""
    queue_id: int | None = None
    page_size: int = 25

    @classmethod
    def from_args(cls, args, page_size=25):
        p = cls(**{k: (args.get(k) or "").strip() for k in
                   ("view", "status", "priority", "assignee", "tag", "channel", "charge", "q", "sort", "cursor")})
        p.view = p.view or "all"
        p.sort = p.sort if p.sort in SORTS else "-last_activity"
        if p.status not in ("", "any", *STATUSES):
            p.status = ""
        if p.priority not in ("", *PRIORITIES):
            p.priority = ""
        if p.channel not in ("", *CHANNELS):
            p.channel = ""
        if p.charge not in ("", *CHARGE_CODES):
            p.charge = ""
        if p.assignee not in ("", "none") and not p.assignee.isdigit():
            p.assignee = ""
        p.page_size = page_size
        return p

    def as_args(self, **changes):
        data = {k: getattr(self, k) for k in ("view", "status", "priority", "assignee", "tag", "channel", "charge", "q",
                                             "sort")}
        data.update(changes)
        return {k: v for k, v in data.items() if v and not (k == "sort" and v == "-last_activity")}

    @property
    def has_extra_filters(self):
        return bool(self.priority or self.assignee or self.tag or self.channel or self.charge or self.q
                    or self.status not in ("",))


@dataclass
class Page:
    items: list
    next_cursor: str | None
    total: int | None
    total_capped: bool = False
    extra: dict = field(default_factory=dict)


def encode_cursor(value, ticket_id):
    raw = f"{value.isoformat()}|{ticket_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor):
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        ts, tid = raw.split("|")
        return datetime.fromisoformat(ts), int(tid)
    except (ValueError, UnicodeDecodeError):
        return None


def _conditions(params, user, visibility):
    conds = []
    if visibility is not None:
        conds.append(_as_filter(visibility))
    if params.view == "mine":
        conds.append(Ticket.assignee_id == user.id)
    elif params.view == "unassigned":
        conds.append(Ticket.assignee_id.is_(None))
    elif params.view.startswith("queue:"):
        conds.append(Ticket.queue_id == (params.queue_id or -1))
    if params.status == "":
        conds.append(open_statuses())
    elif params.status != "any":
        conds.append(Ticket.status == params.status)
    if params.priority:
        conds.append(Ticket.priority == params.priority)
    if params.assignee == "none":
        conds.append(Ticket.assignee_id.is_(None))
    elif params.assignee:
        conds.append(Ticket.assignee_id == int(params.assignee))
    if params.channel:
        conds.append(Ticket.channel == params.channel)
    if params.charge:
        # ix_tickets_open_charge_activity (charge, last_activity_at, id) over open tickets: with the
        # open-statuses filter (repeated literally above) the page walks it in activity order.
        conds.append(Ticket.charge == params.charge)
    if params.tag:
        tag_id = select(Tag.id).where(Tag.name == params.tag.lower()).scalar_subquery()
        conds.append(Ticket.id.in_(select(ticket_tags.c.ticket_id).where(ticket_tags.c.tag_id == tag_id)))
    conds.append(Ticket.merged_into_id.is_(None))
    if params.sort == "sla_due":
        conds.extend(sla_conditions(with_status=params.status != ""))
    if params.q:
        number = search.number_from_query(params.q)
        email = search.email_from_query(params.q)
        if number is not None:
            conds.append(Ticket.number == number)
        elif email:
            # The customer ids as values, not a subquery: an OR with a subquery is a filter on
            # every ticket, an OR of two indexed conditions is two index lookups.
            customer_ids = db.session.execute(search.customer_ids_for_email(db.session, email)).scalars().all()
            conds.append(or_(Ticket.customer_id.in_(customer_ids), search.match_clause(db.session, params.q)))
        else:
            clause = search.match_clause(db.session, params.q)
            if clause is not None:
                conds.append(clause)
    return conds


def open_statuses():
    """status NOT IN ('resolved', 'closed') with the values written into the SQL, as in the
    partial indexes' predicate (models.OPEN_PREDICATE): SQLite uses such an index only when the
    query repeats its terms literally, and PostgreSQL cannot prove a predicate from parameters in
    a generic plan. Used together with merged_into_id IS NULL, the predicate's other term."""
    return Ticket.status.notin_([literal_column(f"'{s}'") for s in DONE_STATUSES])


def sla_conditions(with_status=True):
    """The SLA indexes' predicate beyond merged_into_id IS NULL, repeated literally: open statuses
    (unless the open-statuses filter is already there) and next_sla_due IS NOT NULL. A ticket
    without a running clock (none, paused, stopped, resolved) has no due time to sort by."""
    return ([open_statuses()] if with_status else []) + [Ticket.next_sla_due.isnot(None)]


def _as_filter(clause):
    """On SQLite, the same condition over `+column` (a no-op that no index serves).

    SQLite has no statistics unless someone runs ANALYZE, and then answers an OR of indexed
    terms (the visibility clause: assignee = me OR queue IN mine) by collecting every matching
    ticket and sorting them all. As a plain filter, the page walks the ordered index of the view
    and stops after one page. PostgreSQL keeps statistics and plans this well by itself.
    """
    if db.session.get_bind().dialect.name != "sqlite":
        return clause

    def unindexed(element):
        if isinstance(element, Column) and element.table is Ticket.__table__:
            return search.unindexed(element)
        return None

    return replacement_traverse(clause, {}, unindexed)


def list_tickets(params, user, visibility):
    """One page of tickets for this agent, plus a count that does not scan the table.

    Two statements. First the ids of the first cap + 1 matches in list order: that is the capped
    count, and when there are no more than the cap it is every match, so the page is then fetched
    by id. Otherwise there are many matches, and the page walks the list's ordered index from the
    cursor until it has a page. (A LIMIT 26 query planned on an estimate alone walks that index for
    a word the statistics wrongly think common, all of it when nothing matches; a LIMIT 201 or 1001
    query over the same conditions is planned to use the search index instead.)
    """
    if params.view.startswith("queue:") and params.queue_id is None:
        params.queue_id = db.session.execute(
            select(Queue.id).where(Queue.slug == params.view.split(":", 1)[1])).scalar()
    conds = _conditions(params, user, visibility)
    col, desc = SORTS[params.sort]
    order = (col.desc(), Ticket.id.desc()) if desc else (col.asc(), Ticket.id.asc())
    cap = FILTERED_COUNT_CAP if params.has_extra_filters else COUNT_CAP
    ids = db.session.execute(
        select(Ticket.id).where(and_(*conds)).order_by(*order).limit(cap + 1)).scalars().all()
    capped = len(ids) > cap
    cur = decode_cursor(params.cursor) if params.cursor else None
    if capped:
        stmt = select(Ticket).where(and_(*conds))
    else:  # ids are in list order: the first page is their head
        stmt = select(Ticket).where(Ticket.id.in_(ids if cur else ids[: params.page_size + 1]))
    if cur:
        # A row-value comparison: both databases turn it into one index range.
        key = tuple_(col, Ticket.id)
        stmt = stmt.where(key < tuple_(*cur) if desc else key > tuple_(*cur))
    stmt = stmt.order_by(*order).limit(params.page_size + 1).options(
        joinedload(Ticket.customer), joinedload(Ticket.assignee))
    rows = db.session.execute(stmt).unique().scalars().all()
    next_cursor = None
    if len(rows) > params.page_size:
        rows = rows[: params.page_size]
        last = rows[-1]
        next_cursor = encode_cursor(getattr(last, col.key), last.id)
    return Page(items=rows, next_cursor=next_cursor, total=cap if capped else len(ids), total_capped=capped)


def capped_count(conds, cap=COUNT_CAP, order_by=()):
    """COUNT over at most cap+1 matching rows: exact for small results, 'cap+' for big ones.

    With an order (the list's), the count walks that ordered index, never a whole table.
    """
    sub = select(Ticket.id).where(and_(*conds)).order_by(*order_by).limit(cap + 1).subquery()
    n = db.session.execute(select(func.count()).select_from(sub)).scalar()
    return (cap, True) if n > cap else (n, False)


def sidebar_counts(user, queues):
    """Open-ticket counts per queue and for 'unassigned', from ticket_counts (no row scan)."""
    qids = [q.id for q in queues]
    table = counts_mod.counts(db.session, qids)
    per_queue = {qid: 0 for qid in qids}
    unassigned = 0
    for (qid, status, un), n in table.items():
        if status in OPEN_STATUSES:
            per_queue[qid] = per_queue.get(qid, 0) + n
            if un:
                unassigned += n
    mine, mine_capped = capped_count([Ticket.assignee_id == user.id, open_statuses(), Ticket.merged_into_id.is_(None)],
                                     order_by=(Ticket.last_activity_at.desc(), Ticket.id.desc()))
    return {"queues": per_queue, "unassigned": unassigned, "all": sum(per_queue.values()),
            "mine": f"{mine}+" if mine_capped else mine}
