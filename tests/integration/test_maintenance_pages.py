"""Maintenance pages (issue #8 §2): technical support creates a window through the form (typed in
WIB, stored UTC), a refused form keeps what was typed, the preview shows the counts, the affected
subscribers and a sample mail; customer support may only read; the delivery log; the ticket page
shows the linked window. The public status page and its Atom feed: no login, in the request's
language, with no customer data and no item identifiers."""
import xml.etree.ElementTree as ET
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from helpdesk.extensions import db
from helpdesk.maintenance import jobs as mjobs
from helpdesk.maintenance import services as maint
from helpdesk.maintenance.models import MaintenanceWindow
from helpdesk.timeutil import utcnow
from helpdesk.warranty import services as warranty
from helpdesk.warranty.models import Product

BASE_URL = "https://desk.example"
ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture
def app(app_factory):
    app = app_factory(BASE_URL=BASE_URL)
    with app.app_context():
        yield app
        db.session.remove()


@pytest.fixture
def world(app, make):
    tech = make.user(email="rina@desk.example", name="Rina", roles=["technical_support"])
    cs = make.user(email="citra@desk.example", name="Citra", roles=["customer_support"])
    billing = make.user(email="bayu@desk.example", name="Bayu", roles=["billing"])
    hosting = Product(code="HOST-1GB", name="Hosting 1 GB", product_line="domain_hosting", price=1_200_000)
    db.session.add(hosting)
    db.session.flush()
    ani = make.customer(name="Ani Wijaya", email="ani@example.net", language="en")
    budi = make.customer(name="Budi Santoso", email="budi@example.net", language="id")
    for c, ident in ((ani, "tokoani.com"), (budi, "budi.id")):
        item = warranty.create_item(customer_id=c.id, product_id=hosting.id, purchase_date=date(2026, 1, 5),
                                    identifier=ident, with_bundle=False)
        item.server = "srv1.example.net"
    db.session.commit()
    return {"tech": tech.email, "tech_id": tech.id, "cs": cs.email, "billing": billing.email,
            "hosting": hosting.id, "ani": ani.id}


def _window(world, starts_at, ends_at, publish=True, **kw):
    fields = dict(title_id="Pemeliharaan srv1", title_en="srv1 maintenance", description_id="Ganti disk.",
                  description_en="Disk replacement.", starts_at=starts_at, ends_at=ends_at, impact="degraded",
                  servers=["srv1.example.net"])
    fields.update(kw)
    w = maint.create_window(world["tech_id"], now=starts_at - timedelta(days=10), **fields)
    if publish:
        maint.publish(w.id, world["tech_id"], now=min(utcnow(), ends_at - timedelta(minutes=1)))
    db.session.commit()
    return w.id


FORM = {"title_id": "Pemeliharaan server srv1", "title_en": "Server srv1 maintenance",
        "description_id": "Pembaruan kernel.", "description_en": "Kernel upgrade.",
        "start_date": "2099-03-01", "start_time": "22:00", "end_date": "2099-03-02", "end_time": "01:30",
        "impact": "downtime", "announce_days": "3", "servers": "SRV1.example.net", "item_ids": ""}


def test_technical_support_creates_previews_and_publishes(client, auth, world):
    auth.login(world["tech"])
    page = client.get("/maintenance/new")
    assert page.status_code == 200 and b'datalist id="known-servers"' in page.data
    assert b"srv1.example.net" in page.data  # a known server is suggested

    bad = client.post("/maintenance/new", data=dict(FORM, end_date="2099-03-01", end_time="21:00"))
    assert bad.status_code == 400
    assert b"The end must be after the start." in bad.data and b'value="Server srv1 maintenance"' in bad.data
    assert b"Kernel upgrade." in bad.data

    resp = client.post("/maintenance/new", data=FORM)
    assert resp.status_code == 302
    w = db.session.execute(select(MaintenanceWindow)).scalar_one()
    assert (w.starts_at, w.ends_at, w.status) == (datetime(2099, 3, 1, 15, 0), datetime(2099, 3, 1, 18, 30), "draft")
    assert [t.server for t in w.targets] == ["srv1.example.net"]

    show = client.get(resp.headers["Location"])
    text = show.get_data(as_text=True)
    assert show.status_code == 200, text
    assert 'id="affected-total">2<' in text
    assert "srv1.example.net</td><td>2</td><td>2</td>" in text
    assert "Ani Wijaya" in text and "budi@example.net" in text and "tokoani.com" in text
    assert "Server srv1 maintenance" in text and "Jadwal pemeliharaan: Pemeliharaan server srv1" in text
    assert "Sunday, 1 March 2099, 22:00 WIB" in text  # the sample mail, in WIB

    edit = client.get(f"/maintenance/{w.id}/edit")
    assert b'value="22:00"' in edit.data and b'value="2099-03-01"' in edit.data

    assert client.post(f"/maintenance/{w.id}/publish").status_code == 302
    db.session.expire_all()
    assert db.session.get(MaintenanceWindow, w.id).status == "scheduled"
    listing = client.get("/maintenance").get_data(as_text=True)
    assert "Server srv1 maintenance" in listing or "Pemeliharaan server srv1" in listing

    assert client.post(f"/maintenance/{w.id}/cancel", data={"reason": ""}).status_code == 302
    assert db.session.get(MaintenanceWindow, w.id).status == "scheduled"
    assert client.post(f"/maintenance/{w.id}/cancel", data={"reason": "Vendor delay"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(MaintenanceWindow, w.id).status == "cancelled"


def test_customer_support_reads_only_and_others_are_refused(client, auth, world):
    wid = _window(world, datetime(2099, 1, 1, 1), datetime(2099, 1, 1, 3))
    auth.login(world["cs"])
    assert client.get("/maintenance").status_code == 200
    assert client.get(f"/maintenance/{wid}").status_code == 200
    assert client.get(f"/maintenance/{wid}/log").status_code == 200
    assert client.get("/maintenance/new").status_code == 403
    assert client.post("/maintenance/new", data=FORM).status_code == 403
    assert client.post(f"/maintenance/{wid}/cancel", data={"reason": "x"}).status_code == 403
    client.post("/logout")
    auth.login(world["billing"])
    assert client.get("/maintenance").status_code == 403


def test_delivery_log_lists_each_recipient(client, auth, world, run_jobs):
    start = datetime(2099, 1, 1, 1)
    wid = _window(world, start, start + timedelta(hours=2))
    mjobs.sweep(start - timedelta(days=3))
    auth.login(world["tech"])
    text = client.get(f"/maintenance/{wid}/log").get_data(as_text=True)
    assert text.count('class="delivery-row"') == 2
    assert "ani@example.net" in text and "budi@example.net" in text and 'data-status="queued"' in text


def test_ticket_page_shows_the_linked_window(client, auth, world, make):
    now = utcnow()
    wid = _window(world, now - timedelta(hours=1), now + timedelta(hours=2))
    queue = make.queue(slug="technical-support", name="Technical Support")
    from helpdesk.customers.models import Customer

    ticket = make.ticket(queue=queue, customer=db.session.get(Customer, world["ani"]), subject="Site down")
    db.session.commit()
    admin = make.user(email="admin@desk.example", roles=["admin"])
    db.session.commit()
    auth.login(admin.email)
    page = client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert 'id="ticket-maintenance"' in page and f"/maintenance/{wid}" in page


def test_status_page_and_feed_in_both_languages_without_customer_data(client, world):
    now = utcnow()
    upcoming = _window(world, now + timedelta(days=2), now + timedelta(days=2, hours=2))
    ongoing = _window(world, now - timedelta(hours=1), now + timedelta(hours=1), title_en="Ongoing work",
                      title_id="Pekerjaan berjalan")
    past = _window(world, now - timedelta(days=5), now - timedelta(days=5) + timedelta(hours=2),
                   title_en="Old work", title_id="Pekerjaan lama")
    too_old = _window(world, now - timedelta(days=200), now - timedelta(days=200) + timedelta(hours=2),
                      title_en="Ancient work", title_id="Pekerjaan kuno")
    draft = _window(world, now + timedelta(days=3), now + timedelta(days=3, hours=1), publish=False,
                    title_en="Secret draft", title_id="Draf rahasia")
    secrets = ("Ani Wijaya", "ani@example.net", "tokoani.com", "budi.id", "srv1.example.net", "Secret draft")

    en = client.get("/status?lang=en").get_data(as_text=True)
    assert "srv1 maintenance" in en and "Ongoing work" in en and "Old work" in en and "Disk replacement." in en
    assert "Ancient work" not in en
    assert en.index("Ongoing maintenance") < en.index("Ongoing work") < en.index("Upcoming maintenance") < \
        en.index("srv1 maintenance") < en.index("Past maintenance") < en.index("Old work")
    assert not any(s in en for s in secrets)
    idn = client.get("/status?lang=id").get_data(as_text=True)
    assert "Pemeliharaan srv1" in idn and "Ganti disk." in idn and "Pekerjaan berjalan" in idn
    assert not any(s in idn for s in secrets)

    one = client.get(f"/status/{ongoing}?lang=en")
    assert one.status_code == 200 and "Ongoing work" in one.get_data(as_text=True)
    assert client.get(f"/status/{draft}").status_code == 404
    assert client.get("/status/999999").status_code == 404

    feed = client.get("/status/feed.atom?lang=en")
    assert feed.status_code == 200 and feed.headers["Content-Type"].startswith("application/atom+xml")
    body = feed.get_data(as_text=True)
    root = ET.fromstring(feed.data)
    assert root.tag == f"{ATOM}feed"
    titles = [e.find(f"{ATOM}title").text for e in root.findall(f"{ATOM}entry")]
    assert sorted(titles) == ["Old work", "Ongoing work", "srv1 maintenance"]
    links = {e.find(f"{ATOM}link").get("href") for e in root.findall(f"{ATOM}entry")}
    assert f"{BASE_URL}/status/{upcoming}" in links and f"{BASE_URL}/status/{past}" in links
    assert not any(s in body for s in secrets) and str(too_old) not in links
    feed_id = ET.fromstring(client.get("/status/feed.atom?lang=id").data)
    assert "Pekerjaan berjalan" in [e.find(f"{ATOM}title").text for e in feed_id.findall(f"{ATOM}entry")]


def test_the_server_of_an_owned_item_is_entered_on_the_customer_page(client, auth, world, make):
    from helpdesk.warranty.models import OwnedItem

    admin = make.user(email="admin@desk.example", roles=["admin"])
    db.session.commit()
    auth.login(admin.email)
    assert b'name="server"' in client.get(f"/customers/{world['ani']}").data
    resp = client.post(f"/customers/{world['ani']}/items", data={
        "product_id": str(world["hosting"]), "status": "active", "identifier": "baru.id", "server": " SRV9.Example.NET ",
        "purchase_date": "2026-02-01"})
    assert resp.status_code == 302
    item = db.session.execute(select(OwnedItem).where(OwnedItem.identifier == "baru.id")).scalar_one()
    assert item.server == "srv9.example.net"
    assert "srv9.example.net" in maint.known_servers()


def test_technical_support_moves_an_existing_item_to_another_server(client, auth, world, make):
    """An item entered before servers were recorded gets one on its page (audited, with its bundled
    items), and the next window on that server reaches its customer; other agents may not."""
    from helpdesk.tickets.models import AuditEvent
    from helpdesk.warranty.models import OwnedItem

    item = db.session.execute(select(OwnedItem).where(OwnedItem.identifier == "tokoani.com")).scalar_one()
    item_id = item.id
    auth.login(world["cs"])
    assert b'id="item-server-form"' not in client.get(f"/items/{item_id}").data
    assert client.post(f"/items/{item_id}/server", data={"server": "srv2.example.net"}).status_code == 403
    client.post("/logout")

    auth.login(world["tech"])
    page = client.get(f"/items/{item_id}").get_data(as_text=True)
    assert 'id="item-server-form"' in page and 'value="srv1.example.net"' in page
    refused = client.post(f"/items/{item_id}/server", data={"server": "srv 2"}, follow_redirects=True)
    assert "srv1.example.net" in refused.get_data(as_text=True)
    assert db.session.get(OwnedItem, item_id).server == "srv1.example.net"
    resp = client.post(f"/items/{item_id}/server", data={"server": " SRV2.Example.NET "}, follow_redirects=True)
    assert "srv2.example.net" in resp.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(OwnedItem, item_id).server == "srv2.example.net"
    event = db.session.execute(select(AuditEvent).where(AuditEvent.action == "item_server")).scalar_one()
    assert (event.object_type, event.object_id, event.old_value, event.new_value) == (
        "item", item_id, "srv1.example.net", "srv2.example.net")

    w = _window(world, utcnow() + timedelta(days=5), utcnow() + timedelta(days=5, hours=1), servers=["srv2.example.net"])
    assert [c["id"] for c in maint.affected(w)["customers"]] == [world["ani"]]
