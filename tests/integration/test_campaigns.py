"""Marketing announcements (issue #8 §3): segments of leads (source, campaign, interest, stage) and
customers (product line, product, B2B/B2C), only explicit opt-ins for promotions, the preview's count
equal to what is sent, scheduled sending with a controlled clock, exactly once (a sweep twice, two at
once), the report after a real send (SMTP test server), a bounce and a one-click unsubscribe, and the
pages."""
import re
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from helpdesk.campaigns import jobs as cjobs, services as camp
from helpdesk.campaigns.models import Campaign
from helpdesk.extensions import db
from helpdesk.leads.models import Lead
from helpdesk.subscriptions import delivery, services as subs
from helpdesk.subscriptions.models import AnnouncementDelivery, Subscription
from helpdesk.timeutil import utcnow
from helpdesk.warranty.models import OwnedItem, Product
from tests.concurrency import at_once
from tests.smtp_server import shared_smtp, smtp_server  # noqa: F401  (fixtures)

BASE_URL = "https://desk.example"
T0 = datetime(2027, 3, 1, 3, 0)  # 10:00 WIB


@pytest.fixture
def app(app_factory, smtp_server):
    app = app_factory(BASE_URL=BASE_URL, MAIL_DEFAULT_SENDER="Promo <promo@desk.example>", ANNOUNCE_BATCH=200,
                      **smtp_server.mail_config())
    with app.app_context():
        yield app
        db.session.remove()


def lead(name, email, *, source="website", campaign=None, lines=(), stage="new", status="subscribed",
         topic="promotions"):
    row = Lead(name=name, email=email, source=source, campaign=campaign, product_lines=list(lines), stage=stage)
    db.session.add(row)
    db.session.flush()
    if status:
        db.session.add(Subscription(lead_id=row.id, topic=topic, status=status, updated_at=utcnow()))
    return row


def opt_in(customer, topic="promotions"):
    subs.change("customer", customer.id, {topic: True}, source="portal", method="checkbox")


def new_campaign(audience="customers", segment=None, topic="promotions", **texts):
    texts = texts or {"subject_id": "Promo hosting", "body_id": "Diskon 20%.\n\nHanya minggu ini.",
                      "subject_en": "Hosting offer", "body_en": "20% off.\n\nThis week only."}
    c = camp.create(None, name="Promo", topic=topic, audience=audience, segment=segment or {}, **texts)
    db.session.commit()
    return c


def recipient_ids(c):
    return {r[0] for r in db.session.execute(camp.recipients_query(c))}


@pytest.fixture
def catalogue(make):
    host = Product(code="HOST-1", name="Hosting 1 GB", product_line="domain_hosting")
    web = Product(code="WEB-1", name="Website Toko", product_line="website")
    db.session.add_all([host, web])
    db.session.flush()
    return host, web


def own(customer, product, status="active"):
    db.session.add(OwnedItem(customer_id=customer.id, product_id=product.id, purchase_date=date(2026, 1, 1),
                             status=status))


def test_lead_segments_each_filter(app):
    a = lead("A", "a@example.org", source="website", campaign="EXPO26", lines=["website", "ads_seo"], stage="new")
    b = lead("B", "b@example.org", source="seminar", campaign="expo26", lines=["domain_hosting"], stage="contacted")
    c = lead("C", "c@example.org", source="seminar", lines=["ads_seo"], stage="won")
    lead("Pending", "p@example.org", source="website", lines=["website"], status="pending")
    lead("None", "n@example.org", source="website", lines=["website"], status=None)
    lead("General only", "g@example.org", source="website", topic="general")
    lead("Unsub", "u@example.org", source="website", status="unsubscribed")
    bouncing = lead("Bouncing", "x@example.org", source="website")
    bouncing.bouncing_at = utcnow()
    db.session.commit()
    assert recipient_ids(new_campaign("leads")) == {a.id, b.id, c.id}
    assert recipient_ids(new_campaign("leads", {"sources": ["seminar"]})) == {b.id, c.id}
    assert recipient_ids(new_campaign("leads", {"campaigns": ["Expo26"]})) == {a.id, b.id}
    assert recipient_ids(new_campaign("leads", {"interests": ["ads_seo"]})) == {a.id, c.id}
    assert recipient_ids(new_campaign("leads", {"interests": ["website", "domain_hosting"]})) == {a.id, b.id}
    assert recipient_ids(new_campaign("leads", {"stages": ["contacted", "won"]})) == {b.id, c.id}
    assert recipient_ids(new_campaign("leads", {"sources": ["seminar"], "stages": ["won"]})) == {c.id}
    # the general topic reaches only the lead who confirmed it
    general = lead("G2", "g2@example.org", topic="general")
    db.session.commit()
    assert recipient_ids(new_campaign("leads", topic="general")) == {general.id,
                                                                   *db.session.execute(select(Lead.id).where(
                                                                       Lead.email == "g@example.org")).scalars()}


def test_customer_segments_and_promotions_only_to_explicit_opt_ins(app, make, catalogue):
    host, web = catalogue
    biz = make.customer(name="PT Maju", email="maju@example.net", kind="b2b")
    ani = make.customer(name="Ani", email="ani@example.net")
    budi = make.customer(name="Budi", email="budi@example.net")
    default = make.customer(name="Default", email="default@example.net")  # never opted in
    gone = make.customer(name="Gone", email="gone@example.net")
    bounce = make.customer(name="Bounce", email="bounce@example.net")
    db.session.flush()
    for cust in (biz, ani, budi, gone, bounce):
        opt_in(cust)
    subs.change("customer", gone.id, {"promotions": False}, source="portal", method="checkbox")
    bounce.emails[0].bouncing_at = utcnow()
    own(biz, host), own(ani, web), own(budi, host, status="cancelled"), own(default, host), own(bounce, host)
    db.session.commit()
    assert recipient_ids(new_campaign()) == {biz.id, ani.id, budi.id}
    assert recipient_ids(new_campaign(segment={"product_lines": ["domain_hosting"]})) == {biz.id}
    assert recipient_ids(new_campaign(segment={"product_ids": [web.id]})) == {ani.id}
    assert recipient_ids(new_campaign(segment={"kind": "b2b"})) == {biz.id}
    assert recipient_ids(new_campaign(segment={"kind": "b2c"})) == {ani.id, budi.id}
    # general: on by default for customers
    assert default.id in recipient_ids(new_campaign(topic="general"))


def test_preview_equals_what_is_sent_with_languages_and_escaping(app, make, smtp_server, run_jobs):
    made = []
    for i, language in enumerate(["id", "en", None, "id"]):
        cust = make.customer(name=f"C{i}", email=f"c{i}@example.net", language=language)
        db.session.flush()
        opt_in(cust)
        made.append(cust.id)
    db.session.commit()
    c = new_campaign(body_en="<b>Sale</b> & more\nline two\n\nsecond paragraph", subject_en="Hosting offer",
                     subject_id="Promo hosting", body_id="Diskon <i>20%</i>")
    pv = camp.preview(c)
    assert pv["count"] == 4
    assert {s["locale"]: s["count"] for s in pv["samples"]} == {"id": 2, "en": 1, None: 1}
    en = next(s for s in pv["samples"] if s["locale"] == "en")
    assert en["subject"] == "Hosting offer" and "<b>Sale</b> & more" in en["text"]
    assert "&lt;b&gt;Sale&lt;/b&gt; &amp; more<br>" in en["html"] and "<p>second paragraph</p>" in en["html"]
    both = next(s for s in pv["samples"] if s["locale"] is None)
    assert both["subject"] == "Promo hosting / Hosting offer" and "Diskon <i>20%</i>" in both["text"]

    cid = c.id
    camp.send_now(cid, None)
    db.session.commit()
    run_jobs()  # the "send now" job, then the mails
    assert len(smtp_server.messages) == pv["count"]
    assert all(len(smtp_server.to(f"c{i}@example.net")) == 1 for i in range(4))
    [mail_en] = smtp_server.to("c1@example.net")
    assert mail_en["Subject"] == "Hosting offer" and mail_en["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "<b>Sale</b> & more" in mail_en.text
    [mail_id] = smtp_server.to("c0@example.net")
    assert mail_id["Subject"] == "Promo hosting"
    [mail_both] = smtp_server.to("c2@example.net")
    assert "Diskon <i>20%</i>" in mail_both.text and "second paragraph" in mail_both.text
    db.session.expire_all()
    c = db.session.get(Campaign, cid)
    assert c.status == "sent" and c.finished_at is not None and c.recipients_total == 4


def test_a_lead_without_language_gets_both_or_the_written_one(app, smtp_server, run_jobs):
    lead("Lia", "lia@example.org")
    db.session.commit()
    c = new_campaign("leads")
    only_en = new_campaign("leads", subject_en="Offer", body_en="Hello")
    assert [s["locale"] for s in camp.preview(c)["samples"]] == [None]
    assert [s["locale"] for s in camp.preview(only_en)["samples"]] == ["en"]
    for x in (c, only_en):
        camp.send_now(x.id, None)
    db.session.commit()
    run_jobs()
    subjects = sorted(m["Subject"] for m in smtp_server.to("lia@example.org"))
    assert subjects == ["Offer", "Promo hosting / Hosting offer"]


def test_scheduled_sending_at_the_right_time_in_batches_and_cancel(app, make):
    ids = []
    for i in range(5):
        cust = make.customer(email=f"s{i}@example.net")
        db.session.flush()
        opt_in(cust)
        ids.append(cust.id)
    db.session.commit()
    c = new_campaign()
    with pytest.raises(Exception):
        camp.schedule(c.id, None, T0 - timedelta(minutes=1), now=T0)
    db.session.rollback()
    camp.schedule(c.id, None, T0 + timedelta(hours=2), now=T0)
    db.session.commit()
    assert cjobs.sweep(T0 + timedelta(hours=1, minutes=59), batch=2)["queued"] == 0
    assert db.session.get(Campaign, c.id).status == "scheduled"
    assert cjobs.sweep(T0 + timedelta(hours=2), batch=2)["queued"] == 2
    db.session.expire_all()
    assert db.session.get(Campaign, c.id).status == "sending"
    assert cjobs.sweep(T0 + timedelta(hours=2, minutes=1), batch=2)["queued"] == 2
    assert cjobs.sweep(T0 + timedelta(hours=2, minutes=2), batch=2)["queued"] == 1
    db.session.expire_all()
    c = db.session.get(Campaign, c.id)
    assert c.status == "sent" and c.finished_at == T0 + timedelta(hours=2, minutes=2)
    sent_to = db.session.execute(select(AnnouncementDelivery.customer_id)
                                 .where(AnnouncementDelivery.campaign_id == c.id)).scalars().all()
    assert sorted(sent_to) == sorted(ids)
    assert cjobs.sweep(T0 + timedelta(hours=3))["queued"] == 0

    other = new_campaign()
    camp.schedule(other.id, None, T0 + timedelta(hours=5), now=T0)
    camp.cancel(other.id, None, now=T0)
    db.session.commit()
    assert cjobs.sweep(T0 + timedelta(hours=6))["queued"] == 0
    assert db.session.get(Campaign, other.id).status == "cancelled"


def test_two_sweeps_at_once_and_twice_send_nothing_twice(app, make):
    for i in range(8):
        cust = make.customer(email=f"t{i}@example.net")
        db.session.flush()
        opt_in(cust)
    db.session.commit()
    c = new_campaign()
    camp.schedule(c.id, None, T0, now=T0 - timedelta(hours=1))
    db.session.commit()

    def sweep_once():
        return cjobs.sweep(T0)

    results = at_once(app, sweep_once, sweep_once)  # two workers at the same moment
    assert sum(r["queued"] for r in results) == 8
    assert cjobs.sweep(T0)["queued"] == 0
    camp_id = c.id
    db.session.expire_all()
    n = db.session.execute(select(func.count()).select_from(AnnouncementDelivery)
                           .where(AnnouncementDelivery.campaign_id == camp_id)).scalar_one()
    assert n == 8 and db.session.get(Campaign, camp_id).status == "sent"
    # running the "send now" job again sends nothing
    camp.run_batch(camp_id, T0)
    db.session.commit()
    assert db.session.execute(select(func.count()).select_from(AnnouncementDelivery)).scalar_one() == 8


def test_report_after_send_bounce_and_one_click_unsubscribe(app, make, smtp_server, run_jobs, client):
    for name in ("r1", "r2", "r3"):
        cust = make.customer(name=name, email=f"{name}@example.net", language="en")
        db.session.flush()
        opt_in(cust)
    db.session.commit()
    cid = new_campaign().id
    camp.send_now(cid, None)
    db.session.commit()
    run_jobs()
    [m1] = smtp_server.to("r1@example.net")
    [m2] = smtp_server.to("r2@example.net")
    delivery.mark_bounced([m1["Message-ID"]], hard=True)
    db.session.commit()
    url = m2["List-Unsubscribe"].split("<")[2].rstrip(">, ")
    resp = client.post(url[len(BASE_URL):], data={"List-Unsubscribe": "One-Click"})
    assert resp.status_code in (200, 202, 204)
    db.session.expire_all()
    counts = camp.report([cid])[cid]
    assert {k: counts[k] for k in ("recipients", "queued", "sent", "failed", "held", "bounced", "unsubscribed")} == \
        {"recipients": 3, "queued": 0, "sent": 3, "failed": 0, "held": 0, "bounced": 1, "unsubscribed": 1}
    # the next announcement skips both
    nxt = new_campaign()
    assert camp.preview(nxt)["count"] == 1


# ---------------------------------------------------------------- pages

@pytest.fixture
def marketer(make):
    u = make.user(roles=["marketing"], email="ayu@example.com", name="Ayu")
    db.session.commit()
    return u


FORM = {"name": "Promo Lebaran", "topic": "promotions", "audience": "customers", "subject_id": "Promo Lebaran",
        "body_id": "Diskon hosting 20%", "subject_en": "", "body_en": "", "kind": "b2c"}


def text(html):
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_pages_create_preview_schedule_and_list(app, make, auth, client, marketer, catalogue):
    for i in range(3):
        cust = make.customer(name=f"Pelanggan {i}", email=f"p{i}@example.net", language="id")
        db.session.flush()
        opt_in(cust)
    db.session.commit()
    auth.login(marketer)
    # a rejected form keeps what was typed
    resp = client.post("/campaigns/new", data=dict(FORM, body_id=""))
    assert resp.status_code == 400
    html = resp.get_data(as_text=True)
    assert 'value="Promo Lebaran"' in html and "Write both the subject and the text" in html
    resp = client.post("/campaigns/new", data=FORM)
    assert resp.status_code == 302
    cid = int(resp.headers["Location"].rsplit("/", 1)[1])
    page = client.get(f"/campaigns/{cid}").get_data(as_text=True)
    assert "3 recipients" in text(page) and "Pelanggan 0" in page and "Diskon hosting 20%" in page
    sample = client.get(f"/campaigns/{cid}/sample/id")
    assert sample.status_code == 200 and "Diskon hosting 20%" in sample.get_data(as_text=True)
    assert "sandbox" in sample.headers["Content-Security-Policy"]
    # scheduling in the past is refused; in the future (WIB) stored UTC
    resp = client.post(f"/campaigns/{cid}/schedule", data={"send_date": "2020-01-01", "send_time": "10:00"})
    assert resp.status_code == 400 and "must be in the future" in resp.get_data(as_text=True)
    when = (utcnow() + timedelta(days=2)).date()
    resp = client.post(f"/campaigns/{cid}/schedule", data={"send_date": when.isoformat(), "send_time": "10:00"})
    assert resp.status_code == 302
    c = db.session.get(Campaign, cid)
    assert c.status == "scheduled" and c.scheduled_at == datetime.combine(when, datetime.min.time()) + \
        timedelta(hours=3)
    listing = text(client.get("/campaigns").get_data(as_text=True))
    assert "Promo Lebaran" in listing and "Scheduled" in listing
    assert client.post(f"/campaigns/{cid}/cancel").status_code == 302
    assert db.session.get(Campaign, cid).status == "cancelled"


def test_other_agents_may_not(app, make, auth, client):
    u = make.user(roles=["technical_support"], email="tech@example.com")
    db.session.commit()
    auth.login(u)
    assert client.get("/campaigns").status_code == 403
