"""Paid repairs through the services (helpdesk/repairs/services.py), issue #6 §5 and §7: the draft
from the eligibility decision, line validation, every step by every role, separation of duties,
billing's price edits, the customer's decision (signed link, version), the invoice, payment and
work, with the ticket status, audit and mail rows of each step."""
from datetime import date
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from helpdesk.auth.models import ROLES
from helpdesk.billing import services as billing
from helpdesk.billing.models import Invoice
from helpdesk.errors import Conflict, DomainError, Forbidden, NotFound
from helpdesk.extensions import db
from helpdesk.jobs import OutboxJob
from helpdesk.mail.models import OutboundMail
from helpdesk.repairs import services as repairs
from helpdesk.repairs.models import RepairQuote, RepairQuoteLine
from helpdesk.tickets import services as tickets
from helpdesk.tickets.models import AuditEvent
from helpdesk.warranty import services as warranty
from helpdesk.warranty.models import IssueCategory, Product
from helpdesk.webform.tokens import InvalidToken
from tests.factories import wib

CREATED = wib(2026, 11, 14, 10, 0)
NOW = wib(2026, 11, 20, 10, 0)
TODAY = date(2026, 11, 20)
FEE = 150_000  # REPAIR_SERVICE_FEE in the test config (the default)

LINES = [
    {"kind": "service", "description": "Biaya servis", "quantity": 1, "unit_price": FEE},
    {"kind": "part", "description": "Lisensi plugin", "quantity": 2, "unit_price": "250.000"},
    {"kind": "product", "description": "Backup harian", "quantity": 1, "unit_price": 300_000, "covered": True,
     "covered_reason": "Bonus paket"},
]
LINES_TOTAL = FEE + 2 * 250_000  # the covered line is 0


@pytest.fixture
def app(app_factory, request):
    """The app, with config overrides from an indirect parametrisation (REPAIR_WORK_BEFORE_PAYMENT)."""
    app = app_factory(**getattr(request, "param", {}))
    with app.app_context():
        yield app
        db.session.remove()


@pytest.fixture
def desk(app, make):
    q = make.queue(slug="technical-support", name="Technical Support")
    website = Product(code="WEB-TOKO", name="Website Toko Online", product_line="website", price=4_500_000,
                      warranty_days=90, cashback_days=0)
    down = IssueCategory(code="site_down", name_id="Situs tidak bisa dibuka", name_en="Site down", is_defect=True,
                         product_line="website")
    change = IssueCategory(code="content_change", name_id="Ubah konten", name_en="Content change", is_defect=False)
    db.session.add_all([website, down, change])
    db.session.flush()
    w = SimpleNamespace(q=q, website=website, down=down, change=change,
                        tech=make.user(roles=["technical_support"], queues=[q]),
                        bill=make.user(roles=["billing"], queues=[q]),
                        bill2=make.user(roles=["billing"], queues=[q]))
    # a content change is not a defect: paid service
    w.ticket, w.customer = repair_ticket(make, w, w.change)
    db.session.commit()
    assert w.ticket.charge == "paid"
    return w


def repair_ticket(make, w, category, language="en"):
    customer = make.customer(language=language)
    host = f"toko{customer.id}.co.id"
    warranty.create_item(customer_id=customer.id, product_id=w.website.id, purchase_date=date(2026, 11, 1),
                         activation_date=date(2026, 11, 3), identifier=host, with_bundle=False)
    ticket = tickets.create_ticket(customer_id=customer.id, subject="Situs toko", body_text=f"{host} perlu diubah",
                                   channel="email", queue_id=w.q.id, now=CREATED)
    warranty.set_category(ticket.id, w.tech.id, category.id, now=CREATED)
    db.session.flush()
    return ticket, customer


def field(exc_info):
    return exc_info.value.details.get("field")


def events(quote_id, action=None):
    q = select(AuditEvent).where(AuditEvent.object_type == "repair", AuditEvent.object_id == quote_id)
    if action:
        q = q.where(AuditEvent.action == action)
    return db.session.execute(q.order_by(AuditEvent.id)).scalars().all()


def mails(ticket_id, kind):
    return db.session.execute(select(OutboundMail).where(OutboundMail.ticket_id == ticket_id,
                                                         OutboundMail.kind == kind)
                              .order_by(OutboundMail.id)).scalars().all()


def mail_context(row):
    """The template context the mail was queued with (the outbox job's second argument)."""
    for job in db.session.execute(select(OutboxJob).where(OutboxJob.queue == "mail")).scalars():
        if job.args and job.args[0] == row.id:
            return job.args[1] if len(job.args) > 1 else {}
    return None


def advance(w, to, lines=LINES):
    """The desk's quote brought to `to` by the desk's people and customer (committed)."""
    quote = repairs.draft_quote(w.ticket.id, w.tech.id, now=NOW)
    if to != "draft":
        repairs.save_lines(quote.id, w.tech.id, lines, now=NOW)
        repairs.submit(quote.id, w.tech.id, now=NOW)
    if to in ("pending_customer", "awaiting_payment", "in_work"):
        repairs.approve(quote.id, w.bill.id, now=NOW)
    if to in ("awaiting_payment", "in_work"):
        repairs.customer_decide(quote.id, w.customer.id, "approve", version=quote.version, now=NOW)
    if to == "in_work" and quote.status != "in_work":
        billing.record_payment(quote.invoice_id, w.bill.id, amount=quote.total, method="bank_transfer",
                               paid_on=TODAY, reference="TRF-1", confirm=True, now=NOW)
    db.session.commit()
    assert quote.status == to
    return quote


def snapshot(w, quote):
    db.session.flush()
    if quote is not None:
        db.session.refresh(quote)
    db.session.refresh(w.ticket)
    count = lambda model, *where: db.session.execute(  # noqa: E731
        select(func.count()).select_from(model).where(*where)).scalar_one()
    state = (count(RepairQuote), count(RepairQuoteLine), count(AuditEvent), count(OutboundMail), count(Invoice),
             w.ticket.status)
    if quote is not None:
        state += (quote.status, quote.version, quote.total, [(ln.unit_price, ln.amount) for ln in quote.lines])
    return state


# ---------------------------------------------------------------- the draft

def test_a_paid_ticket_starts_with_the_chargeable_service_fee(desk):
    w = desk
    quote = repairs.draft_quote(w.ticket.id, w.tech.id, now=NOW)
    db.session.commit()
    assert (quote.status, quote.version, quote.charge, quote.total) == ("draft", 1, "paid", FEE)
    (line,) = quote.lines
    assert (line.kind, line.quantity, line.unit_price, line.covered, line.covered_reason, line.amount) == (
        "service", 1, FEE, False, None, FEE)
    (event,) = events(quote.id)
    assert (event.action, event.old_value, event.new_value, event.actor_user_id, event.ticket_id) == (
        "repair", None, "draft", w.tech.id, w.ticket.id)


def test_the_service_fee_comes_from_the_config(desk, app):
    app.config["REPAIR_SERVICE_FEE"] = 175_000
    quote = repairs.draft_quote(desk.ticket.id, desk.tech.id, now=NOW)
    assert quote.total == 175_000 and quote.lines[0].unit_price == 175_000


@pytest.mark.parametrize("language, fee_text, reason_start", [
    ("en", "Service fee", "Free — in warranty until"),
    ("id", "Biaya servis", "Gratis — masih garansi sampai"),
    (None, "Biaya servis", "Gratis — masih garansi sampai"),
])
def test_the_prefilled_line_is_in_the_customers_language(desk, make, language, fee_text, reason_start):
    w = desk
    paid, _c = repair_ticket(make, w, w.change, language=language)
    free, _c = repair_ticket(make, w, w.down, language=language)
    db.session.commit()
    assert [ln["description"] for ln in repairs.default_lines(paid)] == [fee_text]
    (line,) = repairs.default_lines(free)
    assert line["description"] == fee_text and line["covered_reason"].startswith(reason_start)


def test_a_free_warranty_ticket_starts_covered_and_an_all_covered_quote_cannot_go_to_billing(desk, make):
    w = desk
    ticket, _customer = repair_ticket(make, w, w.down)  # a defect within the 90 warranty days
    db.session.commit()
    assert ticket.charge == "free_warranty"
    quote = repairs.draft_quote(ticket.id, w.tech.id, now=NOW)
    db.session.commit()
    (line,) = quote.lines
    assert (line.covered, line.unit_price, line.amount, quote.total) == (True, 0, 0, 0)
    assert line.covered_reason == ticket.eligibility["explanation"]["en"]
    assert line.covered_reason.startswith("Free — in warranty until")
    status = ticket.status
    with pytest.raises(DomainError):
        repairs.submit(quote.id, w.tech.id, now=NOW)
    db.session.refresh(ticket)
    assert (quote.status, ticket.status) == ("draft", status)
    # a chargeable part makes it a quote billing can see
    repairs.save_lines(quote.id, w.tech.id, [
        {"description": "Biaya servis", "covered": True, "covered_reason": line.covered_reason},
        {"kind": "part", "description": "SSL premium", "quantity": 1, "unit_price": 400_000}], now=NOW)
    repairs.submit(quote.id, w.tech.id, now=NOW)
    assert (quote.status, quote.total, ticket.status) == ("pending_billing", 400_000, "pending_billing")


def test_one_live_quote_per_ticket(desk):
    w = desk
    quote = repairs.draft_quote(w.ticket.id, w.tech.id, now=NOW)
    with pytest.raises(Conflict):
        repairs.draft_quote(w.ticket.id, w.tech.id, now=NOW)
    repairs.cancel(quote.id, w.tech.id, "Pelanggan batal", now=NOW)
    again = repairs.draft_quote(w.ticket.id, w.tech.id, now=NOW)
    assert repairs.live_quote(w.ticket.id).id == again.id
    assert [q.id for q in repairs.quotes_of(w.ticket.id)] == [again.id, quote.id]


def test_no_quote_on_a_resolved_ticket(desk):
    w = desk
    w.ticket.status = "resolved"
    db.session.commit()
    with pytest.raises(DomainError):
        repairs.draft_quote(w.ticket.id, w.tech.id, now=NOW)


# ---------------------------------------------------------------- the lines

def test_save_lines_computes_amounts_and_parses_rupiah_text(desk):
    w = desk
    quote = repairs.draft_quote(w.ticket.id, w.tech.id, now=NOW)
    repairs.save_lines(quote.id, w.tech.id, LINES + [
        {"kind": "gadget", "description": "  Jasa migrasi  ", "quantity": "", "unit_price": "Rp 1.250.000"}],
        now=NOW)
    db.session.commit()
    got = [(ln.position, ln.kind, ln.description, ln.quantity, ln.unit_price, ln.covered, ln.covered_reason,
            ln.amount) for ln in quote.lines]
    assert got == [
        (1, "service", "Biaya servis", 1, FEE, False, None, FEE),
        (2, "part", "Lisensi plugin", 2, 250_000, False, None, 500_000),
        (3, "product", "Backup harian", 1, 0, True, "Bonus paket", 0),  # covered: price 0, with the reason
        (4, "service", "Jasa migrasi", 1, 1_250_000, False, None, 1_250_000),  # unknown kind -> service
    ]
    assert quote.total == LINES_TOTAL + 1_250_000
    last = events(quote.id, "repair_lines")[-1]
    assert (last.old_value, last.new_value, last.actor_user_id) == ("Rp 150.000", "Rp 1.900.000", w.tech.id)


@pytest.mark.parametrize("bad", [
    {"description": "Gratis", "covered": True},                              # covered without a reason
    {"description": "Gratis", "covered": True, "covered_reason": "   "},
    {"description": "Nol", "quantity": 0, "unit_price": 1000},
    {"description": "Minus", "quantity": -1, "unit_price": 1000},
    {"description": "Banyak", "quantity": 10_001, "unit_price": 1000},
    {"description": "Huruf", "quantity": "dua", "unit_price": 1000},
    {"description": "Harga", "quantity": 1, "unit_price": -5},
    {"description": "Harga", "quantity": 1, "unit_price": 1000.5},
    {"description": "Harga", "quantity": 1, "unit_price": "seribu"},
    {"description": "Harga", "quantity": 1, "unit_price": "150000.00"},     # not read as 15.000.000
    {"description": "   ", "quantity": 1, "unit_price": 1000},               # no description
])
def test_save_lines_refuses_a_bad_line_and_keeps_the_old_ones(desk, bad):
    w = desk
    quote = repairs.draft_quote(w.ticket.id, w.tech.id, now=NOW)
    db.session.commit()
    before = snapshot(w, quote)
    with pytest.raises(DomainError) as exc:
        repairs.save_lines(quote.id, w.tech.id, [LINES[0], bad], now=NOW)
    assert type(exc.value) is DomainError and field(exc) == "lines"
    assert "2" in exc.value.message  # the line is named
    assert snapshot(w, quote) == before


def test_save_lines_needs_one_to_fifty_lines_and_an_editable_quote(desk):
    w = desk
    quote = repairs.draft_quote(w.ticket.id, w.tech.id, now=NOW)
    with pytest.raises(DomainError):
        repairs.save_lines(quote.id, w.tech.id, [], now=NOW)
    with pytest.raises(DomainError):
        repairs.save_lines(quote.id, w.tech.id, [LINES[0]] * (repairs.MAX_LINES + 1), now=NOW)
    repairs.save_lines(quote.id, w.tech.id, [LINES[0]] * repairs.MAX_LINES, now=NOW)
    assert len(quote.lines) == repairs.MAX_LINES
    repairs.submit(quote.id, w.tech.id, now=NOW)
    with pytest.raises(Conflict):
        repairs.save_lines(quote.id, w.tech.id, LINES, now=NOW)
    with pytest.raises(Conflict):
        repairs.cancel(quote.id, w.tech.id, "Terlambat", now=NOW)


def test_cancel_needs_a_reason(desk):
    w = desk
    quote = repairs.draft_quote(w.ticket.id, w.tech.id, now=NOW)
    with pytest.raises(DomainError):
        repairs.cancel(quote.id, w.tech.id, "  ", now=NOW)
    repairs.cancel(quote.id, w.tech.id, "Pelanggan memperbaiki sendiri", now=NOW)
    last = events(quote.id)[-1]
    assert (quote.status, last.old_value, last.new_value, last.note) == (
        "cancelled", "draft", "cancelled", "Pelanggan memperbaiki sendiri")


# ---------------------------------------------------------------- every step × every role

STEPS = {
    "draft": (None, lambda w, q, uid: repairs.draft_quote(w.ticket.id, uid, now=NOW), "draft",
              {"technical_support"}),
    "save": ("draft", lambda w, q, uid: repairs.save_lines(q.id, uid, LINES, now=NOW), "draft",
             {"technical_support"}),
    "submit": ("draft", lambda w, q, uid: repairs.submit(q.id, uid, now=NOW), "pending_billing",
               {"technical_support"}),
    "cancel": ("draft", lambda w, q, uid: repairs.cancel(q.id, uid, "Tidak jadi", now=NOW), "cancelled",
               {"technical_support"}),
    "edit_price": ("pending_billing",
                   lambda w, q, uid: repairs.edit_price(q.id, uid, q.lines[0].id, 120_000, "Diskon", now=NOW),
                   "pending_billing", {"billing"}),
    "approve": ("pending_billing", lambda w, q, uid: repairs.approve(q.id, uid, now=NOW), "pending_customer",
                {"billing"}),
    "reject": ("pending_billing", lambda w, q, uid: repairs.reject(q.id, uid, "Harga salah", now=NOW), "rejected",
               {"billing"}),
    "complete": ("in_work", lambda w, q, uid: repairs.complete(q.id, uid, "Selesai", now=NOW), "completed",
                 {"technical_support"}),
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("step", list(STEPS))
def test_each_step_by_each_role(desk, make, step, role):
    before, call, after, allowed = STEPS[step]
    w = desk
    quote = advance(w, before) if before else None
    actor = make.user(roles=[role], queues=[w.q])
    db.session.commit()
    state = snapshot(w, quote)
    if role in allowed:
        result = call(w, quote, actor.id)
        db.session.commit()
        assert result.status == after
        assert events(result.id)[-1].actor_user_id == actor.id
    else:
        with pytest.raises(Forbidden):
            call(w, quote, actor.id)
        assert snapshot(w, quote) == state  # nothing changed: no status, line, audit, mail or invoice
        db.session.rollback()


@pytest.mark.parametrize("step", ["approve", "reject"])
def test_the_drafter_cannot_decide_even_with_the_billing_role(desk, make, step):
    w = desk
    both = make.user(roles=["technical_support", "billing"], queues=[w.q])
    db.session.commit()
    quote = repairs.draft_quote(w.ticket.id, both.id, now=NOW)
    repairs.submit(quote.id, both.id, now=NOW)
    db.session.commit()
    state = snapshot(w, quote)
    decide = {"approve": lambda uid: repairs.approve(quote.id, uid, now=NOW),
              "reject": lambda uid: repairs.reject(quote.id, uid, "Harga salah", now=NOW)}[step]
    with pytest.raises(Forbidden):
        decide(both.id)
    assert snapshot(w, quote) == state
    decide(w.bill.id)  # another billing agent may
    assert quote.status == {"approve": "pending_customer", "reject": "rejected"}[step]
    assert quote.billing_by_id == w.bill.id


def test_a_drafter_with_billing_may_still_edit_a_price(desk, make):
    w = desk
    both = make.user(roles=["technical_support", "billing"], queues=[w.q])
    db.session.commit()
    quote = repairs.draft_quote(w.ticket.id, both.id, now=NOW)
    repairs.submit(quote.id, both.id, now=NOW)
    repairs.edit_price(quote.id, both.id, quote.lines[0].id, 100_000, "Pelanggan lama", now=NOW)
    assert quote.total == 100_000


def test_billing_sees_the_ticket_only_while_it_waits_for_billing(desk, make):
    w = desk
    outsider = make.user(roles=["billing"], queues=[make.queue()])
    db.session.commit()
    quote = advance(w, "draft")
    assert not tickets.can_see(outsider, w.ticket)
    repairs.submit(quote.id, w.tech.id, now=NOW)
    assert tickets.can_see(outsider, w.ticket)
    repairs.approve(quote.id, outsider.id, now=NOW)
    assert quote.status == "pending_customer"


# ---------------------------------------------------------------- billing

def test_submit_moves_the_ticket_to_billing_and_tells_billing(desk, make):
    w = desk
    make.user(roles=["billing"], active=False)
    db.session.commit()
    quote = advance(w, "draft")
    repairs.save_lines(quote.id, w.tech.id, LINES, now=NOW)
    repairs.submit(quote.id, w.tech.id, now=NOW)
    db.session.commit()
    assert (quote.status, quote.version, quote.submitted_at, w.ticket.status) == ("pending_billing", 2, NOW,
                                                                                   "pending_billing")
    last = events(quote.id)[-1]
    assert (last.old_value, last.new_value, last.note) == ("draft", "pending_billing", "Rp 650.000")
    rows = mails(w.ticket.id, "repair_for_billing")
    assert sorted((r.user_id, r.to_addrs[0]) for r in rows) == sorted(
        (u.id, u.email) for u in (w.bill, w.bill2))
    assert all(mail_context(r) == {"quote_id": quote.id} for r in rows)
    assert [q.id for q in repairs.for_billing()] == [quote.id]


def test_edit_price_is_audited_and_bumps_the_version(desk):
    w = desk
    quote = advance(w, "pending_billing")
    fee_line, part_line, covered_line = quote.lines
    version = quote.version
    repairs.edit_price(quote.id, w.bill.id, part_line.id, 200_000, " Harga grosir ", now=NOW)
    db.session.commit()
    assert (part_line.unit_price, part_line.amount, quote.total, quote.version) == (
        200_000, 400_000, FEE + 400_000, version + 1)
    event = events(quote.id, "repair_price")[-1]
    assert (event.old_value, event.new_value, event.note, event.actor_user_id) == (
        "Rp 250.000", "Rp 200.000", "Lisensi plugin: Harga grosir", w.bill.id)
    # the same price again changes nothing
    repairs.edit_price(quote.id, w.bill.id, part_line.id, 200_000, "Sama", now=NOW)
    assert quote.version == version + 1 and len(events(quote.id, "repair_price")) == 1
    # refused: no reason, a covered line, a bad price, a line of another quote
    with pytest.raises(DomainError) as exc:
        repairs.edit_price(quote.id, w.bill.id, fee_line.id, 100_000, "  ", now=NOW)
    assert field(exc) == "reason"
    with pytest.raises(DomainError) as exc:
        repairs.edit_price(quote.id, w.bill.id, covered_line.id, 100_000, "Tagih", now=NOW)
    assert field(exc) == "unit_price"
    for bad in (-1, 1.5, True, "100.000"):
        with pytest.raises(DomainError) as exc:
            repairs.edit_price(quote.id, w.bill.id, fee_line.id, bad, "Salah ketik", now=NOW)
        assert field(exc) == "unit_price"
    with pytest.raises(NotFound):
        repairs.edit_price(quote.id, w.bill.id, 999_999, 100_000, "Salah", now=NOW)
    assert (quote.total, quote.version) == (FEE + 400_000, version + 1)


def test_approval_sends_the_quote_to_the_customer(desk):
    w = desk
    quote = advance(w, "pending_billing")
    repairs.approve(quote.id, w.bill.id, now=NOW)
    db.session.commit()
    assert (quote.status, quote.billing_by_id, w.ticket.status) == ("pending_customer", w.bill.id,
                                                                     "pending_customer")
    last = events(quote.id)[-1]
    assert (last.old_value, last.new_value, last.actor_user_id) == ("pending_billing", "pending_customer", w.bill.id)
    (row,) = mails(w.ticket.id, "repair_quote")
    assert (row.to_addrs, row.locale, row.user_id) == ([w.customer.primary_email], "en", None)
    assert mail_context(row) == {"quote_id": quote.id}
    with pytest.raises(Conflict):
        repairs.approve(quote.id, w.bill2.id, now=NOW)
    with pytest.raises(Conflict):
        repairs.edit_price(quote.id, w.bill.id, quote.lines[0].id, 1000, "Terlambat", now=NOW)


def test_rejection_reopens_the_ticket_tells_the_drafter_and_the_quote_can_go_again(desk):
    w = desk
    quote = advance(w, "pending_billing")
    with pytest.raises(DomainError):
        repairs.reject(quote.id, w.bill.id, "  ", now=NOW)
    repairs.reject(quote.id, w.bill.id, "Harga suku cadang terlalu tinggi", now=NOW)
    db.session.commit()
    assert (quote.status, quote.billing_reason, w.ticket.status) == (
        "rejected", "Harga suku cadang terlalu tinggi", "open")
    last = events(quote.id)[-1]
    assert (last.old_value, last.new_value, last.note) == ("pending_billing", "rejected",
                                                           "Harga suku cadang terlalu tinggi")
    (row,) = mails(w.ticket.id, "repair_rejected")
    assert (row.user_id, row.to_addrs) == (w.tech.id, [w.tech.email])
    assert mail_context(row) == {"quote_id": quote.id}
    # technical support edits the rejected quote and sends it again
    repairs.save_lines(quote.id, w.tech.id, LINES[:1], now=NOW)
    repairs.submit(quote.id, w.tech.id, now=NOW)
    db.session.commit()
    assert (quote.status, quote.total, quote.billing_reason, w.ticket.status) == (
        "pending_billing", FEE, None, "pending_billing")


# ---------------------------------------------------------------- the customer's link

def test_the_signed_link_round_trips(desk, app):
    w = desk
    quote = advance(w, "pending_customer")
    token = repairs.make_token(quote)
    assert repairs.load_token(token) == (quote.id, w.customer.id, quote.version)
    assert repairs.link_url(quote) == app.config["BASE_URL"].rstrip("/") + "/portal/quote/" + token


def test_a_tampered_or_foreign_token_is_invalid(desk):
    from helpdesk.webform.tokens import _serializer

    quote = advance(desk, "pending_customer")
    token = repairs.make_token(quote)
    for bad in (token[:-2] + ("AA" if not token.endswith("AA") else "BB"), token + "x", "", None, "abc.def.ghi"):
        with pytest.raises(InvalidToken):
            repairs.load_token(bad)
    # signed with another salt (another kind of link), or with other contents
    with pytest.raises(InvalidToken):
        repairs.load_token(_serializer("helpdesk.webform.done").dumps({"q": quote.id, "c": 1, "v": 1}))
    with pytest.raises(InvalidToken):
        repairs.load_token(_serializer(repairs.LINK_SALT).dumps({"q": quote.id, "c": True, "v": 1}))
    with pytest.raises(InvalidToken):
        repairs.load_token(_serializer(repairs.LINK_SALT).dumps([quote.id, 1, 1]))


def test_an_expired_token_is_invalid(desk, app):
    quote = advance(desk, "pending_customer")
    token = repairs.make_token(quote)
    with pytest.raises(InvalidToken) as exc:
        repairs.load_token(token, max_age=-1)
    assert exc.value.expired
    app.config["REPAIR_LINK_MAX_AGE"] = -1  # the configured lifetime applies when none is given
    with pytest.raises(InvalidToken) as exc:
        repairs.load_token(token)
    assert exc.value.expired


def test_a_stale_version_or_another_customer_is_refused(desk, make):
    w = desk
    quote = advance(w, "pending_billing")
    link_version = quote.version
    repairs.edit_price(quote.id, w.bill.id, quote.lines[0].id, 175_000, "Tarif baru", now=NOW)
    repairs.approve(quote.id, w.bill.id, now=NOW)
    db.session.commit()
    assert quote.version == link_version + 1
    before = snapshot(w, quote)
    with pytest.raises(Conflict):
        repairs.customer_decide(quote.id, w.customer.id, "approve", version=link_version, now=NOW)
    with pytest.raises(Conflict):
        repairs.quote_for_customer(quote.id, w.customer.id, link_version)
    stranger = make.customer()
    db.session.commit()
    with pytest.raises(NotFound):
        repairs.customer_decide(quote.id, stranger.id, "approve", version=quote.version, now=NOW)
    with pytest.raises(DomainError):
        repairs.customer_decide(quote.id, w.customer.id, "maybe", version=quote.version, now=NOW)
    assert snapshot(w, quote) == before
    repairs.customer_decide(quote.id, w.customer.id, "approve", version=quote.version, now=NOW)
    assert quote.status == "awaiting_payment"
    with pytest.raises(Conflict):  # answered already
        repairs.customer_decide(quote.id, w.customer.id, "decline", version=quote.version, now=NOW)


# ---------------------------------------------------------------- the customer's decision

def test_customer_approval_creates_the_invoice_and_waits_for_payment(desk):
    w = desk
    quote = advance(w, "pending_customer")
    repairs.customer_decide(quote.id, w.customer.id, "approve", version=quote.version, now=NOW)
    db.session.commit()
    invoice = db.session.get(Invoice, quote.invoice_id)
    assert (quote.status, w.ticket.status, quote.customer_decided_at) == ("awaiting_payment", "pending_customer", NOW)
    assert (invoice.source_type, invoice.source_id, invoice.ticket_id, invoice.customer_id) == (
        "repair", quote.id, w.ticket.id, w.customer.id)
    assert (invoice.total, invoice.status, invoice.amount_paid, invoice.number) == (
        quote.total, "unpaid", 0, "INV/2026/000001")
    assert invoice.total == LINES_TOTAL
    assert [(ln.kind, ln.description, ln.quantity, ln.unit_price, ln.amount, ln.covered_reason)
            for ln in invoice.lines] == [
        ("service", "Biaya servis", 1, FEE, FEE, None),
        ("part", "Lisensi plugin", 2, 250_000, 500_000, None),
        ("product", "Backup harian", 1, 0, 0, "Bonus paket"),  # covered: on the invoice at 0, with the reason
    ]
    last = events(quote.id)[-1]
    assert (last.old_value, last.new_value, last.actor_user_id, last.actor_customer_id, last.note) == (
        "pending_customer", "awaiting_payment", None, w.customer.id, "INV/2026/000001")
    (row,) = mails(w.ticket.id, "repair_invoice")
    assert (row.to_addrs, row.locale) == ([w.customer.primary_email], "en")
    assert mail_context(row) == {"quote_id": quote.id, "invoice_id": invoice.id}
    (told,) = mails(w.ticket.id, "repair_approved")
    assert (told.user_id, told.to_addrs) == (w.tech.id, [w.tech.email])


@pytest.mark.parametrize("app", [{"REPAIR_WORK_BEFORE_PAYMENT": True}], indirect=True)
def test_with_work_before_payment_the_approval_starts_the_work(desk):
    w = desk
    quote = advance(w, "pending_customer")
    repairs.customer_decide(quote.id, w.customer.id, "approve", version=quote.version, now=NOW)
    db.session.commit()
    assert (quote.status, quote.work_started_at, w.ticket.status) == ("in_work", NOW, "open")
    assert db.session.get(Invoice, quote.invoice_id).status == "unpaid"  # still billed
    # paying later does not move it again
    billing.record_payment(quote.invoice_id, w.bill.id, amount=quote.total, method="cash", paid_on=TODAY,
                           confirm=True, now=NOW)
    db.session.commit()
    assert quote.status == "in_work" and mails(w.ticket.id, "repair_paid") == []
    repairs.complete(quote.id, w.tech.id, now=NOW)
    assert quote.status == "completed"


def test_customer_decline_reopens_the_ticket_and_tells_the_drafter(desk):
    w = desk
    quote = advance(w, "pending_customer")
    repairs.customer_decide(quote.id, w.customer.id, "decline", reason=" Terlalu mahal ", version=quote.version,
                            now=NOW)
    db.session.commit()
    assert (quote.status, quote.decline_reason, quote.invoice_id, w.ticket.status) == (
        "declined", "Terlalu mahal", None, "open")
    last = events(quote.id)[-1]
    assert (last.new_value, last.actor_customer_id, last.note) == ("declined", w.customer.id, "Terlalu mahal")
    (row,) = mails(w.ticket.id, "repair_declined")
    assert (row.user_id, row.to_addrs) == (w.tech.id, [w.tech.email])
    assert db.session.execute(select(func.count()).select_from(Invoice)).scalar_one() == 0
    assert repairs.live_quote(w.ticket.id) is None  # a new quote may be drafted


# ---------------------------------------------------------------- payment and work

def test_a_confirmed_payment_of_the_total_starts_the_work(desk):
    w = desk
    quote = advance(w, "awaiting_payment")
    payment = billing.record_payment(quote.invoice_id, w.bill.id, amount=quote.total, method="bank_transfer",
                                     paid_on=TODAY, reference="TRF-77", now=NOW)
    db.session.commit()
    assert quote.status == "awaiting_payment"  # recorded is not confirmed
    billing.confirm_payment(payment.id, w.bill2.id, now=NOW)
    db.session.commit()
    invoice = db.session.get(Invoice, quote.invoice_id)
    assert (invoice.status, invoice.amount_paid, invoice.paid_at) == ("paid", quote.total, NOW)
    assert (quote.status, quote.work_started_at, w.ticket.status) == ("in_work", NOW, "open")
    last = events(quote.id)[-1]
    assert (last.old_value, last.new_value, last.actor_user_id, last.note) == (
        "awaiting_payment", "in_work", w.bill2.id, invoice.number)
    (told,) = mails(w.ticket.id, "repair_paid")
    assert (told.user_id, told.to_addrs) == (w.tech.id, [w.tech.email])
    (confirmed,) = mails(w.ticket.id, "payment_confirmed")
    assert (confirmed.to_addrs, confirmed.locale) == ([w.customer.primary_email], "en")
    assert mail_context(confirmed) == {"payment_id": payment.id, "invoice_id": invoice.id}


def test_a_partial_payment_keeps_the_repair_waiting(desk):
    w = desk
    quote = advance(w, "awaiting_payment")
    billing.record_payment(quote.invoice_id, w.bill.id, amount=quote.total - 1, method="bank_transfer",
                           paid_on=TODAY, confirm=True, now=NOW)
    db.session.commit()
    invoice = db.session.get(Invoice, quote.invoice_id)
    assert (invoice.status, invoice.amount_paid) == ("partially_paid", quote.total - 1)
    assert (quote.status, w.ticket.status) == ("awaiting_payment", "pending_customer")
    assert mails(w.ticket.id, "repair_paid") == []
    with pytest.raises(Conflict):
        repairs.complete(quote.id, w.tech.id, now=NOW)  # no work before it is paid
    billing.record_payment(quote.invoice_id, w.bill.id, amount=1, method="cash", paid_on=TODAY, confirm=True,
                           now=NOW)
    db.session.commit()
    assert (invoice.status, quote.status, w.ticket.status) == ("paid", "in_work", "open")


def test_complete_marks_the_work_done(desk):
    w = desk
    quote = advance(w, "in_work")
    repairs.complete(quote.id, w.tech.id, " Plugin diganti ", now=NOW)
    db.session.commit()
    assert (quote.status, quote.completed_at, quote.completed_by_id) == ("completed", NOW, w.tech.id)
    last = events(quote.id)[-1]
    assert (last.old_value, last.new_value, last.note) == ("in_work", "completed", "Plugin diganti")
    assert repairs.live_quote(w.ticket.id) is None
    with pytest.raises(Conflict):
        repairs.complete(quote.id, w.tech.id, now=NOW)


def test_the_whole_trail_of_a_repair(desk):
    w = desk
    quote = advance(w, "in_work")
    repairs.complete(quote.id, w.tech.id, now=NOW)
    db.session.commit()
    trail = [(e.action, e.old_value, e.new_value) for e in events(quote.id)]
    assert trail == [
        ("repair", None, "draft"),
        ("repair_lines", "Rp 150.000", "Rp 650.000"),
        ("repair", "draft", "pending_billing"),
        ("repair", "pending_billing", "pending_customer"),
        ("repair", "pending_customer", "awaiting_payment"),
        ("repair", "awaiting_payment", "in_work"),
        ("repair", "in_work", "completed"),
    ]
    statuses = [(e.old_value, e.new_value) for e in db.session.execute(
        select(AuditEvent).where(AuditEvent.ticket_id == w.ticket.id, AuditEvent.action == "status")
        .order_by(AuditEvent.id)).scalars()]
    assert statuses == [("new", "pending_billing"), ("pending_billing", "pending_customer"),
                        ("pending_customer", "open")]
