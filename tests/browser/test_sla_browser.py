"""SLAs in a real browser: the queue sorted by due time with its badges, the bell after the sweep's
alert, the ticket's SLA panel before and after the agent's answer, and the SLA report with its chart.
Every page is checked for console errors, foreign requests and axe-core violations. Screenshots for
the README."""
from datetime import timedelta

import pytest
from flask_babel import force_locale, gettext

from helpdesk.extensions import db
from helpdesk.sla.jobs import sweep
from helpdesk.sla.models import Notification, SlaClock
from helpdesk.tickets import services
from helpdesk.timeutil import utcnow
from tests.browser.helpers import SHOTS, desk_page
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser

LOCALE = "en"


def _text(message, **kw):
    with force_locale(LOCALE):
        return gettext(message, **kw)


def test_badges_bell_ticket_clocks_and_report(app, make, live_server, browser, axe_source, run_jobs):
    from playwright.sync_api import expect

    base = live_server
    tech = make.queue(slug="technical-support", name="Technical Support")
    lead = make.user(email="rina.wulandari@example.com", name="Rina Wulandari", roles=["admin", "technical_support"],
                     queues=[tech])
    tech.lead_id = lead.id
    cust = make.customer(name="Budi Santoso")
    now = utcnow()
    # Ten days ago, urgent (first response 30 business minutes): long overdue. And one written just now.
    late = services.create_ticket(customer_id=cust.id, subject="Server hosting mati", body_text="Website tidak bisa dibuka",
                                  channel="email", queue_id=tech.id, priority="urgent", now=now - timedelta(days=10))
    fresh = services.create_ticket(customer_id=cust.id, subject="Perpanjang domain", body_text="Mohon info harga",
                                   channel="web", queue_id=tech.id, priority="normal", now=now)
    db.session.commit()
    late_number, fresh_number, late_id, lead_id, lead_email = late.number, fresh.number, late.id, lead.id, lead.email
    # The sweep claims the late ticket's two breaches (first response, resolution); the alert jobs mail
    # the queue lead and ring the bell.
    result = sweep(now)
    assert result["claimed"] >= 1
    run_jobs()
    assert db.session.query(Notification).filter_by(user_id=lead_id, ticket_id=late_id).count() == 2

    context, page, watch, shot = desk_page(browser, base, axe_source)

    try:
        page.goto(base + "/login?lang=en")
        page.get_by_label(_text("Email")).fill(lead_email)
        page.get_by_label(_text("Password")).fill(PASSWORD)
        page.get_by_role("button", name=_text("Log in")).click()
        # The bell counts the unread alerts
        bell = page.locator("#bell")
        expect(bell).to_have_attribute("aria-label", _text("Notifications: %(n)s unread", n=2))

        # The queue, due soonest first: the overdue ticket on top with its red badge, then the new one
        page.goto(f"{base}/?view=queue:technical-support&sort=sla_due")
        rows = page.locator("table tbody tr")
        expect(rows).to_have_count(2)
        expect(rows.nth(0)).to_contain_text(str(late_number))
        expect(rows.nth(0)).to_contain_text(_text("overdue"))
        expect(rows.nth(1)).to_contain_text(str(fresh_number))
        expect(rows.nth(1)).to_contain_text(_text("%(time)s left", time="").strip())
        expect(page.get_by_text(_text("Only tickets with a running SLA clock, due soonest first. Paused and stopped "
                                      "clocks have no due time."))).to_be_visible()
        watch.assert_clean("the queue sorted by due time")
        shot("sla-01-queue")

        # The bell's page links to the ticket
        bell.click()
        expect(page.get_by_role("link", name=f"#{late_number}", exact=False).first).to_be_visible()
        watch.assert_clean("the notifications")
        page.get_by_role("button", name=_text("Mark all read")).click()
        expect(page.locator("#bell")).to_have_attribute("aria-label", _text("Notifications: %(n)s unread", n=0))

        # The late ticket: its first response is running and overdue; the agent answers -> breached
        page.goto(f"{base}/tickets/{late_number}")
        panel = page.locator("#sla")
        expect(panel).to_contain_text(_text("First response"))
        expect(panel).to_contain_text(_text("overdue"))
        page.locator("#reply-body").fill("Mohon maaf atas keterlambatan, server sudah kami nyalakan kembali.")
        page.get_by_role("button", name=_text("Send"), exact=True).click()
        expect(page.get_by_role("alert").filter(has_text=_text("Reply sent."))).to_be_visible()
        expect(page.locator("#sla")).to_contain_text(_text("breached"))
        watch.assert_clean("the ticket's SLA panel")
        shot("sla-02-ticket")

        # The report: Technical Support with its breached first response, the chart and the breach list
        page.goto(f"{base}/reports/sla")
        expect(page.get_by_role("heading", name=_text("SLA report"))).to_be_visible()
        expect(page.get_by_role("img", name=_text("Targets met per %(group)s", group=_text("Queue").lower()))
               ).to_be_visible()
        row = page.locator("#sla-table tbody tr").filter(has_text="Technical Support")
        expect(row).to_contain_text("0.0% (0/1)")
        expect(page.locator("#sla-breaches")).to_contain_text(f"#{late_number}")
        watch.assert_clean("the SLA report")
        shot("sla-03-report")
        with page.expect_download() as download:
            page.get_by_role("link", name=_text("Download CSV")).click()
        assert download.value.suggested_filename.startswith("sla-queue-")
    finally:
        context.close()

    db.session.remove()
    clock = db.session.query(SlaClock).filter_by(ticket_id=late_id, target="first_response").one()
    assert clock.state == "breached" and clock.margin_seconds < 0
    for name in ("sla-01-queue", "sla-02-ticket", "sla-03-report"):
        assert (SHOTS / f"{name}.png").stat().st_size > 10_000
