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


def test_seed_demo_fills_the_billing_queue(app):
    """The demo has a claim waiting for technical support and one for billing, and repair quotes at
    billing, at the customer, invoiced and paid (the repair then in work)."""
    from helpdesk.billing.models import Invoice, Payment
    from helpdesk.claims.models import CashbackClaim
    from helpdesk.repairs.models import RepairQuote

    summary = seed_demo()
    claims = dict(db.session.execute(select(CashbackClaim.status, func.count()).group_by(CashbackClaim.status)).all())
    assert claims == {"requested": 1, "verified": 1}
    assert summary["claims"] == 2
    quotes = dict(db.session.execute(select(RepairQuote.status, func.count()).group_by(RepairQuote.status)).all())
    assert quotes == {"pending_billing": 1, "pending_customer": 1, "awaiting_payment": 1, "in_work": 1}
    invoices = db.session.execute(select(Invoice).where(Invoice.source_type == "repair")
                                  .order_by(Invoice.sequence)).scalars().all()
    assert [i.status for i in invoices] == ["unpaid", "paid"]
    year = invoices[0].year
    assert [i.number for i in invoices] == [f"INV/{year}/000001", f"INV/{year}/000002"]
    paid = invoices[1]
    assert paid.total == 150_000 + 350_000 and paid.amount_paid == paid.total
    assert db.session.execute(select(Payment.status).join(Invoice, Invoice.id == Payment.invoice_id)
                              .where(Invoice.source_type == "repair")).scalars().all() == ["confirmed"]
    in_work = db.session.execute(select(RepairQuote).where(RepairQuote.status == "in_work")).scalar_one()
    assert in_work.invoice_id == paid.id and in_work.ticket_id == paid.ticket_id
    # the paid repair's ticket is open again for the work; the others wait for billing or the customer
    from helpdesk.tickets.models import Ticket as T

    statuses = {q.status: db.session.get(T, q.ticket_id).status for q in
                db.session.execute(select(RepairQuote)).scalars()}
    assert statuses == {"pending_billing": "pending_billing", "pending_customer": "pending_customer",
                        "awaiting_payment": "pending_customer", "in_work": "open"}


def test_seed_demo_has_leads_in_every_stage(app):
    """Marketing's pipeline is not empty on `make run`: leads in every stage, a won lead converted to a
    customer, follow-ups, and the seminar guest who filled in the form twice merged into one lead."""
    from helpdesk.leads.models import LEAD_STAGES, Lead, LeadActivity, LeadTask

    seed_demo()
    stages = dict(db.session.execute(select(Lead.stage, func.count()).group_by(Lead.stage)).all())
    assert set(stages) == set(LEAD_STAGES)
    won = db.session.execute(select(Lead).where(Lead.stage == "won")).scalars().all()
    assert won and all(lead.customer_id is not None for lead in won)
    agus = db.session.execute(select(Lead).where(Lead.name == "Agus Wibowo")).scalar_one()
    assert agus.merge_count == 1 and agus.product_lines == ["website", "ads_seo", "domain_hosting"]
    assert db.session.execute(select(func.count()).select_from(LeadActivity).where(
        LeadActivity.lead_id == agus.id, LeadActivity.kind == "merged")).scalar_one() == 1
    assert db.session.execute(select(func.count()).select_from(LeadTask)).scalar_one() >= 3


def test_seed_demo_has_offers_orders_and_a_fulfilled_order(app):
    """The sales side of `make run`: an offer waiting for the lead's answer, an accepted offer whose
    order is confirmed and invoiced, and a phone order paid and fulfilled into a website with its free
    domain and hosting."""
    from helpdesk.billing.models import Invoice
    from helpdesk.leads.models import Lead
    from helpdesk.sales.models import Offer, Order, Voucher

    seed_demo()
    offers = dict(db.session.execute(select(Offer.status, func.count()).group_by(Offer.status)).all())
    assert offers == {"sent": 1, "accepted": 1}
    orders = {o.channel: o for o in db.session.execute(select(Order)).scalars()}
    assert set(orders) == {"offer", "phone"}
    accepted = orders["offer"]
    assert accepted.status == "confirmed" and accepted.voucher_discount > 0
    assert db.session.get(Invoice, accepted.invoice_id).status == "unpaid"
    bagus = db.session.execute(select(Lead).where(Lead.name == "Bagus Prakoso")).scalar_one()
    assert bagus.stage == "won" and bagus.customer_id == accepted.customer_id
    assert db.session.execute(select(Voucher.used_count).where(Voucher.code == "DEAL-HOSTING-50")).scalar_one() == 1
    phone = orders["phone"]
    assert phone.status == "fulfilled" and db.session.get(Invoice, phone.invoice_id).status == "paid"
    items = db.session.execute(select(OwnedItem).where(OwnedItem.reference == phone.number)).scalars().all()
    assert sorted(i.product.product_line for i in items) == ["domain_hosting", "domain_hosting", "website"]


def test_seed_demo_fills_the_status_page_and_its_feed(app, client):
    """`make run` shows an upcoming, an ongoing and a past maintenance window on the public status
    page and in its feed, the past and ongoing ones announced to their subscribers; customers and leads
    have subscriptions, and marketing has a draft announcement."""
    from helpdesk.campaigns.models import Campaign
    from helpdesk.maintenance.models import MaintenanceWindow
    from helpdesk.subscriptions.models import AnnouncementDelivery, ConsentEvent, Subscription

    seed_demo()
    now = utcnow()
    windows = db.session.execute(select(MaintenanceWindow)).scalars().all()
    phases = {("past" if w.ends_at <= now else "ongoing" if w.starts_at <= now else "upcoming"): w for w in windows}
    assert set(phases) == {"past", "ongoing", "upcoming"}
    kinds = dict(db.session.execute(select(AnnouncementDelivery.window_id, func.count())
                                    .group_by(AnnouncementDelivery.window_id)).all())
    assert kinds.get(phases["past"].id) and kinds.get(phases["ongoing"].id) and not kinds.get(phases["upcoming"].id)
    assert db.session.scalar(select(func.count()).select_from(Subscription).where(Subscription.lead_id.is_not(None)))
    assert db.session.scalar(select(func.count()).select_from(ConsentEvent)) >= 5
    assert db.session.scalar(select(func.count()).select_from(Campaign)) == 1
    page = client.get("/status?lang=en").get_data(as_text=True)
    feed = client.get("/status/feed.atom?lang=en").get_data(as_text=True)
    for w in windows:
        assert w.title_en in page and w.title_en in feed
