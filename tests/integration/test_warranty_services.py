"""Owned items, bundles, contracts and the eligibility decision stored on tickets (the database
layer over the pure rules in helpdesk/warranty/rules.py)."""
from datetime import date

import pytest
from sqlalchemy import select

from helpdesk.errors import DomainError, Forbidden
from helpdesk.extensions import db
from helpdesk.sla.models import SlaPolicy, SlaRule
from helpdesk.tickets import services
from helpdesk.tickets.models import AuditEvent
from helpdesk.warranty import services as warranty
from helpdesk.warranty.models import (
    ContractPlan, EligibilityDecision, IssueCategory, OwnedItem, Product,
)
from tests.factories import wib



@pytest.fixture
def shop(make):
    q = make.queue(slug="technical-support", name="Technical Support")
    tech = make.user(roles=["technical_support"], queues=[q])
    cs = make.user(roles=["customer_support"], queues=[q])
    cust = make.customer()
    website = Product(code="WEB-TOKO", name="Website Toko Online", product_line="website", price=4_500_000,
                      warranty_days=90, cashback_days=30, bundle=[{"target": "domain_hosting", "free_days": 365}])
    hosting = Product(code="HOST-1G", name="Hosting 1 GB", product_line="domain_hosting", price=600_000,
                      warranty_days=30, cashback_days=30)
    seo = Product(code="SEO-BASIC", name="SEO Basic", product_line="ads_seo", price=1_500_000, warranty_days=0,
                  cashback_days=0)
    defect = IssueCategory(code="site_down", name_id="Situs tidak bisa dibuka", name_en="Site down", is_defect=True,
                           product_line="domain_hosting")
    content = IssueCategory(code="content_change", name_id="Ubah konten", name_en="Content change", is_defect=False)
    db.session.add_all([website, hosting, seo, defect, content])
    db.session.commit()
    return {"q": q, "tech": tech, "cs": cs, "cust": cust, "website": website, "hosting": hosting, "seo": seo,
            "defect": defect, "content": content}


def ticket(shop, now, body="Tolong", subject="Masalah"):
    t = services.create_ticket(customer_id=shop["cust"].id, subject=subject, body_text=body, channel="email",
                               queue_id=shop["q"].id, now=now)
    db.session.commit()
    return t


def test_buying_a_website_creates_its_free_domain_and_hosting(app, shop):
    site = warranty.create_item(customer_id=shop["cust"].id, product_id=shop["website"].id,
                                purchase_date=date(2026, 11, 1), activation_date=date(2026, 11, 3),
                                identifier="https://www.tokobatik.co.id/", reference="SO-1001")
    db.session.commit()
    assert (site.identifier, site.warranty_end, site.cashback_end) == ("tokobatik.co.id", date(2027, 1, 31),
                                                                        date(2026, 12, 2))
    child = db.session.execute(select(OwnedItem).where(OwnedItem.bundle_parent_id == site.id)).scalar_one()
    assert child.product.code == "HOST-1G" and child.identifier == "tokobatik.co.id"
    assert child.bundle_free_until == date(2027, 11, 2)  # 365 days, the activation day being day 1
    assert child.reference == "SO-1001"


def test_intake_links_a_mentioned_domain_and_stores_the_decision(app, shop):
    host = warranty.create_item(customer_id=shop["cust"].id, product_id=shop["hosting"].id,
                                purchase_date=date(2026, 11, 3), identifier="batikayu.com")
    db.session.commit()
    t = ticket(shop, wib(2026, 11, 14, 23, 30), body="Situs www.batikayu.com tidak bisa dibuka sejak pagi")
    assert t.owned_item_id == host.id
    assert t.complaint_date == date(2026, 11, 14)  # 23:30 WIB is still the 14th in Jakarta (16:30 UTC)
    # no category yet: never shown as paid; the cashback window is open but needs a category
    assert t.charge == "needs_classification" and t.cashback_until is None
    assert t.eligibility["cashback"]["until"] == "2026-12-02" and t.eligibility["cashback"]["eligible"] is False
    # the agent sets the defect category: free warranty AND cashback possible, both stored with history
    warranty.set_category(t.id, shop["tech"].id, shop["defect"].id, now=wib(2026, 11, 15, 9, 0))
    db.session.commit()
    assert (t.charge, t.charge_until, t.cashback_until) == ("free_warranty", date(2026, 12, 2), date(2026, 12, 2))
    assert t.eligibility["cashback"]["days_left"] == 18
    assert [d.trigger for d in warranty.history(t.id)] == ["intake", "category"]
    last = db.session.execute(select(EligibilityDecision).order_by(EligibilityDecision.id.desc())).scalars().first()
    assert last.snapshot["inputs"]["item"]["identifier"] == "batikayu.com" and last.snapshot["engine"] == 1


def test_shared_domain_of_a_bundle_is_left_to_the_agent_and_linking_reevaluates(app, shop):
    site = warranty.create_item(customer_id=shop["cust"].id, product_id=shop["website"].id,
                                purchase_date=date(2026, 1, 5), identifier="tokobatik.co.id")
    db.session.commit()
    t = ticket(shop, wib(2026, 11, 20, 10, 0), body="tokobatik.co.id error")
    assert t.owned_item_id is None and t.charge == "unknown_item"
    warranty.set_category(t.id, shop["tech"].id, shop["content"].id)
    warranty.set_item(t.id, shop["tech"].id, site.id)
    db.session.commit()
    # a content change on a website out of warranty: paid
    assert t.charge == "paid" and t.eligibility["rule"] == "not_a_defect"
    linked = db.session.execute(select(AuditEvent).where(AuditEvent.ticket_id == t.id,
                                                         AuditEvent.action == "owned_item")).scalar_one()
    # the trail names the product and its identifier, not a bare id
    assert (linked.old_value, linked.new_value) == (None, f"{site.product.name} · tokobatik.co.id (#{site.id})")


def test_an_item_of_another_customer_cannot_be_linked(app, shop, make):
    stranger = make.customer()
    item = warranty.create_item(customer_id=stranger.id, product_id=shop["hosting"].id, purchase_date=date(2026, 11, 1))
    db.session.commit()
    t = ticket(shop, wib(2026, 11, 20, 10, 0))
    with pytest.raises(DomainError):
        warranty.set_item(t.id, shop["tech"].id, item.id)


def test_one_active_item_in_the_category_line_is_linked(app, shop):
    host = warranty.create_item(customer_id=shop["cust"].id, product_id=shop["hosting"].id,
                                purchase_date=date(2026, 11, 1))
    db.session.commit()
    assert warranty.guess_item(shop["cust"].id, "tidak bisa dibuka", shop["defect"]).id == host.id
    warranty.create_item(customer_id=shop["cust"].id, product_id=shop["hosting"].id, purchase_date=date(2026, 11, 2))
    db.session.commit()
    assert warranty.guess_item(shop["cust"].id, "tidak bisa dibuka", shop["defect"]) is None  # two: unsure


def test_complaint_date_only_by_technical_support_with_a_reason(app, shop):
    host = warranty.create_item(customer_id=shop["cust"].id, product_id=shop["hosting"].id,
                                purchase_date=date(2026, 10, 1), identifier="batikayu.com")
    db.session.commit()
    t = ticket(shop, wib(2026, 11, 5, 10, 0), body="batikayu.com down")
    warranty.set_category(t.id, shop["tech"].id, shop["defect"].id)
    db.session.commit()
    assert t.owned_item_id == host.id and t.charge == "paid"  # warranty of 30 days ended on 30 October
    with pytest.raises(Forbidden):
        warranty.set_complaint_date(t.id, shop["cs"].id, date(2026, 10, 20), "customer phoned earlier")
    with pytest.raises(DomainError):
        warranty.set_complaint_date(t.id, shop["tech"].id, date(2026, 10, 20), "  ")
    warranty.set_complaint_date(t.id, shop["tech"].id, date(2026, 10, 20), "customer phoned on 20 October")
    db.session.commit()
    assert t.charge == "free_warranty" and t.complaint_date == date(2026, 10, 20)
    ev = db.session.execute(select(AuditEvent).where(AuditEvent.ticket_id == t.id,
                                                     AuditEvent.action == "complaint_date")).scalar_one()
    assert ev.note == "customer phoned on 20 October" and ev.old_value == "2026-11-05"


def test_a_running_contract_makes_service_free_and_sets_the_support_tier(app, shop):
    plan = ContractPlan(name="Premium Care", coverage_days=365, covers_lines=["website", "domain_hosting"],
                        support_tier="premium", price=3_000_000)
    db.session.add(plan)
    db.session.flush()
    default = db.session.execute(select(SlaPolicy).where(SlaPolicy.is_default.is_(True))).scalar_one()
    premium = SlaPolicy(name="Premium", calendar_id=default.calendar_id, targets={"normal": {"first_response": 15}},
                        pause_statuses=["pending_customer"])
    db.session.add(premium)
    db.session.flush()
    db.session.add(SlaRule(position=1, kind="tier", value="premium", policy_id=premium.id))
    site = warranty.create_item(customer_id=shop["cust"].id, product_id=shop["website"].id,
                                purchase_date=date(2025, 1, 5), identifier="tokobatik.co.id", with_bundle=False)
    warranty.add_contract(customer_id=shop["cust"].id, plan_id=plan.id, start=date(2026, 6, 1))
    db.session.commit()
    assert warranty.effective_tier(shop["cust"], date(2026, 11, 20)) == "premium"
    assert warranty.effective_tier(shop["cust"], date(2027, 6, 1)) == "standard"  # contract ended 31 May 2027
    t = ticket(shop, wib(2026, 11, 20, 10, 0), body="tokobatik.co.id tidak bisa diubah")
    assert t.sla_policy_id == premium.id  # the SLA rule sees the contract's tier
    warranty.set_category(t.id, shop["tech"].id, shop["content"].id)
    db.session.commit()
    assert t.owned_item_id == site.id and t.charge == "free_contract" and t.charge_until == date(2027, 5, 31)
