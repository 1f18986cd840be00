"""Invoices and payments (helpdesk/billing/services.py), issue #6 §5.4: gapless per-year numbers
(Asia/Jakarta year, a rolled-back invoice gives its number back, also with concurrent writers), the
NPWP on B2B invoices, payments recorded → confirmed (or rejected), voiding, and who may do it."""
import threading
from datetime import date, datetime
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from helpdesk.auth.models import ROLES
from helpdesk.billing import services as billing
from helpdesk.billing.models import Invoice, InvoiceSequence, Payment
from helpdesk.errors import DomainError, Forbidden, NotFound
from helpdesk.extensions import db
from helpdesk.jobs import OutboxJob
from helpdesk.mail.models import OutboundMail
from helpdesk.tickets.models import AuditEvent
from tests.factories import wib

NOW = wib(2026, 11, 20, 10, 0)
TODAY = date(2026, 11, 20)
LINES = [{"description": "Biaya servis", "quantity": 1, "unit_price": 150_000},
         {"kind": "part", "description": "Lisensi plugin", "quantity": 2, "unit_price": 250_000}]
TOTAL = 650_000


@pytest.fixture
def desk(app, make):
    w = SimpleNamespace(bill=make.user(roles=["billing"]), bill2=make.user(roles=["billing"]),
                        customer=make.customer(language="id"))
    db.session.commit()
    return w


def invoice_for(w, now=NOW, lines=LINES, customer=None, **kw):
    return billing.create_invoice(customer_id=(customer or w.customer).id, lines=lines, actor_id=w.bill.id,
                                  now=now, **kw)


def field(exc_info):
    return exc_info.value.details.get("field")


def invoice_events(invoice_id):
    return db.session.execute(select(AuditEvent).where(AuditEvent.object_type == "invoice",
                                                       AuditEvent.object_id == invoice_id)
                              .order_by(AuditEvent.id)).scalars().all()


def committed_numbers():
    db.session.expire_all()
    return db.session.execute(select(Invoice.number).order_by(Invoice.year, Invoice.sequence)).scalars().all()


# ---------------------------------------------------------------- numbers

def test_numbers_count_up_per_year(desk):
    w = desk
    numbers = []
    for _ in range(3):
        numbers.append(invoice_for(w).number)
        db.session.commit()
    assert numbers == ["INV/2026/000001", "INV/2026/000002", "INV/2026/000003"]
    # 17:30 UTC on 31 December is 00:30 on 1 January in Jakarta: the first invoice of 2027
    new_year = invoice_for(w, now=datetime(2026, 12, 31, 17, 30))
    db.session.commit()
    assert (new_year.number, new_year.year, new_year.sequence) == ("INV/2027/000001", 2027, 1)
    assert (new_year.issued_on, new_year.due_on) == (date(2027, 1, 1), date(2027, 1, 15))  # 14 days
    # 16:59 UTC is still 31 December in Jakarta: 2026 carries on where it was
    old_year = invoice_for(w, now=datetime(2026, 12, 31, 16, 59))
    db.session.commit()
    assert (old_year.number, old_year.issued_on) == ("INV/2026/000004", date(2026, 12, 31))
    assert invoice_for(w, now=datetime(2027, 3, 1, 3, 0)).number == "INV/2027/000002"
    db.session.commit()
    assert {s.year: s.last_number for s in db.session.execute(select(InvoiceSequence)).scalars()} == {
        2026: 4, 2027: 2}


def test_a_rolled_back_invoice_gives_its_number_back(desk):
    w = desk
    assert invoice_for(w).number == "INV/2026/000001"
    db.session.rollback()  # the year's very first invoice (its sequence row too) is gone
    assert db.session.execute(select(func.count()).select_from(InvoiceSequence)).scalar_one() == 0
    assert invoice_for(w).number == "INV/2026/000001"
    db.session.commit()
    assert invoice_for(w).number == "INV/2026/000002"
    db.session.rollback()
    assert invoice_for(w).number == "INV/2026/000002"
    db.session.commit()
    assert committed_numbers() == ["INV/2026/000001", "INV/2026/000002"]


def test_a_refused_invoice_takes_no_number(desk, make):
    w = desk
    with pytest.raises(DomainError):
        invoice_for(w, lines=[])
    with pytest.raises(DomainError):
        invoice_for(w, lines=[{"description": "Minus", "quantity": 1, "unit_price": -1}])
    db.session.rollback()  # as the web layer does after a DomainError
    with pytest.raises(NotFound):
        billing.create_invoice(customer_id=999_999, lines=LINES, now=NOW)
    assert invoice_for(w).number == "INV/2026/000001"


def test_the_invoice_lines_and_total(desk):
    w = desk
    invoice = invoice_for(w, lines=LINES + [{"kind": "product", "description": "Backup", "quantity": 3,
                                             "unit_price": 100_000, "covered_reason": "Garansi"}], due_days=30)
    db.session.commit()
    assert [(ln.position, ln.kind, ln.quantity, ln.unit_price, ln.amount, ln.covered_reason)
            for ln in invoice.lines] == [(1, "service", 1, 150_000, 150_000, None),
                                         (2, "part", 2, 250_000, 500_000, None),
                                         (3, "product", 3, 100_000, 0, "Garansi")]
    assert (invoice.total, invoice.amount_paid, invoice.status) == (TOTAL, 0, "unpaid")
    assert (invoice.issued_on, invoice.due_on, invoice.locale, invoice.created_by_id) == (
        TODAY, date(2026, 12, 20), "id", w.bill.id)
    (event,) = invoice_events(invoice.id)
    assert (event.action, event.new_value, event.note, event.actor_user_id) == (
        "invoice_created", invoice.number, "Rp 650.000", w.bill.id)
    assert billing.by_number(invoice.number).id == invoice.id and billing.by_number("INV/2026/999999") is None
    assert [i.id for i in billing.invoices_of(w.customer.id)] == [invoice.id]


def test_a_bad_line_is_refused_before_a_number_is_taken(desk):
    """The year's number is taken only once the lines are good: a refused invoice leaves the
    sequence as it was, even before any rollback."""
    w = desk
    invoice_for(w)
    for bad in ([{"description": "x", "quantity": 0, "unit_price": 1000}],
                [{"description": "x", "quantity": "dua", "unit_price": 1000}],
                [{"description": "x", "quantity": 1, "unit_price": -5}]):
        with pytest.raises(DomainError):
            invoice_for(w, lines=bad)
        assert db.session.get(InvoiceSequence, 2026).last_number == 1
    assert invoice_for(w).number == "INV/2026/000002"


# ---------------------------------------------------------------- bill to

def test_a_b2b_invoice_carries_the_organisation_and_its_npwp(desk, make):
    w = desk
    org = make.organisation(name="PT Batik Ayu", npwp="01.234.567.8-901.000")
    company = make.customer(kind="b2b", organisation_id=org.id, npwp="99.999.999.9-999.000")
    db.session.commit()
    invoice = invoice_for(w, customer=company)
    assert (invoice.bill_to_name, invoice.bill_to_company, invoice.npwp) == (
        company.name, "PT Batik Ayu", "01.234.567.8-901.000")


def test_a_b2b_customer_without_an_organisation_npwp_uses_their_own(desk, make):
    w = desk
    org = make.organisation(name="CV Tanpa NPWP")
    company = make.customer(kind="b2b", organisation_id=org.id, npwp="02.222.333.4-555.000")
    db.session.commit()
    invoice = invoice_for(w, customer=company)
    assert (invoice.bill_to_company, invoice.npwp) == ("CV Tanpa NPWP", "02.222.333.4-555.000")


def test_a_b2c_invoice_has_no_company_and_no_npwp(desk, make):
    w = desk
    person = make.customer(kind="b2c", npwp="03.333.444.5-666.000")
    db.session.commit()
    invoice = invoice_for(w, customer=person)
    assert (invoice.bill_to_name, invoice.bill_to_company, invoice.npwp) == (person.name, None, None)


# ---------------------------------------------------------------- payments

def test_a_recorded_payment_counts_only_once_confirmed(desk):
    w = desk
    invoice = invoice_for(w)
    db.session.commit()
    first = billing.record_payment(invoice.id, w.bill.id, amount=400_000, method="bank_transfer", paid_on=TODAY,
                                   reference=" BCA-001 ", now=NOW)
    db.session.commit()
    assert (first.status, first.reference, first.recorded_by_id) == ("pending", "BCA-001", w.bill.id)
    assert (invoice.amount_paid, invoice.status) == (0, "unpaid")
    assert [p.id for p in billing.pending_payments()] == [first.id]
    assert [i.id for i in billing.open_invoices()] == [invoice.id]
    billing.confirm_payment(first.id, w.bill2.id, now=NOW)
    db.session.commit()
    assert (first.status, first.confirmed_by_id, first.confirmed_at) == ("confirmed", w.bill2.id, NOW)
    assert (invoice.amount_paid, invoice.status, invoice.paid_at) == (400_000, "partially_paid", None)
    second = billing.record_payment(invoice.id, w.bill.id, amount=250_000, method="cash", paid_on=TODAY,
                                    confirm=True, now=NOW)
    db.session.commit()
    assert second.status == "confirmed"
    assert (invoice.amount_paid, invoice.status, invoice.paid_at) == (TOTAL, "paid", NOW)
    assert billing.open_invoices() == [] and billing.pending_payments() == []
    trail = [(e.action, e.old_value, e.new_value) for e in invoice_events(invoice.id)]
    assert trail == [("invoice_created", None, "INV/2026/000001"),
                     ("payment_recorded", None, "Rp 400.000"),
                     ("payment_confirmed", None, "Rp 400.000"),
                     ("invoice_status", "unpaid", "partially_paid"),
                     ("payment_recorded", None, "Rp 250.000"),
                     ("payment_confirmed", None, "Rp 250.000"),
                     ("invoice_status", "partially_paid", "paid")]
    with pytest.raises(DomainError):
        billing.confirm_payment(first.id, w.bill.id, now=NOW)  # handled already


def test_each_confirmation_mails_the_customer(desk, make):
    w = desk
    queue = make.queue()
    ticket = make.ticket(queue=queue, customer=w.customer)
    db.session.commit()
    invoice = invoice_for(w, ticket_id=ticket.id)
    pending = billing.record_payment(invoice.id, w.bill.id, amount=100_000, method="cash", paid_on=TODAY, now=NOW)
    db.session.commit()
    assert db.session.execute(select(OutboundMail).where(OutboundMail.kind == "payment_confirmed")).first() is None
    billing.confirm_payment(pending.id, w.bill.id, now=NOW)
    billing.record_payment(invoice.id, w.bill.id, amount=550_000, method="cash", paid_on=TODAY, confirm=True,
                           now=NOW)
    db.session.commit()
    rows = db.session.execute(select(OutboundMail).where(OutboundMail.kind == "payment_confirmed")
                              .order_by(OutboundMail.id)).scalars().all()
    assert len(rows) == 2
    for row in rows:
        assert (row.ticket_id, row.to_addrs, row.locale, row.user_id) == (
            ticket.id, [w.customer.primary_email], "id", None)
        assert invoice.number in row.subject
    jobs = {j.args[0]: j.args[1] for j in db.session.execute(select(OutboxJob)).scalars()
            if len(j.args) > 1 and j.args[0] in {r.id for r in rows}}
    payments = db.session.execute(select(Payment.id).order_by(Payment.id)).scalars().all()
    assert [jobs[r.id] for r in rows] == [{"payment_id": p, "invoice_id": invoice.id} for p in payments]


def test_an_invoice_without_a_ticket_mails_the_customers_primary_address(desk):
    w = desk
    invoice = invoice_for(w)
    billing.record_payment(invoice.id, w.bill.id, amount=TOTAL, method="bank_transfer", paid_on=TODAY,
                           confirm=True, now=NOW)
    db.session.commit()
    (row,) = db.session.execute(select(OutboundMail).where(OutboundMail.kind == "payment_confirmed")).scalars()
    assert (row.ticket_id, row.to_addrs, row.locale) == (None, [w.customer.primary_email], "id")


@pytest.mark.parametrize("kw, name", [
    ({"amount": 0}, "amount"), ({"amount": -1}, "amount"), ({"amount": 1.5}, "amount"),
    ({"amount": True}, "amount"), ({"method": "bitcoin"}, "method"), ({"paid_on": None}, "paid_on"),
    ({"paid_on": date(2026, 11, 21)}, "paid_on"),  # tomorrow in Jakarta
])
def test_a_bad_payment_is_refused(desk, kw, name):
    w = desk
    invoice = invoice_for(w)
    db.session.commit()
    args = dict(amount=100_000, method="bank_transfer", paid_on=TODAY) | kw
    with pytest.raises(DomainError) as exc:
        billing.record_payment(invoice.id, w.bill.id, now=NOW, **args)
    assert field(exc) == name
    assert db.session.execute(select(func.count()).select_from(Payment)).scalar_one() == 0


def test_a_payment_dated_today_in_jakarta_is_not_in_the_future(desk):
    w = desk
    invoice = invoice_for(w)
    after_midnight = wib(2026, 11, 21, 0, 30)  # still the 20th in UTC
    payment = billing.record_payment(invoice.id, w.bill.id, amount=1000, method="cash", paid_on=date(2026, 11, 21),
                                     now=after_midnight)
    assert payment.paid_on == date(2026, 11, 21)


def test_rejecting_a_payment_needs_a_reason_and_it_never_counts(desk):
    w = desk
    invoice = invoice_for(w)
    payment = billing.record_payment(invoice.id, w.bill.id, amount=TOTAL, method="bank_transfer", paid_on=TODAY,
                                     reference="BCA-9", now=NOW)
    db.session.commit()
    with pytest.raises(DomainError) as exc:
        billing.reject_payment(payment.id, w.bill2.id, "  ", now=NOW)
    assert field(exc) == "reason"
    billing.reject_payment(payment.id, w.bill2.id, "Tidak ada di mutasi rekening", now=NOW)
    db.session.commit()
    assert (payment.status, payment.note, payment.confirmed_by_id) == (
        "rejected", "Tidak ada di mutasi rekening", w.bill2.id)
    assert (invoice.amount_paid, invoice.status) == (0, "unpaid")
    assert invoice_events(invoice.id)[-1].action == "payment_rejected"
    with pytest.raises(DomainError):
        billing.confirm_payment(payment.id, w.bill.id, now=NOW)
    with pytest.raises(DomainError):
        billing.reject_payment(payment.id, w.bill.id, "Lagi", now=NOW)
    assert db.session.execute(select(OutboundMail).where(OutboundMail.kind == "payment_confirmed")).first() is None


def test_void_needs_a_reason_and_no_confirmed_payment(desk):
    w = desk
    invoice = invoice_for(w)
    pending = billing.record_payment(invoice.id, w.bill.id, amount=100_000, method="cash", paid_on=TODAY, now=NOW)
    db.session.commit()
    with pytest.raises(DomainError) as exc:
        billing.void_invoice(invoice.id, w.bill.id, "", now=NOW)
    assert field(exc) == "reason"
    billing.void_invoice(invoice.id, w.bill.id, "Salah pelanggan", now=NOW)  # a pending payment does not count
    db.session.commit()
    assert (invoice.status, invoice.voided_at, invoice.void_reason) == ("void", NOW, "Salah pelanggan")
    last = invoice_events(invoice.id)[-1]
    assert (last.action, last.old_value, last.new_value, last.note) == ("invoice_status", "unpaid", "void",
                                                                        "Salah pelanggan")
    # a void invoice takes no payment, and its number stays used
    with pytest.raises(DomainError):
        billing.confirm_payment(pending.id, w.bill.id, now=NOW)
    with pytest.raises(DomainError):
        billing.record_payment(invoice.id, w.bill.id, amount=1000, method="cash", paid_on=TODAY, now=NOW)
    with pytest.raises(DomainError):
        billing.void_invoice(invoice.id, w.bill.id, "Lagi", now=NOW)
    assert invoice_for(w).number == "INV/2026/000002"

    paid_in_part = invoice_for(w)
    billing.record_payment(paid_in_part.id, w.bill.id, amount=1000, method="cash", paid_on=TODAY, confirm=True,
                           now=NOW)
    db.session.commit()
    with pytest.raises(DomainError):
        billing.void_invoice(paid_in_part.id, w.bill.id, "Batal", now=NOW)
    assert paid_in_part.status == "partially_paid"


# ---------------------------------------------------------------- who

STEPS = {
    "record": lambda inv, pay, uid: billing.record_payment(inv.id, uid, amount=1000, method="cash", paid_on=TODAY,
                                                           now=NOW),
    "record_and_confirm": lambda inv, pay, uid: billing.record_payment(inv.id, uid, amount=1000, method="cash",
                                                                       paid_on=TODAY, confirm=True, now=NOW),
    "confirm": lambda inv, pay, uid: billing.confirm_payment(pay.id, uid, now=NOW),
    "reject": lambda inv, pay, uid: billing.reject_payment(pay.id, uid, "Tidak masuk", now=NOW),
    "void": lambda inv, pay, uid: billing.void_invoice(inv.id, uid, "Dobel", now=NOW),
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("step", list(STEPS))
def test_only_billing_handles_payments_and_voids(desk, make, step, role):
    w = desk
    invoice = invoice_for(w)
    pending = billing.record_payment(invoice.id, w.bill.id, amount=5000, method="cash", paid_on=TODAY, now=NOW)
    actor = make.user(roles=[role])
    db.session.commit()

    def state():
        db.session.flush()
        db.session.refresh(invoice)
        db.session.refresh(pending)
        count = lambda model: db.session.execute(select(func.count()).select_from(model)).scalar_one()  # noqa: E731
        return (invoice.status, invoice.amount_paid, pending.status, count(Payment), count(AuditEvent),
                count(OutboundMail))

    before = state()
    if role == "billing":
        STEPS[step](invoice, pending, actor.id)
        db.session.commit()
        assert state() != before
    else:
        with pytest.raises(Forbidden):
            STEPS[step](invoice, pending, actor.id)
        assert state() == before
    inactive = make.user(roles=["billing"], active=False)
    with pytest.raises(Forbidden):
        STEPS[step](invoice, pending, inactive.id)


# ---------------------------------------------------------------- concurrency

def test_concurrent_invoices_get_gapless_unique_numbers(app, desk):
    """8 writers at once, each with its own session and connection, 5 invoices each in their own
    transactions, every third one rolled back on purpose: the committed numbers are exactly
    1..N. On PostgreSQL the sequence row's lock orders them (and the very first invoice of the
    year races to create that row); on SQLite the database's write lock does (busy_timeout)."""
    customer_id, actor_id = desk.customer.id, desk.bill.id
    threads_n, per_thread = 8, 5
    barrier = threading.Barrier(threads_n)
    errors, committed, rolled_back = [], [], []
    lock = threading.Lock()

    def worker(n):
        with app.app_context():
            try:
                barrier.wait()
                for i in range(per_thread):
                    invoice = billing.create_invoice(customer_id=customer_id, lines=LINES, actor_id=actor_id, now=NOW)
                    number = invoice.number
                    if (n * per_thread + i) % 3 == 0:
                        db.session.rollback()
                        with lock:
                            rolled_back.append(number)
                    else:
                        db.session.commit()
                        with lock:
                            committed.append(number)
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(repr(exc))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert errors == []
    assert len(committed) == threads_n * per_thread - len(rolled_back) and rolled_back
    db.session.expire_all()
    rows = db.session.execute(select(Invoice.year, Invoice.sequence, Invoice.number)
                              .order_by(Invoice.sequence)).all()
    n = len(committed)
    assert [r.sequence for r in rows] == list(range(1, n + 1))  # no gap, no duplicate
    assert sorted(committed) == [r.number for r in rows] == [f"INV/2026/{s:06d}" for s in range(1, n + 1)]
    assert {r.year for r in rows} == {2026}
    assert db.session.get(InvoiceSequence, 2026).last_number == n
