"""The lock the `make run` supervisor holds on instance/, so only one runs there at a time.

An advisory flock on instance/run.lock: the OS releases it when the holder dies, so a crash never
leaves a stale lock. `flask restore` checks it to refuse restoring under a running app.
"""
import fcntl
import os
from pathlib import Path

LOCK_NAME = "run.lock"


class RunLock:
    """Exclusive, non-blocking lock on <instance>/run.lock holding the owner's pid."""

    def __init__(self, instance_path):
        self.path = Path(instance_path) / LOCK_NAME
        self.fd = None

    def acquire(self):
        """Take the lock; False if another process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return True

    def release(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def holder(self):
        """The pid written by the current holder, or None when the lock is free."""
        if not self.path.exists():
            return None
        fd = os.open(self.path, os.O_RDONLY)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                text = self.path.read_text().strip()
                return int(text) if text.isdigit() else -1
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)
