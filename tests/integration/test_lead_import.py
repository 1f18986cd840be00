"""CSV import of leads (issue #7 §1): upload → preview (what each row would become) → start → the
job (through the outbox and RQ) → the report of what was created, merged and rejected, with
reasons; duplicates inside the file and against existing leads merge (their history kept);
importing the same file twice creates nothing new; a job killed midway finishes without
duplicates; only marketing and admins may import."""
import csv
import io
import re

import pytest
from sqlalchemy import func, select

from helpdesk.errors import DomainError, Forbidden
from helpdesk.extensions import db
from helpdesk.jobs import OutboxJob
from helpdesk.leads import imports, services
from helpdesk.leads.models import Lead, LeadActivity, LeadImport

# row 2 new; row 3 merges into the existing lead Ani (by email, any case); row 4 is row 2 again (by
# phone); row 5 has no name; row 6 a bad email; row 7 new; row 8 merges into Tono (by phone, typed
# another way); a blank line and a "Kota" column the importer keeps in the notes
CSV_TEXT = ("Nama;Email;No. HP;Minat;Catatan;Kota\n"
            "Budi Santoso;budi@contoh.id;0812-1111-2222;website;Datang ke booth;Bandung\n"
            "Ani Lestari;ANI@contoh.id;;SEO dan iklan;Minta penawaran;\n"
            "Budi S.;;+62 812 1111 2222;hosting;;\n"
            ";tanpa.nama@contoh.id;;;;\n"
            "Eko;bukan-email;;;;\n"
            "\n"
            "Fitri Handayani;;0813 5555 6666;reseller;;Surabaya\n"
            "Tono;;62813-7777-8888;daily deal;;\n")
CSV_BYTES = CSV_TEXT.encode("cp1252")


@pytest.fixture
def team(make):
    q = make.queue(slug="marketing", name="Marketing")
    mkt = make.user(roles=["marketing"], queues=[q], name="Maya Marketing")
    admin = make.user(roles=["admin"])
    cs = make.user(roles=["customer_support"])
    ani, _ = services.capture(name="Ani", email="ani@contoh.id", source="website", product_lines=["website"],
                              notes="Dari formulir")
    services.add_activity(ani.id, mkt.id, "call", "Sudah ditelepon")
    tono, _ = services.capture(name="Tono", phone="081377778888", source="sms")
    db.session.commit()
    # emails and ids only: run_jobs ends the session, so ORM objects would be detached
    return {"mkt": mkt.email, "admin": admin.email, "cs": cs.email, "mkt_id": mkt.id, "admin_id": admin.id,
            "cs_id": cs.id, "ani": ani.id, "tono": tono.id}


def lead_count():
    return db.session.execute(select(func.count(Lead.id))).scalar()


def upload(client, data=CSV_BYTES, name="peserta.csv", **fields):
    form = {"file": (io.BytesIO(data), name), "source": "seminar", "campaign": "SEM-DES", "owner_id": "0"}
    form.update(fields)
    return client.post("/leads/import", data=form, content_type="multipart/form-data")


def import_id_of(resp):
    assert resp.status_code == 303, resp.data[:800]
    return int(re.search(r"/leads/import/(\d+)$", resp.headers["Location"]).group(1))


def test_upload_preview_start_run_report(app, team, auth, client, run_jobs):
    auth.login(team["mkt"])
    before = lead_count()
    iid = import_id_of(upload(client, owner_id=str(team["mkt_id"])))
    imp = db.session.get(LeadImport, iid)
    assert (imp.status, imp.total, imp.source, imp.campaign, imp.owner_id) == ("preview", 7, "seminar", "SEM-DES",
                                                                                team["mkt_id"])

    page = client.get(f"/leads/import/{iid}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    outcomes = dict(re.findall(r'data-row="(\d+)" data-outcome="(\w+)"', html))
    assert outcomes == {"2": "new", "3": "merge", "4": "merge", "5": "rejected", "6": "rejected", "8": "new",
                        "9": "merge"}
    assert f"lead #{team['ani']}" in html and f"lead #{team['tono']}" in html
    assert "row 2" in html  # row 4 merges with row 2 of the same file
    assert "No name." in html and "bukan-email" in html
    data = imports.preview(iid)
    assert data["totals"] == {"total": 7, "new": 2, "merge": 3, "rejected": 2}
    assert lead_count() == before  # the preview writes nothing

    resp = client.post(f"/leads/import/{iid}/start")
    assert resp.status_code == 303
    db.session.expire_all()
    assert db.session.get(LeadImport, iid).status == "queued"
    job = db.session.execute(select(OutboxJob).where(OutboxJob.func == "helpdesk.leads.imports.run_import")).scalar_one()
    assert job.args == [iid]
    run_jobs()

    imp = db.session.get(LeadImport, iid)
    assert (imp.status, imp.processed, imp.created, imp.merged, imp.rejected) == ("done", 7, 2, 3, 2)
    assert lead_count() == before + 2
    by_row = {e["row"]: e for e in imp.report}
    assert [by_row[n]["result"] for n in (2, 3, 4, 5, 6, 8, 9)] == ["created", "merged", "merged", "rejected",
                                                                    "rejected", "created", "merged"]
    assert by_row[3]["lead_id"] == team["ani"] and by_row[9]["lead_id"] == team["tono"]
    assert by_row[4]["lead_id"] == by_row[2]["lead_id"]
    assert by_row[5]["reason"] == "No name." and "bukan-email" in by_row[6]["reason"]

    budi = db.session.get(Lead, by_row[2]["lead_id"])
    assert (budi.name, budi.email, budi.phone, budi.source, budi.campaign, budi.owner_id) == (
        "Budi Santoso", "budi@contoh.id", "+6281211112222", "seminar", "SEM-DES", team["mkt_id"])
    assert budi.product_lines == ["website", "domain_hosting"]  # row 4's hosting added by the merge
    assert "Kota: Bandung" in budi.notes and budi.merge_count == 1
    # Ani keeps her history; the import's merge is one more entry in her log
    ani = db.session.get(Lead, team["ani"])
    assert ani.name == "Ani" and ani.source == "website" and ani.product_lines == ["website", "ads_seo"]
    kinds = [a.kind for a in services.activity(ani.id)]
    assert kinds[0] == "merged" and "call" in kinds and "created" in kinds
    merged = services.activity(ani.id)[0]
    assert merged.data["channel"] == "csv_import" and "Minta penawaran" in ani.notes and "Dari formulir" in ani.notes
    assert db.session.get(Lead, team["tono"]).product_lines == ["daily_deal"]

    # the report page: counts, rejected rows with their reasons, merged rows with a link to each lead
    html = client.get(f"/leads/import/{iid}").get_data(as_text=True)
    assert 'data-count="created">2<' in html and 'data-count="merged">3<' in html and 'data-count="rejected">2<' in html
    assert re.search(r'<tr data-row="5"><td>5</td><td>No name\.', html)
    assert f'href="/leads/{team["ani"]}"' in html and f'href="/leads/{team["tono"]}"' in html
    status = client.get(f"/leads/import/{iid}/status.json").get_json()
    assert (status["status"], status["processed"], status["total"], status["percent"], status["done"]) == (
        "done", 7, 7, 100, True)
    report = client.get(f"/leads/import/{iid}/report.csv")
    assert report.status_code == 200 and report.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(report.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0] == ["row", "result", "lead_id", "reason"]
    assert [r[:2] for r in rows[1:]] == [["2", "created"], ["3", "merged"], ["4", "merged"], ["5", "rejected"],
                                         ["6", "rejected"], ["8", "created"], ["9", "merged"]]
    assert rows[3][2] == str(by_row[2]["lead_id"]) and rows[4][3] == "No name."

    # a second run of a done import does nothing
    imports.run_import(iid)
    db.session.expire_all()
    imp = db.session.get(LeadImport, iid)
    assert (imp.processed, imp.created, imp.merged, len(imp.report)) == (7, 2, 3, 7)
    assert lead_count() == before + 2
    # and it cannot be started again
    client.post(f"/leads/import/{iid}/start")
    assert db.session.execute(select(func.count(OutboxJob.id))
                              .where(OutboxJob.func == "helpdesk.leads.imports.run_import")).scalar() == 1


def test_the_same_file_twice_creates_nothing_new(app, team, auth, client, run_jobs):
    auth.login(team["admin"])
    first = import_id_of(upload(client))
    client.post(f"/leads/import/{first}/start")
    run_jobs()
    after_first = lead_count()
    second = import_id_of(upload(client))
    assert imports.preview(second)["totals"] == {"total": 7, "new": 0, "merge": 5, "rejected": 2}
    client.post(f"/leads/import/{second}/start")
    run_jobs()
    imp = db.session.get(LeadImport, second)
    assert (imp.status, imp.created, imp.merged, imp.rejected) == ("done", 0, 5, 2)
    assert lead_count() == after_first


def _started(team, data=CSV_BYTES):
    imp = imports.create_import(team["mkt_id"], "peserta.csv", data, source="print", campaign="KORAN-01")
    imports.start(imp.id, team["mkt_id"])
    db.session.commit()
    return imp.id


def test_a_job_killed_midway_finishes_without_duplicates(app, team, run_jobs):
    before = lead_count()
    iid = _started(team)
    imports.run_import(iid, batch=3, max_batches=1)  # the worker dies after its first batch
    db.session.expire_all()
    imp = db.session.get(LeadImport, iid)
    assert (imp.status, imp.processed, imp.created, imp.merged, imp.rejected) == ("running", 3, 1, 2, 0)
    assert lead_count() == before + 1
    imports.run_import(iid)  # the job runs again (RQ's retry, or the queued job itself)
    run_jobs()  # and once more from the outbox: the import is done, nothing happens
    imp = db.session.get(LeadImport, iid)
    assert (imp.status, imp.processed, imp.created, imp.merged, imp.rejected) == ("done", 7, 2, 3, 2)
    assert [e["row"] for e in imp.report] == [2, 3, 4, 5, 6, 8, 9]
    assert lead_count() == before + 2


def test_a_crash_inside_a_batch_loses_nothing(app, team, monkeypatch):
    """A batch is one transaction: a crash rolls back its half-done rows; the next run redoes them."""
    before = lead_count()
    iid = _started(team)
    real = services.capture
    calls = {"n": 0}

    def crashing(**kw):
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("worker lost")
        return real(**kw)

    monkeypatch.setattr(services, "capture", crashing)
    with pytest.raises(RuntimeError):
        imports.run_import(iid, batch=5)
    db.session.expire_all()
    imp = db.session.get(LeadImport, iid)
    assert (imp.status, imp.processed) == ("failed", 5) and "worker lost" in imp.error
    assert lead_count() == before + 1  # the first batch (rows 2-6) only; the crashed one was rolled back
    monkeypatch.setattr(services, "capture", real)
    imports.run_import(iid, batch=5)
    db.session.expire_all()
    imp = db.session.get(LeadImport, iid)
    assert (imp.status, imp.processed, imp.created, imp.merged, imp.rejected) == ("done", 7, 2, 3, 2)
    assert imp.error is None and lead_count() == before + 2


def test_a_row_refused_by_capture_is_rejected_with_the_message(app, team, monkeypatch):
    before = lead_count()
    iid = _started(team)
    real = services.capture

    def picky(**kw):
        if kw["name"] == "Fitri Handayani":
            raise DomainError("Fitri is on the do-not-contact list.")
        return real(**kw)

    monkeypatch.setattr(services, "capture", picky)
    imports.run_import(iid)
    db.session.expire_all()
    imp = db.session.get(LeadImport, iid)
    assert (imp.status, imp.created, imp.merged, imp.rejected) == ("done", 1, 3, 3)
    by_row = {e["row"]: e for e in imp.report}
    assert by_row[8] == {"row": 8, "result": "rejected", "lead_id": None,
                         "reason": "Fitri is on the do-not-contact list."}
    # the rows after it were captured
    assert by_row[9]["result"] == "merged" and lead_count() == before + 1
    assert db.session.execute(select(Lead).where(Lead.name == "Fitri Handayani")).first() is None


def test_bad_files_are_refused_with_the_reason(app, team, auth, client):
    auth.login(team["mkt"])
    resp = upload(client, data=b"Budi,budi@contoh.id\n")
    assert resp.status_code == 400 and "header" in resp.get_data(as_text=True)
    resp = upload(client, data=b"Nama;Email\n")
    assert resp.status_code == 400
    assert db.session.execute(select(func.count(LeadImport.id))).scalar() == 0


def test_only_marketing_and_admin_may_import(app, team, auth, client):
    with pytest.raises(Forbidden):
        imports.create_import(team["cs_id"], "x.csv", CSV_BYTES)
    iid = _started(team)
    with pytest.raises(Forbidden):
        imports.preview(iid, team["cs_id"])
    auth.login(team["cs"])
    for resp in (client.get("/leads/import"), upload(client), client.get(f"/leads/import/{iid}"),
                 client.post(f"/leads/import/{iid}/start"), client.get(f"/leads/import/{iid}/status.json"),
                 client.get(f"/leads/import/{iid}/report.csv")):
        assert resp.status_code == 403
    assert db.session.execute(select(func.count(LeadImport.id))).scalar() == 1
    auth.logout()
    auth.login(team["admin"])
    page = client.get(f"/leads/import/{iid}")
    assert page.status_code == 200 and 'id="import-progress"' in page.get_data(as_text=True)
    assert client.get("/leads/import/999999").status_code == 404


def test_activity_log_says_the_lead_came_from_the_import(app, team, run_jobs):
    iid = _started(team)
    run_jobs()
    imp = db.session.get(LeadImport, iid)
    created = [e["lead_id"] for e in imp.report if e["result"] == "created"]
    entries = db.session.execute(select(LeadActivity).where(LeadActivity.lead_id.in_(created),
                                                            LeadActivity.kind == "created")).scalars().all()
    assert sorted(e.lead_id for e in entries) == sorted(created)
    assert {e.data["channel"] for e in entries} == {"csv_import"}
    assert {e.actor_user_id for e in entries} == {team["mkt_id"]}


def test_progress_while_running_and_names_are_escaped(app, team, auth, client):
    data = ("Nama,Email\n<script>alert('x')</script>,xss@contoh.id\n"
            + "".join(f"Orang {i},o{i}@contoh.id\n" for i in range(4))).encode()
    iid = _started(team, data)
    imports.run_import(iid, batch=2, max_batches=1)
    auth.login(team["mkt"])
    status = client.get(f"/leads/import/{iid}/status.json").get_json()
    assert (status["status"], status["processed"], status["total"], status["percent"], status["done"]) == (
        "running", 2, 5, 40, False)
    html = client.get(f"/leads/import/{iid}").get_data(as_text=True)
    assert '<progress class="w-100 mb-1" id="import-bar" max="5" value="2"' in html
    assert 'src="/static/js/lead_import.js"' in html and "<script>" not in html
    assert 'id="rejected-rows"' not in html  # the report shows once the import is done
    imports.run_import(iid)
    preview_id = imports.create_import(team["mkt_id"], "x.csv", data).id
    db.session.commit()
    for url in (f"/leads/import/{preview_id}", f"/leads/import/{iid}"):
        html = client.get(url).get_data(as_text=True)
        assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in client.get(f"/leads/import/{preview_id}").get_data(as_text=True)
