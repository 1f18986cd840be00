"""`flask backup PATH` and `flask restore PATH`: a consistent copy of the database and file stores.

The database snapshot is taken first, then the file stores are copied. Attachments are stored under
their SHA-256 and never change, and each is written before the row that refers to it commits, so
every file the snapshot refers to already exists when the copy of the store starts.

SQLite (the embedded default) is copied with SQLite's online backup API while the app runs.
PostgreSQL is backed up with pg_dump; the command says so and still copies the file stores.
"""
import hashlib
import json
import os
import shutil
import sqlite3
from datetime import datetime
from pathlib import Path

from flask import current_app
from sqlalchemy import func, inspect, select, table

from .extensions import db
from .runlock import RunLock
from .timeutil import utcnow

DB_FILE = "helpdesk.db"
MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
COUNTED_TABLES = ("tickets", "messages", "attachments", "customers", "users", "audit_events", "outbox_jobs")
CHUNK = 1024 * 1024


class BackupError(Exception):
    """The backup or restore cannot go on; the message says why."""


# ---------------------------------------------------------------- helpers

def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _copy_hashed(src, target):
    """Copy src to target through a temporary file, returning the SHA-256 of what was copied."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".tmp-{target.name}")
    h = hashlib.sha256()
    with open(src, "rb") as fin, open(tmp, "wb") as fout:
        for block in iter(lambda: fin.read(CHUNK), b""):
            h.update(block)
            fout.write(block)
        fout.flush()
        os.fsync(fout.fileno())
    shutil.copystat(src, tmp)
    os.replace(tmp, target)
    return h.hexdigest()


def _same_file(a, b):
    sa, sb = a.stat(), b.stat()
    return sa.st_size == sb.st_size and int(sa.st_mtime) == int(sb.st_mtime)


def _sqlite_path():
    url = db.engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database).resolve()


def _sqlite_counts(conn):
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in COUNTED_TABLES if t in names}


def _live_counts():
    names = set(inspect(db.engine).get_table_names())
    with db.engine.connect() as conn:
        return {t: conn.execute(select(func.count()).select_from(table(t))).scalar()
                for t in COUNTED_TABLES if t in names}


# ---------------------------------------------------------------- the database

def backup_sqlite(source, target):
    """One-step online backup of a live SQLite database (WAL: writers are not blocked)."""
    tmp = target.with_name(f".tmp-{target.name}")
    tmp.unlink(missing_ok=True)
    src = sqlite3.connect(str(source), timeout=30)
    dst = sqlite3.connect(str(tmp))
    try:
        src.backup(dst)  # pages=-1: the whole database in one step, so one consistent snapshot
        dst.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file
        integrity = dst.execute("PRAGMA integrity_check").fetchone()[0]
        counts = _sqlite_counts(dst)
    finally:
        dst.close()
        src.close()
    if integrity != "ok":
        raise BackupError(f"The copy of the database failed its integrity check: {integrity}")
    os.replace(tmp, target)
    return {"engine": "sqlite", "file": DB_FILE, "bytes": target.stat().st_size, "sha256": sha256_file(target),
            "integrity_check": integrity, "counts": counts}


# ---------------------------------------------------------------- file stores

def copy_store(source, target, content_addressed=False):
    """Copy new or changed files of a store; return (summary, [(sha256, path relative to target's parent)])."""
    source, target = Path(source), Path(target)
    info = {"source": str(source), "dir": target.name, "files": 0, "bytes": 0, "copied": 0, "mismatched": []}
    sums = []
    if not source.is_dir():
        info["missing"] = True
        return info, sums
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.rglob("*")):
        if not path.is_file() or path.name.startswith(".tmp-"):
            continue
        rel = path.relative_to(source)
        dest = target / rel
        if dest.exists() and _same_file(path, dest):
            # Unchanged since an earlier backup into the same PATH: an attachment's name is its hash.
            digest = path.name if content_addressed else sha256_file(dest)
        else:
            digest = _copy_hashed(path, dest)
            info["copied"] += 1
        if content_addressed and digest != path.name:
            info["mismatched"].append(rel.as_posix())
        info["files"] += 1
        info["bytes"] += path.stat().st_size
        sums.append((digest, f"{target.name}/{rel.as_posix()}"))
    listing = "".join(f"{d}  {p}\n" for d, p in sums)
    info["tree_sha256"] = hashlib.sha256(listing.encode()).hexdigest()
    return info, sums


def _stores(app):
    return [("attachments", app.config["ATTACHMENT_DIR"], True),
            ("raw-mail", app.config.get("RAW_MAIL_DIR") or os.path.join(app.instance_path, "raw-mail"), False)]


# ---------------------------------------------------------------- backup

def backup(dest, app=None):
    """Back up into the directory `dest`; returns the manifest (also written as dest/manifest.json)."""
    app = app or current_app
    dest = Path(dest).resolve()
    for _name, store, _ca in _stores(app):
        if dest == Path(store).resolve() or Path(store).resolve() in dest.parents:
            raise BackupError(f"The backup directory {dest} is inside the store {store}; choose another place.")
    dest.mkdir(parents=True, exist_ok=True)
    manifest = {"format": 1, "created_at": utcnow().isoformat(timespec="seconds") + "Z"}
    sums = []
    sqlite_path = _sqlite_path()
    if sqlite_path is not None:
        manifest["database"] = backup_sqlite(sqlite_path, dest / DB_FILE)
        sums.append((manifest["database"]["sha256"], DB_FILE))
    else:
        manifest["database"] = {"engine": db.engine.dialect.name, "file": None, "counts_live": _live_counts(),
                                "note": "Not copied: back the database up with pg_dump."}
    for name, store, content_addressed in _stores(app):
        key = name.replace("-", "_")
        manifest[key], store_sums = copy_store(store, dest / name, content_addressed)
        sums.extend(store_sums)
    (dest / SUMS).write_text("".join(f"{d}  {p}\n" for d, p in sums))
    tmp = dest / f".tmp-{MANIFEST}"
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, dest / MANIFEST)
    return manifest


def pg_dump_hint(dest):
    return (f'pg_dump --format=custom --no-owner --file "{Path(dest).resolve() / "helpdesk.dump"}" "$DATABASE_URL"'
            "   (restore: pg_restore --clean --no-owner --dbname \"$DATABASE_URL\" helpdesk.dump)")


# ---------------------------------------------------------------- restore (embedded SQLite only)

def restore(src, app=None):
    """Put a backup back into the stopped embedded deployment. Returns a summary."""
    app = app or current_app
    src = Path(src).resolve()
    target = _sqlite_path()
    if target is None:
        raise BackupError("`flask restore` is for the embedded SQLite database only. For PostgreSQL restore the "
                          "pg_dump file with pg_restore, then copy the attachments and raw-mail directories back.")
    holder = RunLock(app.instance_path).holder()
    if holder is not None:
        raise BackupError(f"The app is running on {app.instance_path} (`make run`, pid {holder}). Stop it first.")
    try:
        manifest = json.loads((src / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"{src} is not a helpdesk backup (no readable {MANIFEST}): {exc}") from None
    backup_db = src / DB_FILE
    expected = (manifest.get("database") or {}).get("sha256")
    if not backup_db.exists() or not expected:
        raise BackupError(f"{src} holds no SQLite database backup.")
    if sha256_file(backup_db) != expected:
        raise BackupError(f"{backup_db} does not match the SHA-256 in its manifest: the backup is damaged.")

    db.session.remove()
    db.engine.dispose()
    summary = {"database": str(target), "saved_previous": None}
    if target.exists():
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        previous = target.with_name(f"{target.name}.before-restore-{stamp}")
        backup_sqlite(target, previous)
        summary["saved_previous"] = str(previous)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".tmp-{target.name}")
    shutil.copyfile(backup_db, tmp)
    for suffix in ("-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    os.replace(tmp, target)
    conn = sqlite3.connect(str(target))
    try:
        summary["counts"] = _sqlite_counts(conn)
    finally:
        conn.close()
    for name, store, content_addressed in _stores(app):
        info, _sums = copy_store(src / name, store, content_addressed)
        summary[name] = info["copied"]
    return summary
