"""Indonesian (the default) and English: the catalogs, the locale choice, translated service errors.

The catalogs are compiled by `make translations` (`make test` runs it first); run it before calling
pytest directly.
"""
import re
from html import unescape
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from flask.testing import FlaskClient

from helpdesk.auth.i18n import _ as service_gettext
from helpdesk.auth.services import create_api_token
from helpdesk.extensions import db
from helpdesk.tickets import services
from helpdesk.tickets.models import Ticket
from tests.factories import PASSWORD

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "translations"
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "pgettext": ((1, "c"), 2), "N_": None,
            "_l": None, "lazy_gettext": None}  # what `pybabel extract -k _l -k lazy_gettext` looks for
PLACEHOLDER = re.compile(r"%\((\w+)\)[sdrif]")


def catalog(lang):
    with open(TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po", "rb") as f:
        return read_po(f, locale=lang)


def entries(cat):
    return [m for m in cat if m.id]


def forms(value):
    """A message's id or string as a tuple: plural entries (ngettext) have one per form."""
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def text_of(resp):
    """The page's visible text, tags dropped, entities decoded, spaces collapsed."""
    html = resp.get_data(as_text=True)
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def browser(app, accept_language=None):
    """A test client whose browser sends exactly this Accept-Language (None: no header at all)."""
    client = FlaskClient(app, app.response_class, use_cookies=True)
    if accept_language:
        client.environ_base["HTTP_ACCEPT_LANGUAGE"] = accept_language
    return client


def login(client, user):
    resp = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:300]


# ---------------------------------------------------------------- the catalogs

def test_indonesian_catalog_translates_every_message_without_fuzzy_entries():
    cat = catalog("id")
    assert len(entries(cat)) > 300
    untranslated = [m.id for m in entries(cat) if not all(forms(m.string))]
    fuzzy = [m.id for m in entries(cat) if m.fuzzy]
    obsolete = list(cat.obsolete)
    assert untranslated == [] and fuzzy == [] and obsolete == []
    assert not cat.fuzzy  # the header is not marked fuzzy either


def test_placeholders_match_in_both_catalogs():
    for lang in ("id", "en"):
        for m in entries(catalog(lang)):
            if not any(forms(m.string)):
                continue  # English: an empty msgstr shows the msgid itself
            expected = sorted(PLACEHOLDER.findall(forms(m.id)[-1]))  # plural: the msgid_plural's names
            for string in forms(m.string):
                assert sorted(PLACEHOLDER.findall(string)) == expected, (lang, m.id)
                if m.python_format:
                    values = {name: 7 for name in expected}
                    assert string % values  # no stray %: the translation formats like the source


def test_catalogs_cover_every_message_in_the_source():
    """A string wrapped in _() since the last `pybabel update` fails here until it is translated."""
    with open(ROOT / "babel.cfg") as f:
        method_map, options_map = parse_mapping_cfg(f)
    in_source = {(ctx, msgid if isinstance(msgid, str) else msgid[0])
                 for _file, _line, msgid, _comments, ctx in extract_from_dir(
                     str(ROOT), method_map, options_map, keywords=KEYWORDS)}
    for lang in ("id", "en"):
        in_catalog = {(m.context, forms(m.id)[0]) for m in entries(catalog(lang))}
        missing = sorted(in_source - in_catalog, key=str)
        assert missing == [], f"{lang}: run pybabel extract/update and translate: {missing[:20]}"


def test_compiled_catalogs_are_up_to_date():
    for lang in ("id", "en"):
        po = TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po"
        mo = po.with_suffix(".mo")
        assert mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime, f"{mo} is stale: run `make translations`"


def test_status_words_are_the_ones_indonesian_helpdesks_use():
    strings = {m.id: m.string for m in entries(catalog("id")) if not m.context}
    assert [strings[s] for s in ("New", "Open", "Waiting for customer", "Waiting for billing", "Resolved",
                                 "Closed")] == ["Baru", "Terbuka", "Menunggu pelanggan", "Menunggu billing",
                                                "Selesai", "Ditutup"]
    assert (strings["Log in"], strings["Log out"], strings["Internal note"]) == ("Masuk", "Keluar",
                                                                                 "Catatan internal")


# ---------------------------------------------------------------- choosing the language

@pytest.fixture
def desk(make):
    tech = make.queue(slug="technical-support", name="Technical Support")
    billing = make.queue(slug="billing", name="Billing")
    agent = make.user(roles=["technical_support"], queues=[tech], name="Bayu Pratama")
    english = make.user(roles=["technical_support"], queues=[tech], name="Sarah Miller", locale="en")
    outsider = make.user(roles=["billing"], queues=[billing], name="Dewi Lestari")
    cust = make.customer(name="Budi Santoso")
    ticket = make.ticket(queue=tech, customer=cust, subject="Website toko error 500")
    db.session.commit()
    return dict(tech=tech, billing=billing, agent=agent, english=english, outsider=outsider, cust=cust,
                ticket=ticket)


LOGIN_ID = ("Masuk agen", "Kata sandi", "Lupa kata sandi?")
LOGIN_EN = ("Agent login", "Password", "Forgot your password?")
QUEUE_ID = ("Semua terbuka", "Belum ditugaskan", "Keluar", "Baru", "Terapkan")
QUEUE_EN = ("All open", "Unassigned", "Log out", "New", "Apply")


def assert_shows(text, expected, not_expected):
    for s in expected:
        assert s in text, s
    for s in not_expected:
        assert s not in text, s


@pytest.mark.parametrize("header", [None, "id", "id-ID,id;q=0.9,en;q=0.5"])
def test_login_page_is_indonesian_by_default_and_for_indonesian_browsers(app, header):
    resp = browser(app, header).get("/login")
    assert resp.status_code == 200 and '<html lang="id">' in resp.get_data(as_text=True)
    assert_shows(text_of(resp), LOGIN_ID, LOGIN_EN)


@pytest.mark.parametrize("header", ["en", "en-US,en;q=0.9", "en-GB,id;q=0.3"])
def test_login_page_is_english_for_english_browsers(app, header):
    resp = browser(app, header).get("/login")
    assert '<html lang="en">' in resp.get_data(as_text=True)
    assert_shows(text_of(resp), LOGIN_EN, LOGIN_ID)


def test_queue_page_follows_the_browser(app, desk):
    for header, expected, other in ((None, QUEUE_ID, QUEUE_EN), ("id", QUEUE_ID, QUEUE_EN),
                                    ("en", QUEUE_EN, QUEUE_ID)):
        client = browser(app, header)
        login(client, desk["agent"])
        text = text_of(client.get("/?view=all"))
        assert "Website toko error 500" in text
        assert_shows(text, expected, other)


def test_lang_parameter_switches_and_sticks_in_the_session_across_login(app, desk):
    client = browser(app, "id")
    assert_shows(text_of(client.get("/login?lang=en")), LOGIN_EN, LOGIN_ID)
    assert_shows(text_of(client.get("/login")), LOGIN_EN, LOGIN_ID)  # no parameter: still English
    with client.session_transaction() as sess:
        assert sess["lang"] == "en"
    login(client, desk["agent"])
    assert_shows(text_of(client.get("/?view=all")), QUEUE_EN, QUEUE_ID)
    assert_shows(text_of(client.get("/?view=all&lang=id")), QUEUE_ID, QUEUE_EN)
    assert_shows(text_of(client.get("/customers/")), ("Pelanggan", "Nama, email, atau telepon"), ("Customers",))
    client.post("/logout")
    assert_shows(text_of(client.get("/login")), LOGIN_ID + ("Anda sudah keluar.",), LOGIN_EN)
    assert_shows(text_of(client.get("/login?lang=xx")), LOGIN_ID, LOGIN_EN)  # unknown: ignored


def test_agent_setting_beats_the_browser(app, desk):
    client = browser(app, "id")
    login(client, desk["english"])
    assert_shows(text_of(client.get("/?view=all")), QUEUE_EN, QUEUE_ID)
    t = desk["ticket"]
    text = text_of(client.get(f"/tickets/{t.number}"))
    assert_shows(text, ("Reply or add a note", "Internal note", "Handover note (required)"),
                 ("Balas atau tambah catatan",))
    # Choosing Indonesian on the account page switches it (and clears any ?lang= choice).
    resp = client.post("/account", data={"locale": "id"}, follow_redirects=True)
    assert_shows(text_of(resp), ("Tersimpan.", "Akun saya"), ("My account",))


def test_mail_uses_the_default_language_for_agents_without_a_setting(app, desk, client, run_jobs):
    from helpdesk.extensions import mail

    email = desk["agent"].email
    client.post("/forgot-password", data={"email": email})
    with mail.record_messages() as outbox:
        run_jobs()
    reset = [m for m in outbox if m.recipients == [email] and "kata sandi" in m.subject]
    assert len(reset) == 1 and reset[0].subject == "Atur ulang kata sandi Helpdesk Anda"
    assert "Halo Bayu Pratama," in reset[0].body and "hanya bisa dipakai sekali" in reset[0].body


# ---------------------------------------------------------------- errors reach users in their language

def test_domain_errors_flash_in_indonesian(app, desk):
    t, tech = desk["ticket"], desk["tech"]
    client = browser(app)  # no Accept-Language: Indonesian
    login(client, desk["agent"])

    resp = client.post(f"/tickets/{t.number}/transfer", data={"queue_id": desk["billing"].id, "note": ""},
                       follow_redirects=True)
    assert "Pilih antrean dan tulis catatan serah terima." in text_of(resp)
    resp = client.post(f"/tickets/{t.number}/transfer", data={"queue_id": tech.id, "note": "Tolong dicek"},
                       follow_redirects=True)
    assert "Tiket sudah berada di antrean tersebut." in text_of(resp)  # raised by the service
    resp = client.post(f"/tickets/{t.number}/assign", data={"assignee_id": desk["outsider"].id},
                       follow_redirects=True)
    assert "Dewi Lestari bukan anggota antrean ini." in text_of(resp)
    db.session.expire_all()
    assert db.session.get(Ticket, t.id).queue_id == tech.id and db.session.get(Ticket, t.id).assignee_id is None

    services.change_status(t.id, desk["agent"].id, "closed")
    db.session.commit()
    resp = client.post("/tickets/bulk", data={"ticket_ids": [t.id], "action": "status", "value": "open"},
                       follow_redirects=True)
    assert f"Tiket #{t.number}: Status tiket tidak bisa diubah dari 'Ditutup' ke 'Terbuka'." in text_of(resp)

    resp = client.post(f"/customers/{desk['cust'].id}", data={"name": "Budi Santoso", "phone": "bukan nomor",
                                                              "kind": "b2c"}, follow_redirects=True)
    assert "'bukan nomor' bukan nomor telepon." in text_of(resp)


def test_the_same_errors_in_english(app, desk):
    t = desk["ticket"]
    client = browser(app, "en")
    login(client, desk["agent"])
    resp = client.post(f"/tickets/{t.number}/transfer", data={"queue_id": desk["tech"].id, "note": "Please check"},
                       follow_redirects=True)
    assert "The ticket is already in that queue." in text_of(resp)
    assert_shows(text_of(client.get("/tickets/999999")), ("Not found.",), ("Tidak ditemukan.",))
    assert_shows(text_of(browser(app, "id").get("/nothing-here")), ("Tidak ditemukan.",), ("requested URL",))


def test_services_speak_english_outside_a_request(app, desk):
    """Jobs and the CLI have no request: the English text, placeholders filled in."""
    assert service_gettext("%(name)s is not a member of this queue.", name="Dewi") == \
        "Dewi is not a member of this queue."
    with pytest.raises(services.DomainError) as exc:
        services.transfer(desk["ticket"].id, desk["agent"].id, desk["tech"].id, "note")
    assert exc.value.message == "The ticket is already in that queue."
    with pytest.raises(services.InvalidTransition) as exc:
        services.change_status(desk["ticket"].id, desk["agent"].id, "bogus")
    assert exc.value.message == "A ticket cannot go from 'new' to 'bogus'."


def test_the_api_answers_in_english_unless_asked(app, desk):
    """Machine clients send no Accept-Language: API errors stay in English (the documented texts)."""
    token = create_api_token(desk["agent"].id, "test")
    services.change_status(desk["ticket"].id, desk["agent"].id, "resolved")
    db.session.commit()
    url = f"/api/v1/tickets/{desk['ticket'].number}"
    body = {"status": "pending_customer"}
    for header, expected in ((None, "A ticket cannot go from 'resolved' to 'pending_customer'."),
                             ("id", "Status tiket tidak bisa diubah dari 'Selesai' ke 'Menunggu pelanggan'.")):
        client = browser(app, header)
        resp = client.patch(url, json=body, headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 409 and resp.get_json()["error"]["message"] == expected
        assert "Set-Cookie" not in resp.headers
    resp = browser(app).get("/api/v1/tickets/999999", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 404 and "not found" in resp.get_json()["error"]["message"].lower()
