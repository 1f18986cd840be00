"""The products and guarantees report, per Asia/Jakarta calendar month (the database stores naive UTC).

What counts where:
- tickets per charge decision: tickets created in the month (ticket created_at), by their current
  charge decision (the latest evaluation, the one the badges show). Tickets merged into another are
  duplicates and never count. "Cashback possible": the latest decision said the cashback guarantee
  can be claimed (tickets.cashback_until is set). A ticket that was eligible once but was then
  reclassified (a non-defect category, another item) no longer counts: the report follows the
  decision on the ticket, not its history.
- cashback claims: claims requested in the month (requested_at), by where each stands now, with
  the sum of the amounts billing approved (approved and paid claims).
- paid repairs: revenue collected = confirmed payments on repair invoices, by the month the payment
  was confirmed (confirmed_at); invoiced = repair invoices issued in the month (issued_on, a Jakarta
  day), void ones left out. Billing approval time = billing_at - submitted_at of the quotes billing
  approved in the month (the last submission when a quote went round again); customer decision
  time = customer_decided_at - billing_at of the quotes the customer approved or declined in the
  month. Median and p90 are nearest-rank percentiles, in hours.
- repeated defects: the owned items with at least two tickets created in the month whose issue
  category is a defect (issue_categories.is_defect), the 10 with most such tickets.

Every number is an aggregate query over one month's range, the same SQL on SQLite and PostgreSQL.
The big tables are read through their indexes (tickets: ix_tickets_created; claims:
ix_cashback_claims_requested); payments, invoices and repair quotes are read by unindexed
timestamps, which is fine at their size (each row is a person's decision or a payment). The
approval times read the month's quote timestamps and take nearest-rank percentiles in Python, so
both databases give the same answer.
"""
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import case, func, select

from ..billing.models import Invoice, Payment
from ..claims.models import CLAIM_STATUSES, CashbackClaim
from ..customers.models import Customer
from ..extensions import db
from ..repairs.models import RepairQuote
from ..sla.report import percentile, period_bounds
from ..tickets.models import Ticket
from ..timeutil import to_local, utcnow
from . import rules
from .models import IssueCategory, OwnedItem, Product

CHARGES = rules.CHARGE_CODES
CHART_MONTHS = 6
TOP_ITEMS = 10
REPEATED_MIN = 2
# quotes billing approved: every status a quote reaches after billing's approval
BILLING_APPROVED = ("pending_customer", "awaiting_payment", "in_work", "completed", "declined")
AMOUNT_STATUSES = ("approved", "paid")


# ---------------------------------------------------------------- months

def this_month(now=None):
    """The first day of the current Asia/Jakarta month."""
    return to_local(now or utcnow()).date().replace(day=1)


def parse_month(value):
    """date(y, m, 1) from "YYYY-MM"; None when it is not one."""
    try:
        year, month = (value or "").split("-")
        if len(year) != 4 or len(month) != 2:
            return None
        return date(int(year), int(month), 1)
    except ValueError:
        return None


def add_months(first, n):
    """The first day of the month n months after (n < 0: before) `first`'s month."""
    index = first.year * 12 + first.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def month_bounds(first):
    """[start, end) in naive UTC of the Asia/Jakarta month beginning on `first`."""
    return period_bounds(first, add_months(first, 1) - timedelta(days=1))


def months_ending(first, count=CHART_MONTHS):
    """The `count` months up to and including `first`'s, oldest first."""
    return [add_months(first, n) for n in range(1 - count, 1)]


# ---------------------------------------------------------------- tickets per charge decision

def charges_by_month(months):
    """{month: {"charges": {code: n}, "cashback": n, "total": n, "unevaluated": n}} for consecutive
    months (oldest first), in one grouped query over ix_tickets_created."""
    edges = [month_bounds(m)[0] for m in months] + [month_bounds(months[-1])[1]]
    bucket = case(*[(Ticket.created_at < edges[i + 1], i) for i in range(len(months))], else_=None)
    inner = (select(bucket.label("bucket"), Ticket.charge.label("charge"),
                    Ticket.cashback_until.label("cashback_until"))
             .where(Ticket.created_at >= edges[0], Ticket.created_at < edges[-1], Ticket.merged_into_id.is_(None))
             .subquery())
    q = (select(inner.c.bucket, inner.c.charge, func.count(), func.count(inner.c.cashback_until))
         .group_by(inner.c.bucket, inner.c.charge))
    out = {m: {"charges": {c: 0 for c in CHARGES}, "cashback": 0, "total": 0, "unevaluated": 0} for m in months}
    for bucket_index, charge, n, cashback in db.session.execute(q):
        row = out[months[bucket_index]]
        if charge in row["charges"]:
            row["charges"][charge] += n
        else:  # never evaluated (a ticket older than the eligibility engine)
            row["unevaluated"] += n
        row["cashback"] += cashback
        row["total"] += n
    return out


# ---------------------------------------------------------------- cashback claims

def claims(first):
    """Claims requested in the month, by status: {status: {"count", "amount"}}, and the totals.
    amount: the sum approved by billing (approved and paid claims; None for the other statuses)."""
    lo, hi = month_bounds(first)
    q = (select(CashbackClaim.status, func.count(), func.coalesce(func.sum(CashbackClaim.amount), 0))
         .where(CashbackClaim.requested_at >= lo, CashbackClaim.requested_at < hi)
         .group_by(CashbackClaim.status))
    by_status = {s: {"count": 0, "amount": 0 if s in AMOUNT_STATUSES else None} for s in CLAIM_STATUSES}
    for status, n, amount in db.session.execute(q):
        row = by_status.setdefault(status, {"count": 0, "amount": None})
        row["count"] += n
        if status in AMOUNT_STATUSES:
            row["amount"] += int(amount)
    return {"by_status": by_status,
            "count": sum(r["count"] for r in by_status.values()),
            "amount": sum(by_status[s]["amount"] for s in AMOUNT_STATUSES)}


# ---------------------------------------------------------------- paid repairs

@dataclass
class Durations:
    count: int = 0
    median_hours: float | None = None
    p90_hours: float | None = None


def _durations(pairs):
    seconds = sorted((b - a).total_seconds() for a, b in pairs if a is not None and b is not None and b >= a)
    out = Durations(count=len(seconds))
    if seconds:
        out.median_hours = round(percentile(seconds, 50) / 3600, 2)
        out.p90_hours = round(percentile(seconds, 90) / 3600, 2)
    return out


def repairs(first):
    """Paid-repair money and approval times for the month."""
    lo, hi = month_bounds(first)
    last_day = add_months(first, 1) - timedelta(days=1)
    collected_n, collected = db.session.execute(
        select(func.count(Payment.id), func.coalesce(func.sum(Payment.amount), 0))
        .join(Invoice, Invoice.id == Payment.invoice_id)
        .where(Invoice.source_type == "repair", Payment.status == "confirmed",
               Payment.confirmed_at >= lo, Payment.confirmed_at < hi)).one()
    invoiced_n, invoiced = db.session.execute(
        select(func.count(Invoice.id), func.coalesce(func.sum(Invoice.total), 0))
        .where(Invoice.source_type == "repair", Invoice.status != "void",
               Invoice.issued_on >= first, Invoice.issued_on <= last_day)).one()
    billing_pairs = db.session.execute(
        select(RepairQuote.submitted_at, RepairQuote.billing_at)
        .where(RepairQuote.billing_at >= lo, RepairQuote.billing_at < hi,
               RepairQuote.status.in_(BILLING_APPROVED))).all()
    customer_rows = db.session.execute(
        select(RepairQuote.billing_at, RepairQuote.customer_decided_at, RepairQuote.status)
        .where(RepairQuote.customer_decided_at >= lo, RepairQuote.customer_decided_at < hi)).all()
    declined = sum(1 for r in customer_rows if r.status == "declined")
    return {"collected": {"count": int(collected_n), "amount": int(collected)},
            "invoiced": {"count": int(invoiced_n), "amount": int(invoiced)},
            "billing_time": _durations(billing_pairs),
            "customer_time": _durations([(r[0], r[1]) for r in customer_rows]),
            "customer_approved": len(customer_rows) - declined,
            "customer_declined": declined}


# ---------------------------------------------------------------- repeated defects

def repeated_defects(first, limit=TOP_ITEMS, at_least=REPEATED_MIN):
    """The items with the most defect tickets created in the month (at least `at_least`), most first:
    [{"item_id", "product", "identifier", "customer_id", "customer", "count"}]."""
    lo, hi = month_bounds(first)
    n = func.count(Ticket.id)
    q = (select(OwnedItem.id, Product.name, OwnedItem.identifier, Customer.id, Customer.name, n)
         .select_from(Ticket)
         .join(IssueCategory, IssueCategory.id == Ticket.issue_category_id)
         .join(OwnedItem, OwnedItem.id == Ticket.owned_item_id)
         .join(Product, Product.id == OwnedItem.product_id)
         .join(Customer, Customer.id == OwnedItem.customer_id)
         .where(Ticket.created_at >= lo, Ticket.created_at < hi, Ticket.merged_into_id.is_(None),
                IssueCategory.is_defect.is_(True))
         .group_by(OwnedItem.id, Product.name, OwnedItem.identifier, Customer.id, Customer.name)
         .having(n >= at_least)
         .order_by(n.desc(), OwnedItem.id)
         .limit(limit))
    return [{"item_id": item_id, "product": product, "identifier": identifier, "customer_id": customer_id,
             "customer": customer, "count": count}
            for item_id, product, identifier, customer_id, customer, count in db.session.execute(q)]


# ---------------------------------------------------------------- the report

def guarantee_report(first):
    """Everything for the month beginning on `first` (a date, day 1), plus the chart's months."""
    months = months_ending(first)
    trend = charges_by_month(months)
    return {"month": first, "months": months, "tickets": trend[first], "trend": trend,
            "any_unevaluated": any(trend[m]["unevaluated"] for m in months),
            "claims": claims(first), "repairs": repairs(first), "defects": repeated_defects(first)}


# ---------------------------------------------------------------- CSV

CSV_HEADER = ["month", "section", "key", "detail", "count", "amount_idr", "hours"]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value):
    """A CSV cell a spreadsheet will not run: text starting with = + - @ (or a tab or CR) gets a
    leading apostrophe. Numbers stay numbers; None is empty."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_rows(report):
    """One row per metric (header first), every cell through safe_cell."""
    month = report["month"].strftime("%Y-%m")
    rows = []

    def add(section, key, detail=None, count=None, amount=None, hours=None):
        rows.append([month, section, key, detail, count, amount, hours])

    tickets = report["tickets"]
    for code in CHARGES:
        add("tickets", code, count=tickets["charges"][code])
    if tickets["unevaluated"]:
        add("tickets", "not_evaluated", count=tickets["unevaluated"])
    add("tickets", "total", count=tickets["total"])
    add("tickets", "cashback_possible", count=tickets["cashback"])
    claim = report["claims"]
    for status, row in claim["by_status"].items():
        add("cashback_claims", status, count=row["count"], amount=row["amount"])
    add("cashback_claims", "total", count=claim["count"], amount=claim["amount"])
    rep = report["repairs"]
    add("repairs", "revenue_collected", count=rep["collected"]["count"], amount=rep["collected"]["amount"])
    add("repairs", "invoiced", count=rep["invoiced"]["count"], amount=rep["invoiced"]["amount"])
    for key in ("billing_time", "customer_time"):
        d = rep[key]
        add("repairs", f"{key}_median", count=d.count, hours=d.median_hours)
        add("repairs", f"{key}_p90", count=d.count, hours=d.p90_hours)
    add("repairs", "customer_approved", count=rep["customer_approved"])
    add("repairs", "customer_declined", count=rep["customer_declined"])
    for d in report["defects"]:
        add("repeated_defects", f"item {d['item_id']}",
            detail=" / ".join(v for v in (d["customer"], d["product"], d["identifier"]) if v), count=d["count"])
    return [CSV_HEADER] + [[safe_cell(v) for v in row] for row in rows]
