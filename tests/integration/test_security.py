"""Cross-cutting security: CSRF on every form POST (generated from app.url_map), stored XSS, the
`next` redirect, session cookies, security headers, the production secret key and attachment
downloads."""
import uuid
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from sqlalchemy import func, select
from werkzeug.routing import AnyConverter, FloatConverter, IntegerConverter, UUIDConverter

import config
import helpdesk
from helpdesk import create_app
from helpdesk.auth.models import ROLES
from helpdesk.extensions import db
from helpdesk.jobs import OutboxJob
from helpdesk.tickets import services
from helpdesk.tickets.models import Attachment, AuditEvent, Message, Ticket
from tests.conftest import extract_csrf
from tests.factories import PASSWORD

STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
EVIL = "evil.example"


# ---------------------------------------------------------------- helpers

def exempt_prefix(endpoint):
    """The CSRF_EXEMPT entry covering this endpoint, or None."""
    return next((p for p in helpdesk.CSRF_EXEMPT if endpoint.startswith(p)), None)


def state_changing_rules(app):
    """(rule, methods) for every route that changes state and is not CSRF-exempt."""
    return [(rule, sorted(rule.methods & STATE_CHANGING)) for rule in app.url_map.iter_rules()
            if rule.methods & STATE_CHANGING and not exempt_prefix(rule.endpoint)]


def build_path(app, rule, ids, method):
    """A concrete path for a rule: real ids where the argument name is known, else a plausible value."""
    values = {}
    for arg in rule.arguments:
        conv = rule._converters.get(arg)
        if isinstance(conv, UUIDConverter):
            values[arg] = str(uuid.uuid4())
        elif isinstance(conv, (IntegerConverter, FloatConverter)):
            values[arg] = ids.get(arg, 1)
        elif isinstance(conv, AnyConverter):
            values[arg] = sorted(conv.items)[0]
        else:
            values[arg] = ids.get(arg, "x")
    path = rule.build(values, append_unknown=False)[1]
    matched, _args = app.url_map.bind("localhost").match(path, method=method)
    assert matched == rule.endpoint, f"could not build a URL for {rule.endpoint} ({rule.rule}): got {path}"
    return path


def login(client, email, password=PASSWORD):
    """Log in through the real form, token included (CSRF is on)."""
    token = extract_csrf(client.get("/login").get_data(as_text=True))
    resp = client.post("/login", data={"email": email, "password": password, "csrf_token": token})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    return resp


def page_token(client, path):
    token = extract_csrf(client.get(path).get_data(as_text=True))
    assert token, f"no csrf_token on {path}"
    return token


def is_csrf_error(resp):
    return resp.status_code == 400 and "csrf" in resp.get_data(as_text=True).lower()


@pytest.fixture
def world(make):
    """Two queues, an all-roles admin, an agent, an outsider, and a ticket with an attachment."""
    q = make.queue(slug="technical-support", name="Technical Support")
    billing_q = make.queue(slug="billing", name="Billing")
    boss = make.user(email="boss@example.com", name="Bambang Sutrisno", roles=list(ROLES), queues=[q, billing_q])
    agent = make.user(email="agent@example.com", name="Rina Wulandari", roles=["technical_support"], queues=[q])
    outsider = make.user(email="outsider@example.com", name="Dewi Lestari", roles=["billing"], queues=[billing_q])
    cust = make.customer(name="Budi Santoso")
    other = make.customer(name="Siti Rahayu")
    ticket = make.ticket(queue=q, customer=cust, subject="Website down", body="Situs error 500",
                         files=[("log.txt", "text/plain", b"error log")])
    second = make.ticket(queue=q, customer=cust, subject="Email bounce")
    db.session.commit()
    att = db.session.execute(select(Attachment).where(Attachment.ticket_id == ticket.id)).scalar_one()
    ids = {"number": ticket.number, "ticket_id": ticket.id, "customer_id": cust.id, "attachment_id": att.id,
           "user_id": agent.id, "queue_id": q.id, "message_id": 1, "id": ticket.id}
    return {"q": q, "billing_q": billing_q, "boss": boss, "agent": agent, "outsider": outsider, "cust": cust,
            "other": other, "ticket": ticket, "second": second, "ids": ids}


# ---------------------------------------------------------------- CSRF

def test_csrf_exemptions_are_explained_and_real(app):
    assert isinstance(helpdesk.CSRF_EXEMPT, dict) and helpdesk.CSRF_EXEMPT
    endpoints = [r.endpoint for r in app.url_map.iter_rules()]
    for prefix, reason in helpdesk.CSRF_EXEMPT.items():
        assert isinstance(reason, str) and len(reason.strip()) >= 20, f"CSRF_EXEMPT[{prefix!r}] needs a reason"
        assert any(e.startswith(prefix) for e in endpoints), f"CSRF_EXEMPT[{prefix!r}] matches no route"


def test_every_form_post_needs_a_csrf_token(csrf_app, world):
    rules = state_changing_rules(csrf_app)
    endpoints = {r.endpoint for r, _ in rules}
    # The list is generated; make sure it is not vacuous.
    assert {"auth.login", "auth.logout", "tickets.add_message", "tickets.set_status"} <= endpoints
    client = csrf_app.test_client()
    login(client, world["boss"].email)
    failures = []
    for rule, methods in rules:
        for method in methods:
            path = build_path(csrf_app, rule, world["ids"], method)
            resp = client.open(path, method=method, data={"body": "x", "status": "closed", "name": "x"})
            if not is_csrf_error(resp):
                failures.append(f"{method} {path} ({rule.endpoint}) -> {resp.status_code}")
    assert not failures, "state-changing routes that accept a POST without a CSRF token:\n" + "\n".join(failures)


def test_anonymous_form_posts_need_a_csrf_token_too(csrf_app, world):
    client = csrf_app.test_client()
    for rule, methods in state_changing_rules(csrf_app):
        path = build_path(csrf_app, rule, world["ids"], methods[0])
        assert is_csrf_error(client.open(path, method=methods[0], data={"x": "1"})), rule.endpoint


def test_exempt_routes_are_really_exempt_and_ignore_the_session(csrf_app, world):
    """An exempt route must not answer with a CSRF error; API routes ignore the session cookie."""
    client = csrf_app.test_client()
    login(client, world["boss"].email)
    for rule in csrf_app.url_map.iter_rules():
        prefix = exempt_prefix(rule.endpoint)
        methods = sorted(rule.methods & STATE_CHANGING)
        if not prefix or not methods:
            continue
        path = build_path(csrf_app, rule, world["ids"], methods[0])
        resp = client.open(path, method=methods[0], json={"status": "closed", "body": "x"})
        assert not is_csrf_error(resp), rule.endpoint
        if prefix == "api.":
            assert resp.status_code == 401, f"{rule.endpoint} accepted a session cookie: {resp.status_code}"
    db.session.expire_all()
    assert db.session.get(Ticket, world["ticket"].id).status == "new"


def test_post_without_token_changes_nothing(csrf_app, world):
    client = csrf_app.test_client()
    login(client, world["boss"].email)
    t = world["ticket"]
    messages_before = db.session.scalar(select(func.count()).select_from(Message))
    jobs_before = db.session.scalar(select(func.count()).select_from(OutboxJob))

    resp = client.post(f"/tickets/{t.number}/status", data={"status": "closed"})
    assert is_csrf_error(resp)
    resp = client.post(f"/tickets/{t.number}/messages", data={"body": "Sudah kami perbaiki", "kind": "reply"})
    assert is_csrf_error(resp)
    resp = client.post("/logout")
    assert is_csrf_error(resp)

    db.session.expire_all()
    assert db.session.get(Ticket, t.id).status == "new"
    assert db.session.scalar(select(func.count()).select_from(Message)) == messages_before
    assert db.session.scalar(select(func.count()).select_from(OutboxJob)) == jobs_before
    assert not db.session.execute(select(AuditEvent).where(AuditEvent.ticket_id == t.id,
                                                           AuditEvent.action == "status")).first()
    assert client.get("/").status_code == 200  # still logged in: the logout was refused

    # A token from another session is refused as well.
    other = csrf_app.test_client()
    login(other, world["agent"].email)
    foreign = page_token(other, f"/tickets/{t.number}")
    assert is_csrf_error(client.post(f"/tickets/{t.number}/status", data={"status": "closed", "csrf_token": foreign}))

    # The same requests with the page's token work: the 400s above were the CSRF check.
    token = page_token(client, f"/tickets/{t.number}")
    resp = client.post(f"/tickets/{t.number}/status", data={"status": "pending_customer", "csrf_token": token})
    assert resp.status_code == 302
    db.session.expire_all()
    assert db.session.get(Ticket, t.id).status == "pending_customer"


# ---------------------------------------------------------------- stored XSS

class _Tags(HTMLParser):
    """Every start tag with its attributes, and the text inside <script> elements."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.script_text, self._in_script = [], [], False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.script_text.append(data)


def assert_page_inert(html):
    """No inline script, no handler attribute, no dangerous URL, no embedding tag anywhere on the page."""
    parser = _Tags()
    parser.feed(html)
    parser.close()
    assert not parser.script_text, parser.script_text
    for tag, attrs in parser.tags:
        assert tag not in ("iframe", "frame", "object", "embed", "svg", "math", "style", "base", "meta",
                           "link") or (tag == "meta" and set(attrs) <= {"charset", "name", "content"}
                                       and "http-equiv" not in attrs) or (
            tag == "link" and attrs.get("href", "").startswith("/static/")), (tag, attrs)
        if tag == "script":
            assert attrs.get("src", "").startswith("/static/"), attrs
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name, value)
            assert "alert(" not in (value or ""), (tag, name, value)
            if name in ("href", "src", "action", "formaction", "srcset", "xlink:href", "data"):
                scheme = urlsplit((value or "").strip()).scheme.lower()
                assert scheme in ("", "http", "https", "mailto", "cid") or (
                    tag == "img" and value.startswith("data:image/png")), (tag, name, value)
    return parser


HTML_PAYLOADS = (
    "<p>Tolong cek</p><script>alert('s1')</script>"
    "<img src=x onerror=\"alert('s2')\">"
    "<a href=\"javascript:alert('s3')\">klik di sini</a>"
    "<a href=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgnczQnKTwvc2NyaXB0Pg==\">lampiran</a>"
    "<iframe src=\"https://evil.example/\"></iframe>"
    "<style>body{display:none}</style><p style=\"color:red\">merah</p>"
    "<svg onload=\"alert('s5')\"><script>alert('s6')</script></svg>"
    "<svg><a xlink:href=\"javascript:alert('s7')\"><text>svg</text></a></svg>"
    "<math><mtext><table><mglyph><style><img src=x onerror=alert('s8')>"
)


def test_stored_xss_in_messages_is_neutralised_on_the_ticket_page(app, client, auth, make, world):
    t = make.ticket(queue=world["q"], customer=world["cust"], subject="<img src=x onerror=alert('subj')>",
                    body="", body_html=HTML_PAYLOADS)
    services.add_customer_message(t.id, world["cust"].id, body_text="<script>alert('text')</script> masih error")
    services.add_customer_message(
        t.id, world["cust"].id, body_text="",
        body_html="<div onclick=\"alert('s9')\">Ini <b>penting</b></div><object data=\"x.swf\"></object>"
                  "<meta http-equiv=\"refresh\" content=\"0;url=https://evil.example/\">"
                  "<form action=\"https://evil.example/\"><input name=pw></form>")
    world["cust"].name = "<svg onload=alert('name')>Budi"
    db.session.commit()
    stored = db.session.execute(select(Message.body_html).where(Message.ticket_id == t.id)).scalars().all()
    assert all("alert(" not in (h or "") for h in stored)

    auth.login(world["agent"])
    resp = client.get(f"/tickets/{t.number}")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert_page_inert(html)
    # The harmless parts are still shown, and plain text is shown as text, escaped.
    assert "Tolong cek" in html and "klik di sini" in html and "<b>penting</b>" in html
    assert "&lt;script&gt;alert(&#39;text&#39;)&lt;/script&gt; masih error" in html
    assert "&lt;img src=x onerror=alert(&#39;subj&#39;)&gt;" in html
    assert "&lt;svg onload=alert(&#39;name&#39;)&gt;Budi" in html

    listing = client.get("/?view=all").get_data(as_text=True)
    assert_page_inert(listing)
    assert "&lt;img src=x onerror=alert(&#39;subj&#39;)&gt;" in listing


# ---------------------------------------------------------------- next redirect

HOSTILE_NEXT = [
    f"https://{EVIL}/", f"http://{EVIL}", f"//{EVIL}/", f"///{EVIL}/", f"\\\\{EVIL}\\", f"/\\{EVIL}",
    f"\\/{EVIL}", f"https:{EVIL}", f"https:/{EVIL}", f"/%5c{EVIL}", f"\t//{EVIL}", f" //{EVIL}",
    f"//{EVIL}%2F..", "javascript:alert(1)", "data:text/html,x", f"http://localhost@{EVIL}/",
    f"/\t/{EVIL}",
]


@pytest.mark.parametrize("target", HOSTILE_NEXT)
def test_next_cannot_leave_the_site(app_factory, make, target):
    make.user(email="rina@example.com", roles=["customer_support"])
    db.session.commit()
    client = app_factory(RATELIMIT_ENABLED=False).test_client()  # many logins in a row
    resp = client.post("/login", data={"email": "rina@example.com", "password": PASSWORD, "next": target})
    assert resp.status_code == 302
    location = resp.headers["Location"]
    parts = urlsplit(location)
    assert parts.netloc in ("", "localhost") and parts.scheme in ("", "http"), location
    # A browser resolves the Location against the page, backslashes as slashes: it must stay on the site.
    resolved = urljoin("http://localhost/login", location.replace("\\", "/"))
    assert urlsplit(resolved).netloc == "localhost", location
    assert location in ("/", target), location  # the queue page, or a path that really is on the site


def test_safe_next_is_honoured(app, client, world):
    resp = client.post("/login", data={"email": world["agent"].email, "password": PASSWORD,
                                       "next": f"/tickets/{world['ticket'].number}?tab=history"})
    assert resp.status_code == 302
    assert resp.headers["Location"] == f"/tickets/{world['ticket'].number}?tab=history"


def test_bulk_redirect_ignores_a_foreign_referrer(app, client, auth, world):
    auth.login(world["agent"])
    resp = client.post("/tickets/bulk", data={"action": "close"}, headers={"Referer": f"https://{EVIL}/x"})
    assert resp.status_code == 302
    assert urlsplit(resp.headers["Location"]).netloc in ("", "localhost")


# ---------------------------------------------------------------- cookies, headers, secret key

def _cookie_header(resp, name):
    return next((h for h in resp.headers.getlist("Set-Cookie") if h.startswith(name + "=")), None)


def test_session_cookie_flags_in_tests(app, client, world):
    resp = client.post("/login", data={"email": world["agent"].email, "password": PASSWORD})
    cookie = _cookie_header(resp, app.config.get("SESSION_COOKIE_NAME", "session"))
    assert cookie, resp.headers.getlist("Set-Cookie")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # tests run on plain http


@pytest.fixture
def production_env(monkeypatch, database_url, redis_url, tmp_path):
    """The environment of a production deployment pointed at the test servers."""
    for var in ("SESSION_COOKIE_SECURE", "FLASK_DEBUG", "HELPDESK_ENV", "SECRET_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("HELPDESK_INSTANCE", str(tmp_path / "instance"))
    return monkeypatch


def test_production_config_has_secure_cookies(production_env):
    cfg = config.Config()
    assert cfg.SESSION_COOKIE_SECURE is True and cfg.REMEMBER_COOKIE_SECURE is True
    assert cfg.SESSION_COOKIE_HTTPONLY is True and cfg.SESSION_COOKIE_SAMESITE == "Lax"
    assert cfg.REMEMBER_COOKIE_HTTPONLY is True and cfg.REMEMBER_COOKIE_SAMESITE == "Lax"
    assert cfg.TESTING is False and cfg.DEBUG is False


def test_production_app_sets_secure_cookie_and_hsts(production_env):
    production_env.setenv("SECRET_KEY", "a-long-random-production-secret-0123456789")
    prod = create_app(config.Config())
    try:
        resp = prod.test_client().get("/login", base_url="https://helpdesk.example.co.id")
        assert resp.status_code == 200
        cookie = _cookie_header(resp, prod.config["SESSION_COOKIE_NAME"])
        assert cookie and "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie, cookie
        assert resp.headers["Strict-Transport-Security"].startswith("max-age=")
    finally:
        with prod.app_context():
            db.engine.dispose()


def test_production_refuses_the_default_secret_key(production_env):
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app(config.Config())
    production_env.setenv("SECRET_KEY", config.DEFAULT_SECRET)
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app(config.Config())


def _csp(resp):
    header = resp.headers.get("Content-Security-Policy", "")
    return {d.split()[0]: d.split()[1:] for d in header.split(";") if d.strip()}


def test_security_headers_on_every_kind_of_response(app, client, auth, world):
    responses = {"login page": client.get("/login"), "static file": client.get("/static/app.css")}
    auth.login(world["agent"])
    responses.update({
        "queue page": client.get("/"),
        "ticket page": client.get(f"/tickets/{world['ticket'].number}"),
        "not found": client.get("/tickets/999999"),
        "method not allowed": client.put("/login"),
        "api error": client.get("/api/v1/tickets"),
    })
    for name, resp in responses.items():
        csp = _csp(resp)
        assert csp.get("frame-ancestors") == ["'none'"], (name, csp)
        assert csp.get("default-src") == ["'self'"], (name, csp)
        assert "'unsafe-inline'" not in csp.get("script-src", ["'self'"]), (name, csp)
        assert csp.get("object-src") == ["'none'"], (name, csp)
        assert resp.headers.get("X-Content-Type-Options") == "nosniff", name
        assert resp.headers.get("X-Frame-Options") == "DENY", name
        assert resp.headers.get("Referrer-Policy"), name
    assert responses["ticket page"].status_code == 200 and responses["not found"].status_code == 404


# ---------------------------------------------------------------- attachments

def test_attachment_downloads_are_never_rendered(app, client, auth, make, world):
    files = [("invoice.html", "text/html", b"<script>alert(document.cookie)</script>"),
             ("logo.svg", "image/svg+xml", b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>"),
             ("feed.xml", "application/xml", b"<?xml version='1.0'?><x/>"),
             ("laporan.pdf", "application/pdf", b"%PDF-1.4 laporan"),
             ("foto rumah.jpg", "image/jpeg", b"\xff\xd8\xff\xe0 jpeg")]
    t = make.ticket(queue=world["q"], customer=world["cust"], files=files)
    db.session.commit()
    atts = {a.filename: a for a in db.session.execute(select(Attachment).where(Attachment.ticket_id == t.id))
            .scalars()}
    auth.login(world["agent"])
    for filename, ctype, data in files:
        resp = client.get(f"/attachments/{atts[filename].id}")
        assert resp.status_code == 200, filename
        assert resp.data == data
        assert resp.headers["Content-Disposition"].startswith("attachment"), resp.headers["Content-Disposition"]
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        served = resp.mimetype
        if any(k in ctype for k in ("html", "svg", "xml")):
            assert served == "application/octet-stream", (filename, served)
        else:
            assert served == ctype
        assert "sandbox" in resp.headers["Content-Security-Policy"]
        assert filename in resp.headers["Content-Disposition"] or "filename*=" in resp.headers["Content-Disposition"]

    # Someone who cannot see the ticket cannot download its files; nor can an anonymous visitor.
    auth.logout()
    assert client.get(f"/attachments/{atts['laporan.pdf'].id}").status_code == 302
    auth.login(world["outsider"])
    assert client.get(f"/attachments/{atts['laporan.pdf'].id}").status_code == 404
