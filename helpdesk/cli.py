"""flask CLI commands: seed-demo, users, jobs (status, sweep, retry), search reindex, backup, restore."""
import json
import random
from datetime import datetime, timedelta

import click
from flask.cli import AppGroup
from sqlalchemy import select

from .extensions import db

users_cli = AppGroup("users", help="Agent accounts and API tokens.")
jobs_cli = AppGroup("jobs", help="Background jobs.")
search_cli = AppGroup("search", help="Search index.")

DEMO_PASSWORD = "demo-password-123"
DEMO_AGENTS = [
    ("admin@example.com", "Admin Helpdesk", ["admin"], None),
    ("cs@example.com", "Sari Wulandari", ["customer_support"], "customer-support"),
    ("tech@example.com", "Bayu Pratama", ["technical_support"], "technical-support"),
    ("billing@example.com", "Dewi Lestari", ["billing"], "billing"),
    ("marketing@example.com", "Rizky Hidayat", ["marketing"], "marketing"),
]
QUEUES = [
    ("customer-support", "Customer Support"),
    ("technical-support", "Technical Support"),
    ("billing", "Billing"),
    ("marketing", "Marketing"),
]
FIRST = ["Budi", "Siti", "Agus", "Dwi", "Eko", "Fitri", "Hendra", "Indah", "Joko", "Kartika", "Lestari", "Made",
         "Nur", "Putri", "Rina", "Slamet", "Tri", "Wahyu", "Yanti", "Yusuf", "Ayu", "Bambang"]
LAST = ["Santoso", "Wijaya", "Saputra", "Rahayu", "Nugroho", "Kurniawan", "Setiawan", "Hartono", "Susanti",
        "Purnomo", "Handayani", "Gunawan"]
COMPANIES = ["CV Batik Sekar Jagad", "PT Gudeg Yu Djum Digital", "PT Mataram Web Solusi", "CV Kopi Merapi",
             "PT Malioboro Travel"]
SUBJECTS = [
    ("technical-support", "Website tidak bisa dibuka sejak pagi", "Website kami down, muncul error 500. Mohon segera dibantu."),
    ("technical-support", "Email hosting tidak bisa kirim", "Saya tidak bisa mengirim email dari Outlook, muncul error SMTP."),
    ("technical-support", "SSL certificate expired", "Browser shows our certificate expired yesterday. Please renew."),
    ("customer-support", "Perpanjangan domain", "Domain saya akan habis bulan depan, bagaimana cara memperpanjang?"),
    ("customer-support", "Ganti password cPanel", "Saya lupa password cPanel, mohon dibantu reset."),
    ("customer-support", "Question about reseller programme", "How do I become a hosting reseller?"),
    ("billing", "Konfirmasi pembayaran invoice", "Sudah transfer via BCA untuk invoice bulan ini, mohon dicek."),
    ("billing", "Refund cashback website", "Website rusak dalam 2 minggu pertama, saya minta cashback sesuai garansi."),
    ("billing", "Invoice double charged", "I was charged twice for hosting renewal."),
    ("marketing", "Minta penawaran paket SEO", "Kami ingin penawaran jasa SEO dan iklan web untuk toko online."),
    ("marketing", "Daily deal untuk restoran", "Apakah bisa pasang promo daily deal untuk restoran kami?"),
    ("marketing", "Franchise programme info", "Please send details about your franchise programme."),
]
STATUS_MIX = ["new"] * 12 + ["open"] * 14 + ["pending_customer"] * 8 + ["pending_billing"] * 4 + ["resolved"] * 7 + \
    ["closed"] * 5
CANNED = [
    (None, "Salam pembuka", "Halo {customer_name},\n\nTerima kasih telah menghubungi kami terkait tiket #{ticket_number}.\n\nSalam,\n{agent_name}"),
    ("technical-support", "Sedang dicek tim teknis", "Halo {customer_name}, tim teknis kami sedang memeriksa masalah ini. Kami kabari secepatnya.\n\n{agent_name}"),
    ("billing", "Pembayaran diterima", "Halo {customer_name}, pembayaran Anda untuk tiket #{ticket_number} sudah kami terima. Terima kasih!\n\n{agent_name}"),
]


# The catalogue (issue #6): issue categories, products with their guarantees and bundles, contract plans.
# (code, Indonesian name, English name, is a defect, product line)
DEMO_CATEGORIES = [
    ("site_down", "Website tidak bisa dibuka", "Site down", True, "website"),
    ("email_not_working", "Email tidak berfungsi", "Email not working", True, "domain_hosting"),
    ("bug_error", "Bug / error di website", "Bug or error", True, "website"),
    ("slow_website", "Website lambat", "Slow website", True, "domain_hosting"),
    ("content_change", "Permintaan ubah konten", "Content change request", False, "website"),
    ("domain_renewal", "Pertanyaan perpanjangan domain", "Domain renewal question", False, "domain_hosting"),
    ("billing_question", "Pertanyaan tagihan", "Billing question", False, None),
]
# (code, name, product line, price in rupiah, warranty days, cashback days, cashback categories, bundle)
DEMO_PRODUCTS = [
    ("DOM-COM", "Domain .com", "domain_hosting", 180_000, 30, 30, [], ""),
    ("DOM-COID", "Domain .co.id", "domain_hosting", 300_000, 30, 30, [], ""),
    ("HOST-1G", "Hosting 1 GB", "domain_hosting", 600_000, 30, 30, [], ""),
    ("HOST-5G", "Hosting 5 GB", "domain_hosting", 1_200_000, 30, 30, [], ""),
    ("WEB-COMPRO", "Website Company Profile", "website", 3_500_000, 90, 30, [], "domain_hosting 365"),
    ("WEB-TOKO", "Website Toko Online", "website", 7_500_000, 90, 30, ["site_down", "bug_error"],
     "HOST-5G 365\nDOM-COID 365"),
    ("RESELLER-HOST", "Reseller Hosting", "reseller_franchise", 2_500_000, 30, 0, [], ""),
    ("FRANCHISE-WEB", "Franchise Web Agency", "reseller_franchise", 25_000_000, 90, 0, [], ""),
    ("ADS-GOOGLE", "Google Ads management (bulanan)", "ads_seo", 1_500_000, 0, 0, [], ""),
    ("SEO-MONTHLY", "SEO bulanan", "ads_seo", 2_000_000, 0, 0, [], ""),
    ("DEAL-VOUCHER", "Voucher daily deal", "daily_deal", 250_000, 0, 0, [], ""),
]
# (name, coverage days, product lines, support tier, price)
DEMO_PLANS = [
    ("Maintenance Website Basic", 365, ["website"], "standard", 1_800_000),
    ("Premium Care", 365, ["website", "domain_hosting"], "premium", 4_800_000),
]
# Demo tickets about owned items, one for every charge decision. (customer index, product code, identifier,
# activation days before today, contract plan or None, queue, subject, body, category code or None,
# link the bundled item of that code instead of the main item)
DEMO_ITEM_TICKETS = [
    # website 10 days old: warranty and cashback -> free_warranty, cashback possible
    (1, "WEB-COMPRO", "batiksekar.co.id", 10, None, "technical-support", "Website tidak bisa dibuka",
     "Website batiksekar.co.id error 500 sejak tadi pagi.", "site_down", None),
    # hosting 3 days old: free_warranty and cashback possible
    (2, "HOST-1G", "kopimerapi.com", 3, None, "technical-support", "Email hosting tidak bisa kirim",
     "Email di kopimerapi.com tidak bisa mengirim sejak kemarin.", "email_not_working", None),
    # shop 45 days old: still in warranty, the 30-day cashback window is over
    (3, "WEB-TOKO", "tokogudeg.id", 45, None, "technical-support", "Checkout toko online error",
     "Tombol bayar di tokogudeg.id muncul error.", "bug_error", None),
    # shop 200 days old: its free hosting (bundle, 365 days) -> free_bundle
    (4, "WEB-TOKO", "malioborotravel.com", 200, None, "technical-support", "Email kantor tidak jalan",
     "Email @malioborotravel.com tidak bisa menerima pesan.", "email_not_working", "HOST-5G"),
    # website 400 days old with a Premium Care contract, a content change -> free_contract
    (5, "WEB-COMPRO", "sekarjagad.co.id", 400, "Premium Care", "technical-support", "Tolong ganti foto di beranda",
     "Mohon ganti foto banner di sekarjagad.co.id.", "content_change", None),
    # the same customer's website 200 days old, no contract, a content change -> paid (not a defect)
    (4, "WEB-TOKO", "malioborotravel.com", 200, None, "technical-support", "Tambah halaman promo",
     "Mohon tambahkan halaman promo di malioborotravel.com.", "content_change", "WEB-TOKO"),
    # hosting 500 days old, out of warranty -> paid
    (6, "HOST-1G", "rinahandayani.com", 500, None, "technical-support", "Website lambat sekali",
     "Website rinahandayani.com lambat sekali dibuka.", "slow_website", None),
    # a domain bought 5 days ago, no category yet -> needs_classification
    (7, "DOM-COID", "slametjaya.co.id", 5, None, "customer-support", "Domain belum aktif",
     "Domain slametjaya.co.id yang saya beli belum aktif.", None, None),
    # an SEO package, a bug -> paid (no warranty for that line)
    (8, "SEO-MONTHLY", None, 60, "Maintenance Website Basic", "marketing", "Laporan SEO tidak terkirim",
     "Laporan SEO bulan ini belum saya terima.", "bug_error", None),
    # a billing question about no product in particular -> unknown_item
    (9, None, None, 0, None, "billing", "Pertanyaan tagihan perpanjangan",
     "Tagihan perpanjangan saya berbeda dari bulan lalu, mohon dijelaskan.", "billing_question", None),
]


def _seed_catalogue(admin, customers, queues, agent_by_queue, now, rnd):
    """The demo catalogue, owned items, contracts and tickets linked to them: every charge decision
    appears (dates relative to `now`). Returns counts."""
    from .tickets import services as ts
    from .warranty import admin_services as catalogue
    from .warranty import rules
    from .warranty import services as warranty
    from .warranty.models import OwnedItem

    for code, name_id, name_en, is_defect, line in DEMO_CATEGORIES:
        catalogue.save_category(None, admin.id, code=code, name_id=name_id, name_en=name_en, is_defect=is_defect,
                                product_line=line)
    products = {}
    for code, name, line, price, warranty_days, cashback_days, categories, bundle in DEMO_PRODUCTS:
        products[code] = catalogue.save_product(
            None, admin.id, now, code=code, name=name, product_line=line, price=price, warranty_days=warranty_days,
            cashback_days=cashback_days, cashback_categories=categories, bundle=bundle)
    plans = {name: catalogue.save_plan(None, admin.id, now, name=name, coverage_days=days, covers_lines=lines,
                                       support_tier=tier, price=price)
             for name, days, lines, tier, price in DEMO_PLANS}
    categories = {c.code: c for c in catalogue.list_categories()}
    today = rules.complaint_day(now)
    counts = {"products": len(products), "plans": len(plans), "categories": len(categories), "items": 0,
              "contracts": 0, "item_tickets": 0}
    tickets = []
    owned = {}
    for (ci, code, identifier, age, plan, qslug, subject, body, category,
         bundled_code) in DEMO_ITEM_TICKETS:
        cust = customers[ci]
        item = None
        if code is not None:
            item = owned.get((ci, code, identifier))
            if item is None:
                start = today - timedelta(days=age)
                item = warranty.create_item(customer_id=cust.id, product_id=products[code].id,
                                            purchase_date=start - timedelta(days=2), activation_date=start,
                                            reference=f"SO-{rnd.randint(10000, 99999)}", identifier=identifier,
                                            amount_paid=products[code].price)
                owned[(ci, code, identifier)] = item
                counts["items"] += 1 + len(products[code].bundle or [])
            if plan is not None:
                warranty.add_contract(customer_id=cust.id, plan_id=plans[plan].id,
                                      start=today - timedelta(days=min(age, 100)),
                                      reference=f"KTR-{rnd.randint(1000, 9999)}")
                counts["contracts"] += 1
            if bundled_code and bundled_code != code:
                item = db.session.execute(select(OwnedItem).where(
                    OwnedItem.bundle_parent_id == item.id,
                    OwnedItem.product_id == products[bundled_code].id)).scalar_one()
        agent = agent_by_queue[qslug]
        when = now - timedelta(hours=rnd.randint(1, 5), minutes=rnd.randint(0, 59))
        t = ts.create_ticket(customer_id=cust.id, subject=subject, body_text=body, channel="email",
                             queue_id=queues[qslug].id, priority="normal", now=when)
        ts.assign(t.id, admin.id, agent.id, now=when + timedelta(minutes=5))
        warranty.set_item(t.id, agent.id, item.id if item is not None else None, now=when + timedelta(minutes=6))
        if category is not None:
            warranty.set_category(t.id, agent.id, categories[category].id, now=when + timedelta(minutes=7))
        counts["item_tickets"] += 1
        tickets.append((t, when))
    db.session.flush()
    counts.update(_seed_claims_and_repairs(tickets, agent_by_queue, customers))
    return counts


def _seed_claims_and_repairs(tickets, agent_by_queue, customers):
    """Cashback claims and paid repairs at every step the billing queue shows: a claim waiting for
    technical support, one waiting for billing; a quote waiting for billing, one waiting for the
    customer, one invoiced and unpaid, one paid and in work."""
    from .billing import services as billing
    from .claims import services as claims
    from .repairs import services as repairs
    from .warranty import rules

    tech, billing_user = agent_by_queue["technical-support"], agent_by_queue["billing"]
    by_subject = {t.subject: (t, when) for t, when in tickets}
    out = {"claims": 0, "repair_quotes": 0, "invoices": 0}

    t, when = by_subject["Website tidak bisa dibuka"]  # a website 10 days old: cashback requested
    claims.request_claim(t.id, tech.id, "Pelanggan minta cashback: website down di minggu kedua.",
                         now=when + timedelta(minutes=20))
    t, when = by_subject["Email hosting tidak bisa kirim"]  # hosting 3 days old: verified, waits for billing
    claim = claims.request_claim(t.id, tech.id, "Cashback sesuai garansi 30 hari.", now=when + timedelta(minutes=20))
    claims.verify(claim.id, tech.id, "Server mail hosting rusak (kesalahan kami), cacat terkonfirmasi.",
                  now=when + timedelta(minutes=40))
    out["claims"] += 2

    def quote(subject, lines, steps):
        ticket, at = by_subject[subject]
        q = repairs.draft_quote(ticket.id, tech.id, now=at + timedelta(minutes=15))
        repairs.save_lines(q.id, tech.id, [dict(ln) for ln in repairs.default_lines(ticket)] + lines,
                           now=at + timedelta(minutes=16))
        repairs.submit(q.id, tech.id, now=at + timedelta(minutes=17))
        out["repair_quotes"] += 1
        if "billing" in steps:
            repairs.approve(q.id, billing_user.id, now=at + timedelta(minutes=30))
        if "customer" in steps:
            repairs.customer_decide(q.id, q.customer_id, "approve", now=at + timedelta(minutes=50))
            out["invoices"] += 1
        if "paid" in steps:
            billing.record_payment(q.invoice_id, billing_user.id, amount=q.total, method="bank_transfer",
                                   reference="BCA 2911-0042", paid_on=rules.complaint_day(at + timedelta(hours=1)),
                                   confirm=True, now=at + timedelta(hours=1))
        return q

    quote("Website lambat sekali", [{"kind": "part", "description": "Upgrade RAM server (1 GB)", "quantity": 1,
                                     "unit_price": 250_000}], ())
    quote("Tambah halaman promo", [{"kind": "service", "description": "Desain dan pasang halaman promo",
                                    "quantity": 1, "unit_price": 750_000}], ("billing",))
    from .tickets.models import Ticket

    # tickets of the technical support queue about no product in particular (a paid call)
    for subject, lines, steps in (
            ("Website tidak bisa dibuka sejak pagi", [{"kind": "service", "description": "Perbaikan plugin rusak",
                                                        "quantity": 2, "unit_price": 200_000}], ("billing", "customer")),
            ("SSL certificate expired", [{"kind": "product", "description": "Sertifikat SSL 1 tahun", "quantity": 1,
                                          "unit_price": 350_000}], ("billing", "customer", "paid"))):
        found = db.session.execute(select(Ticket).where(Ticket.subject == subject, Ticket.status.in_(("new", "open")))
                                   .order_by(Ticket.id).limit(1)).scalar_one_or_none()
        if found is not None:
            by_subject[subject] = (found, found.created_at)
            quote(subject, lines, steps)
    return out


# Demo leads, one or more in every stage: (name, company, email, phone, source, campaign, product lines,
# stage, days ago, note)
DEMO_LEADS = [
    ("Agus Wibowo", "CV Bakpia Pathok Jaya", "agus@bakpiapathok.co.id", "0812-2700-1111", "seminar", "SEMINAR-UMKM-NOV",
     ["website", "ads_seo"], "new", 1, "Bertanya di seminar UMKM tentang toko online."),
    ("Ratna Sari", None, "ratna.sari@gmail.com", "0813-9000-2222", "social", "IG-PROMO-DES",
     ["website"], "new", 0, "DM Instagram: minta harga website company profile."),
    ("Bagus Prakoso", "PT Jogja Tour Nusantara", "bagus@jogjatour.id", "0811-2600-3333", "print", "KORAN-KR-NOV",
     ["domain_hosting", "website"], "contacted", 6, "Membalas iklan Kedaulatan Rakyat."),
    ("Dian Puspita", "Dian Catering", "dian@diancatering.com", "0857-4100-4444", "referral", None,
     ["website", "daily_deal"], "offer_sent", 9, "Rekomendasi dari pelanggan lama."),
    ("Hendro Saputro", "UD Kerajinan Perak Kotagede", "hendro@perakkotagede.com", "0819-0400-5555", "website",
     None, ["reseller_franchise"], "won", 20, "Tertarik program reseller hosting."),
    ("Lina Marlina", None, "lina.marlina@yahoo.co.id", "0822-3300-6666", "daily_deal", "DEAL-HOSTING-50",
     ["domain_hosting"], "lost", 15, "Memilih penyedia lain karena harga."),
    ("Wawan Setiadi", "Bengkel Motor Wawan", None, "0878-3900-7777", "sms", "SMS-BLAST-NOV", ["ads_seo"],
     "contacted", 3, "Membalas SMS blast; minta ditelepon sore."),
]


def _seed_leads(marketer, now):
    """Demo leads in every stage, with their log, a follow-up due soon and one overdue."""
    from .leads import services as leads

    for (name, company, email, phone, source, campaign, lines, stage, days, note) in DEMO_LEADS:
        when = now - timedelta(days=days, hours=2)
        lead, _created = leads.capture(name=name, company=company, email=email, phone=phone, source=source,
                                       campaign=campaign, product_lines=lines, owner_id=marketer.id, notes=note,
                                       actor_id=marketer.id, channel="manual", now=when)
        if stage in ("contacted", "offer_sent", "won", "lost"):
            leads.add_activity(lead.id, marketer.id, "call", "Telepon pertama: kebutuhan dan anggaran dibahas.",
                               now=when + timedelta(hours=3))
        if stage in ("offer_sent", "won"):
            leads.change_stage(lead.id, marketer.id, "offer_sent", now=when + timedelta(days=1))
        if stage == "won":
            leads.change_stage(lead.id, marketer.id, "won", now=when + timedelta(days=4))
        if stage == "lost":
            leads.change_stage(lead.id, marketer.id, "lost", "Harga pesaing lebih murah.", now=when + timedelta(days=2))
        if stage in ("new", "contacted"):
            leads.add_task(lead.id, marketer.id, "Telepon untuk menjelaskan paket", when + timedelta(days=days, hours=5),
                           now=when)
    # the same seminar guest again, with the phone written differently: merged, not a second lead
    leads.capture(name="Agus Wibowo", phone="+62 812 2700 1111", source="seminar", campaign="SEMINAR-UMKM-NOV",
                  product_lines=["domain_hosting"], notes="Mengisi formulir lagi di stan.", actor_id=marketer.id,
                  channel="manual", now=now - timedelta(hours=20))
    return {"leads": len(DEMO_LEADS)}


def _seed_sales(users, customers, now):
    """Demo offers, orders, invoices and payments: an offer sent to a lead, an offer the customer
    accepted (its order confirmed, the invoice unpaid), a phone order paid and fulfilled (the website
    and its bundled domain and hosting), and a daily-deal voucher."""
    from .billing import services as billing
    from .leads.models import Lead
    from .sales import services as sales
    from .sales.models import Voucher
    from .warranty.models import Product
    from .warranty import rules

    marketer, cs, biller = users["marketing@example.com"], users["cs@example.com"], users["billing@example.com"]
    products = {p.code: p for p in db.session.execute(select(Product)).scalars()}
    db.session.add(Voucher(code="DEAL-HOSTING-50", description="Daily deal: hosting 50 persen", kind="percent",
                           value=5000, valid_from=rules.complaint_day(now) - timedelta(days=10),
                           valid_until=rules.complaint_day(now) + timedelta(days=20), usage_limit=100,
                           one_per_customer=True))
    db.session.flush()
    out = {"offers": 0, "orders": 0}

    def offer_for(lead_name, lines, voucher=None, days_ago=2):
        lead = db.session.execute(select(Lead).where(Lead.name == lead_name)).scalar_one()
        at = now - timedelta(days=days_ago)
        offer = sales.create_offer(marketer.id, lead_id=lead.id, valid_days=14, now=at,
                                   notes="Harga sudah termasuk setup awal.")
        sales.save_lines(offer.id, marketer.id, lines, voucher_code=voucher, now=at)
        sales.send(offer.id, marketer.id, now=at + timedelta(minutes=5))
        out["offers"] += 1
        return offer

    offer_for("Dian Puspita", [{"product_id": products["WEB-COMPRO"].id, "quantity": 1, "discount": "10%"},
                               {"description": "Foto produk katering (20 foto)", "quantity": 1, "unit_price": 750_000}])
    accepted = offer_for("Bagus Prakoso", [{"product_id": products["HOST-5G"].id, "quantity": 1},
                                           {"product_id": products["DOM-COID"].id, "quantity": 1}],
                         voucher="DEAL-HOSTING-50", days_ago=3)
    _offer, order = sales.customer_decide(accepted.id, accepted.version, "accept", now=now - timedelta(days=2))
    sales.confirm(order.id, cs.id, now=now - timedelta(days=2) + timedelta(hours=1))
    out["orders"] += 1
    # a phone order from an existing customer: paid by transfer and fulfilled
    phone = sales.create_order(cs.id, customer_id=customers[10].id, channel="phone",
                               lines=[{"product_id": products["WEB-TOKO"].id, "quantity": 1,
                                       "identifier": "tokosekar.id"}], now=now - timedelta(days=6))
    sales.confirm(phone.id, cs.id, now=now - timedelta(days=6) + timedelta(hours=1))
    invoice = billing.get_invoice(phone.invoice_id)
    billing.record_payment(invoice.id, biller.id, amount=invoice.total, method="bank_transfer",
                           reference="BCA 0511-7731", paid_on=rules.complaint_day(now - timedelta(days=5)),
                           confirm=True, now=now - timedelta(days=5))
    sales.fulfil(phone.id, cs.id, now=now - timedelta(days=4))
    out["orders"] += 1
    return out


DEMO_SERVERS = ("srv1.jogjahost.id", "srv2.jogjahost.id")


def _wib(day, hour):
    """Naive UTC of `hour` o'clock WIB (UTC+7) on `day`."""
    return datetime(day.year, day.month, day.day, hour) - timedelta(hours=7)


def _seed_announcements(users, customers, now):
    """Subscribers, maintenance windows (past, ongoing, upcoming) on the demo hosting servers and a draft
    marketing announcement, so that the status page, its feed and the Maintenance and Announcements pages
    are filled. The past and ongoing windows' notices were sent by the sweep at their times."""
    from .campaigns import services as campaigns
    from .leads.models import Lead
    from .maintenance import jobs as maintenance_jobs
    from .maintenance import services as maintenance
    from .subscriptions import services as subs
    from .subscriptions.models import Subscription
    from .warranty.models import OwnedItem, Product

    hosting = db.session.execute(
        select(OwnedItem).join(Product, Product.id == OwnedItem.product_id)
        .where(Product.code.in_(("HOST-1G", "HOST-5G", "RESELLER-HOST"))).order_by(OwnedItem.id)).scalars().all()
    for i, item in enumerate(hosting):
        item.server = DEMO_SERVERS[i % len(DEMO_SERVERS)]
    # a few choices of the customers: promotions on (portal), maintenance off (the preference page)
    for c in customers[1:4]:
        subs.change("customer", c.id, {"promotions": True}, source="portal", method="checkbox",
                    now=now - timedelta(days=20))
    subs.change("customer", customers[7].id, {"maintenance": False}, source="preference_page", method="form",
                now=now - timedelta(days=15))
    # the seminar guests who confirmed the double opt-in for news and promotions
    for lead in db.session.execute(select(Lead).where(Lead.email.is_not(None), Lead.customer_id.is_(None))
                                   .order_by(Lead.id).limit(3)).scalars():
        db.session.add(Subscription(lead_id=lead.id, topic="promotions", status="subscribed", email=lead.email,
                                    source="confirmation", confirmed_at=now - timedelta(days=5),
                                    updated_at=now - timedelta(days=5)))
        subs._event("lead", lead.id, "promotions", "confirm", "confirmation", "link", email=lead.email,
                    now=now - timedelta(days=5))
    db.session.flush()
    tech = users["tech@example.com"]
    today = (now + timedelta(hours=7)).date()
    windows = [
        # past: last week's kernel update on srv1, announced 3 days before and completed
        (dict(title_id="Pembaruan kernel server srv1", title_en="Kernel update on server srv1",
              description_id="Server dimulai ulang; situs dan email di server ini tidak dapat diakses sekitar 30 menit.",
              description_en="The server restarts; websites and email on it are unreachable for about 30 minutes.",
              starts_at=_wib(today - timedelta(days=7), 23), ends_at=_wib(today - timedelta(days=6), 1),
              impact="downtime", servers=[DEMO_SERVERS[0]]), True),
        # ongoing: storage upgrade on srv2 now (slower, not down)
        (dict(title_id="Peningkatan penyimpanan server srv2", title_en="Storage upgrade on server srv2",
              description_id="Disk server dipindahkan ke SSD baru. Situs tetap bisa diakses, tetapi bisa lebih lambat.",
              description_en="The server's disks move to new SSDs. Websites stay up but may be slower.",
              starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=2), impact="degraded",
              servers=[DEMO_SERVERS[1]]), True),
        # upcoming: the network switch of the data centre in five days (announced two days before... by the sweep)
        (dict(title_id="Penggantian switch jaringan pusat data",
              title_en="Data centre network switch replacement",
              description_id="Semua hosting terputus sekitar 15 menit saat switch diganti.",
              description_en="All hosting is offline for about 15 minutes while the switch is replaced.",
              starts_at=_wib(today + timedelta(days=5), 22), ends_at=_wib(today + timedelta(days=5), 23),
              impact="downtime", servers=list(DEMO_SERVERS)), False),
    ]
    for fields, run in windows:
        created = min(now, fields["starts_at"]) - timedelta(days=4)
        w = maintenance.create_window(tech.id, now=created, announce_days=3, **fields)
        maintenance.publish(w.id, tech.id, now=created)
        if run:  # the sweep at the announcement, the reminder and (if over) after the end
            for at in (w.starts_at - timedelta(days=3), w.starts_at - timedelta(hours=2), w.ends_at):
                if at <= now:
                    maintenance_jobs.sweep(now=at + timedelta(minutes=1))
    campaigns.create(users["marketing@example.com"].id, now=now, name="Promo hosting akhir tahun",
                     topic="promotions", audience="customers", segment={"product_lines": ["domain_hosting"]},
                     subject_id="Diskon 30% perpanjangan hosting sampai 31 Desember",
                     body_id="Halo,\n\nPerpanjang hosting Anda sebelum 31 Desember dan hemat 30%.\n\nSalam,\nTim Web Jogja",
                     subject_en="30% off hosting renewals until 31 December",
                     body_en="Hello,\n\nRenew your hosting before 31 December and save 30%.\n\nRegards,\nThe Web Jogja team")
    return {"maintenance_windows": len(windows), "servers": len(DEMO_SERVERS)}


def seed_demo(seed=7):
    """Create demo agents, queues, customers and tickets unless they exist. Returns a summary."""
    from .auth.models import User
    from .auth.services import create_user
    from .customers.services import create_customer, create_organisation
    from .tickets import services as ts
    from .tickets.models import CannedResponse, Queue, QueueMember, Ticket
    from .timeutil import utcnow

    created = {"users": 0, "queues": 0, "customers": 0, "tickets": 0}
    queues = {}
    for slug, name in QUEUES:
        q = db.session.execute(select(Queue).where(Queue.slug == slug)).scalar_one_or_none()
        if q is None:
            q = Queue(slug=slug, name=name)
            db.session.add(q)
            db.session.flush()
            created["queues"] += 1
        queues[slug] = q
    users = {}
    for email, name, roles, qslug in DEMO_AGENTS:
        u = db.session.execute(select(User).where(User.email == email)).scalar_one_or_none()
        if u is None:
            u = create_user(email=email, name=name, roles=roles, password=DEMO_PASSWORD, skip_2fa=True)
            created["users"] += 1
            if qslug:
                db.session.add(QueueMember(queue_id=queues[qslug].id, user_id=u.id))
                if queues[qslug].lead_id is None:
                    queues[qslug].lead_id = u.id
        users[email] = u
    db.session.flush()
    if db.session.execute(select(Ticket.id).limit(1)).first() is not None:
        db.session.commit()
        return created
    for qslug, title, body in CANNED:
        db.session.add(CannedResponse(queue_id=queues[qslug].id if qslug else None, title=title, body=body))
    rnd = random.Random(seed)
    orgs = [create_organisation(name=c, npwp=f"01.234.567.{i}-541.000", contacts_see_all_tickets=(i % 2 == 0))
            for i, c in enumerate(COMPANIES)]
    customers = []
    for i in range(20):
        first, last = FIRST[i % len(FIRST)], LAST[(i * 7) % len(LAST)]
        b2b = i % 4 == 0
        org = orgs[(i // 4) % len(orgs)] if b2b else None
        domain = (org.name.split()[-1].lower() + ".co.id") if org else rnd.choice(["gmail.com", "yahoo.co.id", "outlook.com"])
        c = create_customer(name=f"{first} {last}", emails=[f"{first}.{last}{i}@{domain}".lower()],
                            phone=f"08{rnd.randint(11, 59)}{rnd.randint(1000000, 9999999)}",
                            kind="b2b" if b2b else "b2c", language=rnd.choice(["id", "id", "en", None]),
                            npwp=org.npwp if org else None, organisation_id=org.id if org else None)
        customers.append(c)
    created["customers"] = len(customers)
    agent_by_queue = {qslug: users[email] for email, _n, _r, qslug in DEMO_AGENTS if qslug}
    admin = users["admin@example.com"]
    now = utcnow()
    channels = ["email", "email", "web", "web", "phone", "walk_in", "chat", "social"]
    for i in range(50):
        qslug, subject, body = SUBJECTS[i % len(SUBJECTS)]
        cust = customers[(i * 3) % len(customers)]
        when = now - timedelta(hours=rnd.randint(1, 24 * 20), minutes=rnd.randint(0, 59))
        t = ts.create_ticket(customer_id=cust.id, subject=subject, body_text=body, channel=rnd.choice(channels),
                             queue_id=queues[qslug].id, priority=rnd.choice(["low", "normal", "normal", "high", "urgent"]),
                             tags=rnd.sample(["domain", "hosting", "website", "seo", "invoice", "vip"], k=rnd.randint(0, 2)),
                             now=when)
        status = STATUS_MIX[i % len(STATUS_MIX)]
        agent = agent_by_queue[qslug]
        if status != "new":
            ts.assign(t.id, admin.id, agent.id, now=when + timedelta(minutes=5))
            ts.add_agent_message(t.id, agent.id, body_text=f"Halo {cust.name}, terima kasih. Kami sedang memeriksa.",
                                 now=when + timedelta(minutes=30))
            if status in ("pending_customer", "pending_billing", "resolved", "closed"):
                if status == "pending_billing":
                    ts.change_status(t.id, agent.id, "pending_billing", now=when + timedelta(hours=1))
                elif status == "pending_customer":
                    ts.change_status(t.id, agent.id, "pending_customer", now=when + timedelta(hours=1))
                else:
                    ts.change_status(t.id, agent.id, "resolved", now=when + timedelta(hours=2))
                    if status == "closed":
                        ts.change_status(t.id, agent.id, "closed", now=when + timedelta(days=1))
        created["tickets"] += 1
    created.update(_seed_catalogue(admin, customers, queues, agent_by_queue, now, rnd))
    created.update(_seed_leads(users["marketing@example.com"], now))
    created.update(_seed_sales(users, customers, now))
    created.update(_seed_announcements(users, customers, now))
    created["tickets"] += created.pop("item_tickets")
    db.session.commit()
    return created


def register(app):
    """Attach the commands to the app's CLI."""

    @app.cli.command("seed-demo")
    def seed_demo_cmd():
        """Demo agents, queues, customers and tickets (idempotent)."""
        summary = seed_demo()
        click.echo(f"Demo data: {json.dumps(summary)}")
        click.echo("Demo logins (password for all: %s):" % DEMO_PASSWORD)
        for email, name, roles, _q in DEMO_AGENTS:
            click.echo(f"  {email:24} {name:20} {', '.join(roles)}")
        click.echo("Two-factor login is NOT enforced for these demo accounts (it is for real admin and "
                   "billing accounts).")

    @users_cli.command("create")
    @click.argument("email")
    @click.option("--name", default=None)
    @click.option("--role", "roles", multiple=True, help="admin, customer_support, technical_support, billing, marketing")
    @click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
    def create_user_cmd(email, name, roles, password):
        """Create an agent with a password."""
        from .auth.services import create_user

        user = create_user(email=email, name=name or email, roles=roles, password=password)
        db.session.commit()
        click.echo(f"created user {user.id} {user.email}")

    @users_cli.command("create-token")
    @click.argument("email")
    @click.option("--name", default="cli")
    def create_token_cmd(email, name):
        """Print a new API token for the agent (stored hashed; shown once)."""
        from .auth.services import create_api_token, find_user

        user = find_user(email)
        if user is None:
            raise click.ClickException(f"no user {email}")
        token = create_api_token(user.id, name)
        db.session.commit()
        click.echo(token)

    @jobs_cli.command("status")
    @click.option("--json", "as_json", is_flag=True)
    def jobs_status_cmd(as_json):
        """Queue depths, failed jobs and outbox backlog."""
        from .jobs import status

        from .sla.jobs import sweep_health

        st = status()
        st["sla_sweep"] = sweep_health()
        if as_json:
            click.echo(json.dumps(st, default=str))
            return
        click.echo(f"redis: {st['redis']}")
        if st["workers"] is not None:
            click.echo(f"workers: {st['workers']}  rq cron schedulers: {st['cron_schedulers']}")
            if st["cron_schedulers"] > 1:
                click.echo("warning: more than one `rq cron` is running; exactly one should run")
        for name, q in st["queues"].items():
            click.echo(f"queue {name}: queued={q['queued']} started={q['started']} scheduled={q['scheduled']} failed={q['failed']}")
        click.echo(f"outbox: pending={st['outbox_pending']} unpushed={st['outbox_unpushed']} "
                   f"failing={st['outbox_failing']}")
        for job in st["failed_jobs"]:
            last = (job["error"].strip().splitlines() or [""])[-1]
            click.echo(f"failed {job['id']} [{job['queue']}] {job['func']}{tuple(job['args'])}: {last}")
        sla = st["sla_sweep"]
        if sla["last_sweep_at"] is None:
            click.echo("sla sweep: never ran")
        else:
            click.echo(f"sla sweep: last {sla['last_sweep_at']:%Y-%m-%d %H:%M:%S} UTC ({int(sla['age_seconds'])} s ago) "
                       f"lag={sla['lag_seconds'] or 0:.0f} s claimed={sla['claimed']} overdue={sla['overdue']}")
        if sla["problem"]:
            click.echo(f"problem: {sla['message']}")

    @jobs_cli.command("sweep")
    def jobs_sweep_cmd():
        """Push outbox rows that were not pushed (normally done by rq cron)."""
        from .jobs import sweep_outbox

        click.echo(f"pushed {sweep_outbox()}")

    @jobs_cli.command("retry")
    @click.argument("outbox_ids", nargs=-1, type=int)
    @click.option("--all-failed", is_flag=True, help="Every outbox job not done whose last attempt failed.")
    def jobs_retry_cmd(outbox_ids, all_failed):
        """Push outbox jobs again (after fixing what made them fail)."""
        from .jobs import failed_ids, push

        ids = list(outbox_ids) + (failed_ids() if all_failed else [])
        if not ids:
            raise click.UsageError("give outbox ids or --all-failed")
        click.echo(f"pushed {push(ids)}")

    @search_cli.command("reindex")
    def reindex_cmd():
        """Rebuild every ticket's search document."""
        from .tickets import search
        from .tickets.models import Ticket

        n = 0
        for tid in db.session.execute(select(Ticket.id)).scalars().all():
            search.reindex(db.session, tid)
            n += 1
            if n % 1000 == 0:
                db.session.commit()
        db.session.commit()
        click.echo(f"reindexed {n}")

    @app.cli.command("backup")
    @click.argument("path", type=click.Path(file_okay=False))
    def backup_cmd(path):
        """Consistent copy of the database, attachments and raw mail into PATH, while the app runs."""
        from .backup import BackupError, backup, pg_dump_hint

        try:
            manifest = backup(path)
        except BackupError as exc:
            raise click.ClickException(str(exc)) from None
        dbinfo = manifest["database"]
        if dbinfo["file"]:
            click.echo(f"database: {dbinfo['file']} {dbinfo['bytes']} bytes sha256={dbinfo['sha256']} "
                       f"counts={json.dumps(dbinfo['counts'], sort_keys=True)}")
        else:
            click.echo(f"database: {dbinfo['engine']} is NOT copied by this command. Use pg_dump:")
            click.echo(f"  {pg_dump_hint(path)}")
        for key in ("attachments", "raw_mail"):
            info = manifest[key]
            state = "missing (nothing to copy)" if info.get("missing") else \
                f"{info['files']} files, {info['bytes']} bytes, {info['copied']} copied"
            click.echo(f"{key}: {state}")
            if info["mismatched"]:
                click.echo(f"warning: {len(info['mismatched'])} attachment(s) do not match their hash: "
                           + ", ".join(info["mismatched"][:10]))
        click.echo(f"manifest: {path}/manifest.json (check files with: cd {path} && sha256sum -c SHA256SUMS)")

    @app.cli.command("restore")
    @click.argument("path", type=click.Path(exists=True, file_okay=False))
    @click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
    def restore_cmd(path, yes):
        """Put a `flask backup` back (embedded SQLite; stop the app first). The current db is kept aside."""
        from .backup import BackupError, restore

        if not yes:
            click.confirm(f"Replace the database with the backup in {path}?", abort=True)
        try:
            summary = restore(path)
        except BackupError as exc:
            raise click.ClickException(str(exc)) from None
        if summary["saved_previous"]:
            click.echo(f"previous database kept as {summary['saved_previous']}")
        click.echo(f"restored {summary['database']} counts={json.dumps(summary['counts'], sort_keys=True)}; "
                   f"files copied back: attachments={summary['attachments']} raw-mail={summary['raw-mail']}")

    app.cli.add_command(users_cli)
    app.cli.add_command(jobs_cli)
    app.cli.add_command(search_cli)

    from .mail.cli import mail_cli

    app.cli.add_command(mail_cli)
