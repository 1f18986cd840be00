"""JSON API v1, leads: capture with deduplication (201 created / 200 merged), validation errors,
the list with filters and keyset paging, one lead with its log, and who may use it (marketing and
admins; other agents 403, no token 401). The OpenAPI document describes the answers."""
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from helpdesk.auth.services import create_api_token
from helpdesk.extensions import db
from helpdesk.leads import services as leads
from helpdesk.leads.models import Lead, LeadActivity
from helpdesk.timeutil import utcnow

API = "/api/v1"


class Api:
    """A test client that sends a bearer token (and nothing else) with every call."""

    def __init__(self, client, token):
        self.client, self.token = client, token

    def call(self, method, path, **kw):
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return self.client.open(path if path.startswith("http") else API + path, method=method, headers=headers,
                                **kw)

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, json=None, **kw):
        return self.call("POST", path, json=json, **kw)


@pytest.fixture
def desk(app, make, client):
    marketing = make.queue(slug="marketing", name="Marketing")
    tech = make.queue(slug="technical-support", name="Technical Support")
    users = {"marketer": make.user(roles=["marketing"], queues=[marketing], name="Maya Marketing"),
             "colleague": make.user(roles=["marketing"], queues=[marketing]),
             "admin": make.user(roles=["admin"]),
             "agent": make.user(roles=["technical_support"], queues=[tech]),
             "support": make.user(roles=["customer_support"])}
    db.session.flush()
    tokens = {name: create_api_token(u.id, "test") for name, u in users.items()}
    db.session.commit()
    return {"users": users, "api": {name: Api(client, tok) for name, tok in tokens.items()},
            "anonymous": Api(client, None)}


def _error(resp, code):
    assert resp.status_code == code, (resp.status_code, resp.get_data(as_text=True)[:500])
    assert resp.is_json
    err = resp.get_json()["error"]
    assert err["code"] == code and err["message"]
    return err


def count(model):
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


SMS = {"name": "Rudi Hartono", "company": "UD Sumber Rejeki", "email": None, "phone": "0813 1111 2222",
       "source": "sms", "campaign": "SMS-DES", "product_lines": ["website"], "notes": "Balas SMS: minta info harga."}


# ---------------------------------------------------------------- POST /leads

def test_capture_created_then_merged_with_the_phone_written_differently(app, desk):
    api = desk["api"]["marketer"]
    r = api.post("/leads", json=SMS)
    assert r.status_code == 201, r.get_data(as_text=True)
    body = r.get_json()
    assert body["result"] == "created"
    lead = body["lead"]
    assert r.headers["Location"] == lead["url"]
    assert {k: lead[k] for k in ("name", "company", "email", "phone", "source", "campaign", "product_lines",
                                 "notes", "stage", "merge_count", "owner")} == {
        "name": "Rudi Hartono", "company": "UD Sumber Rejeki", "email": None, "phone": "+6281311112222",
        "source": "sms", "campaign": "SMS-DES", "product_lines": ["website"],
        "notes": "Balas SMS: minta info harga.", "stage": "new", "merge_count": 0, "owner": None}
    chat = {"name": "Rudi", "email": "Rudi@SumberRejeki.id", "phone": "+62-813-1111-2222", "source": "chat",
            "product_lines": ["domain_hosting", "website"], "notes": "Chat: tanya domain."}
    r = desk["api"]["admin"].post("/leads", json=chat)
    assert r.status_code == 200
    body = r.get_json()
    assert body["result"] == "merged" and body["lead"]["id"] == lead["id"]
    merged = body["lead"]
    assert merged["name"] == "Rudi Hartono" and merged["email"] == "rudi@sumberrejeki.id"
    assert merged["product_lines"] == ["website", "domain_hosting"] and merged["merge_count"] == 1
    assert "minta info harga" in merged["notes"] and "tanya domain" in merged["notes"]
    assert count(Lead) == 1
    db.session.expire_all()
    log = db.session.execute(select(LeadActivity).order_by(LeadActivity.id)).scalars().all()
    assert [(e.kind, e.data["channel"], e.actor_user_id) for e in log] == [
        ("created", "api", desk["users"]["marketer"].id), ("merged", "api", desk["users"]["admin"].id)]


@pytest.mark.parametrize("payload, field", [
    ({"email": "a@example.com"}, "name"),
    ({"name": "Tanpa Kontak"}, "email"),
    ({"name": "X", "email": "bukan-email"}, "email"),
    ({"name": "X", "phone": "bukan nomor"}, "phone"),
    ({"name": "X", "email": "a@example.com", "source": "koran"}, "source"),
    ({"name": "X", "email": "a@example.com", "product_lines": ["kopi"]}, "product_lines"),
    ({"name": "X", "email": "a@example.com", "product_lines": "website"}, "product_lines"),
    ({"name": 5, "email": "a@example.com"}, "name"),
    ({"name": "X", "email": "a@example.com", "owner": 1}, "owner"),
])
def test_capture_validation_errors(app, desk, payload, field):
    err = _error(desk["api"]["marketer"].post("/leads", json=payload), 400)
    assert err["field"] == field
    assert count(Lead) == 0


def test_capture_body_must_be_a_json_object(app, desk):
    _error(desk["api"]["marketer"].post("/leads", data="name=x", content_type="text/plain"), 400)
    _error(desk["api"]["marketer"].post("/leads", json=["x"]), 400)


# ---------------------------------------------------------------- who may use it

def test_no_token_is_401_and_other_agents_are_403(app, desk):
    lead, _ = leads.capture(name="Sari", email="sari@example.com", source="seminar")
    db.session.commit()
    for method, path in (("GET", "/leads"), ("POST", "/leads"), ("GET", f"/leads/{lead.id}")):
        r = desk["anonymous"].call(method, path, json=SMS if method == "POST" else None)
        _error(r, 401)
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
        for who in ("agent", "support"):
            _error(desk["api"][who].call(method, path, json=SMS if method == "POST" else None), 403)
    assert count(Lead) == 1
    assert desk["api"]["admin"].get(f"/leads/{lead.id}").status_code == 200


# ---------------------------------------------------------------- GET /leads, GET /leads/<id>

def _seed(desk):
    """Five leads with distinct last activity times (newest first: e, d, c, b, a)."""
    marketer = desk["users"]["marketer"]
    now = utcnow().replace(microsecond=0)
    specs = [("Ani", "seminar", "SEM-1", marketer.id), ("Budi", "seminar", "SEM-2", None),
             ("Citra", "print", "KORAN", desk["users"]["colleague"].id), ("Dodi", "sms", None, marketer.id),
             ("Eka", "website", "sem-1", None)]
    made = []
    for i, (name, source, campaign, owner) in enumerate(specs):
        lead, _ = leads.capture(name=name, email=f"{name.lower()}@example.com", source=source, campaign=campaign,
                                owner_id=owner, now=now - timedelta(hours=10 - i))
        made.append(lead)
    db.session.commit()
    return made, now


def _names(resp):
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    return [i["name"] for i in resp.get_json()["items"]]


def test_list_filters(app, desk):
    made, now = _seed(desk)
    api = desk["api"]["marketer"]
    assert _names(api.get("/leads")) == ["Eka", "Dodi", "Citra", "Budi", "Ani"]
    assert _names(api.get("/leads?source=seminar")) == ["Budi", "Ani"]
    assert _names(api.get("/leads?campaign=SEM-1")) == ["Eka", "Ani"]  # any letter case
    assert _names(api.get("/leads?owner=me")) == ["Dodi", "Ani"]
    assert _names(api.get(f"/leads?owner={desk['users']['colleague'].id}")) == ["Citra"]
    assert _names(api.get("/leads?owner=none")) == ["Eka", "Budi"]
    assert _names(api.get("/leads?q=citra")) == ["Citra"]
    assert _names(api.get("/leads?q=EXAMPLE.COM&source=seminar&owner=none")) == ["Budi"]
    since = (now - timedelta(hours=8)).isoformat() + "Z"  # Citra's time exactly: included
    assert _names(api.get("/leads", query_string={"updated_since": since})) == ["Eka", "Dodi", "Citra"]
    since = (now - timedelta(hours=7, minutes=30)).isoformat() + "+00:00"
    assert _names(api.get("/leads", query_string={"updated_since": since})) == ["Eka", "Dodi"]
    since = (now - timedelta(hours=7, minutes=30) + timedelta(hours=7)).isoformat() + "+07:00"  # Jakarta time
    assert _names(api.get("/leads", query_string={"updated_since": since})) == ["Eka", "Dodi"]
    leads.change_stage(made[1].id, desk["users"]["marketer"].id, "lost", "Tidak ada anggaran")
    db.session.commit()
    assert _names(api.get("/leads?stage=lost")) == ["Budi"]
    assert "Budi" not in _names(api.get("/leads?stage=new"))
    for bad in ("stage=open", "source=koran", "owner=someone", "updated_since=kemarin", "limit=0", "limit=101",
                "cursor=rusak"):
        err = _error(api.get(f"/leads?{bad}"), 400)
        assert err["field"] == bad.split("=")[0]


def test_list_pages_walk_every_lead_exactly_once_and_keep_filters(app, desk):
    _seed(desk)
    api = desk["api"]["admin"]
    seen, url, pages = [], "/leads?limit=2", 0
    while url:
        r = api.get(url)
        body = r.get_json()
        assert r.status_code == 200 and len(body["items"]) <= 2
        seen += [i["name"] for i in body["items"]]
        url, pages = body["next"], pages + 1
        if url:
            assert "limit=2" in url and "cursor=" in url
    assert seen == ["Eka", "Dodi", "Citra", "Budi", "Ani"] and pages == 3
    first = api.get("/leads?limit=1&source=seminar").get_json()
    assert [i["name"] for i in first["items"]] == ["Budi"] and "source=seminar" in first["next"]
    second = api.get(first["next"]).get_json()
    assert [i["name"] for i in second["items"]] == ["Ani"] and second["next"] is None


def test_get_one_lead_with_its_log(app, desk):
    api = desk["api"]["marketer"]
    lead = api.post("/leads", json=SMS).get_json()["lead"]
    api.post("/leads", json={"name": "Rudi", "phone": "081311112222", "source": "chat"})
    r = api.get(f"/leads/{lead['id']}")
    assert r.status_code == 200
    body = r.get_json()
    assert body["id"] == lead["id"] and body["phone"] == "+6281311112222" and body["merge_count"] == 1
    assert [a["kind"] for a in body["activity"]] == ["merged", "created"]
    assert body["activity"][0]["data"]["channel"] == "api"
    assert body["activity"][1]["actor"]["name"] == "Maya Marketing"
    _error(api.get("/leads/999999"), 404)


def test_openapi_lead_schemas_match_the_answers(app, desk):
    api = desk["api"]["marketer"]
    doc = api.get("/openapi.json").get_json()
    schemas = doc["components"]["schemas"]
    body = api.post("/leads", json=SMS).get_json()
    assert set(body) == set(schemas["LeadCaptureResult"]["properties"])
    assert set(body["lead"]) == set(schemas["Lead"]["properties"])
    listed = api.get("/leads").get_json()
    assert set(listed) == set(schemas["LeadList"]["properties"])
    detail = api.get(body["lead"]["url"]).get_json()
    assert set(detail) == set(schemas["Lead"]["properties"]) | set(schemas["LeadDetail"]["allOf"][1]["properties"])
    assert set(detail["activity"][0]) == set(schemas["LeadActivity"]["properties"])
    assert set(SMS) == set(schemas["LeadCreate"]["properties"])
    params = {p["name"] for p in doc["paths"]["/leads"]["get"]["parameters"]}
    assert params == {"stage", "source", "campaign", "owner", "updated_since", "q", "limit", "cursor"}
