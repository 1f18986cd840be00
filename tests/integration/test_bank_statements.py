"""Bank statements (helpdesk/billing/statements.py and the /billing/statements pages): upload a CSV
→ preview (matched by transfer amount, by the invoice number in the text, unmatched) → confirm the
matched payments in one action (payments confirmed, invoices paid, an order paid through its hook,
the customers' mails queued); the same file again or an overlapping one adds nothing old; an
unmatched line matched by hand or ignored."""
import io
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from helpdesk.billing import services as billing
from helpdesk.billing import statements
from helpdesk.billing.models import BankStatement, BankStatementLine, Invoice, Payment
from helpdesk.errors import Conflict, DomainError, Forbidden
from helpdesk.extensions import db
from helpdesk.mail.models import OutboundMail
from helpdesk.sales import services as sales
from helpdesk.sales.models import Order
from helpdesk.timeutil import utcnow
from helpdesk.warranty import rules


@pytest.fixture
def desk(app, make):
    w = SimpleNamespace(bill=make.user(roles=["billing"]), sales=make.user(roles=["marketing"]),
                        tech=make.user(roles=["technical_support"]), admin=make.user(roles=["admin"]),
                        dewi=make.customer(name="Dewi", email="dewi@example.com", language="id"),
                        budi=make.customer(name="Budi", email="budi@example.com", language="en"))
    db.session.commit()
    return w


def invoice(w, customer, price):
    inv = billing.create_invoice(customer_id=customer.id, actor_id=w.bill.id,
                                 lines=[{"description": "Hosting", "quantity": 1, "unit_price": price}])
    db.session.commit()
    return inv


def csv_of(rows):
    """A Mandiri-style export: semicolons, Indonesian numbers, separate debit and credit columns."""
    out = ["Account No;Date;Description;Reference No.;Debit;Credit"]
    for day, desc, ref, debit, credit in rows:
        out.append(f"1370012345678;{day};{desc};{ref};{debit};{credit}")
    return ("\n".join(out) + "\n").encode()


def idr(n):
    return f"{n:,}".replace(",", ".") + ",00"


def upload(client, data, name="mutasi.csv"):
    return client.post("/billing/statements", data={"file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def mails(kind="payment_confirmed"):
    return db.session.execute(select(OutboundMail).where(OutboundMail.kind == kind)
                              .order_by(OutboundMail.id)).scalars().all()


def test_upload_preview_confirm_and_the_same_file_again(desk, client, auth):
    w = desk
    today = rules.complaint_day(utcnow()).isoformat()
    by_amount = invoice(w, w.dewi, 150_000)
    order = sales.create_order(w.sales.id, customer_id=w.budi.id, channel="phone",
                               lines=[{"description": "Website", "quantity": 1, "unit_price": 2_000_000}])
    sales.confirm(order.id, w.sales.id)
    db.session.commit()
    order_invoice = db.session.get(Invoice, order.invoice_id)
    by_reference = invoice(w, w.dewi, 300_000)
    assert by_amount.transfer_amount and order_invoice.transfer_amount
    rows = [(today, "TRSF DEWI", "R1", "", idr(by_amount.transfer_amount)),
            (today, "TRSF BUDI", "R2", "", idr(order_invoice.transfer_amount)),
            (today, f"SETORAN {by_reference.number.replace('/', '')}", "R3", "", idr(300_000)),
            (today, "TRSF UNKNOWN PERSON", "R4", "", idr(77_000)),
            (today, "BIAYA ADMIN", "R5", idr(15_000), "0,00")]
    data = csv_of(rows)
    auth.login(w.bill)
    resp = upload(client, data)
    assert resp.status_code == 303
    st = db.session.execute(select(BankStatement)).scalar_one()
    assert (st.lines_total, st.credits) == (5, 4)
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "4 new credit(s) imported." in page
    lines = {ln.reference: ln for ln in db.session.execute(select(BankStatementLine)).scalars()}
    assert set(lines) == {"R1", "R2", "R3", "R4"}  # the debit is not imported
    assert (lines["R1"].invoice_id, lines["R1"].match_rule, lines["R1"].status) == (
        by_amount.id, "transfer_amount", "matched")
    assert (lines["R2"].invoice_id, lines["R2"].match_rule) == (order_invoice.id, "transfer_amount")
    assert (lines["R3"].invoice_id, lines["R3"].match_rule) == (by_reference.id, "reference")
    assert (lines["R4"].invoice_id, lines["R4"].status) == (None, "unmatched")
    for number in (by_amount.number, order_invoice.number, by_reference.number):
        assert number in page
    assert "Confirm matched payments" in page and "TRSF UNKNOWN PERSON" in page

    resp = client.post(f"/billing/statements/{st.id}/confirm")
    assert resp.status_code == 303
    assert "3 payment(s) confirmed." in client.get(resp.headers["Location"]).get_data(as_text=True)
    db.session.expire_all()
    payments = db.session.execute(select(Payment).order_by(Payment.id)).scalars().all()
    assert [(p.source, p.status, p.method, p.reference) for p in payments] == [
        ("bank", "confirmed", "bank_transfer", "R1"), ("bank", "confirmed", "bank_transfer", "R2"),
        ("bank", "confirmed", "bank_transfer", "R3")]
    assert [db.session.get(Invoice, i).status for i in (by_amount.id, order_invoice.id, by_reference.id)] == [
        "paid", "paid", "paid"]
    assert all(db.session.get(Invoice, i).transfer_amount is None for i in (by_amount.id, order_invoice.id))
    assert db.session.get(Order, order.id).status == "paid"  # PAID_HOOKS["order"]
    assert sorted(m.to_addrs[0] for m in mails()) == ["budi@example.com", "dewi@example.com", "dewi@example.com"]
    statuses = {ln.reference: ln.status for ln in db.session.execute(select(BankStatementLine)).scalars()}
    assert statuses == {"R1": "confirmed", "R2": "confirmed", "R3": "confirmed", "R4": "unmatched"}

    # the same file again: nothing new
    resp = upload(client, data, name="mutasi-lagi.csv")
    assert resp.status_code == 303
    assert "This file was already imported" in client.get(resp.headers["Location"]).get_data(as_text=True)
    assert db.session.execute(select(func.count()).select_from(BankStatement)).scalar_one() == 1
    assert db.session.execute(select(func.count()).select_from(BankStatementLine)).scalar_one() == 4
    # confirming again confirms nothing more
    client.post(f"/billing/statements/{st.id}/confirm")
    assert db.session.execute(select(func.count()).select_from(Payment)).scalar_one() == 3
    assert len(mails()) == 3


def test_an_overlapping_file_adds_only_its_new_line(desk, client, auth):
    w = desk
    today = rules.complaint_day(utcnow()).isoformat()
    inv = invoice(w, w.budi, 500_000)
    old = [(today, "TRSF A", "A1", "", idr(10_000)), (today, "TRSF B", "B1", "", idr(20_000))]
    auth.login(w.bill)
    assert upload(client, csv_of(old)).status_code == 303
    newer = old[1:] + [(today, "TRSF BUDI", "C1", "", idr(inv.transfer_amount))]
    resp = upload(client, csv_of(newer), name="mutasi-2.csv")
    assert resp.status_code == 303
    assert "1 new credit(s) imported." in client.get(resp.headers["Location"]).get_data(as_text=True)
    refs = db.session.execute(select(BankStatementLine.reference).order_by(BankStatementLine.id)).scalars().all()
    assert refs == ["A1", "B1", "C1"]
    # a file whose credits were all imported before: a new statement, no new line, said so
    resp = upload(client, csv_of(old[:1]) + b"\n", name="mutasi-3.csv")
    assert "Every credit of this file was already imported" in client.get(resp.headers["Location"]).get_data(
        as_text=True)
    assert db.session.execute(select(func.count()).select_from(BankStatementLine)).scalar_one() == 3


def test_an_unmatched_line_matched_by_hand_or_ignored(desk, client, auth):
    w = desk
    today = rules.complaint_day(utcnow()).isoformat()
    inv = invoice(w, w.dewi, 400_000)
    data = csv_of([(today, "TRSF DARI IBU DEWI", "X1", "", idr(200_000)),
                   (today, "BUNGA", "X2", "", idr(1_234))])
    auth.login(w.bill)
    upload(client, data)
    l1, l2 = db.session.execute(select(BankStatementLine).order_by(BankStatementLine.id)).scalars().all()
    assert (l1.status, l2.status) == ("unmatched", "unmatched")
    listing = client.get("/billing/statements").get_data(as_text=True)
    assert "TRSF DARI IBU DEWI" in listing and "BUNGA" in listing
    # a wrong number: refused, nothing changes
    resp = client.post(f"/billing/statement-lines/{l1.id}/match", data={"invoice": "INV/2020/999999"})
    assert resp.status_code == 303
    assert "No invoice INV/2020/999999" in client.get(resp.headers["Location"]).get_data(as_text=True)
    resp = client.post(f"/billing/statement-lines/{l1.id}/match", data={"invoice": inv.number.lower()})
    assert resp.status_code == 303
    resp = client.post(f"/billing/statement-lines/{l2.id}/ignore")
    assert resp.status_code == 303
    db.session.expire_all()
    l1, l2 = db.session.get(BankStatementLine, l1.id), db.session.get(BankStatementLine, l2.id)
    assert (l1.status, l1.invoice_id, l1.match_rule, l2.status) == ("confirmed", inv.id, "manual", "ignored")
    pay = db.session.get(Payment, l1.payment_id)
    assert (pay.amount, pay.status, pay.source, pay.reference) == (200_000, "confirmed", "bank", "X1")
    inv = db.session.get(Invoice, inv.id)
    # partly paid: the rest plus the same code
    assert inv.status == "partially_paid" and inv.transfer_amount == 200_000 + inv.transfer_code
    assert len(mails()) == 1
    with pytest.raises(Conflict):
        statements.ignore(l1.id, w.bill.id)
    page = client.get("/billing/statements").get_data(as_text=True)
    assert "TRSF DARI IBU DEWI" not in page and "BUNGA" not in page


def test_a_matched_invoice_paid_meanwhile_goes_back_to_unmatched(desk):
    w = desk
    today = rules.complaint_day(utcnow()).isoformat()
    inv = invoice(w, w.dewi, 100_000)
    st, new, already = statements.import_statement(w.bill.id, "m.csv", csv_of(
        [(today, "TRSF", "Z1", "", idr(inv.transfer_amount))]))
    db.session.commit()
    assert (new, already) == (1, False)
    billing.record_payment(inv.id, w.bill.id, amount=100_000, method="cash", paid_on=rules.complaint_day(utcnow()),
                           confirm=True)
    db.session.commit()
    assert statements.confirm_matched(st.id, w.bill.id) == (0, 1)
    line = db.session.execute(select(BankStatementLine)).scalar_one()
    assert (line.status, line.invoice_id) == ("unmatched", None)


def test_only_billing_imports(desk, client, auth):
    w = desk
    for user in (w.tech, w.admin, w.sales):
        with pytest.raises(Forbidden):
            statements.import_statement(user.id, "x.csv", csv_of([]))
        auth.login(user)
        assert client.get("/billing/statements").status_code == 403
        assert upload(client, csv_of([])).status_code == 403
        auth.logout()


def test_an_unreadable_file_is_refused_on_the_form(desk, client, auth):
    auth.login(desk.bill)
    resp = upload(client, b"just some text\nno table here\n")
    assert resp.status_code == 400
    assert "not a bank statement we can read" in resp.get_data(as_text=True)
    with pytest.raises(DomainError):
        statements.import_statement(desk.bill.id, "x.csv", b"")
    assert db.session.execute(select(func.count()).select_from(BankStatement)).scalar_one() == 0
