"""Authorisation matrix: every route of app.url_map x every role, plus anonymous.

The expected access of each endpoint is declared in ACCESS. A route that is not in ACCESS fails
test_every_route_is_in_the_matrix, so a new route cannot ship without a decision about who may
use it.
"""
import io
from datetime import date, datetime

import pytest
from sqlalchemy import select

from helpdesk.auth.models import ROLES
from helpdesk.auth.services import create_api_token
from helpdesk.billing import services as billing
from helpdesk.billing import statements as bank_statements
from helpdesk.billing.models import BankStatementLine, Payment
from helpdesk.campaigns.models import Campaign
from helpdesk.claims.models import CashbackClaim
from helpdesk.extensions import db
from helpdesk.leads import imports as lead_imports
from helpdesk.leads import services as lead_services
from helpdesk.mail import rawstore
from helpdesk.maintenance import services as maintenance_services
from helpdesk.mail.models import InboundMessage, Mailbox, SenderBlock
from helpdesk.repairs.models import RepairQuote, RepairQuoteLine
from helpdesk.sales import services as sales_services
from helpdesk.sales.models import Voucher
from helpdesk.sla.models import BusinessCalendar, SlaPolicy
from helpdesk.tickets import services, storage
from helpdesk.tickets.models import Attachment, CannedResponse, Ticket
from helpdesk.warranty.models import ContractPlan, IssueCategory, OwnedItem, Product

ROLE_NAMES = ("anonymous",) + ROLES
# The matrix also runs as a customer signed in to the portal (the matrix ticket's customer).
MATRIX_ROLES = ROLE_NAMES + ("customer",)

# public: anyone (outcome may be a form, a redirect or a "bad link" page, never 401/403/5xx)
# agent: any logged-in agent; anonymous is sent to the login page
# ticket: agents who can see the Technical Support ticket (its queue's members, admins): others 404
# admin: the admin role only (403 for the other roles)
# customer_admin: admin or customer_support (merging customers)
# ticket_tech: technical support who can see the ticket (an admin who sees it gets 403, others 404)
# api / api_ticket / api_create: token auth; anonymous 401; api_ticket like `ticket`;
#   api_create needs membership of the target queue (403 otherwise)
# api_marketing: token auth; marketing and admins (403 for the other agents)
# api_billing: token auth; billing and admins (403 for the other agents)
# marketing: marketing and admins (403 for the other agents); anonymous is sent to the login page
# orders: marketing, customer support and admins (403 for the other agents); orders_fulfil: also
#   technical support
# customer: a customer signed in to the portal (their own ticket and attachment); agents get 403,
#   anonymous is sent to the portal's sign-in page. A customer is anonymous on every agent page.
ACCESS = {
    "static": "public",
    "auth.login": "public",
    "auth.logout": "public",
    "auth.forgot_password": "public",
    "auth.reset_password": "public",
    "auth.accept_invite": "public",
    "auth.two_factor": "public",
    "auth.two_factor_setup": "public",
    "auth.account": "agent",
    "auth.two_factor_disable": "agent",
    "tickets.index": "agent",
    "tickets.new_call": "agent",
    "tickets.bulk": "agent",
    "tickets.show": "ticket",
    "tickets.add_message": "ticket",
    "tickets.set_status": "ticket",
    "tickets.set_priority": "ticket",
    "tickets.set_assignee": "ticket",
    "tickets.set_tags": "ticket",
    "tickets.transfer": "ticket",
    "tickets.merge": "ticket",
    "tickets.attachment": "ticket",
    "tickets.set_cc": "ticket",
    "notifications.index": "agent",  # the bell's list: each agent's own notifications
    "notifications.mark_read": "agent",  # marks the agent's own notifications read
    "customers.index": "agent",
    "customers.show": "agent",
    "customers.merge": "customer_admin",
    "customers.add_email": "agent",
    "customers.add_item": "agent",  # an empty POST: the page again with the form's errors (400)
    "customers.add_contract": "agent",
    "warranty.item": "agent",  # an owned item's timeline: like the customer page, any agent
    "warranty.item_server": "maint",  # the server an item runs on: technical support and admins
    "warranty.set_item": "ticket",
    "warranty.set_category": "ticket",
    "warranty.set_complaint_date": "ticket_tech",
    "customers.organisations": "agent",
    "customers.organisation": "agent",
    "admin.index": "admin",
    "admin.agents": "admin",
    "admin.agent": "admin",
    "admin.agent_action": "admin",
    "admin.invite": "admin",
    "admin.queues": "admin",
    "admin.queue": "admin",
    "admin.queue_lead": "admin",
    "admin.queue_add_member": "admin",
    "admin.queue_remove_member": "admin",
    "admin.canned": "admin",
    "admin.canned_new": "admin",
    "admin.canned_edit": "admin",
    "admin.canned_delete": "admin",
    "admin.jobs_status": "admin",
    "admin.data_requests": "admin",
    "admin.data_request_decide": "admin",  # an unknown request id flashes and redirects
    "admin.mail_mailboxes": "admin",
    "admin.mail_mailbox_new": "admin",
    "admin.mail_mailbox_edit": "admin",
    "admin.mail_mailbox_test": "admin",  # the world's mailbox is on a closed loopback port
    "admin.mail_mailbox_delete": "admin",
    "admin.mail_log": "admin",
    "admin.mail_log_entry": "admin",
    "admin.mail_log_raw": "admin",
    "admin.mail_log_reprocess": "admin",  # the world's message was created: refused with a message
    "admin.mail_log_make_ticket": "admin",
    "admin.mail_blocklist": "admin",
    "admin.mail_block_delete": "admin",
    "admin.mail_held_send": "admin",  # an unknown outbound id: "not held" and a redirect
    "admin.sla_policies": "admin",
    "admin.sla_policy_new": "admin",
    "admin.sla_policy_edit": "admin",  # an empty POST: the form again (400)
    "admin.sla_calendars": "admin",
    "admin.sla_calendar_new": "admin",
    "admin.sla_calendar_edit": "admin",
    "admin.sla_calendar_day_add": "admin",
    "admin.sla_calendar_day_delete": "admin",  # an unknown day: a message and a redirect
    "admin.sla_calendar_recompute": "admin",
    "admin.sla_rules": "admin",
    "admin.sla_rule_delete": "admin",  # an unknown rule: a message and a redirect
    "admin.sla_rule_move": "admin",
    "admin.warranty_products": "admin",
    "admin.warranty_product_new": "admin",
    "admin.warranty_product_edit": "admin",  # an empty POST: the form again (400)
    "admin.warranty_plans": "admin",
    "admin.warranty_plan_new": "admin",
    "admin.warranty_plan_edit": "admin",
    "admin.warranty_categories": "admin",
    "admin.warranty_category_new": "admin",
    "admin.warranty_category_edit": "admin",
    "api.openapi": "public",
    "webform.form": "public",
    "webform.done": "public",
    "webform.embed": "public",
    "webform.embed_done": "public",
    "portal.login": "public",
    "portal.use_link": "public",
    "portal.password_login": "public",
    "portal.logout": "public",
    "portal.index": "customer",
    "portal.ticket": "customer",
    "portal.reply": "customer",
    "portal.solved": "customer",
    "portal.reopen": "customer",
    "portal.attachment": "customer",
    "portal.profile": "customer",
    "portal.add_email": "customer",
    "portal.set_password": "customer",
    "portal.my_data": "customer",
    "portal.my_data_export": "customer",  # CSRF is off here: an empty POST downloads
    "portal.my_data_delete": "customer",  # an empty POST: the confirmation page again (400)
    "portal.confirm_email": "public",  # signed confirmation link: a bad token is a 400 page
    "portal.link": "public",  # signed per-ticket links: a bad token is a 400 page
    "portal.link_reply": "public",
    "portal.link_solved": "public",
    "portal.link_reopen": "public",
    "portal.link_attachment": "public",
    "portal.csat_answer": "public",  # signed CSAT answer link (GET shows, POST records): a bad token is a 400 page
    "portal.quote_link": "public",  # signed repair quote link (GET shows, POST decides): a bad token is a 400 page
    "portal.request_cashback": "customer",  # the world's ticket already has a claim: a message and a redirect
    "portal.decide_quote": "customer",  # no quote waits for the customer: a message and a redirect
    "portal.invoice": "customer",  # their own invoice (another customer's: 404)
    "portal.invoice_proof": "customer",  # proof of transfer for their own invoice: an empty POST is a 400 page
    "portal.invoice_pdf": "customer",  # the PDF of their own invoice (another customer's: 404)
    "portal.purchases": "customer",  # My purchases: their offers, orders and invoices
    "api.list_tickets": "api",
    "api.get_ticket": "api_ticket",
    "api.add_message": "api_ticket",
    "api.update_ticket": "api_ticket",
    "api.download_attachment": "api_ticket",
    "api.create_ticket": "api_create",
    "api.list_leads": "api_marketing",  # leads: marketing and admins (403 for the other agents)
    "api.create_lead": "api_marketing",  # an empty body: 400 for them
    "api.get_lead": "api_marketing",
    "api.list_invoices": "api_billing",  # invoices: billing and admins (403 for the other agents)
    "api.get_invoice": "api_billing",  # the world's invoice by its number (with slashes)
    "offer.form": "public",  # the public "request an offer" form
    "offer.done": "public",  # signed thank-you link: a bad token is a 400 page
    # subscriptions (issue #8 §1): signed links, no login (a bad token is a 400 page); the portal page
    "subscriptions.unsubscribe": "public",  # RFC 8058 one-click (GET confirms, POST unsubscribes; CSRF exempt)
    "subscriptions.preferences": "public",
    "subscriptions.confirm": "public",  # double opt-in (GET shows the button, POST confirms)
    "portal.subscriptions": "customer",  # the signed-in customer's topics and consent history
    # marketing announcements (issue #8 §3; the world has a draft campaign): marketing and admins (empty
    # POSTs: the page again with the error, 400; a sample of a language nobody gets: 404)
    "campaigns.index": "marketing",
    "campaigns.new": "marketing",
    "campaigns.show": "marketing",
    "campaigns.edit": "marketing",
    "campaigns.sample": "marketing",
    "campaigns.send": "marketing",
    "campaigns.schedule": "marketing",
    "campaigns.cancel": "marketing",
    # marketing's lead pages: marketing and admins (403 for the other agents); empty POSTs: 400 pages
    "leads.index": "marketing",
    "leads.new": "marketing",
    "leads.show": "marketing",
    "leads.edit": "marketing",
    "leads.stage": "marketing",
    "leads.add_activity": "marketing",
    "leads.add_task": "marketing",
    "leads.task_done": "marketing",  # marks the world's follow-up done
    "leads.convert": "marketing",  # the world's lead has an email: it becomes a customer
    # CSV import of leads and the funnel report: marketing and admins (an empty upload: a 400 page; an
    # empty POST to start starts the world's import)
    "lead_import.new": "marketing",
    "lead_import.show": "marketing",
    "lead_import.start": "marketing",
    "lead_import.status_json": "marketing",
    "lead_import.report_csv": "marketing",
    "lead_report.leads": "marketing",
    "lead_report.chart": "marketing",
    "lead_report.leads_csv": "marketing",
    # admins and queue leads (the matrix world has no lead: tests/integration/test_sla_report.py covers them)
    "sla_report.sla": "admin",
    "sla_report.sla_csv": "admin",
    # admins, billing and queue leads (tests/integration/test_guarantee_report.py covers leads)
    "guarantee_report.guarantees": "admin_billing",
    "guarantee_report.guarantees_csv": "admin_billing",
    "guarantee_report.chart": "admin_billing",
    # cashback claims and paid repairs on the ticket page (the world has a requested claim, a draft
    # quote with nothing chargeable, an invoice and a pending payment); billing's steps need the
    # billing role, not the ticket (billing works from the billing queue)
    "claims.request": "ticket",  # the world's ticket cannot be claimed: a message and a redirect
    "claims.verify": "ticket_tech",
    "claims.reject": "ticket_tech",  # a requested claim: technical support's step
    "claims.approve": "billing",
    "claims.pay": "billing",
    "repairs.draft": "ticket_tech",  # the ticket already has a quote: a message and a redirect
    "repairs.save_lines": "ticket_tech",
    "repairs.submit": "ticket_tech",  # nothing chargeable: refused with a message
    "repairs.cancel": "ticket_tech",
    "repairs.complete": "ticket_tech",
    "repairs.edit_price": "billing",
    "repairs.approve": "billing",
    "repairs.reject": "billing",
    "billing.index": "billing",
    "billing.invoices": "billing",
    "billing.invoice": "billing",
    "billing.record_payment": "billing",
    "billing.confirm_payment": "billing",  # an empty POST confirms the world's pending payment
    "billing.reject_payment": "billing",
    "billing.void_invoice": "billing",
    # bank statements and proofs of transfer (the world has a statement with one unmatched credit and
    # a pending payment with a proof): billing only; empty POSTs are a message and a redirect
    "billing.statements_index": "billing",  # an empty POST: the form again (400)
    "billing.statement": "billing",
    "billing.statement_confirm": "billing",
    "billing.statement_line_match": "billing",
    "billing.statement_line_ignore": "billing",
    "billing.payment_proof": "billing",
    "billing.invoice_pdf": "billing",
    # orders (the world has a placed order): any agent reads them; marketing, customer support and
    # admins enter, confirm, cancel and repeat them; technical support also fulfils (an empty POST:
    # the order page again with the error, 400 / 409)
    "orders.index": "agent",
    "orders.show": "agent",
    "orders.new": "orders",  # GET without a customer: the form; an empty POST: 400
    "orders.confirm": "orders",  # confirms the world's order (its invoice is created)
    "orders.cancel": "orders",  # no reason: 400
    "orders.repeat": "orders",  # a new order for the world's customer
    "orders.fulfil": "orders_fulfil",  # no activation date: 400
    # offers (marketing and admins; the world has a draft offer without lines for its lead and a
    # voucher): empty POSTs are 400 pages (nothing to send, no lines, no voucher code); /offers/new
    # without a lead or customer is a 400 page
    "offers.index": "marketing",
    "offers.new": "marketing",
    "offers.show": "marketing",
    "offers.send": "marketing",
    "offers.print_offer": "marketing",
    "offers.pdf": "marketing",
    "vouchers.index": "marketing",  # the vouchers admin: marketing and admins
    "vouchers.new": "marketing",
    "vouchers.edit": "marketing",
    "offer_link.view": "public",  # the customer's signed offer link (GET shows, POST decides): a bad token is a 400 page
    "offer_link.pdf": "public",
    # maintenance windows (issue #8 §2; the world has a published window): technical support and
    # admins manage them, customer support reads them; empty POSTs are a message and a redirect, or
    # the form again (400). The status page and its feed are public.
    "maintenance.index": "maint_read",
    "maintenance.show": "maint_read",
    "maintenance.log": "maint_read",
    "maintenance.new": "maint",
    "maintenance.edit": "maint",
    "maintenance.publish": "maint",
    "maintenance.cancel": "maint",
    "status.index": "public",
    "status.show": "public",
    "status.feed": "public",
}

ROLE_QUEUE = {"customer_support": "customer-support", "technical_support": "technical-support",
              "billing": "billing", "marketing": "marketing"}


def allowed(rule, role):
    """True when `role` may use an endpoint with this access rule."""
    if rule == "public":
        return True
    if role == "customer" or rule == "customer":
        return role == "customer" and rule == "customer"
    if role == "anonymous":
        return False
    if rule in ("agent", "api"):
        return True
    if rule in ("api_marketing", "marketing"):
        return role in ("admin", "marketing")
    if rule in ("ticket", "api_ticket", "api_create"):
        return role in ("admin", "technical_support")
    if rule == "admin":
        return role == "admin"
    if rule in ("admin_billing", "api_billing"):
        return role in ("admin", "billing")
    if rule == "billing":  # the billing role only: admin does not imply it
        return role == "billing"
    if rule == "orders":
        return role in ("admin", "marketing", "customer_support")
    if rule == "orders_fulfil":
        return role in ("admin", "marketing", "customer_support", "technical_support")
    if rule == "customer_admin":
        return role in ("admin", "customer_support")
    if rule == "ticket_tech":
        return role == "technical_support"
    if rule == "maint":
        return role in ("admin", "technical_support")
    if rule == "maint_read":
        return role in ("admin", "technical_support", "customer_support")
    raise AssertionError(rule)


def test_every_route_is_in_the_matrix(app):
    endpoints = {r.endpoint for r in app.url_map.iter_rules()}
    assert sorted(endpoints - set(ACCESS)) == [], "new routes need an entry in ACCESS"
    assert sorted(set(ACCESS) - endpoints) == [], "ACCESS names routes that no longer exist"


@pytest.fixture
def world(app, make):
    queues = {slug: make.queue(slug=slug, name=slug.replace("-", " ").title()) for slug in ROLE_QUEUE.values()}
    users = {"admin": make.user(roles=["admin"], email="admin@matrix.example.com")}
    for role, slug in ROLE_QUEUE.items():
        users[role] = make.user(roles=[role], queues=[queues[slug]], email=f"{role}@matrix.example.com")
    spare = make.user(roles=["marketing"], email="spare@matrix.example.com")
    cust = make.customer()
    other = make.customer()
    org = make.organisation()
    ticket = make.ticket(queue=queues["technical-support"], customer=cust, subject="Matrix ticket",
                         files=[("log.txt", "text/plain", b"secret log")])
    att = db.session.execute(select(Attachment).where(Attachment.ticket_id == ticket.id)).scalar_one()
    canned = CannedResponse(queue_id=queues["technical-support"].id, title="Hi", body="Halo {customer_name}")
    db.session.add(canned)
    mailbox = Mailbox(name="Matrix", host="127.0.0.1", port=1, security="plain", username="u", password_env="X",
                      queue_id=queues["technical-support"].id, from_address="support@matrix.example.com")
    db.session.add(mailbox)
    db.session.flush()
    raw = b"From: a@example.net\r\nSubject: Matrix\r\nMessage-ID: <m@x>\r\n\r\nHi\r\n"
    inbound = InboundMessage(mailbox_id=mailbox.id, raw_sha256=rawstore.save(raw), size=len(raw), result="created",
                             from_addr="a@example.net", subject="Matrix", ticket_id=ticket.id)
    block = SenderBlock(pattern="@spam.example.com")
    product = Product(code="MATRIX-HOST", name="Matrix hosting", product_line="domain_hosting")
    db.session.add_all([inbound, block, product])
    db.session.flush()
    owned = OwnedItem(customer_id=cust.id, product_id=product.id, purchase_date=date(2026, 1, 1))
    db.session.add(owned)
    db.session.flush()
    catalogue = [Product(code="MATRIX-WEB", name="Matrix website", product_line="website"),
                 ContractPlan(name="Matrix care", covers_lines=["website"]),
                 IssueCategory(code="matrix_down", name_id="Matrix mati", name_en="Matrix down")]
    db.session.add_all(catalogue)
    db.session.flush()
    claim = CashbackClaim(ticket_id=ticket.id, customer_id=cust.id, owned_item_id=owned.id, status="requested",
                          cashback_until=date(2026, 1, 31))
    quote = RepairQuote(ticket_id=ticket.id, customer_id=cust.id, status="draft", total=0, drafted_by_id=spare.id)
    quote.lines.append(RepairQuoteLine(position=1, description="Service fee", covered=True, covered_reason="Warranty"))
    db.session.add_all([claim, quote])
    invoice = billing.create_invoice(customer_id=cust.id, ticket_id=ticket.id,
                                     lines=[{"description": "Service fee", "quantity": 1, "unit_price": 150000}])
    payment = Payment(invoice_id=invoice.id, amount=50000, method="cash", paid_on=date(2026, 1, 2),
                      proof_path=storage.save_bytes(b"%PDF-1.4 matrix proof"), proof_name="proof.pdf",
                      proof_content_type="application/pdf")
    db.session.add(payment)
    db.session.flush()
    matrix_lead, _created = lead_services.capture(name="Matrix Lead", email="lead@matrix.example.com",
                                                  source="seminar")
    matrix_import = lead_imports.create_import(users["marketing"].id, "matrix.csv",
                                               b"Nama,Email\nMatrix Import,import@matrix.example.com\n")
    matrix_task = lead_services.add_task(matrix_lead.id, users["marketing"].id, "Matrix follow-up",
                                         datetime(2026, 1, 5, 3, 0))
    matrix_order = sales_services.create_order(users["marketing"].id, customer_id=cust.id, channel="phone", lines=[
        {"description": "Matrix setup", "quantity": 1, "unit_price": 250000}])
    matrix_offer = sales_services.create_offer(users["marketing"].id, lead_id=matrix_lead.id)
    matrix_voucher = Voucher(code="MATRIX10", kind="percent", value=1000)
    db.session.add(matrix_voucher)
    matrix_campaign = Campaign(name="Matrix promo", topic="promotions", audience="customers", segment={},
                               subject_en="Matrix", body_en="Matrix offer")  # campaigns (issue #8 §3)
    db.session.add(matrix_campaign)
    db.session.flush()
    matrix_statement, _n, _again = bank_statements.import_statement(
        users["billing"].id, "matrix.csv", b"Date,Description,Amount\n2026-01-05,MATRIX CREDIT,10.000 CR\n")
    matrix_line = db.session.execute(select(BankStatementLine)).scalar_one()
    matrix_window = maintenance_services.create_window(
        users["technical_support"].id, title_id="Pemeliharaan matrix", title_en="Matrix maintenance",
        starts_at=datetime(2099, 1, 5, 1, 0), ends_at=datetime(2099, 1, 5, 3, 0), impact="downtime",
        servers=["matrix.example.net"])
    maintenance_services.publish(matrix_window.id, users["technical_support"].id)
    tokens = {role: create_api_token(u.id) for role, u in users.items()}
    db.session.commit()
    return {
        "users": {r: u.email for r, u in users.items()},
        "tokens": tokens,
        "values": {"number": ticket.number, "attachment_id": att.id, "customer_id": other.id,
                   "user_id": spare.id, "org_id": org.id, "queue_id": queues["marketing"].id, "canned_id": canned.id,
                   "token": "not-a-valid-token", "action": "send-reset", "filename": "app.css",
                   "request_id": 999999, "mailbox_id": mailbox.id, "inbound_id": inbound.id,
                   "block_id": block.id, "item_id": owned.id, "outbound_id": 999999, "day_id": 999999, "rule_id": 999999,
                   "policy_id": db.session.execute(select(SlaPolicy.id).limit(1)).scalar(),
                   "calendar_id": db.session.execute(select(BusinessCalendar.id).limit(1)).scalar(),
                   "product_id": catalogue[0].id, "plan_id": catalogue[1].id, "category_id": catalogue[2].id,
                   "claim_id": claim.id, "quote_id": quote.id, "invoice_id": invoice.id, "payment_id": payment.id, "invoice_number": invoice.number,
                   "lead_id": matrix_lead.id, "task_id": matrix_task.id, "import_id": matrix_import.id,
                   "order_id": matrix_order.id, "statement_id": matrix_statement.id, "line_id": matrix_line.id, "offer_id": matrix_offer.id, "voucher_id": matrix_voucher.id, "campaign_id": matrix_campaign.id, "locale": "en",
                   "window_id": matrix_window.id},
        "ticket_id": ticket.id,
        "customer_id": cust.id,
        "tech_queue": "technical-support",
    }


# Requests that change the world for the requests after them run last.
LAST = ("admin.canned_delete", "admin.mail_mailbox_delete", "admin.mail_block_delete", "admin.agent_action", "auth.two_factor_disable", "auth.logout", "portal.logout")


def _requests(app, world):
    """(endpoint, method, url) for every route, with the world's ids filled in."""
    out = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.endpoint in LAST, LAST.index(r.endpoint)
                                                                if r.endpoint in LAST else 0, r.endpoint)):
        values = {arg: world["values"][arg] for arg in rule.arguments}
        url = rule.build(values, append_unknown=False)[1]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            out.append((rule.endpoint, method, url))
    return out


# A valid body where the permission depends on it (the target queue of a new ticket).
BODIES = {("POST", "/api/v1/tickets"): {
    "customer": {"email": "matrix.customer@example.com", "name": "Matrix"}, "queue": "technical-support",
    "channel": "phone", "subject": "Dari matrix", "body": "Isi tiket"}}


def _call(client, method, url, token=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if method == "GET":
        return client.get(url, headers=headers)
    kwargs = {"json": BODIES.get((method, url), {})} if url.startswith("/api/") else {"data": {}}
    return client.open(url, method=method, headers=headers, **kwargs)


def _customer_login(client, customer_id):
    from helpdesk.customers.models import Customer
    from helpdesk.portal.tokens import make_sign_in_token

    customer = db.session.get(Customer, customer_id)
    customer.login_nonce = "m" * 32
    db.session.commit()
    assert client.post(f"/portal/login/{make_sign_in_token(customer_id, customer.login_nonce)}").status_code == 303


@pytest.mark.parametrize("role", MATRIX_ROLES)
def test_matrix(app, world, auth, client, role):
    if role == "customer":
        _customer_login(client, world["customer_id"])
    elif role != "anonymous":
        auth.login(world["users"][role])
    failures = []
    for endpoint, method, url in _requests(app, world):
        rule = ACCESS[endpoint]
        token = world["tokens"].get(role) if rule.startswith("api") and rule != "public" else None
        resp = _call(client, method, url, token)
        code = resp.status_code
        ok = allowed(rule, role)
        if code >= 500:
            failures.append(f"{method} {url}: server error {code}")
        elif ok and code in (401, 403, 404):
            failures.append(f"{method} {url} ({rule}): {role} should be allowed, got {code}")
        elif not ok:
            if rule.startswith("api") and role in ("anonymous", "customer"):
                good = code == 401
            elif role in ("anonymous", "customer"):
                good = code == 302 and "/login" in resp.headers.get("Location", "")
            elif rule in ("ticket", "api_ticket"):
                good = code == 404
            else:
                good = code in (403, 404)
            if not good:
                failures.append(f"{method} {url} ({rule}): {role} should be refused, got {code}")
    assert failures == [], "\n".join(failures)


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_attachment_of_invisible_ticket_is_never_served(app, world, auth, client, role):
    if role != "anonymous":
        auth.login(world["users"][role])
    aid = world["values"]["attachment_id"]
    web = client.get(f"/attachments/{aid}")
    api = client.get(f"/api/v1/attachments/{aid}",
                     headers={"Authorization": f"Bearer {world['tokens'][role]}"} if role != "anonymous" else {})
    for resp in (web, api):
        if role in ("admin", "technical_support"):
            assert resp.status_code == 200 and resp.data == b"secret log"
        else:
            assert resp.status_code in (302, 401, 404) and b"secret log" not in resp.data


def test_billing_actions_need_the_billing_role(app, world, auth, client):
    """Releasing a ticket from pending_billing is a billing action: admin does not imply it."""
    tid, number = world["ticket_id"], world["values"]["number"]
    services.change_status(tid, db.session.execute(select(Ticket.assignee_id)).scalar() or
                           _user_id(world["users"]["admin"]), "pending_billing")
    db.session.commit()
    for role in ("technical_support", "admin"):
        auth.login(world["users"][role])
        client.post(f"/tickets/{number}/status", data={"status": "open"})
        r = client.patch(f"/api/v1/tickets/{number}", json={"status": "open"},
                         headers={"Authorization": f"Bearer {world['tokens'][role]}"})
        assert r.status_code == 403
        db.session.expire_all()
        assert db.session.get(Ticket, tid).status == "pending_billing", role
        auth.logout()
    auth.login(world["users"]["billing"])
    r = client.post(f"/tickets/{number}/status", data={"status": "open"})
    assert r.status_code == 302
    db.session.expire_all()
    assert db.session.get(Ticket, tid).status == "open"


def _user_id(email):
    from helpdesk.auth.services import find_user

    return find_user(email).id


def test_matrix_world_is_what_it_claims(app, world):
    """Guard: the ticket really is in Technical Support and has the attachment."""
    t = db.session.get(Ticket, world["ticket_id"])
    assert t.queue.slug == world["tech_queue"] and t.message_count == 1
    assert io.BytesIO(b"secret log").read() == b"secret log"
