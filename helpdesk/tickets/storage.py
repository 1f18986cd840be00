"""Attachment store: files kept once per SHA-256 under ATTACHMENT_DIR (ab/cd/<sha256>)."""
import hashlib
import os
import tempfile
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
    """Store bytes (idempotent); return their SHA-256."""
    digest = hashlib.sha256(data).hexdigest()
    write_once(path_for(digest), data)
    return digest
