"""Marketing's lead pages: manual entry (and the merge of a known person), the pipeline's counts and
filters, the lead page (edit, stages, activities, follow-up tasks in Asia/Jakarta, conversion), the
customer page's lead history, the bell's follow-up reminder, and who may use the pages."""
import re
from datetime import datetime

import pytest
from sqlalchemy import select

from helpdesk.extensions import db
from helpdesk.leads import jobs as lead_jobs
from helpdesk.leads import services as leads
from helpdesk.leads.models import Lead, LeadActivity, LeadTask
from helpdesk.sla.models import Notification


@pytest.fixture
def team(make):
    users = {"ayu": make.user(roles=["marketing"], name="Ayu Marketing", email="ayu@example.com"),
             "budi": make.user(roles=["marketing"], name="Budi Marketing", email="budi@example.com"),
             "admin": make.user(roles=["admin"], name="Admin", email="admin@example.com"),
             "customer_support": make.user(roles=["customer_support"], email="cs@example.com"),
             "technical_support": make.user(roles=["technical_support"], email="tech@example.com"),
             "billing": make.user(roles=["billing"], email="billing@example.com")}
    db.session.commit()
    return users


def entry(team, **over):
    data = {"name": "Sari Wulandari", "company": "Toko Kue Sari", "email": "sari@kuesari.example.com",
            "phone": "0812-3456-7890", "source": "seminar", "campaign": "EXPO26",
            "product_lines": ["website", "ads_seo"], "owner_id": str(team["ayu"].id),
            "notes": "Ingin toko online sebelum Lebaran."}
    data.update(over)
    return data


def lead_id_of(resp):
    m = re.search(r"/leads/(\d+)$", resp.headers["Location"])
    assert m, resp.headers.get("Location")
    return int(m.group(1))


def stage_counts(html):
    return {stage: int(n) for stage, n in re.findall(r'data-stage="(\w+)">(\d+)<', html)}


def listed(html):
    """The names in the pipeline's table."""
    table = re.search(r'<table class="table table-sm small" id="lead-list">.*?</table>', html, re.S)
    if table is None:
        return []
    return re.findall(r'<a href="/leads/\d+">([^<]+)</a>', table.group(0))


def text(html):
    """The page as plain text (tags removed, spaces collapsed), for phrases that span markup."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def new_lead(client, team, **over):
    resp = client.post("/leads/new", data=entry(team, **over))
    assert resp.status_code == 302, resp.data[:2000]
    return lead_id_of(resp)


# ---------------------------------------------------------------- entry and the pipeline

def test_manual_entry_shows_in_the_pipeline_with_counts_and_filters(app, team, auth, client):
    auth.login(team["ayu"])
    lid = new_lead(client, team)
    lead = db.session.get(Lead, lid)
    assert (lead.name, lead.phone, lead.email, lead.source, lead.campaign, lead.owner_id, lead.stage) == \
        ("Sari Wulandari", "+6281234567890", "sari@kuesari.example.com", "seminar", "EXPO26", team["ayu"].id, "new")
    assert lead.product_lines == ["website", "ads_seo"]
    created = db.session.execute(select(LeadActivity).where(LeadActivity.lead_id == lid)).scalar_one()
    assert created.kind == "created" and created.data["channel"] == "manual" and created.actor_user_id == team["ayu"].id

    other, _ = leads.capture(name="Joko Santoso", phone="081299998888", source="social", campaign="PROMO-IG",
                             owner_id=team["budi"].id, channel="manual", actor_id=team["budi"].id)
    leads.add_activity(other.id, team["budi"].id, "call", "Tertarik paket SEO")
    db.session.commit()

    resp = client.get("/leads")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert stage_counts(html) == {"all": 2, "new": 1, "contacted": 1, "offer_sent": 0, "won": 0, "lost": 0}
    assert listed(html) == ["Joko Santoso", "Sari Wulandari"]  # the most recently active first
    assert "EXPO26" in html and "Toko Kue Sari" in html and "Website, Web ads &" in html
    assert 'id="lead-actions"' in html and 'href="/leads/new"' in html

    assert listed(client.get("/leads?stage=new").get_data(as_text=True)) == ["Sari Wulandari"]
    assert listed(client.get("/leads?stage=contacted").get_data(as_text=True)) == ["Joko Santoso"]
    assert listed(client.get(f"/leads?owner={team['budi'].id}").get_data(as_text=True)) == ["Joko Santoso"]
    assert listed(client.get(f"/leads?owner={team['ayu'].id}").get_data(as_text=True)) == ["Sari Wulandari"]
    assert listed(client.get("/leads?source=social").get_data(as_text=True)) == ["Joko Santoso"]
    by_campaign = client.get("/leads?campaign=expo26").get_data(as_text=True)
    assert listed(by_campaign) == ["Sari Wulandari"]
    # the counts follow the other filters
    assert stage_counts(by_campaign)["all"] == 1 and stage_counts(by_campaign)["contacted"] == 0
    assert listed(client.get("/leads?source=seminar&stage=contacted").get_data(as_text=True)) == []


def test_the_same_person_written_differently_merges(app, team, auth, client):
    auth.login(team["ayu"])
    lid = new_lead(client, team, email="", company="", product_lines=["website"])
    resp = client.post("/leads/new", data=entry(team, name="Bu Sari", email="SARI@kuesari.example.com",
                                                phone="+62 812 3456 7890", company="Toko Kue Sari",
                                                product_lines=["domain_hosting"], notes="Datang lagi ke stan."))
    assert resp.status_code == 302 and lead_id_of(resp) == lid
    assert db.session.execute(select(Lead.id)).scalars().all() == [lid]
    page = client.get(f"/leads/{lid}")
    html = page.get_data(as_text=True)
    assert "Already known: merged into this lead" in html
    lead = db.session.get(Lead, lid)
    assert lead.company == "Toko Kue Sari" and lead.email == "sari@kuesari.example.com"
    assert lead.product_lines == ["website", "domain_hosting"] and lead.merge_count == 1
    log = re.search(r'<ol class="list-group list-group-flush" id="lead-log".*?</ol>', html, re.S).group(0)
    merged = next(part for part in log.split('<li class="list-group-item px-0 lead-log-entry"')
                  if part.startswith(' data-kind="merged"'))
    came_in = text(merged)
    assert "Bu Sari" in came_in and "+6281234567890" in came_in and "Domain &" in came_in
    filled = text(re.search(r'class="small merged-filled">.*?</div>', merged, re.S).group(0))
    assert "Company" in filled and "Email" in filled and "Product lines" in filled
    assert log.index('data-kind="merged"') < log.index('data-kind="created"')  # newest first


def test_a_refused_entry_keeps_what_was_typed(app, team, auth, client):
    auth.login(team["ayu"])
    resp = client.post("/leads/new", data=entry(team, email="", phone="", company="PT Uji Coba Jaya"))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert "Give an email address or a phone number." in html
    assert 'value="PT Uji Coba Jaya"' in html and 'value="Sari Wulandari"' in html and 'value="EXPO26"' in html
    assert re.search(r'<input[^>]*checked[^>]*value="ads_seo"|<input[^>]*value="ads_seo"[^>]*checked', html)
    resp = client.post("/leads/new", data=entry(team, email="bukan-email", phone="12"))
    assert resp.status_code == 400 and 'value="bukan-email"' in resp.get_data(as_text=True)
    assert db.session.execute(select(Lead.id)).first() is None


# ---------------------------------------------------------------- the lead page

def test_edit_stages_activities_tasks_and_conversion(app, team, auth, client):
    auth.login(team["ayu"])
    lid = new_lead(client, team)

    resp = client.post(f"/leads/{lid}/edit", data=entry(team, company="CV Kue Sari", owner_id=str(team["budi"].id),
                                                        product_lines=["website"]))
    assert resp.status_code == 302
    lead = db.session.get(Lead, lid)
    assert lead.company == "CV Kue Sari" and lead.owner_id == team["budi"].id
    html = client.get(f"/leads/{lid}").get_data(as_text=True)
    assert "Toko Kue Sari → CV Kue Sari" in text(html) and "Ayu Marketing → Budi Marketing" in text(html)
    assert "Product lines: Website, Web ads & SEO → Website" in text(html)
    refused = client.post(f"/leads/{lid}/edit", data=entry(team, name="", company="Tanpa Nama"))
    assert refused.status_code == 400 and 'value="Tanpa Nama"' in refused.get_data(as_text=True)

    # a call moves a new lead to contacted
    assert client.post(f"/leads/{lid}/activities", data={"kind": "call", "text": "Minta penawaran"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Lead, lid).stage == "contacted"
    assert "Minta penawaran" in client.get(f"/leads/{lid}").get_data(as_text=True)

    # lost needs a reason
    resp = client.post(f"/leads/{lid}/stage", data={"stage": "lost", "reason": ""})
    assert resp.status_code == 400 and "Say why the lead was lost." in resp.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Lead, lid).stage == "contacted"
    assert client.post(f"/leads/{lid}/stage", data={"stage": "lost", "reason": "Harga terlalu mahal"}).status_code == 302
    db.session.expire_all()
    lead = db.session.get(Lead, lid)
    assert (lead.stage, lead.lost_reason) == ("lost", "Harga terlalu mahal") and lead.lost_at is not None
    assert client.post(f"/leads/{lid}/stage", data={"stage": "offer_sent"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Lead, lid).stage == "offer_sent" and db.session.get(Lead, lid).lost_reason is None
    html = client.get(f"/leads/{lid}").get_data(as_text=True)
    assert "Contacted → Lost" in text(html) and "Lost → Offer sent" in text(html)

    # a follow-up at 10:00 WIB is stored as 03:00 UTC
    resp = client.post(f"/leads/{lid}/tasks", data={"title": "Telepon lagi soal harga", "due_date": "2026-12-01",
                                                   "due_time": "10:00", "owner_id": str(team["ayu"].id)})
    assert resp.status_code == 302
    task = db.session.execute(select(LeadTask).where(LeadTask.lead_id == lid)).scalar_one()
    assert task.due_at == datetime(2026, 12, 1, 3, 0) and task.owner_id == team["ayu"].id and task.done_at is None
    tasks = re.search(r'<section class="card mb-3" aria-labelledby="tasks-h" id="lead-tasks">.*?</section>',
                      client.get(f"/leads/{lid}").get_data(as_text=True), re.S).group(0)
    assert "Telepon lagi soal harga" in tasks and "1 Dec 2026 10:00" in text(tasks) and "03:00" not in text(tasks)
    assert "10:00" in re.search(r'data-lead="%d">.*?</tr>' % lid, client.get("/leads").get_data(as_text=True),
                                re.S).group(0)  # the next open task due, on the pipeline
    assert client.post(f"/leads/{lid}/tasks", data={"title": "", "due_date": "2026-12-01",
                                                   "due_time": "10:00"}).status_code == 400
    assert client.post(f"/leads/tasks/{task.id}/done").status_code == 302
    db.session.expire_all()
    assert db.session.get(LeadTask, task.id).done_at is not None

    # conversion: a customer, and the lead history on the customer page
    resp = client.post(f"/leads/{lid}/convert")
    assert resp.status_code == 302
    db.session.expire_all()
    lead = db.session.get(Lead, lid)
    assert lead.customer_id is not None
    html = client.get(f"/leads/{lid}").get_data(as_text=True)
    assert f'href="/customers/{lead.customer_id}"' in html
    customer_page = client.get(f"/customers/{lead.customer_id}").get_data(as_text=True)
    history = re.search(r'<section class="mt-4" aria-labelledby="leads-h" id="lead-history">.*?</section>',
                        customer_page, re.S).group(0)
    assert f'href="/leads/{lid}"' in history and "Sari Wulandari" in history
    assert "Seminar" in history and "EXPO26" in history
    # converting again changes nothing
    assert client.post(f"/leads/{lid}/convert").status_code == 302
    assert len(leads.leads_of_customer(lead.customer_id)) == 1


def test_winning_converts_and_an_unknown_lead_is_404(app, team, auth, client):
    auth.login(team["admin"])
    lid = new_lead(client, team)
    assert client.post(f"/leads/{lid}/stage", data={"stage": "won"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Lead, lid).customer_id is not None
    assert client.get("/leads/999999").status_code == 404
    assert client.post("/leads/tasks/999999/done").status_code == 404


def test_the_bell_links_a_follow_up_reminder_to_its_lead(app, team, auth, client):
    lead, _ = leads.capture(name="Rina", email="rina@example.com", owner_id=team["ayu"].id, channel="manual")
    leads.add_task(lead.id, team["ayu"].id, "Kirim brosur", datetime(2026, 1, 5, 3, 0))
    db.session.commit()
    lead_jobs.sweep(datetime(2026, 1, 5, 3, 1))
    note = db.session.execute(select(Notification).where(Notification.kind == "lead_task")).scalar_one()
    assert note.ticket_id is None and note.user_id == team["ayu"].id
    auth.login(team["ayu"])
    html = client.get("/notifications").get_data(as_text=True)
    assert re.search(r'<a class="notification-body" href="/leads/%d">Kirim brosur · Rina</a>' % lead.id, html)


# ---------------------------------------------------------------- who may

def _lead_urls(lead_id, task_id):
    gets = ["/leads", "/leads/new", f"/leads/{lead_id}"]
    posts = ["/leads/new", f"/leads/{lead_id}/edit", f"/leads/{lead_id}/stage", f"/leads/{lead_id}/activities",
             f"/leads/{lead_id}/tasks", f"/leads/tasks/{task_id}/done", f"/leads/{lead_id}/convert"]
    return gets, posts


def test_only_marketing_and_admins_use_the_lead_pages(app, team, auth, client):
    lead, _ = leads.capture(name="Rahasia", email="rahasia@example.com", owner_id=team["ayu"].id)
    task = leads.add_task(lead.id, team["ayu"].id, "Follow up", datetime(2026, 1, 5, 3, 0))
    db.session.commit()
    gets, posts = _lead_urls(lead.id, task.id)
    for role in ("customer_support", "technical_support", "billing"):
        auth.login(team[role])
        for url in gets:
            assert client.get(url).status_code == 403, (role, url)
        for url in posts:
            assert client.post(url, data=entry(team, stage="lost", reason="x", kind="note", text="x", title="x",
                                               due_date="2026-12-01", due_time="10:00")).status_code == 403, (role, url)
        assert 'href="/leads"' not in client.get("/tickets").get_data(as_text=True)
        auth.logout()
    db.session.expire_all()
    assert db.session.get(Lead, lead.id).stage == "new" and db.session.get(Lead, lead.id).customer_id is None
    assert db.session.get(LeadTask, task.id).done_at is None
    for url in gets:
        resp = client.get(url)
        assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    auth.login(team["admin"])
    for url in gets:
        assert client.get(url).status_code == 200, url
    assert 'href="/leads"' in client.get("/tickets").get_data(as_text=True)
