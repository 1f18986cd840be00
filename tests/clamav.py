"""A private ClamAV daemon for tests (never the system's service, never freshclam, no network).

From a test module, import the fixtures (they are ordinary pytest fixtures)::

    from tests.clamav import clamd_server, clamd_factory  # noqa: F401

    def test_something(clamd_server):
        ...  # app_factory(CLAMD_SOCKET=clamd_server.socket)

- ``clamd_server`` (session): one running :class:`ClamdServer`, shared by every module that imports
  it; skips with the reason when ``clamd`` is not installed (Debian's ``clamav-daemon``).
- ``clamd_factory`` (function): ``make(extra_conf="", tcp=False)`` starts a further private daemon
  that the test may stop (``server.stop()``) and start again (``server.start()``); with ``tcp=True``
  it also listens on 127.0.0.1:``server.tcp_port``; ``extra_conf`` lines are appended to its
  clamd.conf (e.g. ``"StreamMaxLength 1M"``). All are stopped after the test.

There is no signature download here, so the daemon gets a test-only database written by
:func:`write_signatures`: a body signature (``.ndb``) that finds the EICAR test string anywhere in a
file, and a SHA-256 hash signature (``.hsb``) of one exact sample (:data:`HASH_SAMPLE`). clamd adds
``.UNOFFICIAL`` to the names of signatures that are not ClamAV's own: :data:`EICAR_FOUND` and
:data:`HASH_FOUND` are the names it reports.

The daemon runs in the foreground as the current user, with its own ``clamd.conf``, database, log and
unix socket in a temp folder (short path: unix socket paths are limited to ~100 bytes), no TCP socket.
"""
from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.dovecot import free_port

CLAMD_PATHS = ("/usr/sbin/clamd", "/usr/local/sbin/clamd")

# The standard antivirus test file (https://www.eicar.org): harmless, and every scanner must find it.
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
EICAR_SIGNATURE = "Helpdesk.Test.EICAR"
EICAR_FOUND = EICAR_SIGNATURE + ".UNOFFICIAL"
# One exact file that only the hash database knows (a byte more or less and it is clean); larger than
# several 64 KB INSTREAM chunks, so a lost, doubled or reordered chunk makes it clean.
HASH_SAMPLE = b"".join(hashlib.sha256(b"helpdesk sample %d" % i).digest() for i in range(6000))  # 192,000 bytes
HASH_SIGNATURE = "Helpdesk.Test.HashSample"
HASH_FOUND = HASH_SIGNATURE + ".UNOFFICIAL"


def clamd_binary() -> str | None:
    """Path of the clamd binary, or None."""
    found = shutil.which("clamd")
    if found:
        return found
    for path in CLAMD_PATHS:
        if os.access(path, os.X_OK):
            return path
    return None


def write_signatures(db_dir: Path) -> None:
    """The test-only signature database (formats: clamav's signatures.md, `man sigtool`).

    .ndb  Name:TargetType:Offset:HexSignature   (target 0 = any file, offset * = anywhere)
    .hsb  SHA256:FileSize:Name
    """
    db_dir.mkdir(parents=True, exist_ok=True)
    (db_dir / "helpdesk-test.ndb").write_text(f"{EICAR_SIGNATURE}:0:*:{EICAR.hex()}\n")
    (db_dir / "helpdesk-test.hsb").write_text(
        f"{hashlib.sha256(HASH_SAMPLE).hexdigest()}:{len(HASH_SAMPLE)}:{HASH_SIGNATURE}\n")


class ClamdError(RuntimeError):
    pass


class ClamdServer:
    """One private clamd: ``start()``, ``stop()``, ``socket`` (the unix socket path)."""

    def __init__(self, binary: str | None = None, *, extra_conf: str = "", tcp: bool = False):
        self.binary = binary or clamd_binary()
        if self.binary is None:
            raise ClamdError("clamd is not installed (Debian package clamav-daemon)")
        self.dir = Path(tempfile.mkdtemp(prefix="clamd-"))
        self.socket = str(self.dir / "clamd.sock")
        self.log = self.dir / "clamd.log"
        self.conf = self.dir / "clamd.conf"
        self.proc: subprocess.Popen | None = None
        self.tcp_port = free_port() if tcp else None
        write_signatures(self.dir / "db")
        (self.dir / "tmp").mkdir()
        lines = [
            f"LocalSocket {self.socket}",
            "LocalSocketMode 600",
            "Foreground yes",
            f"DatabaseDirectory {self.dir / 'db'}",
            f"TemporaryDirectory {self.dir / 'tmp'}",
            f"LogFile {self.log}",
            "LogTime yes",
            f"PidFile {self.dir / 'clamd.pid'}",
            # above MAIL_MAX_ATTACHMENT_BYTES (25 MB), as a production daemon's must be
            "StreamMaxLength 40M",
            "MaxFileSize 40M",
            "MaxScanSize 100M",
            "SelfCheck 3600",
            "Bytecode no",
        ]
        if tcp:
            lines += [f"TCPSocket {self.tcp_port}", "TCPAddr 127.0.0.1"]
        extra = [line.strip() for line in extra_conf.splitlines() if line.strip()]
        overridden = {line.split()[0] for line in extra}
        lines = [line for line in lines if line.split()[0] not in overridden] + extra
        self.conf.write_text("# private test daemon: test signatures only, no freshclam, no network\n"
                             + "\n".join(lines) + "\n")

    def ping(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(2)
                s.connect(self.socket)
                s.sendall(b"zPING\0")
                return s.recv(16).rstrip(b"\0") == b"PONG"
        except OSError:
            return False

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 60) -> "ClamdServer":
        if self.running:
            return self
        self.proc = subprocess.Popen([self.binary, "--config-file", str(self.conf)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                out = self.proc.stdout.read().decode("utf-8", "replace")
                log = self.log.read_text(errors="replace") if self.log.exists() else ""
                self.proc = None
                raise ClamdError(f"clamd exited at start:\n{out[-2000:]}\n{log[-2000:]}")
            if self.ping():
                return self
            time.sleep(0.1)
        self.stop()
        raise ClamdError(f"clamd did not answer PING within {timeout} s")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc.stdout.close()
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()


def _start_or_skip(**options) -> ClamdServer:
    binary = clamd_binary()
    if binary is None:
        pytest.skip("clamd is not installed (apt-get install clamav-daemon)")
    server = ClamdServer(binary, **options)
    atexit.register(server.cleanup)  # even when the test run is interrupted
    try:
        return server.start()
    except ClamdError:
        server.cleanup()
        raise


@pytest.fixture(scope="session")
def clamd_server():
    server = _start_or_skip()
    yield server
    server.cleanup()


@pytest.fixture
def clamd_factory():
    servers = []

    def make(extra_conf: str = "", tcp: bool = False) -> ClamdServer:
        server = _start_or_skip(extra_conf=extra_conf, tcp=tcp)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.cleanup()
