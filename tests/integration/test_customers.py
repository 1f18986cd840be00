"""Customers: matching by email, B2B fields, merging (audited)."""
import pytest
from sqlalchemy import select

from helpdesk.customers import services
from helpdesk.customers.models import Customer, CustomerEmail
from helpdesk.errors import DomainError, Forbidden
from helpdesk.extensions import db
from helpdesk.tickets.models import AuditEvent, Ticket


def test_find_or_create_matches_case_insensitively(app):
    c, created = services.find_or_create(email="Budi.Santoso@Example.co.id", name="Budi", phone="0812 3456 7890")
    assert created and c.phone == "+6281234567890" and c.support_tier == "standard" and c.language is None
    again, created2 = services.find_or_create(email="budi.santoso@example.co.id")
    assert not created2 and again.id == c.id


def test_b2b_customer_with_organisation_and_npwp(app):
    org = services.create_organisation(name="PT Mataram Web", npwp="01.234.567.8-541.000",
                                       contacts_see_all_tickets=True)
    c = services.create_customer(name="Sri", emails=["sri@mataram.co.id", "admin@mataram.co.id"], kind="b2b",
                                 npwp=org.npwp, organisation_id=org.id, language="id")
    assert c.primary_email == "sri@mataram.co.id" and len(c.emails) == 2
    assert c.organisation.contacts_see_all_tickets and c.npwp == "01.234.567.8-541.000"


def test_address_belongs_to_one_customer(app):
    services.create_customer(name="A", emails=["a@example.com"])
    with pytest.raises(DomainError):
        services.create_customer(name="B", emails=["A@example.com"])


def test_merge_moves_emails_tickets_and_is_audited(app, make):
    admin = make.user(roles=["admin"])
    q = make.queue()
    a = services.create_customer(name="Budi (lama)", emails=["budi@old.example"], phone="081234567890")
    b = services.create_customer(name="Budi Santoso", emails=["budi@new.example"])
    t = make.ticket(queue=q, customer=a, body="website down")
    db.session.commit()
    services.merge_customers(a.id, b.id, admin.id)
    db.session.commit()
    assert {e.email for e in db.session.get(Customer, b.id).emails} == {"budi@old.example", "budi@new.example"}
    assert db.session.get(Ticket, t.id).customer_id == b.id
    assert db.session.get(Customer, b.id).phone == "+6281234567890"
    assert services.find_by_email("budi@old.example").id == b.id
    ev = db.session.execute(select(AuditEvent).where(AuditEvent.action == "customer_merge",
                                                     AuditEvent.object_id == b.id)).scalar_one()
    assert ev.actor_user_id == admin.id and "1 ticket" in ev.note
    assert db.session.execute(select(CustomerEmail).where(CustomerEmail.customer_id == a.id)).first() is None


def test_merge_needs_admin_or_customer_support(app, make):
    marketing = make.user(roles=["marketing"])
    a = services.create_customer(name="A", emails=["a@example.com"])
    b = services.create_customer(name="B", emails=["b@example.com"])
    with pytest.raises(Forbidden):
        services.merge_customers(a.id, b.id, marketing.id)


def test_merge_page_for_agent(app, make, client, auth):
    cs = make.user(roles=["customer_support"])
    a = services.create_customer(name="Dup", emails=["dup@example.com"])
    b = services.create_customer(name="Keep", emails=["keep@example.com"])
    db.session.commit()
    auth.login(cs)
    r = client.post(f"/customers/{a.id}/merge", data={"target_id": "keep@example.com"})
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/customers/{b.id}")
    page = client.get(f"/customers/{b.id}").get_data(as_text=True)
    assert "dup@example.com" in page
    assert client.get(f"/customers/{a.id}").status_code == 301


def test_organisation_pages_and_contacts(app, make, client, auth):
    cs = make.user(roles=["customer_support"])
    sri = services.create_customer(name="Sri Handayani", emails=["sri@mataram.example.com"], kind="b2b")
    db.session.commit()
    sri_id = sri.id
    auth.login(cs)
    r = client.post("/customers/organisations", data={"name": "PT Mataram Web", "npwp": "01.234.567.8-541.000",
                                                       "contacts_see_all_tickets": "y"})
    assert r.status_code == 302
    from helpdesk.customers.models import Organisation

    org = db.session.execute(select(Organisation)).scalar_one()
    assert org.contacts_see_all_tickets and org.npwp == "01.234.567.8-541.000"
    client.post(f"/customers/{sri_id}", data={"name": "Sri Handayani", "kind": "b2b", "language": "id",
                                              "organisation_id": str(org.id), "npwp": org.npwp})
    page = client.get(f"/customers/organisations/{org.id}").get_data(as_text=True)
    assert "Sri Handayani" in page and "sri@mataram.example.com" in page
    r = client.post(f"/customers/organisations/{org.id}", data={"name": "PT Mataram Web Solusi", "npwp": ""})
    db.session.expire_all()
    org = db.session.get(Organisation, org.id)
    assert org.name == "PT Mataram Web Solusi" and not org.contacts_see_all_tickets and org.npwp is None
    assert db.session.get(Customer, sri_id).organisation_id == org.id


def test_rejected_organisation_form_keeps_input(app, make, client, auth):
    auth.login(make.user(roles=["marketing"]))
    r = client.post("/customers/organisations", data={"name": "", "npwp": "99.999"})
    assert r.status_code == 400 and 'value="99.999"' in r.get_data(as_text=True)


def test_add_email_address(app, make, client, auth):
    cs = make.user(roles=["customer_support"])
    a = services.create_customer(name="A", emails=["a@example.com"])
    services.create_customer(name="B", emails=["b@example.com"])
    db.session.commit()
    a_id = a.id
    auth.login(cs)
    client.post(f"/customers/{a_id}/emails", data={"email": "A.second@Example.com"})
    client.post(f"/customers/{a_id}/emails", data={"email": "b@example.com"})
    emails = db.session.execute(select(CustomerEmail.email).where(CustomerEmail.customer_id == a_id)
                                .order_by(CustomerEmail.id)).scalars().all()
    assert emails == ["a@example.com", "a.second@example.com"]
    assert services.find_by_email("a.second@example.com").id == a_id
