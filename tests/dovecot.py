"""A private Dovecot IMAP server for tests and benchmarks (never the system's service).

From a test module, import the fixtures (they are ordinary pytest fixtures)::

    from tests.dovecot import dovecot, imap_user, imap_user_factory  # noqa: F401

    def test_something(imap_user):
        imap_user.append("INBOX", b"Subject: hi\\r\\n\\r\\nbody\\r\\n")
        ...  # connect to imap_user.host / imap_user.port as imap_user.username / imap_user.password

- ``dovecot`` (session): one running :class:`DovecotServer`, shared by every module that imports the
  fixtures; skips with the reason when the ``dovecot`` binary is missing (``dovecot-imapd``).
- ``imap_user`` (function): a fresh :class:`ImapUser` with an empty mailbox, so tests are independent.
- ``imap_user_factory`` (function): ``make()`` returns a further fresh user (e.g. two mailboxes).

From a plain script (a benchmark)::

    from tests.dovecot import start_dovecot
    with start_dovecot() as server:
        user = server.add_user()
        user.append("INBOX", raw)

The server listens on 127.0.0.1 on a free port, plaintext LOGIN allowed. It also gets a self-signed
certificate for ``localhost`` and 127.0.0.1 (made with ``cryptography``, else the ``openssl``
command): STARTTLS on the same port, implicit TLS on ``server.imaps_port``; ``server.cafile`` trusts it.

A failed login delays the next login from 127.0.0.1 by a few seconds (Dovecot's auth penalty, reset by
a successful one): a test that fails a login on purpose should then log in once successfully.

Dovecot refuses to open mail as root: as root the Maildirs belong to a dedicated numeric uid/gid
(no passwd entry needed); as an ordinary user everything runs as that user.
"""
from __future__ import annotations

import atexit
import imaplib
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

MAIL_UID = 64123  # owner of the Maildirs when the tests run as root (any unused numeric id)
DOVECOT_PATHS = ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot")


def dovecot_binary() -> str | None:
    """Path of the dovecot binary, or None."""
    found = shutil.which("dovecot")
    if found:
        return found
    for path in DOVECOT_PATHS:
        if os.access(path, os.X_OK):
            return path
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dovecot_version(binary: str) -> tuple[int, ...]:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
    return tuple(int(p) for p in out.split()[0].split(".")[:3] if p.isdigit())


class DovecotError(RuntimeError):
    pass


@dataclass
class ImapUser:
    """A mailbox on the test server: credentials plus helpers that talk plain IMAP (imaplib)."""

    server: "DovecotServer"
    username: str
    password: str

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port

    def connect(self) -> imaplib.IMAP4:
        conn = imaplib.IMAP4(self.host, self.port, timeout=30)
        conn.login(self.username, self.password)
        return conn

    def append(self, folder: str, raw: bytes, flags=()) -> int | None:
        """APPEND one message; returns its UID (from APPENDUID)."""
        conn = self.connect()
        try:
            if folder.upper() != "INBOX":
                conn.create(_quote(folder))  # NO if it exists: fine
            typ, data = conn.append(_quote(folder), "(" + " ".join(flags) + ")" if flags else None, None, raw)
            if typ != "OK":
                raise DovecotError(f"APPEND to {folder} failed: {data!r}")
            return _appenduid(data)
        finally:
            conn.logout()

    def append_many(self, folder: str, raws, flags=(), chunk: int = 500) -> list[int | None]:
        """APPEND messages (creates the folder if missing); returns their UIDs.

        Uses MULTIAPPEND with LITERAL+ (one round trip per ``chunk`` messages): 2,000 messages of
        20 KB take about a second instead of several.
        """
        raws = list(raws)
        uids: list[int | None] = []
        conn = self.connect()
        try:
            if folder.upper() != "INBOX":
                conn.create(_quote(folder))  # NO if it exists: fine
            flag_str = "(" + " ".join(flags) + ") " if flags else ""
            for n, start in enumerate(range(0, len(raws), chunk)):
                part = raws[start:start + chunk]
                tag = f"HDA{n}".encode()
                out = [tag + b" APPEND " + _quote(folder).encode()]
                for raw in part:
                    out.append(f" {flag_str}{{{len(raw)}+}}\r\n".encode())
                    out.append(raw)
                out.append(b"\r\n")
                conn.send(b"".join(out))
                while True:
                    line = conn.readline()
                    if not line:
                        raise DovecotError("connection closed during APPEND")
                    if line.startswith(tag + b" "):
                        break
                if not line.startswith(tag + b" OK"):
                    raise DovecotError(f"APPEND to {folder} failed: {line!r}")
                uids.extend(_appenduids(line, len(part)))
        finally:
            conn.logout()
        return uids

    def flags(self, folder: str = "INBOX") -> dict[int, set[str]]:
        """UID -> flags of every message in the folder (read-only: changes nothing)."""
        conn = self.connect()
        try:
            typ, data = conn.select(_quote(folder), readonly=True)
            if typ != "OK":
                raise DovecotError(f"SELECT {folder} failed: {data!r}")
            typ, data = conn.uid("FETCH", "1:*", "(UID FLAGS)")
            result = {}
            for item in data:
                if not item:
                    continue
                text = item.decode() if isinstance(item, bytes) else item[0].decode()
                uid = int(text.split("UID ", 1)[1].split()[0].rstrip(")"))
                flag_part = text.split("FLAGS (", 1)[1].split(")", 1)[0]
                result[uid] = set(flag_part.split())
            return result
        finally:
            conn.logout()

    def uids(self, folder: str = "INBOX") -> list[int]:
        return sorted(self.flags(folder))

    def folders(self) -> list[str]:
        conn = self.connect()
        try:
            typ, data = conn.list()
            return [_folder_from_list(line) for line in data if line]
        finally:
            conn.logout()

    def set_flags(self, folder: str, uids, flags) -> None:
        """Add flags as "another client" would (e.g. a person reading the mail in Thunderbird)."""
        conn = self.connect()
        try:
            conn.select(_quote(folder))
            conn.uid("STORE", ",".join(str(u) for u in uids), "+FLAGS.SILENT", "(" + " ".join(flags) + ")")
        finally:
            conn.logout()

    def empty(self) -> None:
        """Delete every message in every folder and every folder but INBOX."""
        conn = self.connect()
        try:
            typ, data = conn.list()
            for name in [_folder_from_list(line) for line in data if line]:
                if name.upper() == "INBOX":
                    continue
                conn.delete(_quote(name))
            conn.select("INBOX")
            conn.store("1:*", "+FLAGS.SILENT", r"(\Deleted)")
            conn.expunge()
        finally:
            conn.logout()


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _folder_from_list(line) -> str:
    text = line.decode() if isinstance(line, bytes) else line[0].decode()
    if text.endswith('"'):
        # (\HasNoChildren) "." "Name with space"
        body = text[: -1]
        return body[body.rindex(' "') + 2:].replace('\\"', '"').replace("\\\\", "\\")
    return text.rsplit(" ", 1)[-1]


def _appenduid(data) -> int | None:
    text = b" ".join(d for d in data if isinstance(d, bytes))
    return _appenduids(text, 1)[0]


def _appenduids(line: bytes, count: int) -> list[int | None]:
    """UIDs from "[APPENDUID <validity> <uid-set>]" (RFC 4315), e.g. 1:3,7."""
    text = line.decode(errors="replace")
    if "APPENDUID" not in text:
        return [None] * count
    uid_set = text.split("APPENDUID", 1)[1].split()[1].rstrip("]")
    uids = []
    for item in uid_set.split(","):
        low, _, high = item.partition(":")
        uids.extend(range(int(low), int(high or low) + 1))
    return uids


def self_signed_certificate(days: int = 7) -> tuple[bytes, bytes]:
    """(certificate PEM, private key PEM) for CN=localhost with DNS:localhost and IP:127.0.0.1."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _tls_available() -> bool:
    try:
        import cryptography  # noqa: F401
        return True
    except ImportError:
        return shutil.which("openssl") is not None


class DovecotServer:
    """One private Dovecot under its own temporary folder; ``start()`` / ``stop()`` or ``with``."""

    def __init__(self, root: str | Path | None = None, *, tls: bool | None = None, binary: str | None = None):
        self.binary = binary or dovecot_binary()
        if not self.binary:
            raise DovecotError("dovecot is not installed (Debian package dovecot-imapd)")
        self._own_root = root is None
        # Not under pytest's tmp_path: its parent is 0700 and the mail uid must reach the Maildirs.
        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix="helpdesk-dovecot-"))
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)
        self.host = "127.0.0.1"
        self.port = free_port()
        self.imaps_port = None
        self.cafile = None
        self.tls = _tls_available() if tls is None else tls
        self.proc: subprocess.Popen | None = None
        self._users = itertools.count(1)
        self._lock = threading.Lock()
        self._pool: list[tuple[str, str]] = []
        self.as_root = os.geteuid() == 0
        self.version = dovecot_version(self.binary)

    # ------------------------------------------------------------ configuration

    @property
    def log_path(self) -> Path:
        return self.root / "dovecot.log"

    @property
    def passwd_path(self) -> Path:
        return self.root / "passwd"

    def _make_cert(self) -> tuple[Path, Path]:
        """A self-signed certificate for localhost and 127.0.0.1 (cryptography, else openssl)."""
        cert, key = self.root / "cert.pem", self.root / "key.pem"
        try:
            cert_pem, key_pem = self_signed_certificate()
        except ImportError:
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "7", "-subj", "/CN=localhost",
                 "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                check=True, capture_output=True)
        else:
            cert.write_bytes(cert_pem)
            key.write_bytes(key_pem)
        os.chmod(key, 0o600)
        return cert, key

    def _config(self) -> str:
        r = self.root
        if self.as_root:
            internal, login = "dovecot", "dovenull"
            ids = f"mail_uid = {MAIL_UID}\nmail_gid = {MAIL_UID}\n"
            userdb_ids = f"uid={MAIL_UID} gid={MAIL_UID} "
        else:
            import grp
            import pwd

            internal = login = pwd.getpwuid(os.geteuid()).pw_name
            group = grp.getgrgid(os.getegid()).gr_name
            ids = f"default_internal_group = {group}\n"
            userdb_ids = f"uid={os.geteuid()} gid={os.getegid()} "
        cleartext = ("auth_allow_cleartext = yes" if self.version >= (2, 4)
                     else "disable_plaintext_auth = no")
        if self.tls:
            cert, key = self._make_cert()
            self.cafile = str(cert)
            self.imaps_port = free_port()
            ssl = f"ssl = yes\nssl_cert = <{cert}\nssl_key = <{key}\n"
        else:
            ssl = "ssl = no\n"
        return f"""# generated by tests/dovecot.py
protocols = imap
listen = {self.host}
base_dir = {r}/run
state_dir = {r}/state
instance_name = helpdesk-test-{self.port}
log_path = {self.log_path}
info_log_path = {self.log_path}
{ssl}{cleartext}
auth_mechanisms = plain login
default_internal_user = {internal}
default_login_user = {login}
{ids}first_valid_uid = 1
mail_location = maildir:{r}/mail/%n
mail_fsync = never
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%n {self.passwd_path}
}}
userdb {{
  driver = static
  args = {userdb_ids}home={r}/home/%n
}}
service imap-login {{
  inet_listener imap {{
    address = {self.host}
    port = {self.port}
  }}
  inet_listener imaps {{
    address = {self.host}
    port = {self.imaps_port or 0}
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
namespace inbox {{
  inbox = yes
}}
"""

    # ------------------------------------------------------------ lifecycle

    def start(self, wait: float = 20.0) -> "DovecotServer":
        for sub in ("run", "state", "mail", "home"):
            (self.root / sub).mkdir(exist_ok=True)
        self.passwd_path.write_text("")
        self._write_pool()
        os.chmod(self.passwd_path, 0o644)
        if self.as_root:
            for sub in ("mail", "home"):
                os.chown(self.root / sub, MAIL_UID, MAIL_UID)
        conf = self.root / "dovecot.conf"
        conf.write_text(self._config())
        self.proc = subprocess.Popen([self.binary, "-F", "-c", str(conf)], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        atexit.register(self.stop)  # a script that forgets stop() (or dies of an exception) leaves nothing
        probe = self.add_user()
        deadline = time.monotonic() + wait
        last_error = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                out = self.proc.stdout.read().decode(errors="replace")
                raise DovecotError(f"dovecot exited with {self.proc.returncode}: {out}{self._log_tail()}")
            try:
                probe.connect().logout()
                return self
            except (OSError, imaplib.IMAP4.error) as exc:
                last_error = exc
                time.sleep(0.05)
        self.stop()
        raise DovecotError(f"dovecot did not accept LOGIN within {wait}s: {last_error!r}{self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return "\n" + "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return ""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait(5)
        if proc is not None and proc.stdout:
            proc.stdout.close()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self) -> "DovecotServer":
        return self.start() if self.proc is None else self

    def __exit__(self, *exc) -> None:
        self.stop()

    def kick(self, username: str) -> None:
        """Drop every connection of the user (doveadm kick), as a server restart would."""
        doveadm = shutil.which("doveadm") or str(Path(self.binary).with_name("doveadm"))
        subprocess.run([doveadm, "-c", str(self.root / "dovecot.conf"), "kick", username],
                       check=True, capture_output=True)

    # ------------------------------------------------------------ users

    def _pool_user(self) -> tuple[str, str]:
        name = f"user{next(self._users)}"
        return name, f"pw-{name}-{os.urandom(4).hex()}"

    def _write_pool(self) -> None:
        # Dovecot re-reads a changed passwd-file at most once a second, so fresh users come from a pool
        # written before the start; a user beyond it (or with a chosen name) costs a one-second wait.
        self._pool = [self._pool_user() for _ in range(self.POOL)]
        with open(self.passwd_path, "a") as fh:
            fh.writelines(f"{name}:{{PLAIN}}{password}\n" for name, password in self._pool)

    POOL = 300

    def add_user(self, name: str | None = None, password: str | None = None) -> ImapUser:
        """A new user with an empty mailbox."""
        with self._lock:
            if name is None and password is None and self._pool:
                return ImapUser(self, *self._pool.pop(0))
            if name is None:
                name, generated = self._pool_user()
                password = password or generated
            password = password or f"pw-{name}-{os.urandom(4).hex()}"
            with open(self.passwd_path, "a") as fh:
                fh.write(f"{name}:{{PLAIN}}{password}\n")
            if self.proc is not None:
                time.sleep(1.1)
        return ImapUser(self, name, password)


def start_dovecot(root: str | Path | None = None, *, tls: bool | None = None) -> DovecotServer:
    """Start a private Dovecot (for scripts); stop it with ``.stop()`` or use it in ``with``."""
    return DovecotServer(root, tls=tls).start()


# ---------------------------------------------------------------- pytest fixtures

try:
    import pytest
except ImportError:  # plain scripts need no pytest
    pytest = None

_shared: DovecotServer | None = None

if pytest is not None:

    @pytest.fixture(scope="session")
    def dovecot():
        """The shared private Dovecot (one per test run, even when several modules import this)."""
        global _shared
        if not dovecot_binary():
            pytest.skip("dovecot is not installed (apt-get install dovecot-imapd): IMAP tests need it")
        if _shared is None or not _shared.running:
            _shared = DovecotServer().start()
        yield _shared
        # Session teardown: every importing module's copy of this fixture ends here; stop is idempotent.
        if _shared is not None:
            _shared.stop()

    @pytest.fixture
    def imap_user_factory(dovecot):
        """``make(name=None)`` -> a fresh ImapUser with an empty mailbox."""
        return dovecot.add_user

    @pytest.fixture
    def imap_user(dovecot):
        """A fresh user with an empty mailbox for this test."""
        return dovecot.add_user()
