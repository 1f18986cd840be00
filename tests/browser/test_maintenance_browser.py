"""Maintenance announcements in a real browser (issue #8 §4), as the people involved see them.

Technical support creates a window on a hosting server → the preview lists exactly the affected
subscribers (not the customer on another server, not the one who opted out) → publishes it → at
announcement time (the sweep with a controlled clock) the emails arrive on the SMTP test server with
RFC 8058 headers → a customer unsubscribes by one click from the mail's link → the reminder skips
her and reaches the other → the delivery log and the public status page show it.

Every page is checked for console errors, foreign requests and axe-core violations. Screenshots for
the README (test-output/browser/maint-0N-*.png, copied to docs/screenshots/)."""
from datetime import datetime, timedelta

import pytest
from flask_babel import force_locale, gettext

from helpdesk.extensions import db
from helpdesk.maintenance import jobs as maintenance_jobs
from helpdesk.maintenance.models import MaintenanceWindow
from helpdesk.subscriptions import services as subs
from helpdesk.timeutil import utcnow
from helpdesk.warranty import admin_services as catalogue
from helpdesk.warranty import services as warranty
from tests.browser.helpers import SHOTS, PageWatch, desk_page, login_en
from tests.smtp_server import shared_smtp, smtp_server  # noqa: F401

pytestmark = pytest.mark.browser

LOCALE = "en"
SHOT_NAMES = ("maint-01-preview", "maint-02-unsubscribed", "maint-03-delivery-log", "maint-04-status")
SERVER = "srv1.jogjahost.id"
TITLE_EN = "Kernel update on server srv1"
TITLE_ID = "Pembaruan kernel server srv1"


def _text(message, **kw):
    with force_locale(LOCALE):
        return gettext(message, **kw)


def _alert(page, message):
    return page.get_by_role("alert").filter(has_text=message)


def test_window_on_a_server_announced_unsubscribed_and_reminded(app, make, mail_live_server, smtp_server,  # noqa: F811
                                                                 browser, axe_source, run_jobs):
    from playwright.sync_api import expect

    server_app, base = mail_live_server(smtp_server, "support@helpdesk.test", BASE_URL="http://helpdesk.test")
    now = utcnow()
    today_wib = (now + timedelta(hours=7)).date()
    day = today_wib + timedelta(days=5)
    start = datetime(day.year, day.month, day.day, 22) - timedelta(hours=7)  # 22:00 WIB, in UTC

    # ---- the people, the hosting product and who owns what where
    admin = make.user(email="ani.admin@example.com", name="Ani Admin", roles=["admin"])
    tech = make.user(email="bayu.tech@example.com", name="Bayu Tech", roles=["technical_support"])
    hosting = catalogue.save_product(None, admin.id, now, code="HOST-1G", name="Hosting 1 GB",
                                     product_line="domain_hosting", price=600_000, warranty_days=30, term_days=365)
    ani = make.customer(name="Ani Lestari", email="ani@kopimerapi.com", language="en")
    budi = make.customer(name="Budi Santoso", email="budi@batikjogja.id", language="id")
    citra = make.customer(name="Citra Dewi", email="citra@gudeg.id", language="id")  # on another server
    dedi = make.customer(name="Dedi Kurnia", email="dedi@bakpia.id", language="id")  # opted out
    for customer, identifier, server in ((ani, "kopimerapi.com", SERVER), (budi, "batikjogja.id", SERVER.upper()),
                                         (citra, "gudeg.id", "srv2.jogjahost.id"), (dedi, "bakpia.id", SERVER)):
        warranty.create_item(customer_id=customer.id, product_id=hosting.id, purchase_date=today_wib - timedelta(days=90),
                             activation_date=today_wib - timedelta(days=90), identifier=identifier, server=server)
    subs.change("customer", dedi.id, {"maintenance": False}, source="portal", method="checkbox")
    db.session.commit()
    ids = {"ani": ani.id, "budi": budi.id, "citra": citra.id, "dedi": dedi.id}
    tech_email = tech.email

    def sweep_at(moment):
        """The rq cron sweep at a controlled time, then the mail jobs, with the app that talks to SMTP."""
        with server_app.app_context():
            maintenance_jobs.sweep(now=moment)
            run_jobs()

    context, page, watch, shot = desk_page(browser, base, axe_source)
    customer_context = browser.new_context(locale="en-US", timezone_id="Asia/Jakarta")  # no cookies of the desk
    try:
        # ================================================================ 1. the window and its preview
        login_en(page, base, tech_email)
        page.get_by_role("link", name=_text("Maintenance"), exact=True).click()
        watch.assert_clean("the maintenance list")
        page.goto(base + "/maintenance/new")
        page.get_by_label(_text("Title (Indonesian)")).fill(TITLE_ID)
        page.get_by_label(_text("Title (English)")).fill(TITLE_EN)
        page.get_by_label(_text("Description (Indonesian)")).fill("Server dimulai ulang, situs tidak dapat diakses "
                                                                  "sekitar 30 menit.")
        page.get_by_label(_text("Description (English)")).fill("The server restarts; websites are unreachable for "
                                                               "about 30 minutes.")
        page.get_by_label(_text("Start date")).fill(day.isoformat())
        page.get_by_label(_text("Start time (WIB)")).fill("22:00")
        page.get_by_label(_text("End date")).fill(day.isoformat())
        page.get_by_label(_text("End time (WIB)")).fill("23:30")
        page.get_by_label(_text("Servers")).fill(SERVER)
        watch.assert_clean("the filled window form")
        page.get_by_role("button", name=_text("Save")).click()
        expect(_alert(page, _text("Maintenance window saved as a draft. Check the affected customers, then "
                                  "publish it."))).to_be_visible()
        expect(page.get_by_role("heading", name=TITLE_EN)).to_be_visible()
        # the preview: Ani and Budi (srv1, subscribed by default), not Citra (srv2), not Dedi (opted out)
        expect(page.locator("#affected-total")).to_have_text("2")
        rows = page.locator("#affected-list .affected-row")
        expect(rows).to_have_count(2)
        expect(page.locator("#affected-list")).to_contain_text("Ani Lestari")
        expect(page.locator("#affected-list")).to_contain_text("Budi Santoso")
        expect(page.locator("#affected-list")).not_to_contain_text("Citra Dewi")
        expect(page.locator("#affected-list")).not_to_contain_text("Dedi Kurnia")
        expect(page.locator("#target-counts")).to_contain_text(SERVER)
        expect(page.locator("#sample-mail")).to_contain_text(TITLE_EN)
        watch.assert_clean("the preview")
        shot(SHOT_NAMES[0])
        page.locator("#publish-form").get_by_role("button", name=_text("Publish")).click()
        expect(_alert(page, _text("Published: the affected subscribers are notified on schedule."))).to_be_visible()
        window_id = db.session.query(MaintenanceWindow.id).scalar()
        assert smtp_server.messages == []  # nothing before the announcement time

        # ================================================================ 2. the announcement, 3 days before
        sweep_at(start - timedelta(days=3) + timedelta(minutes=1))
        assert sorted(r for m in smtp_server.messages for r in m.rcpt_tos) == ["ani@kopimerapi.com",
                                                                               "budi@batikjogja.id"]
        [to_ani] = smtp_server.to("ani@kopimerapi.com")
        [to_budi] = smtp_server.to("budi@batikjogja.id")
        assert TITLE_EN in to_ani["Subject"] and TITLE_ID in to_budi["Subject"]  # each in their language
        assert "22:00" in to_ani.text and "kopimerapi.com" in to_ani.text
        assert to_ani["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        https = [part.strip(" <>") for part in to_ani["List-Unsubscribe"].split(",") if "https://" in part
                 or "http://" in part][0]
        assert https.startswith("http://helpdesk.test/subscriptions/unsubscribe/")

        # ================================================================ 3. Ani unsubscribes by one click
        cpage = customer_context.new_page()
        cwatch = PageWatch(cpage, base, axe_source)
        cpage.goto(https.replace("http://helpdesk.test", base) + "?lang=en")
        expect(cpage.get_by_role("heading", name=_text("Unsubscribe?"))).to_be_visible()
        assert subs.receives("customer", ids["ani"], "maintenance")  # the GET changed nothing
        cwatch.assert_clean("the unsubscribe confirmation page")
        cpage.get_by_role("button", name=_text("Unsubscribe")).click()
        expect(cpage.get_by_role("heading", name=_text("You are unsubscribed"))).to_be_visible()
        db.session.expire_all()
        assert not subs.receives("customer", ids["ani"], "maintenance")
        cwatch.assert_clean("the unsubscribed page")
        cpage.screenshot(path=str(SHOTS / f"{SHOT_NAMES[1]}.png"), full_page=True)

        # ================================================================ 4. the reminder skips her
        smtp_server.clear()
        sweep_at(start - timedelta(hours=3) + timedelta(minutes=1))
        assert [r for m in smtp_server.messages for r in m.rcpt_tos] == ["budi@batikjogja.id"]
        assert smtp_server.to("ani@kopimerapi.com") == []

        page.goto(f"{base}/maintenance/{window_id}/log")
        log = page.locator("table")
        expect(log).to_contain_text("ani@kopimerapi.com")
        expect(log.locator("tbody tr")).to_have_count(3)  # two announcements, one reminder
        watch.assert_clean("the delivery log")
        shot(SHOT_NAMES[2])

        # ================================================================ 5. the public status page
        spage = customer_context.new_page()
        swatch = PageWatch(spage, base, axe_source)
        spage.goto(base + "/status?lang=en")
        expect(spage.get_by_role("heading", name=_text("Upcoming maintenance"))).to_be_visible()
        expect(spage.get_by_text(TITLE_EN)).to_be_visible()
        body = spage.locator("body")
        for private in ("Ani Lestari", "kopimerapi.com", "budi@batikjogja.id"):
            expect(body).not_to_contain_text(private)
        swatch.assert_clean("the status page")
        spage.screenshot(path=str(SHOTS / f"{SHOT_NAMES[3]}.png"), full_page=True)
    finally:
        customer_context.close()
        context.close()
    for name in SHOT_NAMES:
        assert (SHOTS / f"{name}.png").stat().st_size > 10_000
