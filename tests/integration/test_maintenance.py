"""Maintenance windows (issue #8 §2): exactly the affected, subscribed customers (server, product and
item windows; never the unsubscribed, bouncing, anonymised or those whose items are cancelled); the
sweep with a controlled clock (announcement, reminder, completion, updated, extended, cancelled),
each notice once per recipient also with a sweep run twice or two at once, in batches; tickets
during a window linked with one auto-reply. Mails arrive at a real SMTP server."""
from datetime import date, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from helpdesk.extensions import db
from helpdesk.maintenance import jobs as mjobs
from helpdesk.maintenance import services as maint
from helpdesk.maintenance.models import MaintenanceWindow, TicketMaintenance
from helpdesk.mail.models import OutboundMail
from helpdesk.subscriptions import services as subs
from helpdesk.subscriptions.models import AnnouncementDelivery
from helpdesk.timeutil import utcnow
from helpdesk.warranty import services as warranty
from helpdesk.warranty.models import Product
from tests.concurrency import at_once
from tests.smtp_server import shared_smtp, smtp_server  # noqa: F401  (fixtures)

BASE_URL = "https://desk.example"
START = datetime(2027, 2, 10, 1, 0)  # Wednesday 10 February 2027, 08:00 WIB
END = START + timedelta(hours=4)  # 12:00 WIB


@pytest.fixture
def app(app_factory, smtp_server):
    app = app_factory(BASE_URL=BASE_URL, MAIL_DEFAULT_SENDER="Support <support@desk.example>",
                      **smtp_server.mail_config())
    with app.app_context():
        yield app
        db.session.remove()


def _item(customer, product, server=None, identifier=None, status="active"):
    item = warranty.create_item(customer_id=customer.id, product_id=product.id, purchase_date=date(2026, 1, 5),
                                identifier=identifier, status=status, with_bundle=False)
    item.server = server
    return item


@pytest.fixture
def world(app, make):
    w = SimpleNamespace()
    w.tech = make.user(email="rina@desk.example", name="Rina", roles=["technical_support"])
    w.hosting = Product(code="HOST-1GB", name="Hosting 1 GB", product_line="domain_hosting", price=1_200_000)
    w.website = Product(code="WEB-TOKO", name="Website Toko Online", product_line="website", price=4_500_000)
    db.session.add_all([w.hosting, w.website])
    db.session.flush()
    names = ("ani", "budi", "citra", "dewi", "eko", "fajar", "gita", "hadi")
    for n in names:
        setattr(w, n, make.customer(name=n.title(), email=f"{n}@example.net", language="en" if n == "ani" else "id"))
    w.ani_host = _item(w.ani, w.hosting, "srv1.example.net", "tokoani.com")
    w.ani_site = _item(w.ani, w.website, None, "ani-site.example")
    w.budi_host = _item(w.budi, w.hosting, "srv1.example.net", "budi.id", status="suspended")
    w.citra_host = _item(w.citra, w.hosting, "srv2.example.net", "citra.id")
    w.dewi_site = _item(w.dewi, w.website, None, "dewi.id")
    for n in ("eko", "fajar", "gita"):
        _item(getattr(w, n), w.hosting, "srv1.example.net", f"{n}.id")
    _item(w.hadi, w.hosting, "srv1.example.net", "hadi.id", status="cancelled")
    db.session.flush()
    subs.change("customer", w.eko.id, {"maintenance": False}, source="portal", method="checkbox")
    w.fajar.emails[0].bouncing_at = utcnow()
    w.gita.anonymised_at = utcnow()
    db.session.commit()
    w.tech_id = w.tech.id
    return w


def window(w, *, servers=(), product_ids=(), item_ids=(), publish_at=START - timedelta(days=5), **kw):
    fields = dict(title_id="Pemeliharaan server srv1", title_en="Server srv1 maintenance",
                  description_id="Pembaruan kernel.", description_en="Kernel upgrade.", starts_at=START, ends_at=END,
                  impact="downtime")
    fields.update(kw)
    win = maint.create_window(w.tech_id, servers=servers, product_ids=product_ids, item_ids=item_ids,
                              now=(publish_at or START - timedelta(days=5)) - timedelta(hours=1), **fields)
    if publish_at is not None:
        maint.publish(win.id, w.tech_id, now=publish_at)
    db.session.commit()
    return win.id


def names(window_id):
    return sorted(c["name"] for c in maint.affected(window_id)["customers"])


def sweep(now, **kw):
    stats = mjobs.sweep(now, **kw)
    db.session.expire_all()
    return stats


def deliveries(window_id, kind=None):
    q = select(AnnouncementDelivery).where(AnnouncementDelivery.window_id == window_id)
    if kind:
        q = q.where(AnnouncementDelivery.kind == kind)
    return db.session.execute(q.order_by(AnnouncementDelivery.id)).scalars().all()


def recipients(window_id, kind):
    return sorted(d.email for d in deliveries(window_id, kind))


def mails_to(smtp, addr, word):
    return [m for m in smtp.to(addr) if word in m["Subject"]]


# ---------------------------------------------------------------- targeting

def test_targeting_server_product_and_items(world):
    w = world
    server = window(w, servers=["SRV1.example.net "])
    product = window(w, product_ids=[w.website.id])
    items = window(w, item_ids=[w.citra_host.id, w.dewi_site.id])
    # eko unsubscribed, fajar bounces, gita is anonymised, hadi's item is cancelled
    assert names(server) == ["Ani", "Budi"]
    assert names(product) == ["Ani", "Dewi"]
    assert names(items) == ["Citra", "Dewi"]
    info = maint.affected(server)
    assert info["total"] == 2
    assert info["counts"] == [{"kind": "server", "label": "srv1.example.net", "items": 5, "subscribers": 2}]
    ani = next(c for c in info["customers"] if c["name"] == "Ani")
    assert [i.identifier for i in ani["items"]] == ["tokoani.com"]  # not her website
    both = window(w, servers=["srv2.example.net"], product_ids=[w.website.id])
    assert [c["subscribers"] for c in maint.affected(both)["counts"]] == [1, 2]
    assert names(both) == ["Ani", "Citra", "Dewi"]


# ---------------------------------------------------------------- timing

def test_announcement_reminder_extension_and_completion_on_time(world, smtp_server, run_jobs):
    w = world
    wid = window(w, servers=["srv1.example.net"])
    announce = START - timedelta(days=3)
    assert sweep(announce - timedelta(minutes=1)).get("announce", 0) == 0
    assert sweep(announce)["announce"] == 2
    assert recipients(wid, "announce") == ["ani@example.net", "budi@example.net"]
    assert sweep(announce + timedelta(minutes=1)).get("announce", 0) == 0  # once
    run_jobs()
    [mail] = smtp_server.to("ani@example.net")
    assert mail["Subject"] == "Scheduled maintenance: Server srv1 maintenance"
    assert "Wednesday, 10 February 2027, 08:00 WIB" in mail.text and "12:00 WIB" in mail.text
    assert "Kernel upgrade." in mail.text and "Hosting 1 GB · tokoani.com" in mail.text
    assert "ani-site.example" not in mail.text
    assert f"{BASE_URL}/status/{wid}" in mail.text
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    [budi] = smtp_server.to("budi@example.net")
    assert budi["Subject"] == "Jadwal pemeliharaan: Pemeliharaan server srv1" and "Pembaruan kernel." in budi.text
    assert "Rabu, 10 Februari 2027, 08.00 WIB" in budi.text

    reminder = START - timedelta(hours=3)
    assert sweep(reminder - timedelta(minutes=1)).get("reminder", 0) == 0
    assert sweep(reminder)["reminder"] == 2
    assert sweep(reminder + timedelta(minutes=5)).get("reminder", 0) == 0

    # during the window the end moves later: an "extended" notice to those notified
    maint.update_window(wid, w.tech_id, now=START + timedelta(hours=1), change_note="More disks to replace",
                        servers=["srv1.example.net"], title_id="Pemeliharaan server srv1",
                        title_en="Server srv1 maintenance", description_id="Pembaruan kernel.",
                        description_en="Kernel upgrade.", starts_at=START, ends_at=END + timedelta(hours=2),
                        impact="downtime")
    db.session.commit()
    assert db.session.get(MaintenanceWindow, wid).revision == 1
    assert sweep(START + timedelta(hours=1, minutes=1))["extended"] == 2
    assert sweep(START + timedelta(hours=1, minutes=2)).get("extended", 0) == 0
    assert sweep(END + timedelta(minutes=1)).get("completed", 0) == 0  # the new end is later
    assert sweep(END + timedelta(hours=2))["completed"] == 2
    assert sweep(END + timedelta(hours=3)) == {"windows": 0}
    smtp_server.clear()
    run_jobs()
    subjects = sorted(m["Subject"] for m in smtp_server.to("ani@example.net"))
    assert subjects == ["Maintenance completed: Server srv1 maintenance", "Maintenance extended: Server srv1 maintenance",
                        "Reminder: maintenance soon: Server srv1 maintenance"]
    ext = mails_to(smtp_server, "ani@example.net", "extended")[0]
    assert "More disks to replace" in ext.text and "14:00 WIB" in ext.text
    assert len(smtp_server.to("budi@example.net")) == 3


def test_published_late_announces_at_once_without_a_separate_reminder(world):
    w = world
    wid = window(w, servers=["srv1.example.net"], publish_at=START - timedelta(hours=1))
    assert sweep(START - timedelta(hours=1))["announce"] == 2
    assert sweep(START - timedelta(minutes=30)).get("reminder", 0) == 0
    assert deliveries(wid, "reminder") == []
    assert db.session.get(MaintenanceWindow, wid).reminded_at is not None
    assert sweep(END + timedelta(minutes=1))["completed"] == 2


def test_draft_is_never_announced_and_unannounced_window_closes_silently(world):
    w = world
    draft = window(w, servers=["srv1.example.net"], publish_at=None)
    assert sweep(START - timedelta(days=1)) == {"windows": 0}
    assert deliveries(draft) == []
    # announced 1 day before only: the window passes before its announcement time never comes
    wid = window(w, servers=["srv1.example.net"], announce_days=0)
    assert sweep(START - timedelta(days=1)).get("announce", 0) == 0
    assert sweep(END + timedelta(minutes=1)).get("completed", 0) == 0
    assert db.session.get(MaintenanceWindow, wid).completed_at is not None and deliveries(wid) == []


def test_a_change_sends_an_update_and_a_cancellation_skips_who_unsubscribed(world, smtp_server, run_jobs):
    w = world
    wid = window(w, servers=["srv1.example.net"])
    sweep(START - timedelta(days=3))
    maint.update_window(wid, w.tech_id, now=START - timedelta(days=2), change_note="Starts one hour later",
                        servers=["srv1.example.net"], title_id="Pemeliharaan server srv1",
                        title_en="Server srv1 maintenance", description_id="Pembaruan kernel.",
                        description_en="Kernel upgrade.", starts_at=START + timedelta(hours=1),
                        ends_at=END + timedelta(hours=1), impact="degraded")
    db.session.commit()
    assert sweep(START - timedelta(days=2))["updated"] == 2
    assert sweep(START - timedelta(days=2)).get("updated", 0) == 0
    ani_id = w.ani.id
    run_jobs()
    [upd] = mails_to(smtp_server, "ani@example.net", "changed")
    assert "Starts one hour later" in upd.text and "09:00 WIB" in upd.text and "Degraded" in upd.text
    subs.change("customer", ani_id, {"maintenance": False}, source="portal", method="checkbox")
    maint.cancel(wid, w.tech_id, "Vendor postponed the upgrade", now=START - timedelta(days=1))
    db.session.commit()
    assert sweep(START - timedelta(days=1))["cancelled"] == 1
    assert recipients(wid, "cancelled") == ["budi@example.net"]
    assert sweep(START - timedelta(hours=20)) == {"windows": 0}
    run_jobs()
    [cancel] = mails_to(smtp_server, "budi@example.net", "dibatalkan")
    assert "Vendor postponed the upgrade" in cancel.text
    assert mails_to(smtp_server, "ani@example.net", "cancelled") == []


# ---------------------------------------------------------------- idempotence and batches

def _window_with_three_more(w, make):
    """A window on srv1, where three more customers have an item (five recipients in all)."""
    for i in range(3):
        c = make.customer(name=f"Extra {i}", email=f"extra{i}@example.net")
        _item(c, w.hosting, "srv1.example.net", f"extra{i}.id")
    db.session.commit()
    return window(w, servers=["srv1.example.net"])


def test_batches_continue_on_the_next_sweep(world, make):
    w = world
    wid = _window_with_three_more(w, make)
    at = START - timedelta(days=3)
    assert [sweep(at, batch=2)["announce"] for _ in range(3)] == [2, 2, 1]
    assert db.session.get(MaintenanceWindow, wid).announced_at is not None
    assert sweep(at, batch=2).get("announce", 0) == 0
    assert len(recipients(wid, "announce")) == 5


def test_an_edit_during_the_reminder_fan_out_reminds_nobody_twice(world, make):
    """Reminders go out in batches; a typo fixed between two batches makes a new revision (an update
    for those notified) but not a new reminder round: the next sweeps remind only the rest. Moving
    the start does start a new round."""
    w = world
    wid = _window_with_three_more(w, make)
    sweep(START - timedelta(days=3))
    reminder = START - timedelta(hours=3)
    assert sweep(reminder, batch=2)["reminder"] == 2
    fields = dict(title_id="Pemeliharaan server srv1", title_en="Server srv1 maintenance (typo fixed)",
                  description_id="Pembaruan kernel.", description_en="Kernel upgrade.", starts_at=START, ends_at=END,
                  impact="downtime", servers=["srv1.example.net"])
    maint.update_window(wid, w.tech_id, now=reminder + timedelta(minutes=1), **fields)
    db.session.commit()
    assert db.session.get(MaintenanceWindow, wid).revision == 1
    later = [sweep(reminder + timedelta(minutes=2 + n), batch=2).get("reminder", 0) for n in range(3)]
    assert sum(later) == 3  # the other three, once
    emails = recipients(wid, "reminder")
    assert len(emails) == 5 and len(set(emails)) == 5

    fields.update(starts_at=START + timedelta(days=1), ends_at=END + timedelta(days=1))
    maint.update_window(wid, w.tech_id, now=reminder + timedelta(minutes=10), **fields)
    db.session.commit()
    assert db.session.get(MaintenanceWindow, wid).reminder_round == 1
    assert sweep(reminder + timedelta(days=1), batch=10)["reminder"] == 5  # the moved start: everyone again


def test_two_sweeps_at_once_send_each_notice_once(app, world, make, smtp_server, run_jobs):
    w = world
    for i in range(6):
        c = make.customer(name=f"Extra {i}", email=f"extra{i}@example.net")
        _item(c, w.hosting, "srv1.example.net", f"extra{i}.id")
    db.session.commit()
    wid = window(w, servers=["srv1.example.net"])

    def sweep_once():
        return mjobs.sweep(START - timedelta(days=3))

    results = at_once(app, sweep_once, sweep_once)  # two workers at the same moment
    assert sum(r.get("announce", 0) for r in results) == 8
    db.session.expire_all()
    assert len(recipients(wid, "announce")) == 8
    run_jobs()
    assert all(len(smtp_server.to(f"extra{i}@example.net")) == 1 for i in range(6))
    assert len(smtp_server.to("ani@example.net")) == 1


# ---------------------------------------------------------------- during a window

def test_tickets_during_a_window_are_linked_with_one_auto_reply(world, make, smtp_server, run_jobs):
    w = world
    wid = window(w, servers=["srv1.example.net"])
    during = START + timedelta(minutes=30)
    queue = make.queue(slug="technical-support", name="Technical Support")
    first = make.ticket(queue=queue, customer=w.ani, subject="Site down", body="My site is down", now=during)
    second = make.ticket(queue=queue, customer=w.ani, subject="Still down", body="Still nothing", now=during)
    other_item = make.ticket(queue=queue, customer=w.ani, subject="Question about ani-site.example",
                             body="How do I edit ani-site.example?", now=during)
    unaffected = make.ticket(queue=queue, customer=w.citra, subject="Site down", body="Down", now=during)
    before = make.ticket(queue=queue, customer=w.budi, subject="Down?", body="Down", now=START - timedelta(hours=1))
    db.session.commit()
    linked = {t.ticket_id for t in db.session.execute(select(TicketMaintenance)).scalars()}
    assert db.session.get(type(other_item), other_item.id).owned_item_id == w.ani_site.id
    assert linked == {first.id, second.id}
    assert unaffected.id not in linked and before.id not in linked
    [auto] = deliveries(wid, "autoreply")
    assert auto.customer_id == w.ani.id
    replies = db.session.execute(select(OutboundMail).where(OutboundMail.kind == "maint_autoreply")).scalars().all()
    assert [r.ticket_id for r in replies] == [first.id]
    first_id, number = first.id, first.number
    run_jobs()
    [mail] = [m for m in smtp_server.to("ani@example.net") if "Maintenance in progress" in m["Subject"]]
    assert f"[#{number}]" in mail["Subject"] and f"{BASE_URL}/status/{wid}" in mail.text
    assert "Hosting 1 GB · tokoani.com" in mail.text
    assert [x.id for x in maint.windows_of_ticket(first_id)] == [wid]


def test_new_targets_after_the_announcement_reach_only_the_newly_affected(world):
    w = world
    wid = window(w, servers=["srv1.example.net"])
    sweep(START - timedelta(days=3))
    fields = dict(title_id="Pemeliharaan server srv1", title_en="Server srv1 maintenance",
                  description_id="Pembaruan kernel.", description_en="Kernel upgrade.", starts_at=START, ends_at=END,
                  impact="downtime")
    maint.update_window(wid, w.tech_id, now=START - timedelta(days=2), servers=["srv1.example.net", "srv2.example.net"],
                        **fields)
    db.session.commit()
    assert db.session.get(MaintenanceWindow, wid).revision == 0  # nothing customers read changed
    assert sweep(START - timedelta(days=2))["announce"] == 1
    assert recipients(wid, "announce") == ["ani@example.net", "budi@example.net", "citra@example.net"]
    assert sweep(START - timedelta(hours=3))["reminder"] == 3


def test_a_cancelled_draft_never_shows_and_sends_nothing(world):
    w = world
    wid = window(w, servers=["srv1.example.net"], publish_at=None)
    maint.cancel(wid, w.tech_id, "Not needed", now=START - timedelta(days=4))
    db.session.commit()
    assert sweep(START - timedelta(days=3)) == {"windows": 1}
    assert deliveries(wid) == [] and maint.windows(START, published_only=True) == {"upcoming": [], "ongoing": [],
                                                                                    "past": []}
