"""A thin wrapper over IMAPClient for fetching support mail (no database, no Flask).

Usage::

    settings = ImapSettings(host="imap.example.co.id", port=993, security="ssl",
                            username="support@example.co.id", password=secret)
    with MailboxConnection(settings) as conn:
        status = conn.select("INBOX")
        for batch in conn.fetch_raw(conn.uids_after(last_uid)):
            for uid, raw in batch:
                ...
        conn.mark_seen(done_uids)          # or conn.move(done_uids, "Processed")

Every server or network failure is raised as :class:`ImapError` (the password never appears in it).
Fetching uses ``BODY.PEEK[]``: it never sets ``\\Seen``; only :meth:`MailboxConnection.mark_seen`
and :meth:`MailboxConnection.move` change the server.
"""
from __future__ import annotations

import imaplib
import ipaddress
import logging
import re
import socket
import ssl
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError
from imapclient.imapclient import _parse_untagged_response

SECURITY_CHOICES = ("ssl", "starttls", "plain")
SEEN = b"\\Seen"
DELETED = b"\\Deleted"


class ImapError(Exception):
    """The IMAP server refused something, or the connection failed (message fit for last_error)."""


def is_loopback(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1 (no DNS lookup)."""
    name = host.strip().rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ImapSettings:
    host: str
    port: int
    security: str  # "ssl" | "starttls" | "plain"
    username: str
    password: str = field(repr=False)
    timeout: float = 30
    # Extra CA certificates (PEM file) to trust, e.g. a company CA; None = the system's CAs.
    cafile: str | None = None

    def __post_init__(self):
        if self.security not in SECURITY_CHOICES:
            raise ValueError(f"IMAP security must be one of {', '.join(SECURITY_CHOICES)}, not {self.security!r}")
        if not isinstance(self.port, int) or not 0 < self.port < 65536:
            raise ValueError(f"IMAP port must be between 1 and 65535, not {self.port!r}")
        if not self.host or not self.host.strip():
            raise ValueError("IMAP host is required")
        if self.security == "plain" and not is_loopback(self.host):
            raise ValueError(
                f"IMAP without TLS (security 'plain') is only allowed to this machine (localhost, "
                f"127.0.0.0/8, ::1), not to {self.host!r}: the password would cross the network in "
                f"clear text. Use 'ssl' (port 993) or 'starttls' (port 143).")

    def ssl_context(self) -> ssl.SSLContext:
        """Certificates and host names are always verified."""
        return ssl.create_default_context(cafile=self.cafile)


@dataclass(frozen=True)
class FolderStatus:
    uidvalidity: int
    uidnext: int
    exists: int


def sequence_set(uids: Iterable[int]) -> str:
    """Compact IMAP sequence set: [1, 2, 3, 7, 9, 10] -> "1:3,7,9:10" (short commands for many UIDs)."""
    ordered = sorted(set(int(u) for u in uids))
    parts = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}:{ordered[j]}")
        i = j + 1
    return ",".join(parts)


_APPENDUID = re.compile(rb"APPENDUID \d+ (\d+)")
_ERRORS = (IMAPClientError, imaplib.IMAP4.error, OSError, EOFError)  # OSError covers socket and ssl errors


class MailboxConnection:
    """One logged-in IMAP connection. Use as a context manager (or ``open()`` / ``close()``)."""

    def __init__(self, settings: ImapSettings):
        self.settings = settings
        self.client: IMAPClient | None = None
        self.folder: str | None = None
        self._broken = False  # the connection died: close() must not wait for a LOGOUT answer

    # ------------------------------------------------------------ connection

    def _error(self, action: str, exc: BaseException) -> ImapError:
        s = self.settings
        if isinstance(exc, (OSError, EOFError, imaplib.IMAP4.abort)):
            self._broken = True
        detail = str(exc) or exc.__class__.__name__
        if isinstance(exc, socket.timeout):
            detail = f"timed out after {s.timeout:g}s"
        if s.password and s.password in detail:
            detail = detail.replace(s.password, "***")
        return ImapError(f"{action} ({s.username}@{s.host}:{s.port}, {s.security}): {detail}")

    def open(self) -> "MailboxConnection":
        s = self.settings
        try:
            client = IMAPClient(s.host, port=s.port, ssl=s.security == "ssl",
                                ssl_context=s.ssl_context() if s.security == "ssl" else None,
                                timeout=s.timeout)
        except _ERRORS as exc:
            raise self._error("cannot connect", exc) from None
        self.client = client
        if not logging.getLogger("imapclient.imaplib").isEnabledFor(logging.DEBUG):
            # IMAPClient turns on imaplib's debug output (routed to that logger): imaplib then builds a
            # repr() of every fetched message for nothing, about half the time of a large fetch.
            client._imap.debug = 0
        try:
            if s.security == "starttls":
                client.starttls(s.ssl_context())
        except _ERRORS as exc:
            self.close()
            raise self._error("STARTTLS failed", exc) from None
        try:
            client.login(s.username, s.password)
        except _ERRORS as exc:
            self.close()
            raise self._error("login failed", exc) from None
        return self

    def close(self) -> None:
        client, self.client = self.client, None
        self.folder = None
        broken, self._broken = self._broken, False
        if client is None:
            return
        try:
            if broken:
                client.shutdown()
            else:
                client.logout()
        except Exception:
            try:
                client.shutdown()
            except Exception:
                pass

    def __enter__(self) -> "MailboxConnection":
        if self.client is None:
            self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _c(self) -> IMAPClient:
        if self.client is None:
            raise ImapError("not connected")
        return self.client

    def _selected(self) -> IMAPClient:
        if self.folder is None:
            raise ImapError("no folder selected: call select() first")
        return self._c()

    # ------------------------------------------------------------ folders

    def select(self, folder: str) -> FolderStatus:
        """SELECT (read-write) an existing folder; creates nothing."""
        try:
            info = self._c().select_folder(folder)
            self.folder = folder
            self._pending_new_mail()  # the SELECT's own EXISTS/RECENT are not news
            uidnext = info.get(b"UIDNEXT")
            if uidnext is None:  # optional before IMAP4rev2 servers
                uidnext = self._c().folder_status(folder, [b"UIDNEXT"])[b"UIDNEXT"]
            return FolderStatus(uidvalidity=int(info[b"UIDVALIDITY"]), uidnext=int(uidnext),
                                exists=int(info.get(b"EXISTS", 0)))
        except _ERRORS as exc:
            self.folder = None
            raise self._error(f"cannot select folder {folder!r}", exc) from None

    def folder_exists(self, folder: str) -> bool:
        try:
            return self._c().folder_exists(folder)
        except _ERRORS as exc:
            raise self._error(f"cannot list folder {folder!r}", exc) from None

    def ensure_folder(self, folder: str) -> None:
        """Create the folder if it is missing (for the processed and quarantine folders)."""
        if self.folder_exists(folder):
            return
        try:
            self._c().create_folder(folder)
        except _ERRORS as exc:
            if self.folder_exists(folder):  # created meanwhile by another connection
                return
            raise self._error(f"cannot create folder {folder!r}", exc) from None

    # ------------------------------------------------------------ reading

    def uids_after(self, last_uid: int) -> list[int]:
        """UIDs greater than last_uid in the selected folder, ascending (seen or not)."""
        try:
            found = self._selected().search(["UID", f"{max(int(last_uid), 0) + 1}:*"])
        except _ERRORS as exc:
            raise self._error("UID SEARCH failed", exc) from None
        # "n:*" always matches the highest UID, even when it is below n.
        return sorted(uid for uid in found if uid > last_uid)

    def fetch_raw(self, uids: Iterable[int], batch: int = 200,
                  first: int | None = None) -> Iterator[list[tuple[int, bytes]]]:
        """Raw RFC 5322 bytes of the messages, ``batch`` per round trip (``first`` in the first one,
        when given), ascending by UID.

        BODY.PEEK[] never sets \\Seen. A UID that no longer exists (expunged meanwhile) is left out.
        """
        if batch < 1 or (first is not None and first < 1):
            raise ValueError("batch must be at least 1")
        ordered = sorted(set(uids))
        client = self._selected()
        bounds, start = [], 0
        while start < len(ordered):
            end = start + (first if first and not bounds else batch)
            bounds.append((start, end))
            start = end
        for start, end in bounds:
            chunk = ordered[start:end]
            try:
                response = client.fetch(chunk, [b"BODY.PEEK[]"])
            except _ERRORS as exc:
                raise self._error(f"FETCH of {len(chunk)} message(s) failed", exc) from None
            yield [(uid, response[uid][b"BODY[]"]) for uid in chunk
                   if uid in response and response[uid].get(b"BODY[]") is not None]

    def flags(self, uids: Iterable[int]) -> dict[int, tuple[bytes, ...]]:
        ordered = sorted(set(uids))
        if not ordered:
            return {}
        try:
            return self._selected().get_flags(ordered)
        except _ERRORS as exc:
            raise self._error("FETCH FLAGS failed", exc) from None

    # ------------------------------------------------------------ changing the server

    def mark_seen(self, uids: Iterable[int]) -> None:
        """Set \\Seen on the messages with one STORE command."""
        ordered = sorted(set(uids))
        if not ordered:
            return
        try:
            self._selected().add_flags(sequence_set(ordered), [SEEN], silent=True)
        except _ERRORS as exc:
            raise self._error(f"STORE \\Seen on {len(ordered)} message(s) failed", exc) from None

    def move(self, uids: Iterable[int], folder: str) -> None:
        """Move messages to folder: MOVE if supported, else COPY + \\Deleted + UID EXPUNGE."""
        ordered = sorted(set(uids))
        if not ordered:
            return
        client = self._selected()
        uid_set = sequence_set(ordered)
        try:
            if client.has_capability("MOVE"):
                client.move(uid_set, folder)
                return
            client.copy(uid_set, folder)
            client.add_flags(uid_set, [DELETED], silent=True)
            if client.has_capability("UIDPLUS"):
                client.uid_expunge(uid_set)
            else:
                # Without UIDPLUS only a plain EXPUNGE exists; it also removes other \Deleted mail.
                client.expunge()
        except _ERRORS as exc:
            raise self._error(f"moving {len(ordered)} message(s) to {folder!r} failed", exc) from None

    def append(self, folder: str, raw: bytes, flags: Iterable[str | bytes] = ()) -> int | None:
        """APPEND a message (tools, benchmark); returns its UID when the server says (UIDPLUS)."""
        try:
            response = self._c().append(folder, raw, flags=tuple(flags))
        except _ERRORS as exc:
            raise self._error(f"APPEND to {folder!r} failed", exc) from None
        if isinstance(response, str):
            response = response.encode()
        match = _APPENDUID.search(response or b"")
        return int(match.group(1)) if match else None

    # ------------------------------------------------------------ waiting for mail

    def supports_idle(self) -> bool:
        try:
            return bool(self._c().has_capability("IDLE"))
        except _ERRORS as exc:
            raise self._error("CAPABILITY failed", exc) from None

    def _pending_new_mail(self) -> bool:
        """EXISTS/RECENT the server sent along with earlier commands (imaplib keeps them aside)."""
        pending = self._c()._imap.untagged_responses
        exists = pending.pop("EXISTS", None)
        recent = pending.pop("RECENT", None)
        return bool(exists) or any(int(n or 0) > 0 for n in recent or ())

    def idle_wait(self, timeout: float) -> bool:
        """IDLE in the selected folder until new mail (EXISTS/RECENT) or timeout; True if new mail.

        Mail that arrived during earlier commands (announced with their answers) returns True at once.
        Keep timeout under 29 minutes (RFC 2177: servers may drop an IDLE that lasts longer).
        Expunges and flag changes by other clients do not end the wait. A True may be a false alarm
        (an EXISTS after an expunge on some servers): the caller just searches again.
        """
        client = self._selected()
        deadline = time.monotonic() + max(0.0, timeout)
        try:
            if self._pending_new_mail():
                return True
            new_mail = False
            client.idle()
            try:
                while not new_mail:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    if self._input_buffered():
                        responses = self._read_buffered_responses()
                    else:
                        responses = client.idle_check(timeout=left)
                    new_mail = _has_new_mail(responses)
            finally:
                _text, responses = client.idle_done()
            return new_mail or _has_new_mail(responses)
        except _ERRORS as exc:
            raise self._error("IDLE failed", exc) from None


    # IMAPClient.idle_check() waits with poll() on the socket, which cannot see what imaplib has
    # already read into its buffer: Dovecot often sends "+ idling" and "* 1 EXISTS" in one packet,
    # and that EXISTS would wait for the next packet or the timeout. These two read the buffer first.

    def _input_buffered(self) -> bool:
        client = self._c()
        sock = client.socket()
        sock.setblocking(False)
        try:
            return bool(client._imap.file.peek(1))
        except (OSError, ValueError):  # nothing to read now (BlockingIOError, SSLWantReadError)
            return False
        finally:
            sock.setblocking(True)
            client._set_read_timeout()

    def _read_buffered_responses(self) -> list:
        client = self._c()
        sock = client.socket()
        responses = []
        sock.setblocking(False)
        try:
            while True:
                try:
                    line = client._imap._get_line()
                except (OSError, imaplib.IMAP4.abort):  # no complete line left
                    break
                responses.append(_parse_untagged_response(line))
                if not self._input_buffered():
                    break
                sock.setblocking(False)
        finally:
            sock.setblocking(True)
            client._set_read_timeout()
        return responses


def _has_new_mail(responses) -> bool:
    for response in responses:
        if len(response) >= 2 and isinstance(response[0], int):
            if response[1] == b"EXISTS" or (response[1] == b"RECENT" and response[0] > 0):
                return True
    return False
