"""Paying invoices (issue #7 §4): every open invoice has a unique transfer amount (total + a 3-digit
code), kept as what is left + the same code after a partial payment and cleared once paid or void;
the customer sends a proof of transfer on the portal (a pending payment with the stored file, billing
is told), billing sees it in the queue with the proof, downloads it and confirms (the customer's
confirmation mail); overdue invoices in the queue; who may see what."""
import io
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from helpdesk.billing import proofs
from helpdesk.billing import services as billing
from helpdesk.billing import statements
from helpdesk.billing.models import Invoice, Payment
from helpdesk.errors import DomainError, NotFound
from helpdesk.extensions import db
from helpdesk.mail.models import OutboundMail
from helpdesk.portal import tokens
from helpdesk.sla.models import Notification
from helpdesk.tickets import storage
from helpdesk.timeutil import utcnow
from helpdesk.warranty import rules
from tests.clamav import EICAR, EICAR_FOUND, clamd_server  # noqa: F401  (fixture)
from tests.factories import Factories
from tests.smtp_server import shared_smtp, smtp_server  # noqa: F401  (fixtures)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64 + b"bukti transfer"
PDF = b"%PDF-1.4\n%bukti\n"
ACCOUNT = "BCA 0123456789 a.n. PT Web Jogja Digital"


@pytest.fixture
def desk(app, make):
    app.config["COMPANY_BANK_ACCOUNT"] = ACCOUNT
    w = SimpleNamespace(bill=make.user(roles=["billing"], email="bayu@desk.example"),
                        bill2=make.user(roles=["billing"], email="john@desk.example"),
                        tech=make.user(roles=["technical_support"]), admin=make.user(roles=["admin"]),
                        sales=make.user(roles=["marketing"]),
                        dewi=make.customer(name="Dewi", email="dewi@example.com", language="en"),
                        budi=make.customer(name="Budi", email="budi@example.com", language="en"))
    db.session.commit()
    return w


def invoice(w, customer, price=150_000, **kw):
    inv = billing.create_invoice(customer_id=customer.id, actor_id=w.bill.id,
                                 lines=[{"description": "Hosting", "quantity": 1, "unit_price": price}], **kw)
    db.session.commit()
    return inv


def today():
    return rules.complaint_day(utcnow())


def sign_in(client, customer_id):
    from helpdesk.customers.models import Customer

    customer = db.session.get(Customer, customer_id)
    customer.login_nonce = customer.login_nonce or "n" * 32
    db.session.commit()
    assert client.post(f"/portal/login/{tokens.make_sign_in_token(customer.id, customer.login_nonce)}"
                       ).status_code == 303


def send_proof(client, invoice_id, data=PNG, name="bukti.png", amount="150.000", paid_on=None, reference="BCA 123"):
    return client.post(f"/portal/invoices/{invoice_id}/proof", content_type="multipart/form-data", data={
        "amount": amount, "paid_on": (paid_on or today()).isoformat(), "reference": reference,
        "proof": (io.BytesIO(data), name)})


# ---------------------------------------------------------------- transfer codes

def test_open_invoices_with_the_same_total_never_share_a_transfer_amount(desk):
    w = desk
    made = [invoice(w, w.dewi if i % 2 else w.budi) for i in range(40)]
    amounts = [inv.transfer_amount for inv in made]
    assert all(1 <= inv.transfer_code <= 999 and inv.transfer_amount == 150_000 + inv.transfer_code for inv in made)
    assert len(set(amounts)) == 40
    db.session.expire_all()
    stored = db.session.execute(select(Invoice.transfer_amount).where(
        Invoice.status.in_(("unpaid", "partially_paid")))).scalars().all()
    assert sorted(stored) == sorted(amounts)
    # paid and void invoices give their amount back
    paid, void = made[0], made[1]
    billing.record_payment(paid.id, w.bill.id, amount=150_000, method="cash", paid_on=today(), confirm=True)
    billing.void_invoice(void.id, w.bill.id, "Salah tagih")
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Invoice, paid.id).transfer_amount is None
    assert db.session.get(Invoice, void.id).transfer_amount is None


def test_a_collision_picks_another_code(desk, monkeypatch):
    """A concurrent writer took the amount after we looked (simulated: the first pick ignores what is
    taken): the unique index refuses it under a savepoint and another code is taken; the invoice and
    the rest of the transaction are kept."""
    from helpdesk.billing import transfer

    w = desk
    first = invoice(w, w.dewi)
    real = transfer.pick_code
    picks = []

    def racing(total, taken, rng, prefer=None):
        code = first.transfer_code if not picks else real(total, taken, rng, prefer=prefer)
        picks.append(code)
        return code

    monkeypatch.setattr(transfer, "pick_code", racing)
    second = invoice(w, w.budi)
    assert picks[0] == first.transfer_code and len(picks) == 2
    assert second.transfer_amount != first.transfer_amount and 150_001 <= second.transfer_amount <= 150_999
    db.session.expire_all()
    assert db.session.get(Invoice, second.id).transfer_amount == 150_000 + picks[1]
    assert db.session.get(Invoice, second.id).number.endswith("000002")
    assert db.session.get(Invoice, first.id).transfer_amount == first.transfer_amount


def test_a_partial_payment_leaves_the_rest_plus_the_same_code(desk):
    w = desk
    inv = invoice(w, w.dewi, price=1_000_000)
    code = inv.transfer_code
    billing.record_payment(inv.id, w.bill.id, amount=400_000, method="cash", paid_on=today(), confirm=True)
    db.session.commit()
    db.session.expire_all()
    inv = db.session.get(Invoice, inv.id)
    assert (inv.status, inv.transfer_code, inv.transfer_amount) == ("partially_paid", code, 600_000 + code)
    # a pending payment changes nothing yet
    billing.record_payment(inv.id, w.bill.id, amount=100_000, method="cash", paid_on=today())
    db.session.commit()
    assert db.session.get(Invoice, inv.id).transfer_amount == 600_000 + code


# ---------------------------------------------------------------- the portal

def test_customer_uploads_a_proof_billing_downloads_and_confirms(app, desk, client):
    w = desk
    inv = invoice(w, w.dewi)
    sign_in(client, w.dewi.id)
    page = client.get(f"/portal/invoices/{inv.id}").get_data(as_text=True)
    amount = f"Rp {inv.transfer_amount:,}".replace(",", ".")
    assert f"Transfer exactly {amount} (the last three digits identify your invoice)." in page
    assert ACCOUNT in page and 'id="proof-form"' in page

    resp = send_proof(client, inv.id, amount=str(inv.transfer_amount))
    assert resp.status_code == 303
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "we received your proof of transfer" in page and "bukti.png" in page
    pay = db.session.execute(select(Payment)).scalar_one()
    assert (pay.status, pay.source, pay.method, pay.customer_id, pay.amount, pay.reference, pay.recorded_by_id) == (
        "pending", "portal", "bank_transfer", w.dewi.id, inv.transfer_amount, "BCA 123", None)
    assert (pay.proof_name, pay.proof_content_type) == ("bukti.png", "image/png")
    assert storage.path_for(pay.proof_path).read_bytes() == PNG
    told = db.session.execute(select(Notification.user_id, Notification.kind, Notification.body)).all()
    assert sorted(u for u, _k, _b in told) == sorted([w.bill.id, w.bill2.id])
    assert all(k == "payment_proof" and inv.number in b for _u, k, b in told)

    agent = app.test_client()
    agent.post("/login", data={"email": w.bill.email, "password": "correct-horse-battery"})
    queue = agent.get("/billing").get_data(as_text=True)
    assert f'id="billing-payment-{pay.id}"' in queue and f"/billing/payments/{pay.id}/proof" in queue
    download = agent.get(f"/billing/payments/{pay.id}/proof")
    assert download.status_code == 200 and download.data == PNG
    assert download.headers["Content-Disposition"].startswith("attachment")
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert f"/billing/payments/{pay.id}/proof" in agent.get(f"/billing/invoices/{inv.id}").get_data(as_text=True)
    assert agent.post(f"/billing/payments/{pay.id}/confirm").status_code == 302
    db.session.expire_all()
    assert db.session.get(Invoice, inv.id).status == "paid"
    (mail,) = db.session.execute(select(OutboundMail).where(OutboundMail.kind == "payment_confirmed")).scalars()
    assert mail.to_addrs == ["dewi@example.com"]
    # the customer never downloads it through billing's route; others are refused too
    assert client.get(f"/billing/payments/{pay.id}/proof").status_code == 302
    tech = app.test_client()
    tech.post("/login", data={"email": w.tech.email, "password": "correct-horse-battery"})
    assert tech.get(f"/billing/payments/{pay.id}/proof").status_code == 403


@pytest.mark.parametrize("data, name, amount, paid_on, message", [
    (b"MZ\x90\x00 not an image", "bukti.png", "150.000", 0, "must be an image"),
    (b"", "bukti.png", "150.000", 0, "Choose the proof"),
    (PDF + b"x" * (5 * 1024 * 1024), "big.pdf", "150.000", 0, "larger than 5 MB"),
    (PDF, "bukti.pdf", "1,5", 0, "whole rupiah"),
    (PDF, "bukti.pdf", "150.000", 2, "cannot be in the future"),
])
def test_a_refused_proof_keeps_what_was_typed(desk, client, data, name, amount, paid_on, message):
    w = desk
    inv = invoice(w, w.dewi)
    sign_in(client, w.dewi.id)
    resp = send_proof(client, inv.id, data=data, name=name, amount=amount,
                      paid_on=today() + timedelta(days=paid_on), reference="Dari Dewi")
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    assert message in page
    assert 'value="Dari Dewi"' in page and f'value="{amount}"' in page
    assert db.session.execute(select(func.count()).select_from(Payment)).scalar_one() == 0


def test_a_proof_with_a_virus_is_refused_before_it_is_stored(app, desk, client, clamd_server, tmp_path):
    """With ClamAV configured, the EICAR test file inside a "screenshot" is refused with the reason and
    nothing is stored; a clean one is accepted; an unreachable daemon does not stop the payment."""
    w = desk
    inv = invoice(w, w.dewi)
    sign_in(client, w.dewi.id)
    app.config["CLAMD_SOCKET"] = clamd_server.socket
    infected = PNG + EICAR
    resp = send_proof(client, inv.id, data=infected)
    assert resp.status_code == 400
    assert EICAR_FOUND in resp.get_data(as_text=True)
    assert db.session.execute(select(func.count()).select_from(Payment)).scalar_one() == 0
    import hashlib

    assert not storage.path_for(hashlib.sha256(infected).hexdigest()).exists()
    assert send_proof(client, inv.id).status_code in (302, 303)
    app.config["CLAMD_SOCKET"] = str(tmp_path / "no-daemon.sock")
    assert send_proof(client, inv.id, data=PNG + b"2").status_code in (302, 303)
    assert db.session.execute(select(func.count()).select_from(Payment)).scalar_one() == 2


def test_a_pdf_proof_and_the_service_rules(desk):
    w = desk
    inv = invoice(w, w.dewi)
    pay = proofs.submit_proof(w.dewi.id, inv.id, amount=50_000, paid_on=today(), reference=None,
                              filename="C:\\scans\\transfer", data=PDF)
    assert (pay.proof_name, pay.proof_content_type) == ("transfer.pdf", "application/pdf")
    with pytest.raises(NotFound):
        proofs.submit_proof(w.budi.id, inv.id, amount=50_000, paid_on=today(), reference=None, filename="x.pdf",
                            data=PDF)
    for _ in range(proofs.MAX_PENDING - 1):
        proofs.submit_proof(w.dewi.id, inv.id, amount=1_000, paid_on=today(), reference=None, filename="x.pdf",
                            data=PDF)
    with pytest.raises(DomainError):
        proofs.submit_proof(w.dewi.id, inv.id, amount=1_000, paid_on=today(), reference=None, filename="x.pdf",
                            data=PDF)
    billing.void_invoice(invoice(w, w.dewi).id, w.bill.id, "x")
    db.session.commit()
    void = db.session.execute(select(Invoice).where(Invoice.status == "void")).scalar_one()
    with pytest.raises(DomainError):
        proofs.submit_proof(w.dewi.id, void.id, amount=1_000, paid_on=today(), reference=None, filename="x.pdf",
                            data=PDF)


def test_a_customer_cannot_see_or_pay_another_customers_invoice(desk, client):
    w = desk
    inv = invoice(w, w.budi)
    sign_in(client, w.dewi.id)
    assert client.get(f"/portal/invoices/{inv.id}").status_code == 404
    assert send_proof(client, inv.id).status_code == 404
    assert client.get("/portal/invoices/999999").status_code == 404
    assert send_proof(client, 999999).status_code == 404
    assert db.session.execute(select(func.count()).select_from(Payment)).scalar_one() == 0


# ---------------------------------------------------------------- billing pages

def test_overdue_invoices_are_listed_in_the_queue(desk, client, auth):
    w = desk
    late = invoice(w, w.dewi, due_days=0)
    db.session.execute(Invoice.__table__.update().where(Invoice.id == late.id).values(
        due_on=today() - timedelta(days=3)))
    current = invoice(w, w.budi)
    db.session.commit()
    auth.login(w.bill)
    page = client.get("/billing").get_data(as_text=True)
    section = page.split('id="billing-overdue-invoices"')[1].split("</section>")[0]
    assert late.number in section and current.number not in section


def test_non_billing_agents_get_403_on_the_statement_pages(desk, client, auth):
    w = desk
    st, _new, _already = statements.import_statement(w.bill.id, "m.csv",
                                                     b"Date,Description,Amount\n2026-11-05,X,10.000 CR\n")
    db.session.commit()
    for user in (w.tech, w.admin, w.sales):
        auth.login(user)
        assert client.get("/billing/statements").status_code == 403
        assert client.get(f"/billing/statements/{st.id}").status_code == 403
        assert client.post(f"/billing/statements/{st.id}/confirm").status_code == 403
        auth.logout()
    auth.login(w.bill)
    assert client.get(f"/billing/statements/{st.id}").status_code == 200


# ---------------------------------------------------------------- the real SMTP server

@pytest.fixture
def mail_app(app_factory, smtp_server):
    app = app_factory(**smtp_server.mail_config(), COMPANY_BANK_ACCOUNT=ACCOUNT)
    with app.app_context():
        yield app
        db.session.remove()


def work():
    """Run the queued jobs of the mail app in this process (burst)."""
    from rq import SimpleWorker

    from helpdesk import jobs

    SimpleWorker([jobs.get_queue(q) for q in jobs.QUEUES], connection=jobs.get_redis()).work(burst=True)
    db.session.remove()


def test_a_bank_line_confirmed_mails_the_customer_through_smtp(mail_app, smtp_server):
    make = Factories()
    bill = make.user(email="bayu@desk.example", roles=["billing"])
    jane = make.customer(name="Jane Doe", email="jane@example.com", language="en")
    db.session.commit()
    bill_id = bill.id
    inv = billing.create_invoice(customer_id=jane.id, actor_id=bill_id,
                                 lines=[{"description": "Domain renewal", "quantity": 1, "unit_price": 250_000}])
    db.session.commit()
    inv_id, number, amount = inv.id, inv.number, inv.transfer_amount
    rupiah = f"Rp {amount:,}".replace(",", ".")
    billing.mail_invoice(inv)
    db.session.commit()
    work()
    [invoice_mail] = smtp_server.to("jane@example.com")
    assert f"Bank transfer to {ACCOUNT}" in invoice_mail.text
    assert f"Transfer exactly {rupiah} (the last three digits identify your invoice)." in invoice_mail.text
    assert f"Transfer exactly <strong>{rupiah}</strong>" in invoice_mail.html
    csv_data = (f"Tanggal,Keterangan,Jumlah\n{today().strftime('%d/%m/%Y')},TRSF JANE DOE,"
                f"\"{amount:,}.00 CR\"\n").encode()
    st, new, _already = statements.import_statement(bill_id, "bca.csv", csv_data)
    assert new == 1
    assert statements.confirm_matched(st.id, bill_id) == (1, 0)
    db.session.commit()
    work()
    [_invoice_mail, mail] = smtp_server.to("jane@example.com")
    assert " ".join(mail["Subject"].split()) == f"Payment received for invoice {number}"
    assert f"Amount paid: {rupiah}" in mail.text and "This invoice is now fully paid." in mail.text
    assert db.session.get(Invoice, inv_id).status == "paid"
