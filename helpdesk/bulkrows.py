"""Rows that nothing reads back before the commit, written by a batch of inbound mail as one INSERT
per table instead of one ORM object each.

In the batch's optimistic pass on SQLite (`collecting`, inside `idalloc.batch`), a service that
records such a row (an audit event, an eligibility decision, the automatic-mail log, the
Message-ID of an outbound mail) hands it to `add` as plain column values; `write` inserts them
after the batch's flush, with their ids taken from idalloc (so they never clash with an ORM row of
the same table in the batch), in the same transaction. A rolled-back pass drops them (`discard`).
Anywhere else (`add` returns False) the caller adds an ORM object, as always.

A row added with a key (the customers' Message-IDs that the batch claims in memory, see
helpdesk.mail.services._claim_key) can be found (`find`) and completed until it is written.

About a third of the ORM objects of a batch of new tickets were such rows: building them and
registering them in the session's unit of work cost more than writing them.
"""
from contextlib import contextmanager

from sqlalchemy import insert

_KEY = "bulk_rows"  # rows being collected
_DONE = "bulk_rows_done"  # collected, waiting for `write`


@contextmanager
def collecting(session, enabled=True):
    """Rows `add`ed in the block are queued for `write` (only where ids are handed out by idalloc)."""
    from . import idalloc

    if not enabled or not idalloc.active(session):
        yield
        return
    session.info[_KEY] = {}
    try:
        yield
    except BaseException:
        discard(session)
        raise
    queued = session.info.pop(_KEY, None)  # (None: discarded by a rollback in the block)
    if queued:
        session.info[_DONE] = queued


def add(model, _key=None, **values):
    """Queue a row of `model` (True), or False when no batch collects: add an ORM object instead.
    `_key`: the row can be found (`find`) and changed by that key until it is written."""
    queued = _collecting()
    if queued is None:
        return False
    rows = queued.setdefault(model, {})
    rows[object() if _key is None else _key] = values
    return True


def find(model, key):
    """The column values of a row queued with this key (changes to them are written), or None."""
    queued = _collecting()
    return None if queued is None else queued.get(model, {}).get(key)


def active():
    """Is a batch collecting rows right now?"""
    return _collecting() is not None


def _collecting():
    from .extensions import db

    return db.session.info.get(_KEY)


def write(session):
    """Insert the queued rows: one executemany per table (call after the batch's flush)."""
    from . import idalloc

    queued = session.info.pop(_DONE, None)
    if not queued:
        return
    conn = session.connection()
    for model, keyed in queued.items():
        table = model.__table__
        rows = list(keyed.values())
        if "id" in table.c and table.c.id.primary_key:
            for row in rows:
                row["id"] = idalloc.next_id(session, table.name)
        by_columns = {}  # (one executemany per set of columns given)
        for row in rows:
            by_columns.setdefault(tuple(sorted(row)), []).append(row)
        for same in by_columns.values():
            conn.execute(insert(table), same)


def discard(session):
    """Drop what was collected (a rolled-back pass, or a batch that failed)."""
    session.info.pop(_KEY, None)
    session.info.pop(_DONE, None)

