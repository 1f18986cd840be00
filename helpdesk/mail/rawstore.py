"""Raw inbound mail, kept byte for byte under RAW_MAIL_DIR by SHA-256 (ab/cd/<sha256>).

`save` writes to a temporary file, fsyncs it and renames it into place (and fsyncs the folder), so
a stored message survives a crash: the fetcher commits the inbound row only after this returns,
and flags the message on the server only after that commit.
"""
import hashlib
import itertools
import os
import threading
from pathlib import Path

from flask import current_app

from ..tickets.storage import write_once


def root():
    return Path(current_app.config["RAW_MAIL_DIR"])


def path_for(sha256, base=None):
    base = Path(base) if base else root()
    return base / sha256[:2] / sha256[2:4] / sha256


def save(data, base=None):
    """Store bytes durably (idempotent); return their SHA-256."""
    digest = hashlib.sha256(data).hexdigest()
    write_once(path_for(digest, base), data, sync_dir=True)
    return digest


def save_many(raws):
    """`save` for a batch: the same files, made durable with two syncs per batch instead of two
    fsyncs per file. New files are written under temporary names (`write_pending`), then synced,
    renamed into place and synced again (`put_in_place`), so a file at its final name is always
    complete. Returns the SHA-256s in order; the caller commits only after this returns."""
    written = write_pending(raws, str(root()))
    put_in_place(written)
    return [digest for digest, _tmp in written]


def write_pending(raws, base):
    """First half of `save_many`, without an app context (the parse pool's workers run it on the
    other cores while the fetcher writes the previous batch): each message's SHA-256 and, for one
    not yet in the store, the temporary file its bytes were written to (not yet synced).
    Returns [(sha256, temporary path or None)] in order.
    (Plain os calls on strings: this runs for every message fetched.)"""
    out, fresh = [], set()
    for data in raws:
        digest = hashlib.sha256(data).hexdigest()
        folder = f"{base}/{digest[:2]}/{digest[2:4]}"
        target = f"{folder}/{digest}"
        if digest in fresh or os.path.exists(target):
            out.append((digest, None))
            continue
        if folder not in _FOLDERS:
            os.makedirs(folder, exist_ok=True)
            _FOLDERS.add(folder)
        # A temporary name of this write's own: another fetcher may be writing the same message, and
        # a parse worker may write it again (the same bytes in the next batch) while the fetcher is
        # still putting the previous file in place. O_EXCL: never a file someone else holds.
        tmp = f"{folder}/.tmp-{os.getpid()}-{threading.get_ident()}-{next(_WRITES)}-{digest}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileNotFoundError:  # the folder went away since (removed by hand): make it again
            os.makedirs(folder, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            _write_all(fd, data)
        except BaseException:
            os.close(fd)
            os.unlink(tmp)  # (a disk that is full: leave no partial file behind)
            raise
        os.close(fd)
        fresh.add(digest)
        out.append((digest, tmp))
    return out


def put_in_place(written, base=None):
    """Second half of `save_many`: the temporary files synced, renamed to their final names, and
    the names synced. Raises if a file is neither in place nor at its temporary name (the caller
    then stores nothing as durable)."""
    base = base or str(root())
    moves = [(tmp, f"{base}/{digest[:2]}/{digest[2:4]}/{digest}") for digest, tmp in written if tmp]
    if not moves:
        return
    os.sync()  # the contents
    for tmp, target in moves:
        os.replace(tmp, target)
    os.sync()  # the names


def discard_pending(written):
    """Remove the temporary files of a `write_pending` that will not be put in place (a batch
    another fetcher stored first, or one whose fetch failed). Never raises."""
    for item in written or ():
        tmp = item[1] if item else None
        if tmp:
            try:
                os.unlink(tmp)
            except OSError:
                pass


_FOLDERS = set()  # folders known to exist (made by this process, or found)
_WRITES = itertools.count()  # makes every temporary name of this process unique


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def load(sha256, base=None):
    """The raw bytes, or None when the file is gone."""
    try:
        return path_for(sha256, base).read_bytes()
    except FileNotFoundError:
        return None
