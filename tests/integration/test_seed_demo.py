"""The demo data of `make run` (helpdesk.cli.seed_demo): agents, customers, tickets and the catalogue
with owned items, so that every charge decision shows on the desk."""
from sqlalchemy import func, select

from helpdesk.cli import DEMO_CATEGORIES, DEMO_PLANS, DEMO_PRODUCTS, seed_demo
from helpdesk.extensions import db
from helpdesk.tickets.models import Ticket
from helpdesk.timeutil import utcnow
from helpdesk.warranty import rules
from helpdesk.warranty.models import ContractPlan, IssueCategory, OwnedItem, Product, ServiceContract


def test_seed_demo_shows_every_charge_decision_and_a_cashback(app):
    summary = seed_demo()
    assert summary["products"] == len(DEMO_PRODUCTS) and summary["plans"] == len(DEMO_PLANS)
    assert summary["categories"] == len(DEMO_CATEGORIES)
    charges = db.session.execute(select(Ticket.charge, func.count()).group_by(Ticket.charge)).all()
    assert {code for code, _n in charges} == set(rules.CHARGE_CODES)
    today = rules.complaint_day(utcnow())
    cashback = db.session.execute(select(Ticket).where(Ticket.cashback_until.is_not(None))).scalars().all()
    assert cashback and all(t.cashback_until >= today and t.eligibility["cashback"]["eligible"] for t in cashback)
    # a lapsed window is shown too (in warranty, cashback over)
    lapsed = db.session.execute(select(Ticket).where(Ticket.charge == "free_warranty",
                                                     Ticket.cashback_until.is_(None))).scalars().all()
    assert any(t.eligibility["cashback"]["until"] is not None for t in lapsed)
    # the catalogue: prices in rupiah, the website's bundle created its free domain & hosting item
    web = db.session.execute(select(Product).where(Product.code == "WEB-COMPRO")).scalar_one()
    assert (web.price, web.warranty_days, web.cashback_days) == (3_500_000, 90, 30)
    assert web.bundle == [{"target": "domain_hosting", "free_days": 365}]
    site = db.session.execute(select(OwnedItem).where(OwnedItem.product_id == web.id)
                              .order_by(OwnedItem.id).limit(1)).scalar_one()
    bundled = db.session.execute(select(OwnedItem).where(OwnedItem.bundle_parent_id == site.id)).scalars().all()
    assert bundled and all(b.product.product_line == "domain_hosting" and b.bundle_free_until for b in bundled)
    premium = db.session.execute(select(ContractPlan).where(ContractPlan.name == "Premium Care")).scalar_one()
    assert premium.support_tier == "premium" and set(premium.covers_lines) == {"website", "domain_hosting"}
    assert db.session.execute(select(func.count()).select_from(ServiceContract)).scalar() >= 1
    content = db.session.execute(select(IssueCategory).where(IssueCategory.code == "content_change")).scalar_one()
    assert content.is_defect is False
    # idempotent: a second run adds nothing
    before = db.session.execute(select(func.count()).select_from(Ticket)).scalar()
    again = seed_demo()
    assert again["tickets"] == 0 and again["users"] == 0 and "products" not in again
    assert db.session.execute(select(func.count()).select_from(Ticket)).scalar() == before
    assert db.session.execute(select(func.count()).select_from(Product)).scalar() == len(DEMO_PRODUCTS)
