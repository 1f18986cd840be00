"""Attachment store: files kept once per SHA-256 under ATTACHMENT_DIR (ab/cd/<sha256>)."""
import hashlib
import os
import tempfile
import threading
from pathlib import Path

from flask import current_app


def root():
    return Path(current_app.config["ATTACHMENT_DIR"])


def path_for(sha256):
    """Where a blob with this hash lives."""
    return root() / sha256[:2] / sha256[2:4] / sha256


def write_once(target, data, sync_dir=False):
    """Write bytes to `target` unless it exists: a temporary file, fsynced, renamed into place (so a
    file at its final name is always complete); with sync_dir the folder is fsynced too."""
    target = Path(target)
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, target)
    if sync_dir:
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def save_bytes(data):
    """Store bytes (idempotent); return their SHA-256.

    In a batch of inbound mail (batchcache open) the file is written under a temporary name now
    and made durable and put in place by `finish_batch` just before the batch commits: two syncs
    per batch instead of one fsync per file, and still never a file at its final name that is not
    complete. Until then `read_bytes` finds it."""
    from .. import batchcache
    from ..extensions import db

    digest = hashlib.sha256(data).hexdigest()
    target = path_for(digest)
    if not batchcache.is_open():
        write_once(target, data)
        return digest
    pending = db.session.info.setdefault(_PENDING, {})
    if digest not in pending and not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        # a temporary name of this process's own (another worker may be storing the same file)
        tmp = target.parent / f".tmp-{os.getpid()}-{threading.get_ident()}-{digest}"
        tmp.write_bytes(data)
        pending[digest] = (tmp, target)
    return digest


_PENDING = "storage_pending"


def read_bytes(sha256):
    """A stored file's bytes (one of the current batch's too)."""
    from ..extensions import db

    pending = db.session.info.get(_PENDING) or {}
    if sha256 in pending:
        return pending[sha256][0].read_bytes()
    return path_for(sha256).read_bytes()


def finish_batch(session):
    """Make the batch's files durable and put them in place (call before its commit)."""
    pending = session.info.pop(_PENDING, None)
    if pending:
        os.sync()  # the contents
        for tmp, target in pending.values():
            os.replace(tmp, target)
        os.sync()  # the names


def discard_batch(session):
    """Forget a batch that did not get to `finish_batch`, and remove its temporary files."""
    for tmp, _target in (session.info.pop(_PENDING, None) or {}).values():
        try:
            tmp.unlink()
        except OSError:
            pass
