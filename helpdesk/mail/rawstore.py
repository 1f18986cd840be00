"""Raw inbound mail, kept byte for byte under RAW_MAIL_DIR by SHA-256 (ab/cd/<sha256>).

`save` writes to a temporary file, fsyncs it and renames it into place (and fsyncs the folder), so
a stored message survives a crash: the fetcher commits the inbound row only after this returns,
and flags the message on the server only after that commit.
"""
import hashlib
import os
import tempfile
from pathlib import Path

from flask import current_app


def root():
    return Path(current_app.config["RAW_MAIL_DIR"])


def path_for(sha256, base=None):
    base = Path(base) if base else root()
    return base / sha256[:2] / sha256[2:4] / sha256


def save(data, base=None):
    """Store bytes durably (idempotent); return their SHA-256."""
    digest = hashlib.sha256(data).hexdigest()
    target = path_for(digest, base)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return digest


def load(sha256, base=None):
    """The raw bytes, or None when the file is gone."""
    try:
        return path_for(sha256, base).read_bytes()
    except FileNotFoundError:
        return None
