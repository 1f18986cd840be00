"""Offers and orders at the service level (helpdesk/sales/services.py), issue #7 §6: offers for a
lead or a customer with catalogue and free-text lines, vouchers and tax, who may make them, the
customer's answer by the signed link (an accepted offer places an order, the lead is won and
becomes a customer, the voucher is used), expiry; orders entered directly, confirmed with an
invoice of the same lines and totals, paid through billing, fulfilled into owned items with their
bundles, cancelled, repeated; a once-per-customer voucher under two concurrent orders."""
import threading
from datetime import date, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from helpdesk.billing import services as billing
from helpdesk.billing.models import Invoice
from helpdesk.errors import Conflict, DomainError, Forbidden
from helpdesk.extensions import db
from helpdesk.jobs import OutboxJob
from helpdesk.leads import services as leads
from helpdesk.leads.models import Lead
from helpdesk.mail.models import OutboundMail
from helpdesk.sales import services as sales
from helpdesk.sales.models import Offer, Order, Voucher, VoucherUse
from helpdesk.tickets.models import AuditEvent
from helpdesk.warranty import services as warranty
from helpdesk.warranty.models import OwnedItem, Product
from tests.factories import wib

NOW = wib(2026, 11, 20, 10, 0)
TODAY = date(2026, 11, 20)


@pytest.fixture
def shop(app, make):
    w = SimpleNamespace(
        mk=make.user(roles=["marketing"]), admin=make.user(roles=["admin"]),
        cs=make.user(roles=["customer_support"]), tech=make.user(roles=["technical_support"]),
        bill=make.user(roles=["billing"]), gone=make.user(roles=["marketing"], active=False),
        customer=make.customer(language="id", email="toko@example.net"),
        other=make.customer(language="en"),
    )
    # like helpdesk/cli.py's demo catalogue: a website brings a year of free domain and hosting
    w.website = Product(code="WEB-TOKO", name="Website Toko Online", product_line="website", price=4_500_000,
                        warranty_days=90, cashback_days=30, bundle=[{"target": "domain_hosting", "free_days": 365}])
    w.hosting = Product(code="HOST-1G", name="Hosting 1 GB", product_line="domain_hosting", price=600_000,
                        warranty_days=30, cashback_days=30)
    w.hemat = Voucher(code="HEMAT10", kind="percent", value=1000, one_per_customer=True)  # 10 %, once each
    w.potong = Voucher(code="POTONG", kind="amount", value=100_000, one_per_customer=False)
    db.session.add_all([w.website, w.hosting, w.hemat, w.potong])
    db.session.commit()
    return w


def field(exc_info):
    return exc_info.value.details.get("field")


def lines_for(w):
    """Website from the catalogue (name and price filled in), free-text setup 2 × Rp 250.000 with
    10 % off, hosting from the catalogue with Rp 50.000 off."""
    return [{"product_id": w.website.id, "quantity": 1},
            {"description": "Setup konten", "quantity": 2, "unit_price": "Rp 250.000", "discount": "10%"},
            {"product_id": w.hosting.id, "quantity": 1, "discount": "50.000", "identifier": "tokobudi.com"}]


# subtotal 4.500.000 + 500.000 + 600.000 = 5.600.000; line discounts 50.000 + 50.000 = 100.000;
# HEMAT10: 10 % of 5.500.000 = 550.000; taxable 4.950.000; PPN 11 % = 544.500; total 5.494.500
EXPECTED = dict(subtotal=5_600_000, discount_total=650_000, voucher_discount=550_000, tax_rate_bp=1100,
                tax=544_500, total=5_494_500)
EXPECTED_LINES = [(1, "Website Toko Online", 1, 4_500_000, 0, 4_500_000),
                  (2, "Setup konten", 2, 250_000, 50_000, 450_000),
                  (3, "Hosting 1 GB", 1, 600_000, 50_000, 550_000)]


def totals_of(row):
    return {k: getattr(row, k) for k in EXPECTED}


def line_rows(row):
    return [(ln.position, ln.description, ln.quantity, ln.unit_price, ln.discount, ln.amount) for ln in row.lines]


def a_lead(email="budi@tokobudi.example", **kw):
    lead, _created = leads.capture(name="Budi Santoso", email=email, company="Toko Budi", now=NOW, **kw)
    db.session.commit()
    return lead


def draft(w, *, actor=None, lead=None, customer=None, lines=None, voucher="hemat10", tax=1100, now=NOW, **kw):
    actor = actor or w.mk
    offer = sales.create_offer(actor.id, lead_id=lead.id if lead else None,
                               customer_id=None if lead else (customer or w.customer).id, now=now, **kw)
    sales.save_lines(offer.id, actor.id, lines if lines is not None else lines_for(w), voucher_code=voucher,
                     tax_rate_bp=tax, now=now)
    db.session.commit()
    return offer


def sent(w, **kw):
    offer = draft(w, **kw)
    sales.send(offer.id, w.mk.id, now=kw.get("now", NOW))
    db.session.commit()
    return offer


def offer_state(offer_id):
    db.session.expire_all()
    offer = db.session.get(Offer, offer_id)
    return (offer.status, offer.version, offer.voucher_id, totals_of(offer), line_rows(offer), offer.notes)


def count(model):
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def order_for(w, *, actor=None, customer=None, lines=None, voucher=None, tax=1100, now=NOW, **kw):
    order = sales.create_order((actor or w.cs).id, customer_id=(customer or w.customer).id,
                               lines=lines if lines is not None else lines_for(w), voucher_code=voucher,
                               tax_rate_bp=tax, now=now, **kw)
    db.session.commit()
    return order


def pay(w, order, amount=None, now=NOW):
    billing.record_payment(order.invoice_id, w.bill.id, amount=amount if amount is not None else order.total,
                           method="bank_transfer", paid_on=TODAY, reference="TRF-1", confirm=True, now=now)
    db.session.commit()


def confirmed(w, **kw):
    order = order_for(w, **kw)
    sales.confirm(order.id, w.cs.id, now=NOW)
    db.session.commit()
    return order


# ---------------------------------------------------------------- offers: drafts

def test_offers_for_a_lead_and_a_customer_are_numbered_per_year(app, shop):
    app.config["SALES_TAX_RATE_BP"] = 1100
    lead = a_lead()
    first = sales.create_offer(shop.mk.id, lead_id=lead.id, now=NOW)
    second = sales.create_offer(shop.admin.id, customer_id=shop.customer.id, valid_days=30, notes=" Harga promo ",
                                now=NOW)
    db.session.commit()
    assert (first.number, second.number) == ("OFR/2026/000001", "OFR/2026/000002")
    assert (first.lead_id, first.customer_id, first.status, first.version) == (lead.id, None, "draft", 1)
    assert (second.lead_id, second.customer_id, second.notes) == (None, shop.customer.id, "Harga promo")
    assert first.valid_until == TODAY + timedelta(days=14) and second.valid_until == TODAY + timedelta(days=30)
    assert first.tax_rate_bp == second.tax_rate_bp == 1100  # SALES_TAX_RATE_BP
    assert first.locale == "id" and first.total == 0
    events = db.session.execute(select(AuditEvent.object_id, AuditEvent.new_value).where(
        AuditEvent.object_type == "offer").order_by(AuditEvent.id)).all()
    assert [tuple(e) for e in events] == [(first.id, "draft"), (second.id, "draft")]


def test_offer_numbers_follow_the_jakarta_year(shop):
    """23:00 WIB on 31 December is still 2026; 00:30 WIB on 1 January (17:30 UTC the day before) is 2027."""
    late = sales.create_offer(shop.mk.id, customer_id=shop.customer.id, now=wib(2026, 12, 31, 23, 0))
    new_year = sales.create_offer(shop.mk.id, customer_id=shop.customer.id, now=wib(2027, 1, 1, 0, 30))
    next_one = sales.create_offer(shop.mk.id, customer_id=shop.customer.id, now=wib(2027, 1, 2, 9, 0))
    db.session.commit()
    assert wib(2027, 1, 1, 0, 30).year == 2026  # stored in UTC
    assert [late.number, new_year.number, next_one.number] == ["OFR/2026/000001", "OFR/2027/000001",
                                                                "OFR/2027/000002"]
    assert new_year.valid_until == date(2027, 1, 15)


def test_an_offer_for_a_converted_lead_is_for_its_customer(shop):
    lead = a_lead()
    lead.customer_id = shop.customer.id
    db.session.commit()
    offer = sales.create_offer(shop.mk.id, lead_id=lead.id, now=NOW)
    assert (offer.lead_id, offer.customer_id) == (lead.id, shop.customer.id)


@pytest.mark.parametrize("kw, error", [({}, DomainError), ({"valid_days": 0}, DomainError),
                                        ({"valid_days": 366}, DomainError)])
def test_an_offer_needs_a_lead_or_customer_and_a_sane_validity(shop, kw, error):
    if kw:
        kw["customer_id"] = shop.customer.id
    with pytest.raises(error):
        sales.create_offer(shop.mk.id, now=NOW, **kw)
    db.session.rollback()
    assert count(Offer) == 0


def test_save_lines_prices_catalogue_and_free_text_lines_with_a_voucher_and_tax(shop):
    offer = draft(shop)
    db.session.expire_all()
    offer = db.session.get(Offer, offer.id)
    assert totals_of(offer) == EXPECTED
    assert line_rows(offer) == EXPECTED_LINES
    assert [ln.product_id for ln in offer.lines] == [shop.website.id, None, shop.hosting.id]
    assert offer.voucher_id == shop.hemat.id and offer.status == "draft"
    # saving again replaces the lines and recomputes: no voucher, no tax
    sales.save_lines(offer.id, shop.mk.id, [{"product_id": shop.hosting.id, "quantity": 3, "unit_price": 550_000}],
                     voucher_code="", tax_rate_bp=0, notes="Tiga akun", now=NOW)
    db.session.commit()
    db.session.expire_all()
    offer = db.session.get(Offer, offer.id)
    assert line_rows(offer) == [(1, "Hosting 1 GB", 3, 550_000, 0, 1_650_000)]
    assert totals_of(offer) == dict(subtotal=1_650_000, discount_total=0, voucher_discount=0, tax_rate_bp=0, tax=0,
                                    total=1_650_000)
    assert (offer.voucher_id, offer.notes) == (None, "Tiga akun")
    # the voucher is not used by a draft
    assert db.session.get(Voucher, shop.hemat.id).used_count == 0 and count(VoucherUse) == 0


def test_an_amount_voucher_and_the_offers_tax_rate(shop):
    offer = sales.create_offer(shop.mk.id, customer_id=shop.customer.id, tax_rate_bp=1100, now=NOW)
    sales.save_lines(offer.id, shop.mk.id, [{"description": "Desain logo", "quantity": 1, "unit_price": 1_000_050}],
                     voucher_code="potong", now=NOW)
    # 1.000.050 − 100.000 = 900.050; 11 % = 99.005,5 -> 99.006; total 999.056
    assert (offer.subtotal, offer.voucher_discount, offer.tax, offer.total) == (1_000_050, 100_000, 99_006, 999_056)


def voucher_case(shop, case):
    v = shop.hemat
    if case == "expired":
        v.valid_until = TODAY - timedelta(days=1)
    elif case == "not_yet_valid":
        v.valid_from = TODAY + timedelta(days=1)
    elif case == "used_up":
        v.usage_limit, v.used_count = 5, 5
    elif case == "already_used":
        db.session.add(VoucherUse(voucher_id=v.id, customer_key=f"c:{shop.customer.id}", used_at=NOW, once=True))
    elif case == "below_minimum":
        v.min_subtotal = 5_500_001  # the lines come to 5.500.000 after their discounts
    elif case == "inactive":
        v.active = False
    db.session.commit()
    return "nope" if case == "unknown" else "HEMAT10"


@pytest.mark.parametrize("case", ["expired", "not_yet_valid", "used_up", "already_used", "below_minimum", "inactive",
                                  "unknown"])
def test_a_voucher_that_cannot_be_used_is_refused_on_the_voucher_field(shop, case):
    offer = draft(shop, voucher=None)
    before = offer_state(offer.id)
    code = voucher_case(shop, case)
    with pytest.raises(DomainError) as exc:
        sales.save_lines(offer.id, shop.mk.id, lines_for(shop), voucher_code=code, tax_rate_bp=1100, now=NOW)
    assert field(exc) == "voucher"
    db.session.rollback()
    assert offer_state(offer.id) == before


def test_the_voucher_boundaries_are_inclusive_days(shop):
    shop.hemat.valid_from = shop.hemat.valid_until = TODAY
    shop.hemat.usage_limit, shop.hemat.used_count = 5, 4
    shop.hemat.min_subtotal = 5_500_000
    db.session.commit()
    # 23:59 WIB is still the voucher's last day
    offer = draft(shop, now=wib(2026, 11, 20, 23, 59))
    assert offer.voucher_discount == 550_000
    with pytest.raises(DomainError) as exc:
        sales.save_lines(offer.id, shop.mk.id, lines_for(shop), voucher_code="HEMAT10", now=wib(2026, 11, 21, 0, 0))
    assert field(exc) == "voucher"


def test_a_once_per_customer_voucher_used_by_another_customer_is_fine(shop):
    db.session.add(VoucherUse(voucher_id=shop.hemat.id, customer_key=f"c:{shop.other.id}", used_at=NOW, once=True))
    db.session.commit()
    assert draft(shop).voucher_discount == 550_000


@pytest.mark.parametrize("lines", [
    [],
    [{"product_id": 999_999, "quantity": 1}],
    [{"description": "Setup", "quantity": 1, "unit_price": 100_000, "discount": 100_001}],
    [{"description": "Setup", "quantity": 1, "unit_price": 100_000, "discount": "101%"}],
    [{"description": "Setup", "quantity": 10_001, "unit_price": 1}],
    [{"description": "Setup", "quantity": 1, "unit_price": "12,5"}],
    [{"description": "  ", "quantity": 1, "unit_price": 1000}],
    [{"description": "Setup", "quantity": "dua", "unit_price": 1000}],
    [{"description": "Setup", "quantity": 0, "unit_price": 1000}],      # not silently 1
    [{"description": "Setup", "quantity": "0", "unit_price": 1000}],
    [{"description": "Setup", "quantity": 2.5, "unit_price": 1000}],    # not silently 2
    [{"description": "Setup", "quantity": True, "unit_price": 1000}],
    [{"description": "Setup", "quantity": 1, "unit_price": 1000.0}],
    [{"description": "Setup", "quantity": 1, "unit_price": 1000}] * 51,
])
def test_bad_lines_are_refused_and_nothing_changes(shop, lines):
    offer = draft(shop)
    before = offer_state(offer.id)
    with pytest.raises(DomainError) as exc:
        sales.save_lines(offer.id, shop.mk.id, lines, voucher_code=None, tax_rate_bp=0, now=NOW)
    assert field(exc) == "lines"
    db.session.rollback()
    assert offer_state(offer.id) == before


def test_an_inactive_product_cannot_be_offered(shop):
    shop.hosting.active = False
    db.session.commit()
    with pytest.raises(DomainError):
        draft(shop)


def test_a_bad_tax_rate_is_refused(shop):
    offer = draft(shop)
    with pytest.raises(DomainError) as exc:
        sales.save_lines(offer.id, shop.mk.id, lines_for(shop), tax_rate_bp=10_001, now=NOW)
    assert field(exc) == "tax_rate"


# ---------------------------------------------------------------- offers: who may

@pytest.mark.parametrize("role", ["marketing", "admin"])
def test_marketing_and_admins_make_offers(shop, make, role):
    user = make.user(roles=[role])
    db.session.commit()
    offer = draft(shop, actor=user)
    assert offer.total == EXPECTED["total"] and offer.created_by_id == user.id


@pytest.mark.parametrize("who", ["cs", "tech", "bill", "gone", "nobody"])
def test_others_cannot_make_or_change_offers(shop, who):
    offer = draft(shop)
    before = offer_state(offer.id)
    actor_id = None if who == "nobody" else getattr(shop, who).id
    with pytest.raises(Forbidden):
        sales.create_offer(actor_id, customer_id=shop.customer.id, now=NOW)
    with pytest.raises(Forbidden):
        sales.save_lines(offer.id, actor_id, [{"description": "Gratis", "quantity": 1, "unit_price": 0}], now=NOW)
    with pytest.raises(Forbidden):
        sales.send(offer.id, actor_id, now=NOW)
    db.session.rollback()
    assert offer_state(offer.id) == before and count(Offer) == 1
    assert count(OutboundMail) == 0


# ---------------------------------------------------------------- orders: entered directly

@pytest.mark.parametrize("role", ["marketing", "customer_support", "admin"])
def test_orders_are_entered_by_marketing_customer_support_and_admins(shop, make, role):
    user = make.user(roles=[role])
    db.session.commit()
    order = order_for(shop, actor=user, voucher="HEMAT10", channel="phone")
    db.session.expire_all()
    order = db.session.get(Order, order.id)
    assert (order.status, order.channel, order.customer_id, order.created_by_id) == (
        "placed", "phone", shop.customer.id, user.id)
    assert totals_of(order) == EXPECTED and line_rows(order) == EXPECTED_LINES
    assert [ln.identifier for ln in order.lines] == [None, None, "tokobudi.com"]
    use = db.session.execute(select(VoucherUse)).scalar_one()
    assert (use.voucher_id, use.customer_key, use.order_id, use.once) == (shop.hemat.id, f"c:{shop.customer.id}",
                                                                         order.id, True)
    assert db.session.get(Voucher, shop.hemat.id).used_count == 1


@pytest.mark.parametrize("who", ["tech", "bill", "gone", "nobody"])
def test_others_cannot_enter_orders(shop, who):
    actor_id = None if who == "nobody" else getattr(shop, who).id
    with pytest.raises(Forbidden):
        sales.create_order(actor_id, customer_id=shop.customer.id, lines=lines_for(shop), now=NOW)
    db.session.rollback()
    assert count(Order) == 0


@pytest.mark.parametrize("channel", ["offer", "fax", ""])
def test_an_order_channel_must_be_known_and_not_offer(shop, channel):
    with pytest.raises(DomainError) as exc:
        sales.create_order(shop.cs.id, customer_id=shop.customer.id, lines=lines_for(shop), channel=channel, now=NOW)
    assert field(exc) == "channel"


def test_order_numbers_count_up(shop):
    numbers = [order_for(shop, lines=[{"product_id": shop.hosting.id}], tax=0).number for _ in range(3)]
    late = order_for(shop, lines=[{"product_id": shop.hosting.id}], tax=0, now=wib(2027, 1, 1, 0, 5))
    assert numbers == ["ORD/2026/000001", "ORD/2026/000002", "ORD/2026/000003"]
    assert late.number == "ORD/2027/000001"


def test_a_once_per_customer_voucher_works_once_per_customer(shop):
    order_for(shop, voucher="HEMAT10")
    with pytest.raises(DomainError) as exc:
        sales.create_order(shop.cs.id, customer_id=shop.customer.id, lines=lines_for(shop), voucher_code="HEMAT10",
                           now=NOW)
    assert field(exc) == "voucher"
    db.session.rollback()
    other = order_for(shop, customer=shop.other, voucher="HEMAT10")
    assert other.voucher_discount == 550_000
    # a voucher without the once rule is used as often as wanted, counted each time
    order_for(shop, voucher="POTONG")
    order_for(shop, voucher="POTONG")
    assert db.session.get(Voucher, shop.potong.id).used_count == 2
    assert db.session.get(Voucher, shop.hemat.id).used_count == 2


def test_a_voucher_at_its_usage_limit_is_refused(shop):
    shop.potong.usage_limit = 1
    db.session.commit()
    order_for(shop, voucher="POTONG")
    with pytest.raises(DomainError) as exc:
        order_for(shop, customer=shop.other, voucher="POTONG")
    assert field(exc) == "voucher"


def test_a_once_per_customer_voucher_in_two_orders_at_once(app, shop):
    """Two orders of the same customer with the same once-per-customer voucher, each in its own
    session and transaction: exactly one gets it; the other is refused on the voucher field."""
    customer_id, actor_ids, lines = shop.customer.id, [shop.cs.id, shop.mk.id], lines_for(shop)
    barrier = threading.Barrier(2)
    results, errors = [], []
    lock = threading.Lock()

    def worker(n):
        with app.app_context():
            try:
                barrier.wait()
                try:
                    order = sales.create_order(actor_ids[n], customer_id=customer_id, lines=lines,
                                               voucher_code="HEMAT10", now=NOW)
                    db.session.commit()
                    with lock:
                        results.append(("ok", order.number))
                except DomainError as exc:
                    db.session.rollback()
                    with lock:
                        results.append(("refused", exc.details.get("field")))
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(repr(exc))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert sorted(r[0] for r in results) == ["ok", "refused"]
    assert [r[1] for r in results if r[0] == "refused"] == ["voucher"]
    db.session.expire_all()
    assert count(Order) == 1 and count(VoucherUse) == 1
    assert db.session.get(Voucher, shop.hemat.id).used_count == 1
    order = db.session.execute(select(Order)).scalar_one()
    assert order.voucher_id == shop.hemat.id and order.number == "ORD/2026/000001"


def test_cancel_a_placed_order_needs_a_reason(shop):
    order = order_for(shop)
    with pytest.raises(DomainError) as exc:
        sales.cancel(order.id, shop.cs.id, "  ", now=NOW)
    assert field(exc) == "reason"
    with pytest.raises(Forbidden):
        sales.cancel(order.id, shop.tech.id, "Salah input", now=NOW)
    sales.cancel(order.id, shop.cs.id, " Salah input ", now=NOW)
    db.session.commit()
    assert (order.status, order.cancel_reason, order.cancelled_at) == ("cancelled", "Salah input", NOW)
    with pytest.raises(Conflict):
        sales.cancel(order.id, shop.cs.id, "Lagi", now=NOW)


def test_a_placed_order_cannot_be_fulfilled(shop):
    order = order_for(shop)
    with pytest.raises(Conflict):
        sales.fulfil(order.id, shop.tech.id, now=NOW)
    db.session.rollback()
    assert count(OwnedItem) == 0


def test_repeat_uses_todays_catalogue_prices_and_drops_the_voucher(shop):
    first = order_for(shop, voucher="HEMAT10", channel="email")
    shop.website.price = 5_000_000
    db.session.commit()
    again = sales.repeat(first.id, shop.mk.id, now=NOW + timedelta(days=30))
    db.session.commit()
    db.session.expire_all()
    again = db.session.get(Order, again.id)
    assert (again.customer_id, again.repeat_of_id, again.channel, again.status, again.voucher_id) == (
        shop.customer.id, first.id, "email", "placed", None)
    # the catalogue lines at today's price; the free-text line at its price; no line discounts, no voucher
    assert line_rows(again) == [(1, "Website Toko Online", 1, 5_000_000, 0, 5_000_000),
                                (2, "Setup konten", 2, 250_000, 0, 500_000),
                                (3, "Hosting 1 GB", 1, 600_000, 0, 600_000)]
    assert [ln.identifier for ln in again.lines] == [None, None, "tokobudi.com"]
    # 6.100.000 + 11 % (671.000) = 6.771.000
    assert (again.subtotal, again.discount_total, again.voucher_discount, again.tax, again.total) == (
        6_100_000, 0, 0, 671_000, 6_771_000)
    assert again.number == "ORD/2026/000002"
    assert db.session.get(Voucher, shop.hemat.id).used_count == 1  # not used again
    with pytest.raises(Forbidden):
        sales.repeat(first.id, shop.bill.id, now=NOW)


def test_repeat_skips_products_no_longer_sold(shop):
    first = order_for(shop)
    shop.website.active = shop.hosting.active = False
    db.session.commit()
    again = sales.repeat(first.id, shop.cs.id, now=NOW)
    assert line_rows(again) == [(1, "Setup konten", 2, 250_000, 0, 500_000)]
    shop.website.active = True
    db.session.commit()
    only_site = order_for(shop, lines=[{"product_id": shop.website.id}])
    shop.website.active = False
    db.session.commit()
    with pytest.raises(DomainError):
        sales.repeat(only_site.id, shop.cs.id, now=NOW)


def test_orders_and_offers_of_a_customer(shop):
    a = order_for(shop)
    b = order_for(shop, customer=shop.other)
    c = order_for(shop)
    o = draft(shop, voucher=None)
    assert [x.id for x in sales.orders_of(shop.customer.id)] == [c.id, a.id]
    assert [x.id for x in sales.orders_of(shop.other.id)] == [b.id]
    assert [x.id for x in sales.offers_of(customer_id=shop.customer.id)] == [o.id]


# ---------------------------------------------------------------- offers: sent and decided (mail "offer")

def offer_mails():
    rows = db.session.execute(select(OutboundMail).where(OutboundMail.kind == "offer")
                              .order_by(OutboundMail.id)).scalars().all()
    jobs = {j.args[0]: j.args[1] for j in db.session.execute(select(OutboxJob)).scalars()
            if len(j.args or []) > 1}
    return [(r.to_addrs, jobs.get(r.id)) for r in rows]


def test_send_mails_the_offer_to_the_lead_and_moves_it_to_offer_sent(shop):
    lead = a_lead()
    offer = sent(shop, lead=lead)
    db.session.expire_all()
    offer, lead = db.session.get(Offer, offer.id), db.session.get(Lead, lead.id)
    assert (offer.status, offer.version, offer.sent_at) == ("sent", 2, NOW)
    assert lead.stage == "offer_sent"
    assert offer_mails() == [(["budi@tokobudi.example"], {"offer_id": offer.id})]
    assert sales.link_url(offer).startswith("http") and "/offers/view/" in sales.link_url(offer)
    assert sales.load_token(sales.make_token(offer)) == (offer.id, 2)


def test_only_a_draft_offer_can_be_changed(shop):
    offer = sent(shop)
    before = offer_state(offer.id)
    with pytest.raises(Conflict):
        sales.save_lines(offer.id, shop.mk.id, lines_for(shop), voucher_code=None, now=NOW)
    db.session.rollback()
    assert offer_state(offer.id) == before
    sales.customer_decide(offer.id, offer.version, "decline", now=NOW)
    db.session.commit()
    with pytest.raises(Conflict):
        sales.save_lines(offer.id, shop.mk.id, lines_for(shop), now=NOW)
    with pytest.raises(Conflict):
        sales.send(offer.id, shop.mk.id, now=NOW)


def test_an_empty_offer_cannot_be_sent(shop):
    offer = sales.create_offer(shop.mk.id, customer_id=shop.customer.id, now=NOW)
    with pytest.raises(DomainError):
        sales.send(offer.id, shop.mk.id, now=NOW)


def test_accepting_an_offer_of_a_lead_places_the_order_and_wins_the_lead(shop):
    lead = a_lead()
    offer = sent(shop, lead=lead)
    later = NOW + timedelta(days=3)
    decided, order = sales.customer_decide(offer.id, offer.version, "accept", now=later)
    db.session.commit()
    db.session.expire_all()
    offer, order, lead = db.session.get(Offer, offer.id), db.session.get(Order, order.id), db.session.get(Lead, lead.id)
    assert decided.id == offer.id
    assert (offer.status, offer.decided_at) == ("accepted", later)
    # the lead is won and became a customer (a new one, with the lead's address)
    assert lead.stage == "won" and lead.customer_id is not None
    assert offer.customer_id == order.customer_id == lead.customer_id
    from helpdesk.customers.models import Customer
    assert db.session.get(Customer, lead.customer_id).primary_email == "budi@tokobudi.example"
    # the order: same lines and totals, from the offer
    assert (order.status, order.channel, order.offer_id, order.created_by_id, order.number) == (
        "placed", "offer", offer.id, None, "ORD/2026/000001")
    assert line_rows(order) == line_rows(offer) == EXPECTED_LINES
    assert totals_of(order) == totals_of(offer) == EXPECTED
    assert [ln.product_id for ln in order.lines] == [ln.product_id for ln in offer.lines]
    # the voucher is used: once, by this customer and order
    use = db.session.execute(select(VoucherUse)).scalar_one()
    assert (use.customer_key, use.order_id) == (f"c:{order.customer_id}", order.id)
    assert db.session.get(Voucher, shop.hemat.id).used_count == 1
    # twice: Conflict, nothing more
    with pytest.raises(Conflict):
        sales.customer_decide(offer.id, offer.version, "accept", now=later)
    db.session.rollback()
    assert count(Order) == 1 and db.session.get(Voucher, shop.hemat.id).used_count == 1


@pytest.mark.parametrize("locale", ["en", "id"])
def test_the_new_customer_reads_in_the_language_of_the_offer_they_accepted(shop, locale):
    """A lead has no language; the customer it becomes on accepting gets the offer's, so the invoice
    and payment mails that follow are in it (not bilingual)."""
    from helpdesk.customers.models import Customer

    offer = sent(shop, lead=a_lead(), locale=locale)
    _offer, order = sales.customer_decide(offer.id, offer.version, "accept", now=NOW)
    db.session.commit()
    assert db.session.get(Customer, order.customer_id).language == locale


def test_accepting_an_offer_of_a_customer_keeps_the_customer(shop):
    offer = sent(shop)
    _offer, order = sales.customer_decide(offer.id, offer.version, "accept", now=NOW)
    db.session.commit()
    assert order.customer_id == shop.customer.id and order.total == EXPECTED["total"]


def test_an_outdated_link_cannot_decide(shop):
    offer = sent(shop)
    sales.send(offer.id, shop.mk.id, now=NOW + timedelta(hours=1))  # sent again: version 3
    db.session.commit()
    assert offer.version == 3
    with pytest.raises(Conflict):
        sales.customer_decide(offer.id, 2, "accept", now=NOW)
    db.session.rollback()
    assert offer_state(offer.id)[0] == "sent" and count(Order) == 0
    with pytest.raises(Conflict):
        sales.offer_for_link(offer.id, 2)
    assert sales.offer_for_link(offer.id, 3).id == offer.id


def test_a_declined_offer_keeps_the_reason_and_places_nothing(shop):
    lead = a_lead()
    offer = sent(shop, lead=lead)
    decided, order = sales.customer_decide(offer.id, offer.version, "decline", reason=" Terlalu mahal ", now=NOW)
    db.session.commit()
    assert order is None
    assert (decided.status, decided.decline_reason, decided.decided_at) == ("declined", "Terlalu mahal", NOW)
    assert db.session.get(Lead, lead.id).stage == "offer_sent"
    assert count(Order) == 0 and count(VoucherUse) == 0
    with pytest.raises(Conflict):
        sales.customer_decide(offer.id, offer.version, "accept", now=NOW)


def test_an_unknown_decision_is_refused(shop):
    offer = sent(shop)
    with pytest.raises(DomainError):
        sales.customer_decide(offer.id, offer.version, "maybe", now=NOW)


def test_offers_expire_after_their_last_day(shop):
    offer = sent(shop, valid_days=1)  # valid until 21 November inclusive
    waiting = draft(shop, voucher=None)
    assert offer.valid_until == TODAY + timedelta(days=1)
    assert sales.expire_offers(wib(2026, 11, 21, 23, 59)) == 0
    assert sales.expire_offers(wib(2026, 11, 22, 0, 0)) == 1
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Offer, offer.id).status == "expired"
    assert db.session.get(Offer, waiting.id).status == "draft"
    assert sales.expire_offers(wib(2026, 12, 22, 0, 0)) == 0
    with pytest.raises(Conflict):
        sales.customer_decide(offer.id, offer.version, "accept", now=wib(2026, 11, 22, 9, 0))


def test_a_late_answer_finds_the_offer_expired(shop):
    offer = sent(shop, valid_days=1)
    with pytest.raises(Conflict):
        sales.customer_decide(offer.id, offer.version, "accept", now=wib(2026, 11, 22, 0, 1))
    assert offer.status == "expired" and count(Order) == 0
    db.session.rollback()
    _offer, order = sales.customer_decide(offer.id, offer.version, "accept", now=wib(2026, 11, 21, 23, 59))
    assert order is not None


# ---------------------------------------------------------------- orders: confirmed, paid, fulfilled (mail "invoice")

def test_confirm_creates_the_invoice_with_the_same_lines_discounts_tax_and_total(shop):
    order = order_for(shop, voucher="HEMAT10")
    with pytest.raises(Forbidden):
        sales.confirm(order.id, shop.tech.id, now=NOW)
    sales.confirm(order.id, shop.cs.id, now=NOW)
    db.session.commit()
    db.session.expire_all()
    order = db.session.get(Order, order.id)
    invoice = db.session.get(Invoice, order.invoice_id)
    assert (order.status, order.confirmed_at) == ("confirmed", NOW)
    assert (invoice.source_type, invoice.source_id, invoice.customer_id, invoice.status) == (
        "order", order.id, shop.customer.id, "unpaid")
    assert [(ln.position, ln.description, ln.quantity, ln.unit_price, ln.discount, ln.amount)
            for ln in invoice.lines] == line_rows(order)
    assert [ln.product_id for ln in invoice.lines] == [ln.product_id for ln in order.lines]
    assert (invoice.subtotal, invoice.discount, invoice.tax_rate_bp, invoice.tax, invoice.total) == (
        order.subtotal, order.discount_total, order.tax_rate_bp, order.tax, order.total)
    assert invoice.total == EXPECTED["total"]
    mails = db.session.execute(select(OutboundMail).where(OutboundMail.kind == "invoice")).scalars().all()
    assert [m.to_addrs for m in mails] == [["toko@example.net"]]
    with pytest.raises(Conflict):
        sales.confirm(order.id, shop.cs.id, now=NOW)


def test_a_full_payment_makes_the_order_paid(shop):
    order = confirmed(shop)
    pay(shop, order, amount=1_000_000)
    assert db.session.get(Order, order.id).status == "confirmed"  # partly paid
    with pytest.raises(Conflict):
        sales.fulfil(order.id, shop.tech.id, now=NOW)
    db.session.rollback()
    pay(shop, order, amount=order.total - 1_000_000, now=NOW + timedelta(hours=1))
    db.session.expire_all()
    order = db.session.get(Order, order.id)
    assert (order.status, order.paid_at) == ("paid", NOW + timedelta(hours=1))
    assert db.session.get(Invoice, order.invoice_id).status == "paid"


def test_fulfil_creates_the_owned_items_with_the_bundle(shop):
    order = confirmed(shop, voucher="HEMAT10")
    pay(shop, order)
    activation = TODAY + timedelta(days=2)
    with pytest.raises(Forbidden):
        sales.fulfil(order.id, shop.bill.id, now=NOW)
    with pytest.raises(DomainError):
        sales.fulfil(order.id, shop.tech.id, activation_date=TODAY - timedelta(days=1), now=NOW)
    db.session.rollback()
    sales.fulfil(order.id, shop.tech.id, activation_date=activation, now=NOW + timedelta(days=2))
    db.session.commit()
    db.session.expire_all()
    order = db.session.get(Order, order.id)
    assert (order.status, order.fulfilled_at) == ("fulfilled", NOW + timedelta(days=2))
    items = db.session.execute(select(OwnedItem).order_by(OwnedItem.id)).scalars().all()
    by_product = [(i.product_id, i.bundle_parent_id is not None) for i in items]
    # website + its bundled hosting, the hosting line; the free-text setup line is no item
    assert sorted(by_product) == sorted([(shop.website.id, False), (shop.hosting.id, True), (shop.hosting.id, False)])
    site = next(i for i in items if i.product_id == shop.website.id)
    bundled = next(i for i in items if i.bundle_parent_id == site.id)
    hosting = next(i for i in items if i.product_id == shop.hosting.id and i.bundle_parent_id is None)
    assert {i.customer_id for i in items} == {shop.customer.id}
    assert {i.reference for i in items} == {order.number}
    assert {i.purchase_date for i in items} == {TODAY} and {i.activation_date for i in items} == {activation}
    # what was paid for each: the line's share of the total, 10 % off then PPN 11 %, so × 0.999
    assert (site.amount_paid, hosting.amount_paid) == (4_495_500, 549_450)
    assert hosting.identifier == "tokobudi.com"
    assert bundled.bundle_free_until == warranty.product_terms(shop.website).bundle[0].free_until(activation)
    assert bundled.bundle_free_until > activation + timedelta(days=360)
    assert [ln.owned_item_id for ln in order.lines] == [site.id, None, hosting.id]
    with pytest.raises(Conflict):
        sales.fulfil(order.id, shop.tech.id, now=NOW)


def test_cancel_voids_the_unpaid_invoice(shop):
    order = confirmed(shop)
    sales.cancel(order.id, shop.bill.id, "Pelanggan batal", now=NOW)
    db.session.commit()
    invoice = db.session.get(Invoice, order.invoice_id)
    assert order.status == "cancelled"
    assert invoice.status == "void" and order.number in invoice.void_reason and "Pelanggan batal" in invoice.void_reason


def test_an_order_whose_invoice_billing_voided_can_still_be_cancelled(shop):
    order = confirmed(shop)
    billing.void_invoice(order.invoice_id, shop.bill.id, "Salah tagih", now=NOW)
    db.session.commit()
    sales.cancel(order.id, shop.cs.id, "Pelanggan batal", now=NOW)
    db.session.commit()
    invoice = db.session.get(Invoice, order.invoice_id)
    assert order.status == "cancelled" and (invoice.status, invoice.void_reason) == ("void", "Salah tagih")


def test_a_paid_or_partly_paid_order_cannot_be_cancelled(shop):
    order = confirmed(shop)
    pay(shop, order, amount=100_000)
    with pytest.raises(Conflict):
        sales.cancel(order.id, shop.cs.id, "Batal", now=NOW)
    db.session.rollback()
    pay(shop, order, amount=order.total - 100_000)
    with pytest.raises(Conflict):
        sales.cancel(order.id, shop.cs.id, "Batal", now=NOW)
    db.session.rollback()
    db.session.expire_all()
    assert db.session.get(Order, order.id).status == "paid"
    assert db.session.get(Invoice, order.invoice_id).status == "paid"


def test_a_fully_discounted_order_is_paid_on_confirmation(shop):
    order = order_for(shop, lines=[{"description": "Konsultasi", "quantity": 1, "unit_price": 80_000}],
                      voucher="POTONG")
    assert order.total == 0
    sales.confirm(order.id, shop.cs.id, now=NOW)
    db.session.commit()
    assert order.status == "paid" and db.session.get(Invoice, order.invoice_id).status == "paid"


def test_an_accepted_offer_goes_all_the_way(shop):
    offer = sent(shop)
    _offer, order = sales.customer_decide(offer.id, offer.version, "accept", now=NOW)
    db.session.commit()
    sales.confirm(order.id, shop.mk.id, now=NOW)
    db.session.commit()
    pay(shop, order)
    sales.fulfil(order.id, shop.cs.id, now=NOW)
    db.session.commit()
    assert order.status == "fulfilled"
    assert db.session.get(Invoice, order.invoice_id).total == offer.total == EXPECTED["total"]
    # every change is audited
    trail = db.session.execute(select(AuditEvent.old_value, AuditEvent.new_value).where(
        AuditEvent.object_type == "order", AuditEvent.object_id == order.id).order_by(AuditEvent.id)).all()
    assert [tuple(t) for t in trail] == [(None, "placed"), ("placed", "confirmed"), ("confirmed", "paid"),
                                         ("paid", "fulfilled")]
    offer_trail = db.session.execute(select(AuditEvent.old_value, AuditEvent.new_value).where(
        AuditEvent.object_type == "offer", AuditEvent.object_id == offer.id, AuditEvent.action == "offer")
        .order_by(AuditEvent.id)).all()
    assert [tuple(t) for t in offer_trail] == [(None, "draft"), ("draft", "sent"), ("sent", "accepted")]


def test_accepting_after_the_customer_used_the_voucher_elsewhere_is_refused(shop):
    offer = sent(shop)
    order_for(shop, voucher="HEMAT10")  # meanwhile, by phone
    with pytest.raises(DomainError) as exc:
        sales.customer_decide(offer.id, offer.version, "accept", now=NOW)
    assert field(exc) == "voucher"
    db.session.rollback()
    assert offer_state(offer.id)[0] == "sent" and count(Order) == 1
