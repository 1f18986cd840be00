"""Renewals (issue #7 §3): the sweep (helpdesk.sales.renewals.sweep, with a controlled clock) reminds
the customer 30, 14 and 3 days before a renewable item's expiry, each reminder exactly once (also
with two sweeps at once, and only the nearest one after a sweep was down), drafts and mails the
renewal invoice 30 days before, and lets an unpaid item expire after the grace period; paying the
renewal invoice moves the expiry on by the product's term from the old end. The mails arrive at a
real SMTP server (tests/smtp_server.py) in the customer's language."""
from datetime import date, datetime, timedelta
from types import SimpleNamespace

import pytest
from rq.cron import CronScheduler
from sqlalchemy import func, select

from helpdesk import jobs
from helpdesk.billing import services as billing
from helpdesk.billing.models import Invoice
from helpdesk.extensions import db
from helpdesk.mail.models import AutoMailLog, OutboundMail
from helpdesk.sales import renewals
from helpdesk.sales import services as sales
from helpdesk.tickets.models import AuditEvent
from helpdesk.warranty import services as warranty
from helpdesk.warranty.models import OwnedItem, Product, RenewalNotice
from tests.concurrency import at_once
from tests.factories import PASSWORD
from tests.smtp_server import shared_smtp, smtp_server  # noqa: F401  (fixtures)

END = date(2027, 1, 31)  # the item is paid until Sunday 31 January 2027 (its last day)
PRICE = 1_200_000
BASE_URL = "https://desk.example"


def at(days_before, hour_wib=10):
    """The naive-UTC moment `days_before` days before END, at hour_wib o'clock WIB (negative: after END)."""
    day = END - timedelta(days=days_before)
    return datetime(day.year, day.month, day.day, hour_wib - 7, 0)


@pytest.fixture
def app(app_factory, smtp_server):
    app = app_factory(BASE_URL=BASE_URL, COMPANY_BANK_ACCOUNT="BCA 0123456789 a.n. PT Web Jogja Digital",
                      **smtp_server.mail_config())
    with app.app_context():
        yield app
        db.session.remove()


@pytest.fixture
def shop(make):
    w = SimpleNamespace(
        bill=make.user(email="bayu@desk.example", name="Bayu", roles=["billing"]),
        cs=make.user(email="cs@desk.example", name="Citra", roles=["customer_support"]),
        tech=make.user(email="rina@desk.example", name="Rina", roles=["technical_support"]),
        dewi=make.customer(name="Dewi Lestari", email="dewi@tokodewi.co.id", language="id"),
        jane=make.customer(name="Jane Doe", email="jane@example.com", language="en"),
    )
    w.hosting = Product(code="HOST-1GB", name="Hosting 1 GB", product_line="domain_hosting", price=PRICE,
                        term_days=365)
    w.website = Product(code="WEB-TOKO", name="Website Toko Online", product_line="website", price=4_500_000,
                        warranty_days=90)
    db.session.add_all([w.hosting, w.website])
    db.session.commit()
    return w


def hosting_item(w, customer=None, identifier="tokodewi.co.id", expires_on=END, product=None):
    item = warranty.create_item(customer_id=(customer or w.dewi).id, product_id=(product or w.hosting).id,
                                purchase_date=date(2026, 2, 1), activation_date=date(2026, 2, 1),
                                identifier=identifier, expires_on=expires_on)
    db.session.commit()
    return item.id


def count(model, *where):
    return db.session.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def mails(kind):
    return db.session.execute(select(OutboundMail).where(OutboundMail.kind == kind)
                              .order_by(OutboundMail.id)).scalars().all()


def notices(item_id):
    """[(kind, days_before, expires_on, mailed)] of an item, in claim order."""
    rows = db.session.execute(select(RenewalNotice).where(RenewalNotice.owned_item_id == item_id)
                              .order_by(RenewalNotice.id)).scalars().all()
    return [(n.kind, n.days_before, n.expires_on, n.mail_id is not None) for n in rows]


def item(item_id):
    db.session.expire_all()
    return db.session.get(OwnedItem, item_id)


def renewal_invoices():
    return db.session.execute(select(Invoice).where(Invoice.source_type == "renewal")
                              .order_by(Invoice.id)).scalars().all()


def sweep(days_before):
    stats = renewals.sweep(at(days_before))
    db.session.expire_all()
    return stats


def pay(w, invoice_id, days_before):
    invoice = db.session.get(Invoice, invoice_id)
    billing.record_payment(invoice_id, w.bill.id, amount=invoice.total - invoice.amount_paid, method="bank_transfer",
                           paid_on=(END - timedelta(days=days_before)), reference="TRF-9", confirm=True,
                           now=at(days_before))
    db.session.commit()
    db.session.expire_all()


# ---------------------------------------------------------------- the cycle

def test_reminders_invoice_and_expiry_step_by_step(shop):
    item_id = hosting_item(shop)

    assert sweep(31)["reminders"] == 0  # 31 days before: nothing yet
    assert notices(item_id) == [] and renewal_invoices() == [] and mails("renewal_reminder") == []

    stats = sweep(30)
    assert (stats["invoices"], stats["reminders"], stats["expired"]) == (1, 1, 0)
    [invoice] = renewal_invoices()
    assert (invoice.customer_id, invoice.source_id, invoice.total, invoice.status, invoice.due_on) == (
        shop.dewi.id, item_id, PRICE, "unpaid", END)
    [line] = invoice.lines
    assert (line.kind, line.product_id, line.quantity, line.unit_price) == ("product", shop.hosting.id, 1, PRICE)
    assert line.description == "Hosting 1 GB tokodewi.co.id — renewal until 2028-01-31"
    [invoice_mail] = mails("invoice")
    assert invoice_mail.to_addrs == ["dewi@tokodewi.co.id"] and invoice_mail.locale == "id"
    [reminder] = mails("renewal_reminder")
    assert reminder.to_addrs == ["dewi@tokodewi.co.id"] and reminder.ticket_id is None
    assert (reminder.locale, reminder.automatic, reminder.status) == ("id", True, "queued")
    assert reminder.subject == "Hosting 1 GB (tokodewi.co.id): aktif sampai 31 Januari 2027, mohon perpanjang"
    assert notices(item_id) == [("invoice", 0, END, True), ("reminder", 30, END, True)]

    # the same day again, and the next day: nothing new
    for again in (30, 29):
        stats = sweep(again)
        assert (stats["invoices"], stats["reminders"], stats["skipped"], stats["expired"]) == (0, 0, 0, 0)
    assert len(mails("renewal_reminder")) == 1 and len(renewal_invoices()) == 1 and len(mails("invoice")) == 1

    # 14 and 3 days before: one reminder each, once
    for days, total in ((14, 2), (14, 2), (10, 2), (3, 3), (3, 3), (1, 3), (0, 3)):
        sweep(days)
        assert len(mails("renewal_reminder")) == total, days
    assert [k[:2] for k in notices(item_id)] == [("invoice", 0), ("reminder", 30), ("reminder", 14), ("reminder", 3)]
    assert len(renewal_invoices()) == 1

    # the grace period (7 days) still keeps it active; the day after, unpaid, it expires, once
    assert sweep(-7)["expired"] == 0 and item(item_id).status == "active"
    assert sweep(-8)["expired"] == 1
    assert item(item_id).status == "expired" and item(item_id).expires_on == END
    assert sweep(-9)["expired"] == 0 and sweep(-30)["expired"] == 0
    [event] = db.session.execute(select(AuditEvent).where(AuditEvent.action == "item_expired")).scalars().all()
    assert (event.object_type, event.object_id, event.old_value, event.new_value) == (
        "item", item_id, "active", "expired")
    [expired_mail] = mails("renewal_expired")
    assert expired_mail.to_addrs == ["dewi@tokodewi.co.id"] and expired_mail.automatic
    assert renewal_invoices()[0].status == "unpaid"  # the open invoice stays

    # paid after the expiry: active again, until one term after the old end
    pay(shop, invoice.id, -12)
    got = item(item_id)
    assert (got.status, got.expires_on) == ("active", END + timedelta(days=365))
    renewed = db.session.execute(select(AuditEvent).where(AuditEvent.action == "item_renewed")).scalar_one()
    assert (renewed.object_id, renewed.old_value, renewed.new_value) == (item_id, "2027-01-31", "2028-01-31")


def test_paying_the_renewal_invoice_moves_the_expiry_on_from_the_old_end(shop):
    item_id = hosting_item(shop)
    sweep(30)
    [invoice] = renewal_invoices()
    # a partial payment is not enough
    billing.record_payment(invoice.id, shop.bill.id, amount=200_000, method="cash", paid_on=END - timedelta(days=25),
                           confirm=True, now=at(25))
    db.session.commit()
    assert item(item_id).expires_on == END
    pay(shop, invoice.id, 20)  # paid 20 days before the end: counted from the old end, not from today
    new_end = END + timedelta(days=365)
    assert item(item_id).expires_on == new_end and item(item_id).status == "active"
    for days in (14, 3, 0, -8, -30):
        stats = sweep(days)
        assert (stats["reminders"], stats["expired"], stats["invoices"]) == (0, 0, 0), days
    assert len(mails("renewal_reminder")) == 1 and item(item_id).status == "active"
    # the next cycle counts from the new end: its own invoice and reminder
    stats = renewals.sweep(datetime(2028, 1, 1, 3, 0))  # 30 days before the new end, 31 January 2028
    db.session.expire_all()
    assert (stats["invoices"], stats["reminders"]) == (1, 1)
    assert [n[:3] for n in notices(item_id)][-2:] == [("invoice", 0, new_end), ("reminder", 30, new_end)]
    assert renewal_invoices()[-1].lines[0].description.endswith("renewal until 2029-01-30")


def test_a_sweep_that_was_down_sends_only_the_nearest_reminder(shop):
    item_id = hosting_item(shop)
    stats = sweep(2)  # nothing ran from 30 days before until 2 days before
    assert (stats["reminders"], stats["skipped"], stats["invoices"]) == (1, 2, 1)
    [reminder] = mails("renewal_reminder")
    assert reminder.to_addrs == ["dewi@tokodewi.co.id"]
    assert notices(item_id) == [("invoice", 0, END, True), ("reminder", 3, END, True),
                                ("reminder", 14, END, False), ("reminder", 30, END, False)]
    assert sweep(2)["reminders"] == 0 and sweep(1)["reminders"] == 0
    assert len(mails("renewal_reminder")) == 1


def test_two_sweeps_at_once_do_every_step_exactly_once(app, shop):
    """Two threads, each with its own session and connection, lined up by a barrier: the claims
    (INSERT ... ON CONFLICT DO NOTHING RETURNING) give each step of each item to one of them."""
    ids = [hosting_item(shop, customer=shop.dewi if i % 2 else shop.jane, identifier=f"toko{i}.co.id")
           for i in range(6)]

    def sweep_once():
        return renewals.sweep(at(30))

    results = at_once(app, sweep_once, sweep_once)  # two workers at the same moment
    assert sum(r["reminders"] for r in results) == len(ids) and sum(r["invoices"] for r in results) == len(ids)
    db.session.expire_all()
    assert len(mails("renewal_reminder")) == len(ids) and len(mails("invoice")) == len(ids)
    assert sorted(i.source_id for i in renewal_invoices()) == sorted(ids)
    for item_id in ids:
        assert notices(item_id) == [("invoice", 0, END, True), ("reminder", 30, END, True)]
    assert sweep(30)["reminders"] == 0


def test_over_the_budget_the_reminder_is_held_but_claimed(app, shop):
    item_id = hosting_item(shop)
    limit = app.config["MAIL_BUDGET_PER_ADDRESS_HOUR"]
    db.session.add_all([AutoMailLog(recipient="dewi@tokodewi.co.id", sent_at=at(30) - timedelta(minutes=5 + i))
                        for i in range(limit)])
    db.session.commit()
    assert sweep(30)["reminders"] == 1
    [reminder] = mails("renewal_reminder")
    assert reminder.status == "held" and reminder.automatic
    assert ("reminder", 30, END, True) in notices(item_id)
    sweep(30)
    assert len(mails("renewal_reminder")) == 1  # not tried again


def test_a_one_off_product_is_never_touched(shop):
    # even with an expiry day (typed by hand), an item of a product without a term is left alone
    one_off = hosting_item(shop, product=shop.website, identifier="tokodewi.co.id")
    renewable_without_end = hosting_item(shop, expires_on=None, identifier="lama.co.id")
    for days in (30, 14, 3, 0, -8, -400):
        stats = sweep(days)
        assert stats["items"] == 0
    assert notices(one_off) == [] and notices(renewable_without_end) == []
    assert item(one_off).status == "active" and item(one_off).expires_on == END
    assert renewal_invoices() == [] and mails("renewal_reminder") == []


def test_configured_reminder_days(app, shop):
    app.config.update(RENEWAL_REMINDER_DAYS="7, 1", RENEWAL_INVOICE_DAYS_BEFORE=10, RENEWAL_GRACE_DAYS=0)
    assert renewals.reminder_days() == (7, 1)
    item_id = hosting_item(shop)
    assert sweep(30)["reminders"] == 0 and sweep(10)["invoices"] == 1 and sweep(10)["reminders"] == 0
    assert sweep(7)["reminders"] == 1 and sweep(1)["reminders"] == 1
    assert sweep(0)["expired"] == 0 and sweep(-1)["expired"] == 1
    assert [n[:2] for n in notices(item_id)] == [("invoice", 0), ("reminder", 7), ("reminder", 1), ("expired", 0)]


def test_fulfilling_an_order_sets_the_expiry_of_renewable_items(shop):
    order = sales.create_order(shop.cs.id, customer_id=shop.dewi.id, tax_rate_bp=0, now=at(400), lines=[
        {"product_id": shop.hosting.id, "description": "Hosting 1 GB", "quantity": 1, "unit_price": PRICE,
         "identifier": "tokodewi.co.id"},
        {"product_id": shop.website.id, "description": "Website Toko Online", "quantity": 1, "unit_price": 4_500_000}])
    db.session.commit()
    sales.confirm(order.id, shop.cs.id, now=at(400))
    db.session.commit()
    billing.record_payment(order.invoice_id, shop.bill.id, amount=order.total, method="cash",
                           paid_on=END - timedelta(days=400), confirm=True, now=at(400))
    activation = END - timedelta(days=398)
    sales.fulfil(order.id, shop.tech.id, activation_date=activation, now=at(399))
    db.session.commit()
    db.session.expire_all()
    items = {i.product_id: i for i in db.session.execute(select(OwnedItem)).scalars()}
    assert items[shop.hosting.id].expires_on == activation + timedelta(days=364)
    assert items[shop.website.id].expires_on is None


def test_rq_cron_runs_the_renewal_sweep_hourly(app):
    cron = CronScheduler(connection=jobs.get_redis())
    cron.load_config_from_file("workers/cron.py")
    entries = {j.func_name: (j.queue_name, j.interval) for j in cron.get_jobs()}
    assert entries["helpdesk.sales.renewals.cron_renewals"] == ("default", 3600)


# ---------------------------------------------------------------- the mails, as they arrive

def test_the_reminder_arrives_in_the_customers_language_with_the_invoice(shop, smtp_server, run_jobs):
    hosting_item(shop)
    hosting_item(shop, customer=shop.jane, identifier="janedoe.com")
    sweep(30)
    numbers = {i.customer_id: (i.number, i.id) for i in renewal_invoices()}
    dewi_id, jane_id = shop.dewi.id, shop.jane.id
    run_jobs()

    dewi = [m for m in smtp_server.to("dewi@tokodewi.co.id") if "mohon perpanjang" in m["Subject"]]
    [dewi] = dewi
    assert dewi["Content-Language"] == "id" and dewi["Auto-Submitted"] == "auto-generated"
    number, invoice_id = numbers[dewi_id]
    for expected in ("Halo Dewi Lestari", "Hosting 1 GB (tokodewi.co.id) Anda aktif sampai 31 Januari 2027",
                     "tinggal 30 hari lagi", f"invoice {number}: Rp 1.200.000, jatuh tempo 31 Januari 2027", "sampai 31 Januari 2028",
                     "BCA 0123456789", "layanan berhenti setelah 7 Februari 2027",
                     f"{BASE_URL}/portal/invoices/{invoice_id}"):
        assert expected in dewi.text, expected
    assert number in dewi.html and "Rp 1.200.000" in dewi.html

    [jane] = [m for m in smtp_server.to("jane@example.com") if "please renew" in m["Subject"]]
    assert jane["Subject"] == "Hosting 1 GB (janedoe.com): paid until 31 January 2027, please renew"
    assert jane["Content-Language"] == "en"
    number, _id = numbers[jane_id]
    for expected in ("Hello Jane Doe", "paid until 31 January 2027: 30 days left", f"invoice {number}: Rp 1.200.000",
                     "until 31 January 2028", "the service stops after 7 February 2027"):
        assert expected in jane.text, expected
    assert "Dewi" not in jane.text
    # the renewal invoice's own mail says it is a renewal (not "thank you for your order")
    [jane_invoice] = [m for m in smtp_server.to("jane@example.com") if m["Subject"].startswith("Invoice")]
    assert "Your Hosting 1 GB is due for renewal. Here is the renewal invoice:" in jane_invoice.text
    assert "Thank you for your order" not in jane_invoice.text
    # each also got the invoice itself
    assert any(number in m["Subject"] for m in smtp_server.to("jane@example.com"))
    db.session.expire_all()
    assert {m.status for m in mails("renewal_reminder")} == {"sent"}

    # 3 days before, and the expiry
    sweep(3)
    sweep(-8)
    run_jobs()
    texts = [m.text for m in smtp_server.to("jane@example.com")]
    assert any("paid until 31 January 2027: 3 days left" in t for t in texts)
    [expired] = [m for m in smtp_server.to("jane@example.com") if "has expired" in m["Subject"]]
    assert "has not been renewed: it has now expired" in expired.text and number in expired.text


# ---------------------------------------------------------------- the pages

def _login(client, user):
    assert client.post("/login", data={"email": user.email, "password": PASSWORD}).status_code == 302


def test_the_admin_sets_a_products_renewal_term(make, client, shop):
    _login(client, make.user(roles=["admin"], name="Ani Admin"))
    form = client.get(f"/admin/catalogue/products/{shop.hosting.id}").get_data(as_text=True)
    assert "Renewal term (days)" in form and 'name="term_days"' in form and 'value="365"' in form
    data = {"code": "DOM-ID", "name": "Domain .id", "product_line": "domain_hosting", "price": "250.000",
            "warranty_days": "0", "cashback_days": "0", "bundle": "", "active": "y", "term_days": "365"}
    assert client.post("/admin/catalogue/products/new", data=data).status_code == 303
    assert client.post("/admin/catalogue/products/new", data=dict(data, code="JASA-SEO", term_days="")).status_code == 303
    bad = client.post("/admin/catalogue/products/new", data=dict(data, code="DOM-COM", term_days="0"))
    assert bad.status_code == 400
    db.session.expire_all()
    terms = dict(db.session.execute(select(Product.code, Product.term_days)).all())
    assert (terms["DOM-ID"], terms["JASA-SEO"], terms["HOST-1GB"]) == (365, None, 365) and "DOM-COM" not in terms
    # blank again: the product becomes one-off
    domain_id = db.session.execute(select(Product.id).where(Product.code == "DOM-ID")).scalar_one()
    assert client.post(f"/admin/catalogue/products/{domain_id}", data=dict(data, term_days="")).status_code == 303
    db.session.expire_all()
    assert db.session.execute(select(Product.term_days).where(Product.code == "DOM-ID")).scalar_one() is None


def test_the_customer_page_shows_paid_until_for_renewable_items(make, client, shop):
    hosting_item(shop)
    hosting_item(shop, product=shop.website, identifier="tokodewi.co.id", expires_on=None)
    _login(client, make.user(roles=["customer_support"], name="Citra CS"))
    body = client.get(f"/customers/{shop.dewi.id}").get_data(as_text=True)
    assert "Paid until" in body and "31 January 2027" in body
    assert body.count("31 January 2027") == 1  # the website (one-off) has none


def test_the_sweep_reads_the_partial_index(app):
    from sqlalchemy import event

    seen = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", grab)
    try:
        renewals._due_items(END, (END - timedelta(days=40), 5), renewals.BATCH)
    finally:
        event.remove(db.engine, "before_cursor_execute", grab)
    [(sql, params)] = [(s, p) for s, p in seen if "owned_items" in s]
    if db.engine.dialect.name == "sqlite":
        raw = db.session.connection().connection.driver_connection
        plan = " ".join(str(r[-1]) for r in raw.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall())
        assert "ix_owned_items_expires" in plan, plan
    else:  # an empty table is scanned anyway: ask whether the index can serve the query at all
        raw = db.session.connection().connection.driver_connection
        with raw.cursor() as cur:
            cur.execute("SET LOCAL enable_seqscan = off")
            cur.execute(f"EXPLAIN {sql}", params)
            plan = " ".join(r[0] for r in cur.fetchall())
        db.session.rollback()
        assert "ix_owned_items_expires" in plan, plan


def test_a_hosting_that_came_free_with_a_website_renews_paid_when_the_free_year_ends(shop):
    """A website bundles a year of hosting: the bundled hosting is paid until the end of its free
    period, so the sweep asks for its (paid) renewal then, at the hosting's price."""
    shop.website.bundle = [{"target": "HOST-1GB", "free_days": 365}]
    db.session.commit()
    site = warranty.create_item(customer_id=shop.dewi.id, product_id=shop.website.id, purchase_date=date(2026, 2, 1),
                                activation_date=date(2026, 2, 1), identifier="tokodewi.co.id")
    db.session.commit()
    [bundled] = db.session.execute(select(OwnedItem).where(OwnedItem.bundle_parent_id == site.id)).scalars().all()
    assert bundled.bundle_free_until == END and bundled.expires_on == END  # 1 Feb 2026 + 365 days, inclusive
    assert site.expires_on is None  # the website itself is a one-off
    sweep(30)
    [invoice] = renewal_invoices()
    assert (invoice.source_id, invoice.total, invoice.customer_id) == (bundled.id, PRICE, shop.dewi.id)
