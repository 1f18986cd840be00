"""Database helpers that differ between SQLite and PostgreSQL."""
from sqlalchemy import event


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
