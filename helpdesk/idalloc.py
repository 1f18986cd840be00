"""Row ids handed out before the INSERT, inside a batch of inbound mail on SQLite.

In a batch (`batch()`, inside `batchcache.opened()`), a service that needs a new row's id at once (a
ticket's id for its clocks and audit events, a mail's id for its outbox job) takes one from here
instead of flushing the session for it. The batch's rows are then written by one flush at its end:
one multi-row INSERT per table, instead of a flush and a single-row INSERT per row.

- The ids are the table's max(id) + 1, counted on in Python. Safe because the batch holds SQLite's
  write lock until it commits (its claim UPDATE took it: no other connection can insert meanwhile),
  and because while the batch is open every new row in the session (of every model with an integer
  primary key `id`) gets its id here (the before_flush hook below), so SQLite never picks a rowid
  itself in between. Rows with their ids given are written by one executemany per table (with ids
  left to the database, SQLAlchemy inserts rows one by one on SQLite to read each id back).
  A Core INSERT without an id (subscriptions.delivery.claim into announcement_deliveries, say)
  still lets SQLite pick one: such a table must not also get ORM rows in the same batch (none
  does); if it ever did, the clash fails a flush and the batch is redone message by message.
- One flush then holds rows and the rows they refer to, in an order SQLAlchemy does not sort by
  foreign key between models without a relationship: the batch defers SQLite's foreign-key checks to
  its COMMIT (`PRAGMA defer_foreign_keys`), where they are still made.
- On PostgreSQL foreign keys are checked at once (they are not DEFERRABLE), so `assign` returns
  False there, as it does outside a batch: the caller flushes, as before.
"""
from contextlib import contextmanager

from sqlalchemy import event, text

from . import batchcache
from .dbutil import dialect

_BLOCK_MAX = 512
_MANAGED = {}  # model class -> whether its rows get their ids here (one integer primary key `id`)


def _managed(cls):
    if cls not in _MANAGED:
        from sqlalchemy import Integer, inspect

        pk = inspect(cls).primary_key
        _MANAGED[cls] = len(pk) == 1 and pk[0].name == "id" and isinstance(pk[0].type, Integer)
    return _MANAGED[cls]


_ON = "idalloc_batch"


@contextmanager
def batch(session, enabled=True):
    """Hand out ids in this block (SQLite only; the caller holds the write lock: it has written)."""
    if not enabled or dialect(session) != "sqlite":
        yield
        return
    session.info[_ON] = True
    defer_checks(session)
    try:
        yield
    finally:
        session.info.pop(_ON, None)


def active(session):
    """Are ids handed out here right now (a batch on SQLite)?"""
    return bool(session.info.get(_ON)) and batchcache.is_open()


def next_id(session, table):
    """The next id of `table` in this batch (for a row written without an ORM object)."""
    return _next(session, table)


def defer_checks(session):
    """Foreign keys checked at COMMIT (SQLite switches this off at each COMMIT and ROLLBACK)."""
    if session.info.get(_ON):
        session.execute(text("PRAGMA defer_foreign_keys = ON"))


def assign(obj):
    """Give a new row its id now. True when it has one (or already had), False outside a batch or
    on PostgreSQL (the caller then flushes to get it)."""
    if obj.id is not None:
        return True
    from .extensions import db

    if not (db.session.info.get(_ON) and batchcache.is_open()):
        return False
    obj.id = _next(db.session, obj.__table__.name)
    batchcache.put("assigned", (type(obj), obj.id), obj)
    return True


def get(model, id_, **kw):
    """session.get(), which also finds a row of the batch that is not written yet (the session's
    identity map holds only written rows, and looking one up would flush the batch)."""
    from .extensions import db

    obj = batchcache.get("assigned", (model, id_)) if id_ is not None else None
    return obj if obj is not None else db.session.get(model, id_, **kw)


def _next(session, table):
    # (in the batch cache: a savepoint rollback clears it, and the next id is read again)
    state = batchcache.lookup("ids", table, lambda: {"free": [], "block": 16})
    if not state["free"]:
        state["block"] = min(state["block"] * 2, _BLOCK_MAX)
        start = session.execute(text(f"SELECT coalesce(max(id), 0) FROM {table}")).scalar_one() + 1
        start = max(start, state.get("next", 0))
        state["next"] = start + state["block"]
        state["free"] = list(range(start + state["block"] - 1, start - 1, -1))  # pop() takes the lowest
    return state["free"].pop()


def _before_flush(session, _ctx, _instances):
    if not session.info.get(_ON) or not batchcache.is_open():
        return
    for obj in session.new:
        if _managed(type(obj)) and obj.id is None:
            obj.id = _next(session, obj.__table__.name)
            batchcache.put("assigned", (type(obj), obj.id), obj)


def install(session_cls):
    """Register the before_flush hook."""
    if not event.contains(session_cls, "before_flush", _before_flush):
        event.listen(session_cls, "before_flush", _before_flush)
