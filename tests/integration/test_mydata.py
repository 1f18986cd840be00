""""My data" (issue 3 §2, UU PDP Law 27/2022): the customer's ZIP export, deletion requests, the
admin's decision (anonymise and keep the tickets' history, or reject)."""
import io
import json
import zipfile

import pytest
from sqlalchemy import func, select

from helpdesk.customers.models import Customer, CustomerEmail, DataRequest
from helpdesk.extensions import db
from helpdesk.portal import mydata
from helpdesk.portal import services as portal
from helpdesk.portal import tokens
from helpdesk.tickets.models import AuditEvent, Message, Ticket

from .test_portal import sign_in, text_of, world  # noqa: F401  (world: the portal's fixture)


@pytest.fixture
def data(world, make):
    """The portal's world (Dewi's ticket with a file, an internal note with a file and a public reply;
    Budi's ticket), plus an admin, Dewi's organisation and phone."""
    admin = make.user(roles=["admin"], email="boss@example.com")
    world["dewi"].organisation = make.organisation(name="PT Toko Dewi")
    world["dewi"].phone = "+628111222333"
    db.session.commit()
    return {"admin": admin, "dewi": world["dewi"].id, "budi": world["budi"].id, "mine": world["mine"].number,
            "theirs": world["theirs"].number, "mine_id": world["mine"].id}


def _zip(resp):
    assert resp.status_code == 200
    assert resp.mimetype == "application/zip"
    assert resp.headers["Content-Disposition"].startswith("attachment;")
    return zipfile.ZipFile(io.BytesIO(resp.get_data()))


def test_export_holds_profile_public_thread_and_files_only(app, client, data):
    sign_in(client, data["dewi"])
    page = client.get("/portal/my-data")
    assert page.status_code == 200 and "Download (ZIP)" in text_of(page)
    assert "/portal/my-data" in client.get("/portal/profile").get_data(as_text=True)
    archive = _zip(client.post("/portal/my-data/export"))
    names = set(archive.namelist())
    assert names == {"profile.json", "tickets.json", f"attachments/{data['mine']}/layar.png"}
    profile = json.loads(archive.read("profile.json"))
    assert profile["name"] == "Dewi Lestari" and profile["phone"] == "+628111222333"
    assert profile["organisation"] == "PT Toko Dewi"
    assert [e["email"] for e in profile["emails"]] == ["dewi@tokodewi.co.id"]
    tickets = json.loads(archive.read("tickets.json"))
    assert [t["number"] for t in tickets] == [data["mine"]]
    texts = [m["text"] for m in tickets[0]["messages"]]
    assert texts == ["Tolong, situs mati.", "Kami sedang memeriksa situs Anda."]
    assert tickets[0]["messages"][0]["attachments"][0]["path"] == f"attachments/{data['mine']}/layar.png"
    assert archive.read(f"attachments/{data['mine']}/layar.png") == b"\x89PNG dewi"
    everything = b"".join(archive.read(n) for n in names)
    for secret in (b"Catatan internal", b"10.0.0.5", b"internal only", b"Budi", b"budi secret file", b"audit"):
        assert secret not in everything


def test_export_is_never_a_get_and_needs_a_signed_in_customer(app, client, data, auth):
    assert client.get("/portal/my-data/export").status_code == 405
    resp = client.post("/portal/my-data/export")
    assert resp.status_code == 302 and "/portal/login" in resp.headers["Location"]
    auth.login("tech@example.com")
    assert client.post("/portal/my-data/export").status_code == 403


def test_another_customers_export_has_only_their_data(app, client, data):
    sign_in(client, data["budi"])
    archive = _zip(client.post("/portal/my-data/export"))
    assert set(archive.namelist()) == {"profile.json", "tickets.json", f"attachments/{data['theirs']}/budi.txt"}
    everything = b"".join(archive.read(n) for n in archive.namelist())
    assert b"Dewi" not in everything and b"PNG dewi" not in everything and b"situs" not in everything


def _ask_deletion(client):
    resp = client.post("/portal/my-data/delete", data={})
    assert resp.status_code == 400 and "Please tick the box" in text_of(resp)
    assert db.session.execute(select(func.count()).select_from(DataRequest)).scalar_one() == 0
    resp = client.post("/portal/my-data/delete", data={"confirm": "y"})
    assert resp.status_code == 303
    assert "waiting for an administrator" in text_of(client.get("/portal/my-data"))
    client.post("/portal/my-data/delete", data={"confirm": "y"})  # asking twice: still one request
    return db.session.execute(select(DataRequest)).scalar_one()


def test_deletion_approved_anonymises_and_keeps_history(app, client, data, auth):
    portal.set_password(data["dewi"], "a-long-password-1")
    db.session.commit()
    old_token = sign_in(client, data["dewi"])
    req = _ask_deletion(client)
    assert req.status == "pending" and req.kind == "deletion" and req.customer_id == data["dewi"]
    client.post("/portal/logout")
    messages_before = db.session.execute(select(func.count()).select_from(Message)
                                         .where(Message.ticket_id == data["mine_id"])).scalar_one()
    audit_before = db.session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()

    auth.login("boss@example.com")
    page = client.get("/admin/data-requests")
    assert page.status_code == 200 and "Dewi Lestari" in text_of(page)
    assert "/admin/data-requests" in client.get("/admin/").get_data(as_text=True)
    resp = client.post(f"/admin/data-requests/{req.id}", data={"decision": "approve", "note": "UU PDP"})
    assert resp.status_code == 303
    assert "Dewi Lestari" not in text_of(client.get("/admin/data-requests"))
    auth.logout()

    db.session.expire_all()
    dewi = db.session.get(Customer, data["dewi"])
    assert dewi.name == f"Deleted customer #{dewi.id}"
    assert dewi.phone is None and dewi.password_hash is None and dewi.login_nonce is None
    assert dewi.anonymised_at is not None
    assert [e.email for e in dewi.emails] == [f"deleted-{dewi.id}-1@invalid"]
    assert db.session.execute(select(CustomerEmail).where(CustomerEmail.email == "dewi@tokodewi.co.id")).first() is None
    req = db.session.get(DataRequest, req.id)
    assert req.status == "approved" and req.decided_by_user_id == data["admin"].id and req.note == "UU PDP"
    assert req.decided_at is not None
    # the tickets' history stays: ticket, messages, older audit events, plus the decision's events
    ticket = db.session.get(Ticket, data["mine_id"])
    assert ticket.customer_id == dewi.id
    assert db.session.execute(select(func.count()).select_from(Message)
                              .where(Message.ticket_id == ticket.id)).scalar_one() == messages_before
    actions = db.session.execute(select(AuditEvent.action).where(AuditEvent.object_type == "customer",
                                                                 AuditEvent.object_id == dewi.id)).scalars().all()
    assert "anonymise" in actions and actions.count("data_request") == 2
    assert db.session.execute(select(func.count()).select_from(AuditEvent)).scalar_one() > audit_before
    # no more sign-in: not the old link, not a new one, not the password
    assert client.post(f"/portal/login/{old_token}").status_code == 400
    assert client.post(f"/portal/login/{tokens.make_sign_in_token(dewi.id, 'n' * 32)}").status_code == 400
    resp = client.post("/portal/login/password", data={"email": "dewi@tokodewi.co.id", "password": "a-long-password-1"})
    assert resp.status_code == 400
    assert portal.authenticate("dewi@tokodewi.co.id", "a-long-password-1") is None
    # deciding again is refused
    auth.login("boss@example.com")
    client.post(f"/admin/data-requests/{req.id}", data={"decision": "reject"})
    db.session.expire_all()
    assert db.session.get(DataRequest, req.id).status == "approved"


def test_deletion_rejected_leaves_the_customer_as_is(app, client, data, auth):
    sign_in(client, data["dewi"])
    req = _ask_deletion(client)
    client.post("/portal/logout")
    auth.login("boss@example.com")
    assert client.post(f"/admin/data-requests/{req.id}", data={"decision": "reject"}).status_code == 303
    auth.logout()
    db.session.expire_all()
    dewi = db.session.get(Customer, data["dewi"])
    assert dewi.name == "Dewi Lestari" and dewi.anonymised_at is None and dewi.phone == "+628111222333"
    assert [e.email for e in dewi.emails] == ["dewi@tokodewi.co.id"]
    assert db.session.get(DataRequest, req.id).status == "rejected"
    sign_in(client, data["dewi"])  # still signs in
    assert "Delete my data" in text_of(client.get("/portal/my-data"))


@pytest.mark.parametrize("role", ["technical_support", "customer_support", "billing"])
def test_non_admins_get_403_on_the_admin_page(app, client, data, auth, make, role):
    sign_in(client, data["dewi"])
    req = mydata.request_deletion(data["dewi"])
    db.session.commit()
    client.post("/portal/logout")
    make.user(roles=[role], email=f"{role}@example.com")
    db.session.commit()
    auth.login(f"{role}@example.com")
    assert client.get("/admin/data-requests").status_code == 403
    assert client.post(f"/admin/data-requests/{req.id}", data={"decision": "approve"}).status_code == 403
    db.session.expire_all()
    assert db.session.get(DataRequest, req.id).status == "pending"
    assert db.session.get(Customer, data["dewi"]).anonymised_at is None
