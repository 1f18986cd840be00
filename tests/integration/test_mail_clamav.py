"""Virus scanning against a real, private ClamAV daemon (tests/clamav.py): the INSTREAM client, and
attachments of mail through the real inbound pipeline (clean, infected, pending while the daemon is
unreachable, rescanned when it is back)."""
import socket
import threading

import pytest
from sqlalchemy import select

import config
from helpdesk.extensions import db
from helpdesk.mail import clamd, scan_jobs
from helpdesk.mail.clamd import Clamd, ClamdError, ClamdUnavailable
from helpdesk.tickets.models import Attachment, AuditEvent, Ticket
from tests.clamav import (EICAR, EICAR_FOUND, HASH_FOUND, HASH_SAMPLE, clamd_factory,  # noqa: F401
                          clamd_server)
from tests.factories import PASSWORD, Factories
from tests.integration.test_mail_ingest import ingest
from tests.mailgen import mail

PDF = (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
       b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
       + b"% filler to make it larger than one INSTREAM chunk\n" * 3000
       + b"trailer << /Root 1 0 R >>\n%%EOF\n")
CHUNK = clamd.CHUNK


# ---------------------------------------------------------------- the client against the daemon

def test_a_clean_file_is_clean_and_the_daemon_answers_ping(clamd_server):
    c = Clamd(path=clamd_server.socket)
    assert c.ping() is True
    assert c.scan(b"Halo, website kami tidak bisa dibuka.") is None
    assert c.scan(b"") is None
    assert c.scan(PDF) is None


def test_the_eicar_test_file_is_found_by_its_signature_name(clamd_server):
    c = Clamd(path=clamd_server.socket)
    assert c.scan(EICAR) == EICAR_FOUND
    assert c.scan(b"some text before it\n" + EICAR + b"\nand after") == EICAR_FOUND
    assert c.scan(bytearray(EICAR)) == EICAR_FOUND  # any bytes-like object


def test_files_larger_than_one_chunk_arrive_whole_and_in_order(clamd_server):
    c = Clamd(path=clamd_server.socket)
    assert len(HASH_SAMPLE) > 2 * CHUNK
    # a hash signature matches only the exact bytes: a lost, doubled or reordered chunk misses it
    assert c.scan(HASH_SAMPLE) == HASH_FOUND
    assert c.scan(HASH_SAMPLE + b"\0") is None
    assert c.scan(HASH_SAMPLE[CHUNK:] + HASH_SAMPLE[:CHUNK]) is None
    # the test string split across the boundary of the first two chunks, and after the last one
    assert c.scan(b"A" * (CHUNK - 30) + EICAR + b"B" * 100) == EICAR_FOUND
    assert c.scan(b"C" * (3 * CHUNK + 7) + EICAR) == EICAR_FOUND
    assert c.scan(b"D" * (3 * CHUNK)) is None  # an exact multiple of the chunk size


def test_an_unreachable_daemon_raises_clamd_unavailable(clamd_factory, tmp_path):
    with pytest.raises(ClamdUnavailable, match="No such file"):
        Clamd(path=str(tmp_path / "nothing.sock")).scan(b"x")
    server = clamd_factory(tcp=True)
    assert Clamd(host="127.0.0.1", port=server.tcp_port).scan(EICAR) == EICAR_FOUND  # TCP works
    server.stop()
    for c in (Clamd(path=server.socket), Clamd(host="127.0.0.1", port=server.tcp_port)):
        with pytest.raises(ClamdUnavailable):
            c.scan(b"x")
        with pytest.raises(ClamdUnavailable):
            c.ping()
    assert issubclass(ClamdUnavailable, ClamdError)


def test_a_stream_over_the_daemons_limit_is_refused_with_its_answer(clamd_factory):
    server = clamd_factory(extra_conf="StreamMaxLength 1M")
    c = Clamd(path=server.socket)
    assert c.scan(b"E" * 900_000) is None
    with pytest.raises(ClamdError, match="size limit exceeded") as err:
        c.scan(b"F" * 3_000_000)
    assert not isinstance(err.value, ClamdUnavailable)  # the daemon answered: not a reason to wait
    assert c.ping() is True


def test_the_largest_attachment_mail_accepts_is_scanned_with_debians_default_limits(clamd_factory):
    """Debian's /etc/clamav/clamd.conf: StreamMaxLength 25M, MaxFileSize 25M (a larger file would be
    reported clean without being scanned). MAIL_MAX_ATTACHMENT_BYTES must fit in both."""
    server = clamd_factory(extra_conf="StreamMaxLength 25M\nMaxFileSize 25M\nMaxScanSize 100M")
    limit = config.Config().MAIL_MAX_ATTACHMENT_BYTES
    c = Clamd(path=server.socket)
    biggest = b"%PDF-1.4\n" + b"\0" * (limit - len(EICAR) - 9) + EICAR
    assert len(biggest) == limit and c.scan(biggest) == EICAR_FOUND
    with pytest.raises(ClamdError, match="size limit exceeded"):  # the daemon's own limit, 25 MiB
        c.scan(biggest + b"x" * (25 * 1024 * 1024 - limit + 1))


def test_from_config():
    assert clamd.from_config({}) is None
    assert clamd.from_config({"CLAMD_SOCKET": "", "CLAMD_HOST": None}) is None
    s = clamd.from_config({"CLAMD_SOCKET": "/run/clamav/clamd.ctl", "CLAMD_HOST": "av", "CLAMD_PORT": 1})
    assert (s.path, s.host) == ("/run/clamav/clamd.ctl", None)
    t = clamd.from_config({"CLAMD_HOST": "av.internal", "CLAMD_PORT": 3311})
    assert (t.path, t.host, t.port) == (None, "av.internal", 3311)
    assert clamd.from_config({"CLAMD_HOST": "av.internal", "CLAMD_PORT": None}).port == 3310


# ---------------------------------------------------------------- the inbound pipeline

@pytest.fixture
def scan_app(app_factory):
    """make(socket) → an app configured with CLAMD_SOCKET, in an app context, with a queue."""
    contexts = []

    def make(socket):
        app = app_factory(CLAMD_SOCKET=socket, MAIL_DEFAULT_SENDER="support@helpdesk.test")
        ctx = app.app_context()
        ctx.push()
        contexts.append(ctx)
        Factories().queue(slug="customer-support", name="Customer Support")
        db.session.commit()
        return app

    yield make
    for ctx in reversed(contexts):
        db.session.remove()
        ctx.pop()


def attachments_of(outcome):
    ticket = db.session.execute(select(Ticket).where(Ticket.number == outcome.ticket)).scalar_one()
    rows = db.session.execute(select(Attachment).where(Attachment.ticket_id == ticket.id)
                              .order_by(Attachment.id)).scalars().all()
    return ticket, {a.filename: a for a in rows}


def infected_events(ticket):
    return db.session.execute(select(AuditEvent).where(AuditEvent.ticket_id == ticket.id,
                                                       AuditEvent.action == "attachment_infected")
                              .order_by(AuditEvent.id)).scalars().all()


def agent_client(app, ticket):
    make = Factories()
    agent = make.user(roles=["admin"])
    db.session.commit()
    client = app.test_client()
    assert client.post("/login", data={"email": agent.email, "password": PASSWORD}).status_code == 302
    return client


def test_an_infected_attachment_is_marked_with_its_finding_and_audited(scan_app, clamd_server):
    app = scan_app(clamd_server.socket)
    out = ingest(mail(subject="Invoice", attachments=[
        ("invoice.pdf", "application/pdf", PDF),
        ("tagihan.docx", "application/octet-stream", EICAR),
        ("readme.txt", "text/plain", b"see the attached invoice\n" + EICAR)]))
    assert out.action == "created"
    ticket, atts = attachments_of(out)
    assert (atts["invoice.pdf"].scan_status, atts["invoice.pdf"].scan_result) == ("clean", None)
    for name in ("tagihan.docx", "readme.txt"):
        assert (atts[name].scan_status, atts[name].scan_result) == ("infected", EICAR_FOUND)
    events = infected_events(ticket)
    assert [(e.new_value, e.note) for e in events] == [("tagihan.docx", EICAR_FOUND), ("readme.txt", EICAR_FOUND)]
    # out of the agents' reach; the clean file is not
    client = agent_client(app, ticket)
    refused = client.get(f"/attachments/{atts['tagihan.docx'].id}")
    assert refused.status_code == 403 and EICAR not in refused.data
    assert client.get(f"/attachments/{atts['invoice.pdf'].id}").data == PDF


def test_a_clean_file_is_clean_and_downloadable(scan_app, clamd_server):
    app = scan_app(clamd_server.socket)
    out = ingest(mail(attachments=[("penawaran.pdf", "application/pdf", PDF)]))
    ticket, atts = attachments_of(out)
    att = atts["penawaran.pdf"]
    assert (att.scan_status, att.scan_result) == ("clean", None)
    assert infected_events(ticket) == []
    resp = agent_client(app, ticket).get(f"/attachments/{att.id}")
    assert resp.status_code == 200 and resp.data == PDF


def test_a_reply_with_an_infected_file_is_scanned_too(scan_app, clamd_server):
    scan_app(clamd_server.socket)
    first = ingest(mail(message_id="<first@pelanggan.co.id>"))
    reply = ingest(mail(subject="Re: Website down", in_reply_to="<first@pelanggan.co.id>",
                        attachments=[("log.txt", "text/plain", EICAR)]))
    assert (reply.action, reply.ticket) == ("appended", first.ticket)
    ticket, atts = attachments_of(reply)
    assert atts["log.txt"].scan_status == "infected"
    assert [e.new_value for e in infected_events(ticket)] == ["log.txt"]


def test_without_a_scanner_attachments_stay_unscanned(scan_app):
    scan_app(None)
    ticket, atts = attachments_of(ingest(mail(attachments=[("x.txt", "text/plain", EICAR)])))
    assert atts["x.txt"].scan_status == "unscanned" and infected_events(ticket) == []


def test_while_the_daemon_is_down_files_are_pending_then_rescanned_when_it_is_back(scan_app, clamd_factory):
    server = clamd_factory()
    app = scan_app(server.socket)
    server.stop()
    out = ingest(mail(attachments=[("a.pdf", "application/pdf", PDF), ("b.txt", "text/plain", EICAR),
                                   ("c.pdf", "application/pdf", PDF + b"\n")]))
    assert out.action == "created"  # the mail is not lost or held back
    ticket, atts = attachments_of(out)
    assert {a.scan_status for a in atts.values()} == {"pending"}
    assert all(server.socket in a.scan_result for a in atts.values())
    assert infected_events(ticket) == []
    client = agent_client(app, ticket)
    for att in atts.values():  # not downloadable until scanned
        assert client.get(f"/attachments/{att.id}").status_code == 409

    assert scan_jobs.rescan_pending() == 0  # still down: nothing changes
    assert db.session.get(Attachment, atts["b.txt"].id).scan_status == "pending"

    server.start()
    assert scan_jobs.rescan_pending() == 3
    db.session.expire_all()
    got = {n: (db.session.get(Attachment, a.id).scan_status, db.session.get(Attachment, a.id).scan_result)
           for n, a in atts.items()}
    assert got == {"a.pdf": ("clean", None), "b.txt": ("infected", EICAR_FOUND), "c.pdf": ("clean", None)}
    assert [(e.new_value, e.note) for e in infected_events(ticket)] == [("b.txt", EICAR_FOUND)]
    assert client.get(f"/attachments/{atts['a.pdf'].id}").data == PDF
    assert client.get(f"/attachments/{atts['b.txt'].id}").status_code == 403
    assert scan_jobs.rescan_pending() == 0  # idempotent: nothing is pending any more
    assert len(infected_events(ticket)) == 1


def test_a_file_the_daemon_refuses_stays_pending_without_holding_up_the_others(scan_app, clamd_factory):
    server = clamd_factory(extra_conf="StreamMaxLength 1M")
    scan_app(server.socket)
    big = b"%PDF-1.4\n" + b"0" * 2_000_000
    ticket, atts = attachments_of(ingest(mail(attachments=[
        ("big.pdf", "application/pdf", big), ("virus.txt", "text/plain", EICAR),
        ("small.pdf", "application/pdf", PDF)])))
    assert atts["big.pdf"].scan_status == "pending" and "size limit" in atts["big.pdf"].scan_result
    assert (atts["virus.txt"].scan_status, atts["small.pdf"].scan_status) == ("infected", "clean")
    # the rescan job tries it again, leaves it pending, and still scans what comes after it
    later = ingest(mail(subject="another", attachments=[("later.txt", "text/plain", EICAR)]))
    _, later_atts = attachments_of(later)
    later_att = later_atts["later.txt"]
    later_att.scan_status, later_att.scan_result = "pending", "scanner unavailable: test"
    db.session.commit()
    assert scan_jobs.rescan_pending() == 1
    db.session.expire_all()
    assert db.session.get(Attachment, atts["big.pdf"].id).scan_status == "pending"
    assert db.session.get(Attachment, later_att.id).scan_status == "infected"


def test_cron_rescan_entry_runs_in_an_app_context(scan_app, clamd_server):
    scan_app(clamd_server.socket)
    ticket, atts = attachments_of(ingest(mail(attachments=[("x.txt", "text/plain", EICAR)])))
    att = atts["x.txt"]
    att.scan_status, att.scan_result = "pending", "scanner unavailable: test"
    db.session.commit()
    att_id = att.id
    assert scan_jobs.cron_rescan_pending() == 1  # it removes the session when it is done
    assert db.session.get(Attachment, att_id).scan_status == "infected"


def test_a_daemon_that_drops_connections_is_asked_once_per_message(scan_app, tmp_path):
    """A broken daemon (accepts, then closes without an answer): every file stays pending, and the
    pipeline does not wait for it once per file (a TCP daemon that does not answer costs a timeout)."""
    path = str(tmp_path / "broken.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    accepted = []

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(conn)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        scan_app(path)
        ticket, atts = attachments_of(ingest(mail(attachments=[
            ("a.pdf", "application/pdf", PDF), ("b.txt", "text/plain", EICAR), ("c.txt", "text/plain", b"c")])))
    finally:
        listener.close()
        thread.join(5)
    assert len(accepted) == 1
    assert {a.scan_status for a in atts.values()} == {"pending"}
    assert all(a.scan_result.startswith(f"not scanned: {path}: ") for a in atts.values())


def test_uploads_from_other_channels_are_scanned_too(scan_app, clamd_server):
    """A web-form, portal or agent upload goes through the same scan as a mail attachment."""
    from helpdesk.tickets import services as ticket_services

    scan_app(clamd_server.socket)
    make = Factories()
    queue = db.session.execute(select(Ticket.queue_id)).scalar() or make.queue().id
    customer = make.customer()
    t = ticket_services.create_ticket(customer_id=customer.id, subject="Form", body_text="see file", channel="web",
                                      queue_id=queue, files=[("virus.doc", "application/msword", EICAR),
                                                             ("ok.pdf", "application/pdf", PDF)])
    db.session.commit()
    atts = {a.filename: a for a in db.session.execute(select(Attachment).where(Attachment.ticket_id == t.id)).scalars()}
    assert (atts["virus.doc"].scan_status, atts["ok.pdf"].scan_status) == ("infected", "clean")
    assert [e.new_value for e in infected_events(t)] == ["virus.doc"]
