"""Admin pages of the email channel: mailboxes, the inbound log, the blocklist, the alerts."""
import re
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import event, select

from helpdesk.extensions import db
from helpdesk.mail import admin_services, crypto, rawstore
from helpdesk.mail.models import InboundMessage, Mailbox, OutboundMail, SenderBlock
from helpdesk.tickets.models import AuditEvent, Ticket
from helpdesk.timeutil import utcnow
from tests.dovecot import dovecot, imap_user  # noqa: F401  (fixtures)
from tests.factories import PASSWORD

SECRET_PASSWORD = "Rahasia-Imap-2026!"


@pytest.fixture
def admin(app, make, client):
    user = make.user(roles=["admin"], name="Ani Admin")
    db.session.commit()
    assert client.post("/login", data={"email": user.email, "password": PASSWORD}).status_code == 302
    return user


@pytest.fixture
def queue(make):
    q = make.queue(slug="customer-support", name="Customer Support")
    db.session.commit()
    return q


def form_data(queue, **overrides):
    data = {"name": "Support", "host": "imap.example.co.id", "port": "993", "security": "ssl",
            "username": "support@example.co.id", "password": SECRET_PASSWORD, "password_env": "",
            "folder": "INBOX", "after_fetch": "flag", "processed_folder": "", "quarantine_folder": "Quarantine",
            "queue_id": str(queue.id), "from_address": "support@example.co.id", "from_name": "Dukungan",
            "plus_addressing": "y", "active": "y"}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def audit_rows(object_type):
    return db.session.execute(select(AuditEvent.action, AuditEvent.old_value, AuditEvent.new_value, AuditEvent.note)
                              .where(AuditEvent.object_type == object_type).order_by(AuditEvent.id)).all()


def flashes(client):
    with client.session_transaction() as sess:
        return " ".join(str(m) for _c, m in sess.get("_flashes", []))


# ---------------------------------------------------------------- mailboxes

def test_create_mailbox_stores_the_password_encrypted_and_never_shows_it(app, client, admin, queue):
    resp = client.post("/admin/mail/mailboxes/new", data=form_data(queue))
    assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
    box = db.session.execute(select(Mailbox)).scalar_one()
    assert (box.name, box.host, box.port, box.security, box.quarantine_folder) == (
        "Support", "imap.example.co.id", 993, "ssl", "Quarantine")
    assert box.plus_addressing and box.active and box.queue_id == queue.id and box.password_env is None
    assert SECRET_PASSWORD not in box.password_encrypted
    assert crypto.decrypt(box.password_encrypted, app.config["SECRET_KEY"]) == SECRET_PASSWORD
    assert crypto.mailbox_password(box, app.config["SECRET_KEY"]) == SECRET_PASSWORD
    page = client.get(f"/admin/mail/mailboxes/{box.id}").get_data(as_text=True)
    assert "imap.example.co.id" in page and SECRET_PASSWORD not in page and box.password_encrypted not in page
    assert "A password is stored" in page
    assert SECRET_PASSWORD not in client.get("/admin/mail/mailboxes").get_data(as_text=True)
    [(action, _old, new, _note)] = audit_rows("mailbox")
    assert action == "created" and SECRET_PASSWORD not in new


def test_mailbox_key_from_config_is_used(app_factory, client, queue, make):
    app = app_factory(MAILBOX_SECRET_KEY="a-separate-mailbox-key")
    with app.app_context():
        user = make.user(roles=["admin"])
        db.session.commit()
        c = app.test_client()
        assert c.post("/login", data={"email": user.email, "password": PASSWORD}).status_code == 302
        assert c.post("/admin/mail/mailboxes/new", data=form_data(queue)).status_code == 302
        token = db.session.execute(select(Mailbox.password_encrypted)).scalar_one()
        assert crypto.decrypt(token, "a-separate-mailbox-key") == SECRET_PASSWORD
        with pytest.raises(crypto.PasswordUnavailable):
            crypto.decrypt(token, app.config["SECRET_KEY"])


@pytest.mark.parametrize("host", ["imap.example.co.id", "10.0.0.5", "192.168.1.10", "localhost.example.com"])
def test_plain_security_is_refused_for_a_remote_host_and_the_form_keeps_the_input(client, admin, queue, host):
    resp = client.post("/admin/mail/mailboxes/new", data=form_data(queue, host=host, security="plain", port="143"))
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert "only allowed for a loopback host" in page
    assert f'value="{host}"' in page and 'value="support@example.co.id"' in page and 'value="Dukungan"' in page
    assert SECRET_PASSWORD not in page  # a password field is never filled back in
    assert db.session.execute(select(Mailbox.id)).first() is None


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.53"])
def test_plain_security_is_allowed_on_loopback(client, admin, queue, host):
    resp = client.post("/admin/mail/mailboxes/new", data=form_data(queue, host=host, security="plain", port=""))
    assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
    box = db.session.execute(select(Mailbox)).scalar_one()
    assert (box.security, box.port) == ("plain", 143)  # empty port: the protocol's default


def test_mailbox_validation_messages(client, admin, queue):
    cases = [
        (dict(password="", password_env=""), "A password or the name of an environment variable"),
        (dict(password_env="IMAP_PW"), "not both"),
        (dict(password="", password_env="not a name"), "An environment variable name"),
        (dict(after_fetch="move", processed_folder=""), "Moving needs a processed folder"),
        (dict(processed_folder="INBOX"), "must differ"),
        (dict(from_address="not-an-address"), "Invalid email address"),
        (dict(port="70000"), "between 1 and 65535"),
        (dict(from_name="Evil\r\nBcc: x@example.com"), "Line breaks are not allowed"),
    ]
    for overrides, message in cases:
        resp = client.post("/admin/mail/mailboxes/new", data=form_data(queue, **overrides))
        assert resp.status_code == 400 and message in resp.get_data(as_text=True), (overrides, message)
    assert db.session.execute(select(Mailbox.id)).first() is None
    assert client.post("/admin/mail/mailboxes/new", data=form_data(queue)).status_code == 302
    resp = client.post("/admin/mail/mailboxes/new", data=form_data(queue, name="support"))
    assert resp.status_code == 400 and "exists already" in resp.get_data(as_text=True)


def test_edit_blank_password_keeps_it_new_one_replaces_it_env_name_clears_it(app, client, admin, queue):
    client.post("/admin/mail/mailboxes/new", data=form_data(queue))
    box = db.session.execute(select(Mailbox)).scalar_one()
    first_token = box.password_encrypted
    secret = app.config["SECRET_KEY"]

    resp = client.post(f"/admin/mail/mailboxes/{box.id}", data=form_data(queue, password="", folder="Support"))
    assert resp.status_code == 302
    db.session.expire_all()
    assert box.folder == "Support" and box.password_encrypted == first_token

    client.post(f"/admin/mail/mailboxes/{box.id}", data=form_data(queue, password="second-password"))
    db.session.expire_all()
    assert crypto.decrypt(box.password_encrypted, secret) == "second-password"

    client.post(f"/admin/mail/mailboxes/{box.id}", data=form_data(queue, password="", password_env="SUPPORT_IMAP_PW"))
    db.session.expire_all()
    assert box.password_env == "SUPPORT_IMAP_PW" and box.password_encrypted is None
    page = client.get(f"/admin/mail/mailboxes/{box.id}").get_data(as_text=True)
    assert 'value="SUPPORT_IMAP_PW"' in page

    # the environment name stays filled in: typing a password needs it cleared first
    resp = client.post(f"/admin/mail/mailboxes/{box.id}",
                       data=form_data(queue, password="third", password_env="SUPPORT_IMAP_PW"))
    assert resp.status_code == 400 and "not both" in resp.get_data(as_text=True)
    notes = [note for action, _o, _n, note in audit_rows("mailbox") if action == "updated"]
    assert any("folder: INBOX → Support" in n for n in notes)
    assert sum("password changed" in n for n in notes) == 2
    assert not any("second-password" in n for n in notes)


def test_delete_mailbox_only_without_mail(client, admin, queue):
    client.post("/admin/mail/mailboxes/new", data=form_data(queue))
    client.post("/admin/mail/mailboxes/new", data=form_data(queue, name="Billing"))
    used, unused = db.session.execute(select(Mailbox).order_by(Mailbox.id)).scalars().all()
    db.session.add(InboundMessage(mailbox_id=used.id, raw_sha256="0" * 64, result="created"))
    db.session.commit()
    client.post(f"/admin/mail/mailboxes/{used.id}/delete")
    assert "deactivate it instead" in flashes(client)
    assert client.post(f"/admin/mail/mailboxes/{unused.id}/delete").status_code == 303
    db.session.expire_all()
    assert db.session.execute(select(Mailbox.name)).scalars().all() == ["Support"]


def test_mailbox_list_shows_health_and_alerts_for_a_failing_mailbox(client, admin, queue):
    client.post("/admin/mail/mailboxes/new", data=form_data(queue))
    client.post("/admin/mail/mailboxes/new", data=form_data(queue, name="Healthy"))
    box, healthy = db.session.execute(select(Mailbox).order_by(Mailbox.id)).scalars().all()
    box.consecutive_failures, box.last_error = 6, "LOGIN failed: <b>authentication</b>"
    box.last_error_at, box.backoff_until = utcnow(), utcnow() + timedelta(minutes=10)
    healthy.last_success_at = datetime(2026, 3, 1, 1, 0)  # 08:00 in Jakarta
    db.session.commit()
    page = client.get("/admin/mail/mailboxes").get_data(as_text=True)
    row = page.split(f'id="mailbox-{box.id}"')[1].split("</tr>")[0]
    assert "failing" in row and "LOGIN failed: &lt;b&gt;authentication&lt;/b&gt;" in row and ">6<" in row
    assert "failing" not in page.split(f'id="mailbox-{healthy.id}"')[1].split("</tr>")[0]
    assert 'id="alert-mailboxes"' in page and "1 mailbox is failing" in page
    assert "08:00" in page
    index = client.get("/admin/").get_data(as_text=True)
    assert 'id="alert-mailboxes"' in index and "6 failures in a row" in index and "Support" in index
    box.consecutive_failures, box.backoff_until = 0, None
    db.session.commit()
    assert 'id="alert-mailboxes"' not in client.get("/admin/").get_data(as_text=True)
    assert 'id="alert-mailboxes"' not in client.get("/admin/mail/mailboxes").get_data(as_text=True)


def test_connection_test_flashes_the_result(client, admin, queue):
    client.post("/admin/mail/mailboxes/new", data=form_data(queue, host="127.0.0.1", port="1", security="plain"))
    box = db.session.execute(select(Mailbox)).scalar_one()
    resp = client.post(f"/admin/mail/mailboxes/{box.id}/test")
    assert resp.status_code == 303
    message = flashes(client)
    if admin_services.lead_service("test_connection") is None:
        assert "connection test is not available yet" in message
    else:  # nothing listens on port 1
        assert "Support: connection failed." in message
    assert SECRET_PASSWORD not in message


def test_connection_test_against_a_real_imap_server(client, admin, queue, imap_user):
    client.post("/admin/mail/mailboxes/new", data=form_data(
        queue, host=imap_user.host, port=str(imap_user.port), security="plain", username=imap_user.username,
        password=imap_user.password))
    box = db.session.execute(select(Mailbox)).scalar_one()
    client.post(f"/admin/mail/mailboxes/{box.id}/test")
    if admin_services.lead_service("test_connection") is None:
        assert "connection test is not available yet" in flashes(client)
    else:
        assert "Support: connection works." in flashes(client)
    box.password_encrypted = crypto.encrypt("wrong-password", "secret")  # another key: cannot be decrypted
    db.session.commit()
    client.post(f"/admin/mail/mailboxes/{box.id}/test")
    if admin_services.lead_service("test_connection") is not None:
        assert "Support: connection failed." in flashes(client)


def test_environment_mailbox_is_shown_without_its_password(app_factory, make, queue):
    app = app_factory(IMAP_HOST="mail.example.co.id", IMAP_USER="cs@example.co.id", IMAP_PASSWORD="env-secret-pw",
                      IMAP_SSL="starttls", IMAP_PORT=143)
    with app.app_context():
        user = make.user(roles=["admin"])
        db.session.commit()
        c = app.test_client()
        c.post("/login", data={"email": user.email, "password": PASSWORD})
        page = c.get("/admin/mail/mailboxes").get_data(as_text=True)
        assert 'id="env-mailbox"' in page and "mail.example.co.id" in page and "cs@example.co.id" in page
        assert "env-secret-pw" not in page and "set (hidden)" in page
        box = Mailbox(name="DB", host="imap.example.com", username="u", password_env="P", queue_id=queue.id,
                      from_address="s@example.com")
        db.session.add(box)
        db.session.commit()
        assert 'id="env-mailbox"' not in c.get("/admin/mail/mailboxes").get_data(as_text=True)


# ---------------------------------------------------------------- alerts

def test_admin_index_warns_when_virus_scanning_is_off(client, admin, app_factory, make):
    assert 'id="alert-scanning"' in client.get("/admin/").get_data(as_text=True)
    app = app_factory(CLAMD_SOCKET="/run/clamav/clamd.ctl")
    with app.app_context():
        user = make.user(roles=["admin"])
        db.session.commit()
        c = app.test_client()
        c.post("/login", data={"email": user.email, "password": PASSWORD})
        assert 'id="alert-scanning"' not in c.get("/admin/").get_data(as_text=True)


def test_admin_index_shows_held_automatic_mail(client, admin):
    assert 'id="alert-held"' not in client.get("/admin/").get_data(as_text=True)
    for i, status in enumerate(("held", "held", "sent")):
        db.session.add(OutboundMail(kind="ack", message_id=f"m{i}@example.com", to_addrs=["robot@example.net"],
                                    subject=f"[#100{i}] Terima kasih", status=status))
    db.session.commit()
    page = client.get("/admin/").get_data(as_text=True)
    assert 'id="alert-held"' in page and "2 automatic mails are held" in page and "robot@example.net" in page


# ---------------------------------------------------------------- inbound log

RESULT_ROWS = [  # (minutes ago, result, reason, from, subject, mailbox index or None)
    (1, "created", None, "budi@example.net", "Website mati", 0),
    (2, "appended", None, "siti@example.net", "Re: [#1001] Website mati", 0),
    (3, "ignored", "auto_reply", "ani@example.org", "Out of office", 1),
    (4, "ignored", "bounce", "mailer-daemon@example.org", "Undelivered Mail", 1),
    (5, "ignored", "spam", "promo@spam.example", "WIN A PRIZE", 0),
    (6, "duplicate", None, "budi@example.net", "Website mati", 1),
    (7, "quarantined", None, "broken@example.net", "Broken", None),
    (8, "pending", None, "late@example.net", "Domain renewal", 0),
    (9, "created", "automated", "monitor@example.com", "ALERT disk full", 0),
]


@pytest.fixture
def log_rows(queue):
    boxes = [Mailbox(name=n, host="imap.example.com", username=n, password_env="P", queue_id=queue.id,
                     from_address=f"{n.lower()}@example.com") for n in ("Support", "Billing")]
    db.session.add_all(boxes)
    db.session.flush()
    now = utcnow()
    rows = {}
    for minutes, result, reason, sender, subject, box in RESULT_ROWS:
        row = InboundMessage(received_at=now - timedelta(minutes=minutes), result=result, reason=reason,
                             from_addr=sender, subject=subject, raw_sha256="0" * 64, size=2048,
                             mailbox_id=boxes[box].id if box is not None else None, source=f"test/{minutes}")
        db.session.add(row)
        db.session.flush()
        rows[minutes] = row.id
    db.session.commit()
    return {"ids": rows, "boxes": boxes}


def listed(client, query=""):
    resp = client.get("/admin/mail/log" + (f"?{query}" if query else ""))
    assert resp.status_code == 200
    return [int(i) for i in re.findall(r'<tr id="inbound-(\d+)"', resp.get_data(as_text=True))]


def test_log_lists_newest_first_and_filters(client, admin, log_rows):
    ids, boxes = log_rows["ids"], log_rows["boxes"]
    by_minutes = lambda *ms: [ids[m] for m in ms]  # noqa: E731
    assert listed(client) == by_minutes(1, 2, 3, 4, 5, 6, 7, 8, 9)
    assert listed(client, "result=ignored") == by_minutes(3, 4, 5)
    assert listed(client, "result=pending") == by_minutes(8)
    assert listed(client, "reason=spam") == by_minutes(5)
    assert listed(client, "result=created&reason=automated") == by_minutes(9)
    assert listed(client, f"mailbox={boxes[1].id}") == by_minutes(3, 4, 6)
    assert listed(client, "mailbox=none") == by_minutes(7)
    assert listed(client, "sender=budi") == by_minutes(1, 6)
    assert listed(client, "sender=BUDI%40example.net") == by_minutes(1, 6)
    assert listed(client, "sender=%40example.org") == by_minutes(3, 4)
    assert listed(client, "subject=website") == by_minutes(1, 2, 6)
    assert listed(client, "subject=%25") == []  # LIKE wildcards are taken literally
    assert listed(client, "result=bogus") == by_minutes(1, 2, 3, 4, 5, 6, 7, 8, 9)  # an unknown value: no filter


def test_log_date_range_is_in_jakarta_time(client, admin, queue):
    # 18:30 UTC on 1 March is 01:30 on 2 March in Jakarta
    for when in (datetime(2026, 3, 1, 18, 30), datetime(2026, 3, 1, 16, 59), datetime(2026, 3, 3, 2, 0)):
        db.session.add(InboundMessage(received_at=when, result="created", raw_sha256="0" * 64))
    db.session.commit()
    late, early, later = db.session.execute(select(InboundMessage.id).order_by(InboundMessage.id)).scalars().all()
    assert listed(client, "date_from=2026-03-02&date_to=2026-03-02") == [late]
    assert listed(client, "date_to=2026-03-01") == [early]
    assert listed(client, "date_from=2026-03-02") == [later, late]
    assert "01:30" in client.get("/admin/mail/log?date_from=2026-03-02&date_to=2026-03-02").get_data(as_text=True)


def test_log_pages_by_keyset_without_offset_or_count(app, client, admin):
    now = utcnow()
    same_time = now - timedelta(hours=1)
    for i in range(120):  # 40 share one timestamp: the id breaks the tie
        db.session.add(InboundMessage(received_at=same_time if 30 <= i < 70 else now - timedelta(seconds=i),
                                      result="created", raw_sha256="0" * 64, subject=f"n{i}"))
    db.session.commit()
    expected = db.session.execute(select(InboundMessage.id).order_by(InboundMessage.received_at.desc(),
                                                                     InboundMessage.id.desc())).scalars().all()
    statements = []
    event.listen(db.engine, "before_cursor_execute", lambda *a: statements.append((a[2], a[3])))
    seen, url, pages = [], "/admin/mail/log?result=created", 0
    while url:
        page = client.get(url).get_data(as_text=True)
        seen += [int(i) for i in re.findall(r'<tr id="inbound-(\d+)"', page)]
        m = re.search(r'id="log-next" href="([^"]+)"', page)
        url = m.group(1).replace("&amp;", "&") if m else None
        pages += 1
        assert "result=created" in (url or "result=created")
    assert pages == 3 and seen == expected
    log_queries = [(s, p) for s, p in statements if "inbound_messages" in s]
    assert log_queries and not any(re.search(r"count\(", s, re.I) for s, _p in log_queries)
    for sql, params in log_queries:  # SQLite writes "OFFSET 0" after every LIMIT: never another offset
        assert "OFFSET" not in sql or (sql.rstrip().endswith("OFFSET ?") and list(params)[-1] == 0), sql


RAW = (b"Received: from mx.example.net\r\n\tby mail.example.co.id\r\n"
       b"From: =?UTF-8?B?QnVkaSBTYW50b3Nv?= <budi@example.net>\r\n"
       b"To: support@example.co.id\r\n"
       b"Subject: =?UTF-8?Q?Tagihan_bulan_Maret?=\r\n"
       b"X-Broken: caf\xe9 \xff\xfe bytes\r\n"
       b"Message-ID: <raw-1@example.net>\r\n"
       b"Content-Type: text/html; charset=utf-8\r\n\r\n"
       b"<script>alert('xss')</script><b>Halo</b>\r\n")


def inbound(raw=RAW, **kw):
    values = dict(result="quarantined", from_addr="budi@example.net", subject="Tagihan bulan Maret",
                  message_id="raw-1@example.net", error="ValueError: <boom>")
    values.update(kw)
    row = InboundMessage(raw_sha256=rawstore.save(raw), size=len(raw), **values)
    db.session.add(row)
    db.session.commit()
    return row


def test_log_entry_shows_headers_and_escaped_raw_source(client, admin):
    row = inbound()
    resp = client.get(f"/admin/mail/log/{row.id}")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200
    source = page.split('id="raw-source">')[1].split("</pre>")[0]
    assert "&lt;script&gt;alert(" in source and "<script>alert" not in page
    headers = page.split('id="raw-headers"')[1].split("</table>")[0]
    names = re.findall(r'<th scope="row" class="text-nowrap">([^<]+)</th>', headers)
    assert names == ["Received", "From", "To", "Subject", "X-Broken", "Message-ID", "Content-Type"]
    assert "=?UTF-8?Q?Tagihan_bulan_Maret?=" in headers and "Tagihan bulan Maret" in headers
    assert "Budi Santoso" in headers and "caf\ufffd" in headers  # broken bytes replaced, never an error
    assert "by mail.example.co.id" in headers  # folded header kept whole
    assert "ValueError: &lt;boom&gt;" in page
    assert 'id="raw-truncated"' not in page
    assert f"/admin/mail/log/{row.id}/reprocess" in page and "make-ticket" not in page


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000), st.sampled_from([b"", b"Subject: =?utf-8?b?", b"From: \xff <a@b>\r\n", b"X:\r\n "]))
def test_header_view_never_raises_on_broken_bytes(data, prefix):
    headers = admin_services.parse_headers(prefix + data)
    assert all(isinstance(n, str) and isinstance(v, str) for n, v, _d in headers)
    text, truncated = admin_services.raw_preview(prefix + data, limit=100)
    assert isinstance(text, str) and truncated == (len(prefix + data) > 100)


def test_raw_download_is_a_text_attachment_with_every_byte(client, admin):
    row = inbound()
    resp = client.get(f"/admin/mail/log/{row.id}/raw")
    assert resp.status_code == 200 and resp.data == RAW
    assert resp.headers["Content-Type"] == "text/plain"
    assert resp.headers["Content-Disposition"] == f'attachment; filename="inbound-{row.id}.eml"'
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


def test_big_raw_source_is_truncated_on_the_page_not_in_the_download(client, admin):
    big = RAW + b"A" * (admin_services.RAW_PREVIEW_BYTES + 5000) + b"TAIL-MARKER"
    row = inbound(big)
    page = client.get(f"/admin/mail/log/{row.id}").get_data(as_text=True)
    assert 'id="raw-truncated"' in page and "TAIL-MARKER" not in page
    assert client.get(f"/admin/mail/log/{row.id}/raw").data == big


def test_missing_raw_file_is_said_not_crashed(client, admin):
    row = InboundMessage(raw_sha256="f" * 64, result="quarantined")
    db.session.add(row)
    db.session.commit()
    page = client.get(f"/admin/mail/log/{row.id}").get_data(as_text=True)
    assert "no longer in the raw mail store" in page
    assert client.get(f"/admin/mail/log/{row.id}/raw").status_code == 404
    assert client.get("/admin/mail/log/999999").status_code == 404


def test_reprocess_buttons_follow_the_result(client, admin):
    spam = inbound(result="ignored", reason="spam")
    page = client.get(f"/admin/mail/log/{spam.id}").get_data(as_text=True)
    assert "make-ticket" in page and "/reprocess" in page
    created = inbound(result="created", error=None)
    page = client.get(f"/admin/mail/log/{created.id}").get_data(as_text=True)
    assert "make-ticket" not in page and "/reprocess" not in page
    # posting anyway is refused, whatever the pipeline can do
    client.post(f"/admin/mail/log/{created.id}/reprocess")
    assert "Only a quarantined or ignored message can be reprocessed" in flashes(client)
    client.post(f"/admin/mail/log/{created.id}/make-ticket")
    assert "Only a message logged as spam" in flashes(client)
    db.session.expire_all()
    assert db.session.get(InboundMessage, created.id).result == "created"


MAIL = (b"From: Budi <budi@example.net>\r\nTo: support@example.co.id\r\nSubject: Website tidak bisa dibuka\r\n"
        b"Message-ID: <reprocess-1@example.net>\r\nDate: Sun, 1 Mar 2026 10:00:00 +0700\r\n{extra}"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nSitus kami error 500 sejak pagi.\r\n")


@pytest.mark.parametrize("url, extra, result, reason", [
    ("reprocess", b"", "quarantined", None),
    ("make-ticket", b"X-Spam-Flag: YES\r\n", "ignored", "spam"),
])
def test_reprocess_and_make_ticket_run_the_pipeline_or_say_it_is_missing(client, admin, queue, url, extra,
                                                                            result, reason):
    row = inbound(MAIL.replace(b"{extra}", extra), result=result, reason=reason, error="earlier failure")
    resp = client.post(f"/admin/mail/log/{row.id}/{url}")
    assert resp.status_code == 303 and resp.headers["Location"].endswith(f"/admin/mail/log/{row.id}")
    message = flashes(client)
    db.session.expire_all()
    row = db.session.get(InboundMessage, row.id)
    if admin_services.lead_service("reprocess") is None:
        assert "Reprocessing is not available yet" in message and row.result == result
    else:
        number = db.session.execute(select(Ticket.number).where(Ticket.id == row.ticket_id)).scalar()
        assert row.result == "created" and number, (row.result, row.error, message)
        assert f"Processed again: created, ticket #{number}." in message
        page = client.get(f"/admin/mail/log/{row.id}").get_data(as_text=True)
        assert f'href="/tickets/{number}"' in page


# ---------------------------------------------------------------- blocklist

def test_blocklist_add_normalises_validates_and_removes(client, admin):
    assert client.post("/admin/mail/blocklist", data={"pattern": " Promo@Spam.Example ", "note": "iklan"}
                       ).status_code == 303
    assert client.post("/admin/mail/blocklist", data={"pattern": "*.bulk-mailer.example"}).status_code == 303
    assert client.post("/admin/mail/blocklist", data={"pattern": "Junk.Example."}).status_code == 303
    assert sorted(admin_services.blocklist_patterns()) == ["@bulk-mailer.example", "@junk.example",
                                                           "promo@spam.example"]
    resp = client.post("/admin/mail/blocklist", data={"pattern": "not a domain!", "note": "catatan saya"})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "neither an email address nor a domain" in page
    assert 'value="not a domain!"' in page and 'value="catatan saya"' in page
    resp = client.post("/admin/mail/blocklist", data={"pattern": "@JUNK.example"})
    assert resp.status_code == 400 and "on the blocklist already" in resp.get_data(as_text=True)
    page = client.get("/admin/mail/blocklist").get_data(as_text=True)
    assert "promo@spam.example" in page and "iklan" in page
    block = db.session.execute(select(SenderBlock).where(SenderBlock.pattern == "@junk.example")).scalar_one()
    assert client.post(f"/admin/mail/blocklist/{block.id}/delete").status_code == 303
    assert "@junk.example" not in admin_services.blocklist_patterns()
    assert [a for a, *_r in audit_rows("blocklist")] == ["blocked", "blocked", "blocked", "unblocked"]
    client.post(f"/admin/mail/blocklist/{block.id}/delete")
    assert "not on the blocklist" in flashes(client)


def test_blocklist_entries_make_the_classifier_call_it_spam(app, admin, client):
    classify = pytest.importorskip("helpdesk.mail.classify")
    client.post("/admin/mail/blocklist", data={"pattern": "example.net"})
    from types import SimpleNamespace

    msg = SimpleNamespace(from_addr="budi@shop.example.net", headers=[], subject="Halo", report_type=None,
                          header=lambda name: None, header_all=lambda name: [], content_type="text/plain",
                          dsn=[], original_message_id=None, from_name="", reply_to=[], to=[], cc=[])
    verdict = classify.classify(msg, admin_services.blocklist_patterns())
    assert verdict.kind == "spam" and "example.net" in verdict.reason


def test_email_pages_are_in_the_admin_nav(client, admin):
    for url in ("/admin/mail/mailboxes", "/admin/mail/log", "/admin/mail/blocklist", "/admin/mail/mailboxes/new"):
        page = client.get(url).get_data(as_text=True)
        assert 'href="/admin/mail/mailboxes" aria-current="page"' not in page  # nav markup as the other tabs
        assert re.search(r'nav-link active" aria-current="page" href="/admin/mail/mailboxes"', page), url


def test_an_admin_sends_a_held_automatic_mail_anyway(app, make, client, auth):
    """Over the budget a mail is held and shown on the admin page; "Send anyway" queues it, audited."""
    from helpdesk.jobs import OutboxJob
    from helpdesk.mail import outbound
    from helpdesk.mail.models import OutboundMail
    from helpdesk.tickets.models import AuditEvent

    admin = make.user(roles=["admin"])
    ticket = make.ticket()
    app.config["MAIL_BUDGET_PER_ADDRESS_HOUR"] = 0  # every automatic mail is over budget
    row = outbound.queue_acknowledgement(ticket.id)
    db.session.commit()
    assert row.status == "held"
    auth.login(admin)
    page = client.get("/admin/").get_data(as_text=True)
    assert "automatic mail is held" in page and f"/admin/mail/held/{row.id}/send" in page
    resp = client.post(f"/admin/mail/held/{row.id}/send")
    assert resp.status_code == 303
    db.session.expire_all()
    row = db.session.get(OutboundMail, row.id)
    assert row.status == "queued"
    waiting = db.session.execute(db.select(OutboxJob.args).where(OutboxJob.done_at.is_(None))).scalars().all()
    assert [row.id] in [list(a)[:1] for a in waiting]
    ev = db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "held_mail_sent")).scalar_one()
    assert ev.actor_user_id == admin.id
    # a second click: not held any more
    assert "not held" in client.post(f"/admin/mail/held/{row.id}/send", follow_redirects=True).get_data(as_text=True)
