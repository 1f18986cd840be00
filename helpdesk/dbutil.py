"""Database helpers that differ between SQLite and PostgreSQL."""
from sqlalchemy import Index, event, text


def fk_index(name, column):
    """An index on a foreign-key column that is mostly NULL (only its set values are indexed).

    Every foreign key whose parent rows the inbound-mail batch inserts needs one: SQLite checks the
    batch's foreign keys at COMMIT, and while any check is outstanding each row inserted into a
    parent table looks for the child rows that refer to it, by this index or else by a full scan of
    the child table (messages, audit_events: a scan per new customer)."""
    where = text(f"{column} IS NOT NULL")
    return Index(name, column, sqlite_where=where, postgresql_where=where)


def install_sqlite_pragmas(engine):
    """WAL, a busy timeout and foreign keys on every SQLite connection."""

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record):
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()


def dialect(session_or_engine):
    """'sqlite' or 'postgresql'."""
    bind = session_or_engine.get_bind() if hasattr(session_or_engine, "get_bind") else session_or_engine
    return bind.dialect.name



def insert_fn(session):
    """The dialect's `insert` (with on_conflict_do_nothing) for the session's database."""
    if dialect(session) == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert
