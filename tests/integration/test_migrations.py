"""The models and the migrations agree, on whichever database DATABASE_URL names (SQLite by default,
PostgreSQL in CI), and the migrations go down to empty and up again."""
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

import helpdesk
from helpdesk import models  # noqa: F401  (every model registered with the metadata)
from helpdesk.extensions import db

ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = ROOT / "migrations"


def schema_diff(url):
    """Alembic's autogenerate comparison of the models with the schema at `url` (empty = they agree)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True,
                                                         "include_object": helpdesk.include_object})
            return compare_metadata(ctx, db.metadata)
    finally:
        engine.dispose()


def flask_db(url, tmp_path, *args):
    """Run `flask db ...` against `url` in a subprocess, as a deploy would."""
    env = {**os.environ, "DATABASE_URL": url, "HELPDESK_ENV": "dev", "FLASK_APP": "wsgi.py",
           "HELPDESK_INSTANCE": str(tmp_path / "instance")}
    proc = subprocess.run([sys.executable, "-m", "flask", "db", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"flask db {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def hand_made_objects(url):
    """Names of the objects the migrations create by hand (helpdesk.UNMODELLED) that exist at `url`."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                rows = conn.execute(text("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"))
            else:
                rows = conn.execute(text("SELECT name FROM sqlite_master"))
            return {r[0] for r in rows} & helpdesk.UNMODELLED
    finally:
        engine.dispose()


@pytest.fixture
def scratch_url(database_url, tmp_path):
    """An empty database of the same kind as the test database, private to this test:
    a temporary SQLite file, or a fresh schema in the PostgreSQL database."""
    if not database_url.startswith("postgresql"):
        yield f"sqlite:///{tmp_path}/migrations.db"
        return
    schema = f"mig_{uuid.uuid4().hex[:10]}"
    admin = create_engine(database_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in database_url else "?"
    try:
        yield f"{database_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_one_head():
    """Migrations written in parallel must be chained, not branched."""
    cfg = AlembicConfig(str(MIGRATIONS / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS))
    heads = ScriptDirectory.from_config(cfg).get_heads()
    assert len(heads) == 1, f"several migration heads {heads}: run `flask db merge heads`"


def test_models_match_the_migrated_schema(database_url):
    """The session test database was built by `flask db upgrade`; the models describe it exactly."""
    assert schema_diff(database_url) == []


def test_filter_hides_only_what_the_migration_made_by_hand(database_url):
    expected = {"ix_tickets_search_vector"} if database_url.startswith("postgresql") else {"ticket_fts"}
    assert hand_made_objects(database_url) == expected
    unfiltered = create_engine(database_url)
    try:
        with unfiltered.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            extra = {d[1].name for d in compare_metadata(ctx, db.metadata) if d[0] in ("remove_table", "remove_index")}
    finally:
        unfiltered.dispose()
    # Without the filter exactly these would show up (on SQLite with FTS5's shadow tables ticket_fts_*).
    assert {"ticket_fts" if n.startswith("ticket_fts_") else n for n in extra} == expected


def test_downgrade_to_base_and_upgrade_again(scratch_url, tmp_path):
    flask_db(scratch_url, tmp_path, "upgrade")
    assert schema_diff(scratch_url) == []

    flask_db(scratch_url, tmp_path, "downgrade", "base")
    engine = create_engine(scratch_url)
    try:
        insp = inspect(engine)
        left = set(insp.get_table_names()) - {"alembic_version"}
        assert left == set(), f"tables left after downgrade to base: {sorted(left)}"
        assert hand_made_objects(scratch_url) == set()
    finally:
        engine.dispose()

    flask_db(scratch_url, tmp_path, "upgrade")
    assert schema_diff(scratch_url) == []
    engine = create_engine(scratch_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT value FROM counters WHERE name = 'ticket'")).scalar() == 1000
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    finally:
        engine.dispose()
    assert hand_made_objects(scratch_url) == helpdesk.UNMODELLED & (
        {"ix_tickets_search_vector"} if scratch_url.startswith("postgresql") else {"ticket_fts"})


def test_flask_migrate_is_loaded_only_by_the_db_commands(tmp_path):
    """Alembic is a third of a second of every process start: the app and its other commands (the
    mail fetcher, the workers) start without it; `flask db` loads it, options and all."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/x.db", "HELPDESK_ENV": "dev", "FLASK_APP": "wsgi.py",
           "HELPDESK_INSTANCE": str(tmp_path / "instance")}
    probe = ("import sys; from flask.cli import ScriptInfo; app = ScriptInfo().load_app(); "
             "print(sorted(m for m in ('alembic', 'flask_migrate') if m in sys.modules)); "
             "print('db' in app.cli.list_commands(None))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.split() == ["[]", "True"], out.stderr[-2000:]
    flask_db(f"sqlite:///{tmp_path}/x.db", tmp_path, "upgrade")
    cfg = AlembicConfig(str(MIGRATIONS / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    current = flask_db(f"sqlite:///{tmp_path}/x.db", tmp_path, "-x", "unused=1", "current")
    assert f"{head} (head)" in current.stdout
