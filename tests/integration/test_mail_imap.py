"""helpdesk.mail.imap against a real, private Dovecot (tests/dovecot.py)."""
import ssl
import threading
import time

import pytest

from helpdesk.mail.imap import (FolderStatus, ImapError, ImapSettings, MailboxConnection, is_loopback,
                                sequence_set)
from tests.dovecot import dovecot, imap_user, imap_user_factory  # noqa: F401


def message(n: int, body: bytes = b"") -> bytes:
    return (b"From: Budi Santoso <budi@example.co.id>\r\n"
            b"To: support@example.co.id\r\n"
            b"Subject: =?UTF-8?B?VGVzdA==?= " + str(n).encode() + b"\r\n"
            b"Message-ID: <m" + str(n).encode() + b"@example.co.id>\r\n"
            b"Content-Type: text/plain; charset=iso-8859-1\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n"
            b"\r\n"
            b"Halo, pesan nomor " + str(n).encode() + b" \xe9\xe8 \r\n" + body)


def settings_for(user, **overrides) -> ImapSettings:
    values = dict(host=user.host, port=user.port, security="plain", username=user.username,
                  password=user.password, timeout=10)
    values.update(overrides)
    return ImapSettings(**values)


def commands_sent(conn) -> int:
    """Number of tagged commands this connection has sent so far (imaplib's tag counter)."""
    return conn.client._imap.tagnum


# ---------------------------------------------------------------- settings

@pytest.mark.parametrize("host", ["imap.example.co.id", "192.0.2.10", "10.0.0.1", "::2", "127.example.com"])
def test_plain_to_a_remote_host_is_refused(host):
    with pytest.raises(ValueError, match="only allowed to this machine"):
        ImapSettings(host=host, port=143, security="plain", username="u", password="p")
    # the same host with TLS is fine
    assert ImapSettings(host=host, port=993, security="ssl", username="u", password="p").host == host


@pytest.mark.parametrize("host", ["127.0.0.1", "127.3.4.5", "::1", "[::1]", "localhost", "LOCALHOST."])
def test_plain_on_loopback_is_allowed(host):
    assert is_loopback(host)
    assert ImapSettings(host=host, port=143, security="plain", username="u", password="p").security == "plain"


def test_settings_are_validated_and_hide_the_password():
    with pytest.raises(ValueError, match="security"):
        ImapSettings(host="localhost", port=143, security="tls", username="u", password="p")
    with pytest.raises(ValueError, match="port"):
        ImapSettings(host="localhost", port=0, security="ssl", username="u", password="p")
    assert "s3cret" not in repr(ImapSettings(host="localhost", port=993, security="ssl", username="u",
                                             password="s3cret"))


def test_sequence_set_is_compact():
    assert sequence_set([9, 1, 2, 3, 7, 10, 2]) == "1:3,7,9:10"
    assert sequence_set([5]) == "5"
    assert sequence_set(range(1, 2001)) == "1:2000"


# ---------------------------------------------------------------- connection

def test_plain_connection_on_loopback_selects_inbox(imap_user):
    with MailboxConnection(settings_for(imap_user)) as conn:
        status = conn.select("INBOX")
        assert isinstance(status, FolderStatus)
        assert status.exists == 0
        assert status.uidnext == 1
        assert status.uidvalidity > 0
    assert conn.client is None  # logged out


def test_wrong_password_is_an_imap_error_without_the_password(imap_user):
    bad = settings_for(imap_user, password="not-the-password-xyz")
    with pytest.raises(ImapError, match="login failed") as info:
        MailboxConnection(bad).open()
    assert "not-the-password-xyz" not in str(info.value)
    assert imap_user.username in str(info.value)
    # The right password still works (this login also takes Dovecot's few-second penalty for the
    # failure from 127.0.0.1, so that the next test does not).
    with MailboxConnection(settings_for(imap_user)) as conn:
        assert conn.select("INBOX").exists == 0


def test_nothing_listening_is_an_imap_error(imap_user):
    from tests.dovecot import free_port

    with pytest.raises(ImapError, match="cannot connect"):
        MailboxConnection(settings_for(imap_user, port=free_port(), timeout=3)).open()


def test_a_server_that_never_answers_times_out(imap_user):
    import socket

    with socket.socket() as silent:  # accepts the connection, never sends the IMAP greeting
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        start = time.monotonic()
        with pytest.raises(ImapError, match="timed out after 1s"):
            MailboxConnection(settings_for(imap_user, port=silent.getsockname()[1], timeout=1)).open()
        assert time.monotonic() - start < 3


def test_a_dropped_connection_is_an_imap_error_and_closes_cleanly(imap_user, dovecot):
    imap_user.append("INBOX", message(1))
    with MailboxConnection(settings_for(imap_user)) as conn:
        conn.select("INBOX")
        dovecot.kick(imap_user.username)
        time.sleep(0.2)
        with pytest.raises(ImapError, match="UID SEARCH failed"):
            conn.uids_after(0)
    assert conn.client is None
    # a new connection works
    with MailboxConnection(settings_for(imap_user)) as conn:
        conn.select("INBOX")
        assert conn.uids_after(0) == [1]


def test_select_creates_nothing_and_ensure_folder_creates_once(imap_user):
    with MailboxConnection(settings_for(imap_user)) as conn:
        with pytest.raises(ImapError, match="Processed"):
            conn.select("Processed")
        assert "Processed" not in imap_user.folders()
        with pytest.raises(ImapError, match="no folder selected"):
            conn.uids_after(0)
        conn.ensure_folder("Processed")
        conn.ensure_folder("Processed")  # already there: no error
        conn.ensure_folder("Quarantine")
        assert {"INBOX", "Processed", "Quarantine"} <= set(imap_user.folders())
        assert conn.select("Processed").exists == 0


def test_uidvalidity_and_uidnext(imap_user, imap_user_factory):
    uids = imap_user.append_many("INBOX", [message(i) for i in range(3)])
    assert uids == [1, 2, 3]
    with MailboxConnection(settings_for(imap_user)) as conn:
        status = conn.select("INBOX")
        assert (status.exists, status.uidnext) == (3, 4)
        # The same value as an independent client sees (STATUS), and stable across sessions.
        raw = imap_user.connect()
        typ, data = raw.status("INBOX", "(UIDVALIDITY UIDNEXT MESSAGES)")
        raw.logout()
        assert f"UIDVALIDITY {status.uidvalidity}" in data[0].decode()
        assert "UIDNEXT 4" in data[0].decode()
    with MailboxConnection(settings_for(imap_user)) as conn:
        assert conn.select("INBOX").uidvalidity == status.uidvalidity
    # A recreated folder gets a new UIDVALIDITY (the fetcher must then start over).
    imap_user.append("Gone", message(1))
    with MailboxConnection(settings_for(imap_user)) as conn:
        first = conn.select("Gone").uidvalidity
        conn.client.select_folder("INBOX")
        conn.client.delete_folder("Gone")
        time.sleep(1.1)  # Dovecot's UIDVALIDITY is a timestamp
        conn.ensure_folder("Gone")
        assert conn.select("Gone").uidvalidity != first


def test_uids_after_including_the_highest_uid_edge(imap_user):
    with MailboxConnection(settings_for(imap_user)) as conn:
        conn.select("INBOX")
        assert conn.uids_after(0) == []
        assert conn.uids_after(5) == []
    imap_user.append_many("INBOX", [message(i) for i in range(5)])
    with MailboxConnection(settings_for(imap_user)) as conn:
        conn.select("INBOX")
        assert conn.uids_after(0) == [1, 2, 3, 4, 5]
        assert conn.uids_after(3) == [4, 5]
        assert conn.uids_after(4) == [5]
        # "UID SEARCH UID 6:*" matches the highest UID (5): it must not come back
        assert conn.uids_after(5) == []
        assert conn.uids_after(1000) == []
        assert conn.uids_after(-1) == [1, 2, 3, 4, 5]
        raw_result = conn.client.search(["UID", "6:*"])
        assert list(raw_result) == [5]  # the server quirk the filter exists for


def test_fetch_in_batches_returns_exact_bytes_and_does_not_set_seen(imap_user):
    raws = [message(i, body=b"x" * (i * 1000) + b"\r\n") for i in range(7)]
    uids = imap_user.append_many("INBOX", raws)
    with MailboxConnection(settings_for(imap_user)) as conn:
        conn.select("INBOX")
        batches = []
        for batch in conn.fetch_raw(conn.uids_after(0), batch=3):
            batches.append((commands_sent(conn), batch))
        assert [len(b) for _, b in batches] == [3, 3, 1]
        # one round trip (one FETCH command) per batch
        assert [batches[i + 1][0] - batches[i][0] for i in range(2)] == [1, 1]
        fetched = [item for _, batch in batches for item in batch]
        assert fetched == list(zip(uids, raws))
        assert all(b"\\Seen" not in flags for flags in conn.flags(uids).values())
    assert all("\\Seen" not in flags for flags in imap_user.flags().values())
    assert len(imap_user.flags()) == 7


def test_fetch_in_batches_can_start_with_a_smaller_one(imap_user):
    """The fetcher asks for a small first batch, so that parsing it (and then writing) starts sooner."""
    raws = [message(i) for i in range(8)]
    uids = imap_user.append_many("INBOX", raws)
    with MailboxConnection(settings_for(imap_user)) as conn:
        conn.select("INBOX")
        batches = list(conn.fetch_raw(conn.uids_after(0), batch=3, first=1))
        assert [len(b) for b in batches] == [1, 3, 3, 1]
        assert [item for batch in batches for item in batch] == list(zip(uids, raws))
        assert [len(b) for b in conn.fetch_raw(uids, batch=5, first=5)] == [5, 3]


def test_fetch_skips_uids_that_vanished(imap_user):
    imap_user.append_many("INBOX", [message(i) for i in range(3)])
    with MailboxConnection(settings_for(imap_user)) as conn:
        conn.select("INBOX")
        got = [uid for batch in conn.fetch_raw([1, 2, 3, 99]) for uid, _ in batch]
        assert got == [1, 2, 3]
        assert list(conn.fetch_raw([])) == []


def test_mail_seen_by_another_client_is_still_listed(imap_user):
    uids = imap_user.append_many("INBOX", [message(i) for i in range(3)])
    imap_user.set_flags("INBOX", uids[:2], ["\\Seen"])  # a person opened two of them in their mail app
    with MailboxConnection(settings_for(imap_user)) as conn:
        conn.select("INBOX")
        assert conn.uids_after(0) == uids
        assert [uid for batch in conn.fetch_raw(uids) for uid, _ in batch] == uids


def test_mark_seen_in_one_command(imap_user):
    uids = imap_user.append_many("INBOX", [message(i) for i in range(5)])
    with MailboxConnection(settings_for(imap_user)) as conn:
        conn.select("INBOX")
        before = commands_sent(conn)
        conn.mark_seen([uids[0], uids[2], uids[3]])
        assert commands_sent(conn) - before == 1
        conn.mark_seen([])
        assert commands_sent(conn) - before == 1
    flags = imap_user.flags()
    assert [uid for uid in uids if "\\Seen" in flags[uid]] == [uids[0], uids[2], uids[3]]


def test_move_to_processed_folder(imap_user):
    raws = [message(i) for i in range(4)]
    uids = imap_user.append_many("INBOX", raws)
    with MailboxConnection(settings_for(imap_user)) as conn:
        conn.select("INBOX")
        assert conn.client.has_capability("MOVE")
        conn.ensure_folder("Processed")
        conn.move(uids[:3], "Processed")
        assert conn.uids_after(0) == [uids[3]]
        status = conn.select("Processed")
        assert status.exists == 3
        moved = [raw for batch in conn.fetch_raw(conn.uids_after(0)) for _, raw in batch]
    assert moved == raws[:3]
    assert imap_user.uids("INBOX") == [uids[3]]


def test_folders_with_spaces_and_non_ascii_names(imap_user):
    name = "Sudah diproses – Ü"  # IMAPClient encodes it as modified UTF-7 for the server
    uids = imap_user.append_many("INBOX", [message(1), message(2)])
    with MailboxConnection(settings_for(imap_user)) as conn:
        conn.select("INBOX")
        conn.ensure_folder(name)
        conn.ensure_folder(name)
        conn.move(uids[:1], name)
        assert conn.select(name).exists == 1
        assert [raw for batch in conn.fetch_raw(conn.uids_after(0)) for _, raw in batch] == [message(1)]
    assert "Sudah diproses &IBM- &ANw-" in imap_user.folders()


def test_move_without_the_move_capability_copies_and_expunges(imap_user):
    raws = [message(i) for i in range(3)]
    uids = imap_user.append_many("INBOX", raws)
    imap_user.set_flags("INBOX", [uids[2]], ["\\Deleted"])  # someone else's \Deleted mail stays
    with MailboxConnection(settings_for(imap_user)) as conn:
        conn.select("INBOX")
        real = conn.client.has_capability
        # Present the server as an older one without RFC 6851 MOVE; the commands still hit Dovecot.
        conn.client.has_capability = lambda cap: cap.upper() != "MOVE" and real(cap)
        conn.ensure_folder("Processed")
        conn.move(uids[:2], "Processed")
        assert conn.uids_after(0) == [uids[2]]
        conn.select("Processed")
        assert [raw for batch in conn.fetch_raw(conn.uids_after(0)) for _, raw in batch] == raws[:2]


def test_append_returns_the_uid(imap_user):
    with MailboxConnection(settings_for(imap_user)) as conn:
        conn.ensure_folder("Bench")
        assert conn.append("Bench", message(1)) == 1
        assert conn.append("Bench", message(2), flags=["\\Seen"]) == 2
    assert "\\Seen" in imap_user.flags("Bench")[2]
    assert "\\Seen" not in imap_user.flags("Bench")[1]


# ---------------------------------------------------------------- IDLE

def test_idle_wait_returns_true_soon_after_an_append_from_another_connection(imap_user):
    with MailboxConnection(settings_for(imap_user)) as conn:
        assert conn.supports_idle()
        conn.select("INBOX")
        timer = threading.Timer(0.5, imap_user.append, ("INBOX", message(1)))
        start = time.monotonic()
        timer.start()
        try:
            assert conn.idle_wait(10) is True
        finally:
            timer.join()
        elapsed = time.monotonic() - start
        assert elapsed < 2.5, elapsed
        assert conn.uids_after(0) == [1]  # the connection is usable after IDLE


def test_idle_wait_times_out_without_new_mail(imap_user):
    imap_user.append("INBOX", message(1))
    with MailboxConnection(settings_for(imap_user)) as conn:
        conn.select("INBOX")
        # A flag change by another client is not new mail.
        threading.Timer(0.3, imap_user.set_flags, ("INBOX", [1], ["\\Seen"])).start()
        start = time.monotonic()
        assert conn.idle_wait(1.5) is False
        assert 1.4 <= time.monotonic() - start < 3
        assert conn.uids_after(0) == [1]


def test_idle_wait_sees_mail_that_arrived_before_it_started(imap_user):
    with MailboxConnection(settings_for(imap_user)) as conn:
        conn.select("INBOX")
        assert conn.uids_after(0) == []
        imap_user.append("INBOX", message(1))  # arrives between the search and the IDLE...
        conn.mark_seen([12345])                  # ...announced with the answer to another command
        start = time.monotonic()
        assert conn.idle_wait(5) is True
        assert time.monotonic() - start < 1
        # nothing left pending: the next wait really waits
        assert conn.idle_wait(0.5) is False


def test_idle_wait_sees_mail_announced_together_with_the_idle_continuation(imap_user):
    # Dovecot announces mail that arrived since the last command in the same packet as "+ idling":
    # it is already in imaplib's buffer, where poll() cannot see it.
    with MailboxConnection(settings_for(imap_user)) as conn:
        conn.select("INBOX")
        for n in range(1, 4):
            assert conn.uids_after(n - 1) == []
            imap_user.append("INBOX", message(n))
            start = time.monotonic()
            assert conn.idle_wait(5) is True
            assert time.monotonic() - start < 1
            assert conn.uids_after(n - 1) == [n]


def test_idle_over_tls(imap_user, dovecot):
    tls_or_skip(dovecot)
    settings = settings_for(imap_user, host="localhost", security="starttls", cafile=dovecot.cafile)
    with MailboxConnection(settings) as conn:
        conn.select("INBOX")
        conn.uids_after(0)
        imap_user.append("INBOX", message(1))  # before the IDLE: arrives with "+ idling"
        start = time.monotonic()
        assert conn.idle_wait(5) is True
        assert time.monotonic() - start < 1
        threading.Timer(0.5, imap_user.append, ("INBOX", message(2))).start()
        assert conn.idle_wait(5) is True
        assert time.monotonic() - start < 2.5
        assert conn.uids_after(0) == [1, 2]
        assert conn.idle_wait(0.5) is False


# ---------------------------------------------------------------- TLS

def tls_or_skip(server):
    if not server.cafile:
        pytest.skip("neither the cryptography package nor openssl is installed: no certificate for the TLS tests")


def test_starttls_with_a_verified_certificate(imap_user, dovecot):
    tls_or_skip(dovecot)
    settings = settings_for(imap_user, host="localhost", security="starttls", cafile=dovecot.cafile)
    with MailboxConnection(settings) as conn:
        assert isinstance(conn.client._imap.sock, ssl.SSLSocket)
        assert conn.select("INBOX").exists == 0


def test_implicit_tls_with_a_verified_certificate(imap_user, dovecot):
    tls_or_skip(dovecot)
    imap_user.append("INBOX", message(1))
    settings = settings_for(imap_user, security="ssl", port=dovecot.imaps_port, cafile=dovecot.cafile)
    with MailboxConnection(settings) as conn:
        assert isinstance(conn.client._imap.sock, ssl.SSLSocket)
        conn.select("INBOX")
        assert [raw for batch in conn.fetch_raw(conn.uids_after(0)) for _, raw in batch] == [message(1)]


def test_an_untrusted_certificate_is_refused(imap_user, dovecot):
    tls_or_skip(dovecot)
    for settings in (settings_for(imap_user, security="ssl", port=dovecot.imaps_port),
                     settings_for(imap_user, host="localhost", security="starttls")):
        with pytest.raises(ImapError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            MailboxConnection(settings).open()


# ---------------------------------------------------------------- raw speed

def test_fetch_raw_speed(imap_user):
    """2,000 messages of ~20 KB: how fast the wrapper drains them (printed with -s)."""
    body = (b"Lorem ipsum dolor sit amet, pelanggan yang terhormat, situs kami tidak bisa dibuka. "
            * 12 + b"\r\n") * 20  # ~20 KB
    raws = [message(i, body) for i in range(2000)]
    start = time.perf_counter()
    imap_user.append_many("INBOX", raws)
    append_s = time.perf_counter() - start
    with MailboxConnection(settings_for(imap_user)) as conn:
        conn.select("INBOX")
        start = time.perf_counter()
        uids = conn.uids_after(0)
        total = nbytes = 0
        for batch in conn.fetch_raw(uids):
            total += len(batch)
            nbytes += sum(len(raw) for _, raw in batch)
        elapsed = time.perf_counter() - start
    assert total == 2000
    assert nbytes == sum(len(r) for r in raws)
    rate = total / elapsed
    print(f"\nIMAP fetch_raw: {total} messages, {nbytes / 1e6:.1f} MB in {elapsed:.2f} s = {rate:,.0f} msgs/s "
          f"({nbytes / 1e6 / elapsed:.0f} MB/s); APPEND took {append_s:.1f} s")
    assert rate > 200  # a regression guard only; the ceiling measured in the notes is ~4,000 msgs/s
