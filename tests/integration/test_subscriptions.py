"""Subscriptions (issue #8 §1), the core: topic defaults, immediate changes, double opt-in for leads
and public forms, the consent record, the audiences (never the unsubscribed, unconfirmed or
bouncing), and an announcement mail's RFC 8058 headers, checked on a real SMTP server, with an
unsubscribe taking effect before a mail that is already queued."""
import pytest
from sqlalchemy import func, select

from helpdesk.extensions import db
from helpdesk.leads.models import Lead
from helpdesk.mail.models import OutboundMail
from helpdesk.subscriptions import delivery, services as subs, tokens
from helpdesk.subscriptions.models import AnnouncementDelivery, ConsentEvent, Subscription
from helpdesk.timeutil import utcnow
from tests.smtp_server import shared_smtp, smtp_server  # noqa: F401  (fixtures)

BASE_URL = "https://desk.example"


@pytest.fixture
def app(app_factory, smtp_server):
    app = app_factory(BASE_URL=BASE_URL, MAIL_DEFAULT_SENDER="Support <support@desk.example>",
                      **smtp_server.mail_config())
    with app.app_context():
        yield app
        db.session.remove()


def audience_ids(topic, kind="customer"):
    q = subs.customer_audience(topic) if kind == "customer" else subs.lead_audience(topic)
    return {row[0] for row in db.session.execute(q)}


def test_customer_defaults_and_immediate_changes(app, make):
    c = make.customer(email="ani@example.net")
    db.session.commit()
    assert subs.state("customer", c.id) == {"maintenance": "subscribed", "promotions": "unsubscribed",
                                            "general": "subscribed"}
    assert c.id in audience_ids("maintenance") and c.id not in audience_ids("promotions")

    changed = subs.change("customer", c.id, {"maintenance": False, "promotions": True}, source="portal",
                          method="checkbox")
    db.session.commit()
    assert sorted(changed) == ["maintenance", "promotions"]
    assert subs.state("customer", c.id)["maintenance"] == "unsubscribed"
    assert c.id not in audience_ids("maintenance") and c.id in audience_ids("promotions")
    events = subs.history("customer", c.id)
    assert {(e.topic, e.action, e.source, e.method) for e in events} == {
        ("maintenance", "unsubscribe", "portal", "checkbox"), ("promotions", "subscribe", "portal", "checkbox")}
    assert all(e.email == "ani@example.net" and e.created_at is not None for e in events)
    # a change to what already holds records nothing
    assert subs.change("customer", c.id, {"promotions": True}, source="portal", method="checkbox") == []
    assert len(subs.history("customer", c.id)) == 2


def test_lead_double_opt_in(app, make, smtp_server, run_jobs):
    lead = Lead(name="Budi", email="budi@example.org", source="website")
    db.session.add(lead)
    db.session.flush()
    subs.change("lead", lead.id, {"promotions": True}, source="offer_form", method="checkbox")
    db.session.commit()
    lead_id = lead.id
    assert subs.state("lead", lead_id) == {"promotions": "pending", "general": "unsubscribed"}
    assert lead_id not in audience_ids("promotions", "lead")  # nothing until confirmed
    run_jobs()
    [mail] = smtp_server.to("budi@example.org")
    url = next(line for line in mail.text.splitlines() if "/subscriptions/confirm/" in line).strip()
    token = url.rsplit("/", 1)[1]

    kind, sid, done = subs.confirm(token)
    db.session.commit()
    assert (kind, sid, done) == ("lead", lead_id, ["promotions"])
    assert lead_id in audience_ids("promotions", "lead")
    assert [e.action for e in reversed(subs.history("lead", lead_id))] == ["request", "confirm"]
    # the link again confirms nothing more
    assert subs.confirm(token)[2] == []


def test_public_form_subscription_of_a_customer_waits_for_confirmation(app, make):
    c = make.customer(email="citra@example.net")
    db.session.commit()
    subs.change("customer", c.id, {"promotions": True}, source="support_form", method="checkbox")
    db.session.commit()
    assert subs.state("customer", c.id)["promotions"] == "pending"
    assert c.id not in audience_ids("promotions")
    assert db.session.scalar(select(OutboundMail).where(OutboundMail.kind == "subscribe_confirm")).to_addrs == \
        ["citra@example.net"]


def test_audiences_leave_out_bouncing_anonymised_and_merged(app, make):
    ok, bouncing, anon, merged = (make.customer(email=f"{n}@example.net") for n in ("ok", "bounce", "anon", "merged"))
    bouncing.emails[0].bouncing_at = utcnow()
    anon.anonymised_at = utcnow()
    merged.merged_into_id = ok.id
    lead = Lead(name="L", email="l@example.org", bouncing_at=utcnow())
    db.session.add(lead)
    db.session.flush()
    db.session.add(Subscription(lead_id=lead.id, topic="general", status="subscribed", updated_at=utcnow()))
    db.session.commit()
    assert audience_ids("maintenance") == {ok.id}
    assert audience_ids("general", "lead") == set()


def test_announcement_headers_and_unsubscribe_before_the_next_mail(app, make, smtp_server, run_jobs, client):
    c = make.customer(email="dewi@example.net")
    db.session.commit()
    cid = c.id

    def announce(key):
        did = delivery.claim(key, kind="announce", customer_id=cid, email="dewi@example.net")
        assert delivery.claim(key, kind="announce", customer_id=cid, email="dewi@example.net") is None
        row = delivery.send(did, "subscribe_confirm", topic="maintenance", kind="customer", sid=cid,
                            to="dewi@example.net", locale="en", subject="Notice",
                            context={"confirm_url": "https://x", "topics": ["maintenance"], "subscriber_name": "D"})
        db.session.commit()
        return did, row.id

    first_delivery, _ = announce("test:1")
    run_jobs()
    [mail] = smtp_server.to("dewi@example.net")
    header = mail["List-Unsubscribe"]
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # on the wire as RFC 2369 wants it: plain <mailto:...>, <https://...> on one line, never RFC 2047
    # encoded (a mail client would not find the URLs in "=?utf-8?q?=3Cmailto...")
    raw_header = next(line for line in mail.raw.split(b"\r\n") if line.startswith(b"List-Unsubscribe: "))
    assert raw_header.decode("ascii") == f"List-Unsubscribe: {header}"
    assert b"=?" not in raw_header
    https = header.split("<")[2].rstrip(">, ")
    assert header.startswith("<mailto:support@desk.example?subject=unsubscribe%20")
    assert https.startswith(f"{BASE_URL}/subscriptions/unsubscribe/") and https in mail.text
    assert tokens.load_unsubscribe_token(https.rsplit("/", 1)[1]) == ("customer", cid, "maintenance",
                                                                      first_delivery)

    _, second = announce("test:2")  # queued, not sent yet
    subs.unsubscribe_token(https.rsplit("/", 1)[1], method="one-click")
    db.session.commit()
    smtp_server.clear()
    run_jobs()
    assert smtp_server.to("dewi@example.net") == []
    assert db.session.get(OutboundMail, second).status == "skipped"
    [event] = [e for e in subs.history("customer", cid) if e.action == "unsubscribe"]
    assert (event.source, event.method, event.delivery_id) == ("one_click", "one-click", first_delivery)


def test_a_bounce_of_an_announcement_marks_the_delivery_and_the_address(app, make):
    c = make.customer(email="eko@example.net")
    db.session.commit()
    did = delivery.claim("test:b", kind="announce", customer_id=c.id, email="eko@example.net")
    row = delivery.send(did, "subscribe_confirm", topic="maintenance", kind="customer", sid=c.id,
                        to="eko@example.net", locale="en", subject="Notice",
                        context={"confirm_url": "https://x", "topics": ["maintenance"], "subscriber_name": "E"})
    db.session.commit()
    found = delivery.mark_bounced([f"<{row.message_id}>"], hard=True)
    db.session.commit()
    assert [d.id for d in found] == [did]
    assert db.session.get(AnnouncementDelivery, did).status == "bounced"
    assert c.emails[0].bouncing_at is not None
    assert c.id not in audience_ids("maintenance")
    assert db.session.scalar(select(ConsentEvent.id)) is None  # a bounce is not a consent change


def test_a_lead_becoming_a_customer_keeps_its_choices(app, make):
    from helpdesk.leads import services as leads

    lead = Lead(name="Fajar", email="fajar@example.org", source="seminar")
    db.session.add(lead)
    db.session.flush()
    db.session.add_all([Subscription(lead_id=lead.id, topic="promotions", status="subscribed", updated_at=utcnow()),
                        Subscription(lead_id=lead.id, topic="general", status="unsubscribed", updated_at=utcnow())])
    db.session.commit()
    customer = leads.to_customer(lead)
    db.session.commit()
    assert subs.state("customer", customer.id) == {"maintenance": "subscribed", "promotions": "subscribed",
                                                   "general": "unsubscribed"}
    assert customer.id in audience_ids("promotions") and customer.id not in audience_ids("general")
    assert {(e.topic, e.action, e.source) for e in subs.history("customer", customer.id)} == {
        ("promotions", "subscribe", "lead_conversion"), ("general", "unsubscribe", "lead_conversion")}


def test_a_pending_lead_request_is_not_carried_to_the_customer(app, make):
    from helpdesk.leads import services as leads

    existing = make.customer(email="gita@example.org")
    subs.change("customer", existing.id, {"general": False}, source="portal", method="checkbox")
    lead = Lead(name="Gita", email="gita@example.org", source="website")
    db.session.add(lead)
    db.session.flush()
    db.session.add_all([Subscription(lead_id=lead.id, topic="promotions", status="pending", updated_at=utcnow()),
                        Subscription(lead_id=lead.id, topic="general", status="subscribed", updated_at=utcnow())])
    db.session.commit()
    assert leads.to_customer(lead).id == existing.id
    db.session.commit()
    # the pending request is no consent, and the customer's own "no" to general stands
    assert subs.state("customer", existing.id) == {"maintenance": "subscribed", "promotions": "unsubscribed",
                                                   "general": "unsubscribed"}


def test_a_saved_form_never_turns_an_unconfirmed_request_into_consent(app, make):
    """Somebody ticked promotions for Hana's address on the support form: pending. Hana saves her
    preferences for another topic; the unticked promotions box leaves the request pending, and only
    her own tick subscribes her."""
    from helpdesk.subscriptions import forms

    c = make.customer(email="hana@example.net")
    db.session.commit()
    subs.change("customer", c.id, {"promotions": True}, source="support_form", method="checkbox")
    db.session.commit()
    with app.test_request_context():
        form = forms.fill(forms.topics_form("customer", meta={"csrf": False}), subs.state("customer", c.id))
        assert form.promotions.data is False and form.maintenance.data is True
    subs.change("customer", c.id, {"maintenance": False, "promotions": False, "general": True}, source="portal",
                method="checkbox")
    db.session.commit()
    assert subs.state("customer", c.id) == {"maintenance": "unsubscribed", "promotions": "pending",
                                            "general": "subscribed"}
    subs.change("customer", c.id, {"promotions": True}, source="portal", method="checkbox")
    db.session.commit()
    assert subs.state("customer", c.id)["promotions"] == "subscribed"


def test_an_expired_confirmation_can_be_asked_for_again(app, make):
    from datetime import timedelta

    lead = Lead(name="Indra", email="indra@example.org", source="website")
    db.session.add(lead)
    db.session.flush()
    t0 = utcnow() - timedelta(days=10)
    subs.change("lead", lead.id, {"promotions": True}, source="offer_form", method="checkbox", now=t0)
    subs.change("lead", lead.id, {"promotions": True}, source="offer_form", method="checkbox",
                now=t0 + timedelta(days=1))  # the link still works: no second mail
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(OutboundMail)) == 1
    subs.change("lead", lead.id, {"promotions": True}, source="offer_form", method="checkbox")  # 10 days on
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(OutboundMail)) == 2
    assert [e.action for e in subs.history("lead", lead.id)] == ["request", "request"]


def test_nothing_goes_to_an_anonymised_merged_or_converted_subscriber(app, make):
    """The send job's last check (receives) and the audiences: an anonymised or merged-away customer,
    and a lead that became a customer, get nothing as such; a lead's or a duplicate's unsubscribe
    holds for the customer that stands for them now."""
    from helpdesk.customers import services as customers
    from helpdesk.leads import services as leads

    admin = make.user(roles=["admin"])
    anon, dup, keep = (make.customer(email=f"{n}@example.net") for n in ("anon", "dup", "keep"))
    anon.anonymised_at = utcnow()
    lead = Lead(name="Joko", email="joko@example.org", source="seminar")
    db.session.add(lead)
    db.session.flush()
    db.session.add(Subscription(lead_id=lead.id, topic="promotions", status="subscribed", updated_at=utcnow()))
    db.session.commit()
    assert not subs.receives("customer", anon.id, "maintenance")
    assert subs.receives("lead", lead.id, "promotions")
    lead_token = tokens.make_unsubscribe_token("lead", lead.id, "promotions")
    joko = leads.to_customer(lead)
    db.session.commit()
    assert not subs.receives("lead", lead.id, "promotions") and lead.id not in audience_ids("promotions", "lead")
    assert joko.id in audience_ids("promotions")  # carried over: reached as the customer
    subs.unsubscribe_token(lead_token, method="one-click")  # an old lead mail's link
    db.session.commit()
    assert subs.state("customer", joko.id)["promotions"] == "unsubscribed"

    subs.change("customer", dup.id, {"general": False}, source="portal", method="checkbox")
    dup_token = tokens.make_unsubscribe_token("customer", dup.id, "maintenance")
    customers.merge_customers(dup.id, keep.id, admin.id)
    db.session.commit()
    assert subs.state("customer", keep.id)["general"] == "unsubscribed"  # the duplicate's "no" stays
    assert not subs.receives("customer", dup.id, "maintenance")
    subs.unsubscribe_token(dup_token, method="one-click")
    db.session.commit()
    assert subs.state("customer", keep.id)["maintenance"] == "unsubscribed"


def test_a_bouncing_primary_address_falls_back_to_a_working_one(app, make):
    from helpdesk.customers.models import CustomerEmail

    c = make.customer(email="old@example.net")
    c.emails[0].bouncing_at = utcnow()
    db.session.add(CustomerEmail(customer_id=c.id, email="new@example.net", is_primary=False))
    db.session.commit()
    rows = db.session.execute(subs.customer_audience("maintenance").where(subs.Customer.id == c.id)).all()
    assert [r[1] for r in rows] == ["new@example.net"]
