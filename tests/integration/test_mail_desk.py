"""The email parts of the agent's ticket page: threading rule, full original, inline images,
virus-scan status of attachments, the automated-sender badge and the Cc list."""
import re

import pytest
from sqlalchemy import event, select

from helpdesk.extensions import db
from helpdesk.mail import desk
from helpdesk.tickets import storage
from helpdesk.tickets.html import sanitize
from helpdesk.tickets.models import Attachment, AuditEvent, Message, Ticket
from tests.factories import PASSWORD

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def world(app, make, client):
    q = make.queue(slug="technical-support", name="Technical Support")
    agent = make.user(roles=["technical_support"], queues=[q], name="Rina")
    outsider = make.user(roles=["billing"], name="Dewi")
    cust = make.customer(name="Budi Santoso", email="budi@example.net")
    ticket = make.ticket(queue=q, customer=cust, subject="Logo tidak muncul", channel="email")
    db.session.commit()
    assert client.post("/login", data={"email": agent.email, "password": PASSWORD}).status_code == 302
    return {"ticket": ticket, "agent": agent, "outsider": outsider, "customer": cust}


def email_message(ticket, *, body_html=None, body_text="Halo", rule="references", original_text=None,
                  original_html=None, files=()):
    """A customer's email message with attachments: files are (filename, data, content_id, inline, scan)."""
    msg = Message(ticket_id=ticket.id, kind="reply", author_customer_id=ticket.customer_id, channel="email",
                  body_text=body_text, body_html=sanitize(body_html) if body_html else None, thread_rule=rule,
                  original_text=original_text, original_html=original_html, email_message_id="x@example.net")
    db.session.add(msg)
    db.session.flush()
    atts = []
    for filename, data, cid, inline, scan in files:
        att = Attachment(ticket_id=ticket.id, message_id=msg.id, sha256=storage.save_bytes(data), filename=filename,
                         size=len(data), content_type="image/png" if filename.endswith(".png") else "application/pdf",
                         content_id=cid, inline=inline, scan_status=scan[0], scan_result=scan[1])
        db.session.add(att)
        atts.append(att)
    db.session.commit()
    return msg, atts


def article(page, message_id):
    return page.split(f'id="m{message_id}"')[1].split("</article>")[0]


CLEAN = ("clean", None)


def test_thread_rule_is_shown_on_email_messages(client, world):
    t = world["ticket"]
    msgs = {rule: email_message(t, rule=rule)[0] for rule in ("in_reply_to", "references", "subject_tag",
                                                               "plus_address", "new")}
    page = client.get(f"/tickets/{t.number}").get_data(as_text=True)
    for rule, label in (("in_reply_to", "In-Reply-To"), ("references", "References"),
                        ("subject_tag", "subject tag"), ("plus_address", "plus address"), ("new", "new")):
        assert f"threaded by: {label}<" in article(page, msgs[rule].id), rule
    first = db.session.execute(select(Message.id).where(Message.ticket_id == t.id).order_by(Message.id)).scalar()
    assert "threaded by" not in article(page, first)  # the web form's message has no rule


def test_full_original_is_one_click_away(client, world):
    t = world["ticket"]
    text_msg, _a = email_message(t, body_text="Sudah saya coba.",
                                 original_text="Sudah saya coba.\n\nOn Mon, Budi wrote:\n> kutipan lama")
    html_msg, _a = email_message(t, body_html="<p>Baru</p>",
                                 original_html="<p>Baru</p><blockquote>lama <script>alert(1)</script></blockquote>")
    plain, _a = email_message(t, body_text="Tanpa kutipan")
    page = client.get(f"/tickets/{t.number}").get_data(as_text=True)
    a = article(page, text_msg.id)
    assert "<details" in a and "Show full original" in a and "&gt; kutipan lama" in a
    b = article(page, html_msg.id)
    assert "<details" in b and "<blockquote>lama" in b and "<script>" not in b  # sanitised at render too
    assert "<details" not in article(page, plain.id)


def test_inline_images_are_shown_inline_and_left_out_of_the_list(client, world):
    t = world["ticket"]
    msg, (logo, pdf, stray) = email_message(
        t, body_html='<p>Lihat logo:</p><img src="cid:logo@budi" alt="logo"><img src="cid:unknown@x">',
        files=[("logo.png", PNG, "logo@budi", True, CLEAN), ("invoice.pdf", b"%PDF-1.4", None, False, CLEAN),
               ("unused.png", PNG + b"1", "unused@budi", True, CLEAN)])
    other, (other_logo,) = email_message(t, body_html='<img src="cid:logo@budi">',
                                         files=[("other.png", PNG + b"2", "logo@budi", True, CLEAN)])
    page = client.get(f"/tickets/{t.number}").get_data(as_text=True)
    a = article(page, msg.id)
    assert f'<img src="/attachments/{logo.id}" alt="logo">' in a
    assert 'src="cid:unknown@x"' in a  # no attachment of this message: left alone
    listed = re.findall(r'href="/attachments/(\d+)"', a.split("msg-html")[-1].split("</div>", 1)[1])
    assert listed == [str(pdf.id), str(stray.id)]  # the inline logo is not listed; an unreferenced one is
    b = article(page, other.id)
    assert f'src="/attachments/{other_logo.id}"' in b and f"/attachments/{logo.id}" not in b
    resp = client.get(f"/attachments/{logo.id}")
    assert resp.status_code == 200 and resp.data == PNG and resp.mimetype == "image/png"


def test_cid_rewrite_handles_encoded_and_bracketed_content_ids(app):
    class Att:
        def __init__(self, id, cid, scan="clean"):
            self.id, self.content_id, self.scan_status, self.inline = id, cid, scan, True

    html, used = desk.rewrite_cids('<img src="cid:part1.ABC%40mail"><img alt="a" src="cid:IMG2@X">'
                                   '<img src="cid:virus@x">',
                                   [Att(7, "<part1.ABC@mail>"), Att(8, "img2@x"), Att(9, "virus@x", "infected")],
                                   lambda a: f"/attachments/{a.id}")
    assert html == '<img src="/attachments/7"><img alt="a" src="/attachments/8"><img src="cid:virus@x">'
    assert used == {7, 8}


@pytest.mark.parametrize("scan, code, reason", [
    (("infected", "Win.Test.EICAR_HDB-1"), 403, "infected (Win.Test.EICAR_HDB-1)"),
    (("pending", None), 409, "still being scanned"),
])
def test_infected_or_unscanned_attachments_are_not_served(client, world, scan, code, reason):
    t = world["ticket"]
    msg, (bad, good) = email_message(t, body_html='<img src="cid:bad@x">', files=[
        ("virus.pdf", b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR", "bad@x", True, scan),
        ("ok.pdf", b"%PDF-1.4 clean", None, False, CLEAN)])
    resp = client.get(f"/attachments/{bad.id}")
    assert resp.status_code == code and reason in resp.get_data(as_text=True)
    assert b"X5O!P" not in resp.data
    assert client.get(f"/attachments/{good.id}").status_code == 200
    a = article(client.get(f"/tickets/{t.number}").get_data(as_text=True), msg.id)
    assert f'href="/attachments/{bad.id}"' not in a and f'src="/attachments/{bad.id}"' not in a
    assert "virus.pdf" in a  # listed, with the finding, but not a link
    assert ("infected: Win.Test.EICAR_HDB-1" if scan[0] == "infected" else "virus scan pending") in a


def test_infected_attachment_is_refused_by_the_api_too(app, client, world):
    from helpdesk.auth.services import create_api_token

    t = world["ticket"]
    _msg, (bad,) = email_message(t, files=[("virus.pdf", b"EICAR", None, False, ("infected", "Eicar"))])
    token = create_api_token(world["agent"].id)
    db.session.commit()
    resp = client.get(f"/api/v1/attachments/{bad.id}", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 403 and b"EICAR" not in resp.data


def test_automated_sender_badge(client, world):
    t = world["ticket"]
    assert 'id="automated-sender"' not in client.get(f"/tickets/{t.number}").get_data(as_text=True)
    t.automated_sender = True
    db.session.commit()
    assert 'id="automated-sender"' in client.get(f"/tickets/{t.number}").get_data(as_text=True)


def test_cc_list_is_shown_edited_validated_and_audited(client, world):
    t = world["ticket"]
    t.cc_addresses = ["siti@example.net"]
    db.session.commit()
    page = client.get(f"/tickets/{t.number}").get_data(as_text=True)
    assert 'id="cc-list">siti@example.net<' in page and 'value="siti@example.net"' in page

    resp = client.post(f"/tickets/{t.number}/cc", data={"cc": "Siti@Example.net; andi@example.com,andi@example.com"})
    assert resp.status_code == 302
    db.session.expire_all()
    assert db.session.get(Ticket, t.id).cc_addresses == ["siti@example.net", "andi@example.com"]
    ev = db.session.execute(select(AuditEvent).where(AuditEvent.ticket_id == t.id, AuditEvent.action == "cc")
                            ).scalar_one()
    assert (ev.old_value, ev.new_value, ev.actor_user_id) == ("siti@example.net", "siti@example.net, andi@example.com",
                                                              world["agent"].id)

    resp = client.post(f"/tickets/{t.number}/cc", data={"cc": "andi@example.com, bukan-alamat, x@"})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "Not a valid email address: bukan-alamat, x@" in page
    assert 'value="andi@example.com, bukan-alamat, x@"' in page  # what the agent typed stays
    db.session.expire_all()
    assert db.session.get(Ticket, t.id).cc_addresses == ["siti@example.net", "andi@example.com"]

    assert client.post(f"/tickets/{t.number}/cc", data={"cc": ""}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Ticket, t.id).cc_addresses == []
    assert db.session.execute(select(AuditEvent.id).where(AuditEvent.action == "cc")).all().__len__() == 2


def test_cc_needs_an_agent_who_can_see_the_ticket(client, world):
    t = world["ticket"]
    client.post("/logout")
    client.post("/login", data={"email": world["outsider"].email, "password": PASSWORD})
    assert client.post(f"/tickets/{t.number}/cc", data={"cc": "evil@example.com"}).status_code == 404
    db.session.expire_all()
    assert not db.session.get(Ticket, t.id).cc_addresses


def test_email_parts_cost_no_query_per_message(app, client, world):
    t = world["ticket"]

    def statements_for_page():
        seen = []
        listener = lambda *a: seen.append(a[2])  # noqa: E731
        client.get(f"/tickets/{t.number}")
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            assert client.get(f"/tickets/{t.number}").status_code == 200
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        return len(seen)

    def add(n):
        for i in range(n):
            email_message(t, body_html=f'<img src="cid:i{i}@x">', original_text="asli",
                          files=[(f"i{i}.png", PNG + bytes([i]), f"i{i}@x", True, CLEAN),
                                 (f"d{i}.pdf", b"%PDF" + bytes([i]), None, False, ("infected", "x"))])

    add(2)
    few = statements_for_page()
    add(8)
    assert statements_for_page() == few


def test_the_portal_shows_inline_images_in_place_too(app, world):
    """The customer's own email, seen in the portal: cid: points at the portal's attachment URL."""
    from tests.integration.test_portal import sign_in

    t = world["ticket"]
    msg, (logo, pdf) = email_message(t, body_html='<p>Logo:</p><img src="cid:logo@budi" alt="logo">',
                                     files=[("logo.png", PNG, "logo@budi", True, CLEAN),
                                            ("invoice.pdf", b"%PDF-1.4", None, False, CLEAN)])
    portal = app.test_client()
    sign_in(portal, world["customer"].id)
    page = portal.get(f"/portal/tickets/{t.number}").get_data(as_text=True)
    a = article(page, msg.id)
    assert f'<img src="/portal/attachments/{logo.id}" alt="logo">' in a
    assert f"/portal/attachments/{pdf.id}" in a and a.count(f"/portal/attachments/{logo.id}") == 1
    assert portal.get(f"/portal/attachments/{logo.id}").data == PNG
