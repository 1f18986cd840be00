"""Staff login: passwords, rate limits, safe redirects, TOTP two-factor login, password reset links."""
import re
import time
from urllib.parse import urlsplit

import pyotp
import pytest
import time_machine
from sqlalchemy import func, select

from helpdesk.auth import services, totp
from helpdesk.auth.models import User
from helpdesk.extensions import db, mail
from helpdesk.jobs import OutboxJob
from helpdesk.tickets.models import AuditEvent
from tests.conftest import extract_csrf
from tests.factories import PASSWORD

NEW_PASSWORD = "a-brand-new-passphrase"


def login(client, email, password=PASSWORD, ip=None, **extra):
    env = {"REMOTE_ADDR": ip} if ip else {}
    return client.post("/login", data={"email": email, "password": password, **extra}, environ_base=env)


def is_logged_in(client):
    """The desk answers 200 for a logged-in agent and redirects to the login page otherwise."""
    resp = client.get("/")
    return resp.status_code == 200


def path_of(resp):
    return urlsplit(resp.headers["Location"]).path


def enable_totp(user):
    user.totp_secret = pyotp.random_base32()
    user.totp_enabled = True
    db.session.commit()
    return pyotp.TOTP(user.totp_secret)


def totp_user(make, role="admin"):
    """A user whose role requires two-factor login, enrolled; returns (user, pyotp.TOTP)."""
    user = make.user(roles=[role], skip_2fa=False)
    db.session.commit()
    return user, enable_totp(user)


def send_and_read_mail(run_jobs):
    with mail.record_messages() as outbox:
        run_jobs()
    return outbox


def link_in(message, prefix):
    m = re.search(r"https?://[^/\s]+(" + prefix + r"[^\s]+)", message.body)
    assert m, message.body
    return m.group(1)


# ---------------------------------------------------------------- password login

def test_login_ok_and_fail(app, client, make):
    agent = make.user(roles=["customer_support"])
    db.session.commit()
    resp = login(client, agent.email, "wrong-password-1")
    assert resp.status_code == 200
    assert "Wrong email or password" in resp.get_data(as_text=True)
    assert f'value="{agent.email}"' in resp.get_data(as_text=True)  # the typed email stays
    assert not is_logged_in(client)
    resp = login(client, agent.email.upper())
    assert resp.status_code == 302 and path_of(resp) == "/"
    assert is_logged_in(client)
    db.session.expire_all()
    assert db.session.get(User, agent.id).last_login_at is not None
    client.post("/logout")
    assert not is_logged_in(client)


def test_unknown_email_gets_the_same_answer(app, client, make):
    make.user(email="known@example.com")
    db.session.commit()
    wrong_pw = login(client, "known@example.com", "not-the-password").get_data(as_text=True)
    unknown = login(client, "nobody@example.com", "not-the-password").get_data(as_text=True)
    assert "Wrong email or password" in wrong_pw and "Wrong email or password" in unknown


def test_invited_user_without_password_cannot_log_in(app, client, make):
    user = make.user(password_hash=None)
    db.session.commit()
    assert login(client, user.email, "").status_code == 200
    assert login(client, user.email, "anything-at-all").status_code == 200
    assert not is_logged_in(client)


@pytest.mark.parametrize("target", [
    "//evil.com", "https://evil.com", "http://evil.com/", "/\\evil.com", "\\\\evil.com", "javascript:alert(1)",
    "///evil.com", "https:evil.com", " //evil.com", "/\t/evil.com", "",
])
def test_next_redirect_refuses_other_sites(app, client, make, target):
    agent = make.user()
    db.session.commit()
    resp = login(client, agent.email, next=target)
    assert resp.status_code == 302
    loc = urlsplit(resp.headers["Location"])
    assert loc.netloc in ("", "localhost") and loc.path == "/" and loc.scheme in ("", "http")


def test_next_redirect_keeps_a_local_page(app, client, make):
    agent = make.user()
    db.session.commit()
    page = client.get("/login?next=/customers/?q=budi")
    assert 'value="/customers/?q=budi"' in page.get_data(as_text=True)
    resp = login(client, agent.email, next="/customers/?q=budi")
    assert resp.headers["Location"].endswith("/customers/?q=budi")


def test_protected_page_sends_anonymous_to_login_with_next(app, client):
    resp = client.get("/customers/")
    assert resp.status_code == 302 and path_of(resp) == "/login"
    assert "next=" in resp.headers["Location"]


def test_login_form_needs_csrf_token(csrf_app, make):
    client = csrf_app.test_client()
    agent = make.user()
    db.session.commit()
    assert login(client, agent.email).status_code == 400
    token = extract_csrf(client.get("/login").get_data(as_text=True))
    assert token
    assert login(client, agent.email, csrf_token=token).status_code == 302


# ---------------------------------------------------------------- rate limits

def test_eleventh_failed_attempt_from_one_ip_gets_429(app, client, make):
    agent = make.user(email="real@example.com")
    db.session.commit()
    for i in range(10):
        assert login(client, f"guess{i}@example.com", "wrong-password").status_code == 200
    resp = login(client, "typed.by.hand@example.com", "wrong-password")
    assert resp.status_code == 429
    html = resp.get_data(as_text=True)
    assert "Too many failed login attempts from your network" in html
    assert 'value="typed.by.hand@example.com"' in html  # the typed email is kept
    assert int(resp.headers["Retry-After"]) > 0
    # The right password does not get through either, until the window passes.
    assert login(client, agent.email).status_code == 429
    assert not is_logged_in(client)
    # Another network is not affected.
    assert login(client, agent.email, ip="203.0.113.9").status_code == 302


def test_eleventh_failed_attempt_on_one_account_gets_429_from_any_ip(app, client, make):
    victim = make.user(email="victim@example.com")
    other = make.user(email="other@example.com")
    db.session.commit()
    for i in range(10):
        assert login(client, "Victim@example.com ", "wrong-password", ip=f"198.51.100.{i + 1}").status_code == 200
    resp = login(client, victim.email, ip="198.51.100.77")
    assert resp.status_code == 429
    html = resp.get_data(as_text=True)
    assert "Too many failed login attempts for this account" in html
    assert 'value="victim@example.com"' in html
    assert login(client, other.email, ip="198.51.100.77").status_code == 302


def test_successful_logins_do_not_use_up_the_limit(app, client, make):
    agent = make.user()
    db.session.commit()
    for _ in range(12):
        assert login(client, agent.email).status_code == 302
        client.post("/logout")


def test_forgot_password_is_rate_limited(app, client):
    for i in range(10):
        assert client.post("/forgot-password", data={"email": f"x{i}@example.com"}).status_code == 302
    resp = client.post("/forgot-password", data={"email": "x@example.com"})
    assert resp.status_code == 429 and "Too many requests" in resp.get_data(as_text=True)


# ---------------------------------------------------------------- deactivation and sessions

def test_deactivated_agent_cannot_log_in_and_loses_the_session(app, client, make):
    admin = make.user(roles=["admin"])
    agent = make.user(roles=["technical_support"])
    db.session.commit()
    login(client, agent.email)
    assert is_logged_in(client)
    services.deactivate(agent.id, admin.id)
    db.session.commit()
    assert not is_logged_in(client)
    resp = login(client, agent.email)
    assert resp.status_code == 200 and "Wrong email or password" in resp.get_data(as_text=True)
    services.reactivate(agent.id, admin.id)
    db.session.commit()
    assert login(client, agent.email).status_code == 302


def test_session_protection_drops_a_session_used_from_another_browser(app, client, make):
    agent = make.user()
    db.session.commit()
    client.post("/login", data={"email": agent.email, "password": PASSWORD}, headers={"User-Agent": "Firefox/128"})
    assert client.get("/", headers={"User-Agent": "Firefox/128"}).status_code == 200
    assert client.get("/", headers={"User-Agent": "curl/8.0"}).status_code == 302


def test_password_change_ends_other_sessions_but_keeps_this_one(app, make):
    agent = make.user()
    db.session.commit()
    mine, other = app.test_client(), app.test_client()
    login(mine, agent.email)
    login(other, agent.email)
    resp = mine.post("/account", data={"locale": "en", "current_password": "wrong-wrong-wrong",
                                       "new_password": NEW_PASSWORD})
    assert resp.status_code == 200 and "current password is not correct" in resp.get_data(as_text=True)
    resp = mine.post("/account", data={"locale": "en", "current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert resp.status_code == 302
    assert is_logged_in(mine)
    assert not is_logged_in(other)
    db.session.expire_all()
    assert db.session.get(User, agent.id).locale == "en"
    assert services.authenticate(agent.email, NEW_PASSWORD) is not None


# ---------------------------------------------------------------- two-factor login

@pytest.mark.parametrize("role", ["admin", "billing"])
def test_admin_and_billing_must_enrol_before_reaching_any_page(app, client, make, role):
    user = make.user(roles=[role], skip_2fa=False)
    db.session.commit()
    resp = login(client, user.email, next="/customers/")
    assert resp.status_code == 302 and path_of(resp) == "/login/2fa-setup"
    assert not is_logged_in(client)
    assert client.get("/customers/").status_code == 302
    assert client.get("/account").status_code == 302

    page = client.get("/login/2fa-setup").get_data(as_text=True)
    db.session.expire_all()
    secret = db.session.get(User, user.id).totp_secret
    assert secret and secret in page
    assert "otpauth://totp/" in page and "data:image/svg+xml" in page
    code = pyotp.TOTP(secret)

    wrong = str((int(code.now()) + 1) % 1_000_000).zfill(6)
    resp = client.post("/login/2fa-setup", data={"code": wrong})
    assert resp.status_code == 200 and "wrong or was already used" in resp.get_data(as_text=True)
    assert not is_logged_in(client)

    resp = client.post("/login/2fa-setup", data={"code": code.now()})
    assert resp.status_code == 302 and path_of(resp) == "/customers/"
    assert is_logged_in(client)
    db.session.expire_all()
    user = db.session.get(User, user.id)
    assert user.totp_enabled and user.totp_last_step is not None
    assert db.session.execute(select(AuditEvent.action).where(
        AuditEvent.object_type == "user", AuditEvent.object_id == user.id)).scalars().all() == ["2fa_enabled"]


def test_login_code_wrong_and_replayed_codes_are_rejected(app, client, make):
    user, code = totp_user(make, "admin")

    resp = login(client, user.email, next="/customers/")
    assert resp.status_code == 302 and path_of(resp) == "/login/code"
    assert not is_logged_in(client)
    resp = client.post("/login/code", data={"code": "000000" if code.now() != "000000" else "111111"})
    assert resp.status_code == 200 and "wrong or was already used" in resp.get_data(as_text=True)
    assert not is_logged_in(client)

    used = code.now()
    resp = client.post("/login/code", data={"code": used[:3] + " " + used[3:]})
    assert resp.status_code == 302 and path_of(resp) == "/customers/"
    assert is_logged_in(client)
    client.post("/logout")

    login(client, user.email)
    resp = client.post("/login/code", data={"code": used})
    assert resp.status_code == 200 and "already used" in resp.get_data(as_text=True)
    assert not is_logged_in(client)
    # The next 30-second code is accepted (within the allowed clock drift).
    resp = client.post("/login/code", data={"code": code.at(time.time() + 30)})
    assert resp.status_code == 302 and is_logged_in(client)


def test_code_page_needs_the_password_step_first(app, client, make):
    user, code = totp_user(make, "admin")
    resp = client.post("/login/code", data={"code": code.now()})
    assert resp.status_code == 302 and path_of(resp) == "/login"
    assert not is_logged_in(client)


def test_pending_second_step_expires(app, client, make):
    user, code = totp_user(make, "billing")
    login(client, user.email)
    with time_machine.travel(time.time() + 11 * 60, tick=False):
        resp = client.post("/login/code", data={"code": code.now()})
        assert resp.status_code == 302 and path_of(resp) == "/login"
        assert not is_logged_in(client)


def test_login_codes_are_rate_limited_per_account(app, client, make):
    user, code = totp_user(make, "admin")
    for i in range(10):
        login(client, user.email, ip=f"192.0.2.{i + 1}")
        resp = client.post("/login/code", data={"code": "12345" + str(i)}, environ_base={"REMOTE_ADDR": f"192.0.2.{i + 1}"})
        assert resp.status_code == 200
    login(client, user.email, ip="192.0.2.99")
    resp = client.post("/login/code", data={"code": code.now()}, environ_base={"REMOTE_ADDR": "192.0.2.99"})
    assert resp.status_code == 429
    assert "Too many failed login attempts for this account" in resp.get_data(as_text=True)


def test_demo_accounts_and_other_roles_need_no_code(app, client, make):
    demo_admin = make.user(roles=["admin"], skip_2fa=True)
    agent = make.user(roles=["marketing"], skip_2fa=False)
    db.session.commit()
    assert path_of(login(client, demo_admin.email)) == "/"
    client.post("/logout")
    assert path_of(login(client, agent.email)) == "/"


def test_2fa_requirement_can_be_switched_off_by_config(app_factory, make):
    app = app_factory(REQUIRE_2FA=False)
    with app.app_context():
        from tests import factories

        user = factories.UserFactory(roles=["admin"], skip_2fa=False)
        db.session.commit()
        assert path_of(login(app.test_client(), user.email)) == "/"
        db.session.remove()


def test_agent_given_admin_role_must_enrol_at_the_next_request(app, client, make):
    admin = make.user(roles=["admin"])
    agent = make.user(roles=["customer_support"], skip_2fa=False)
    db.session.commit()
    login(client, agent.email)
    assert is_logged_in(client)
    services.update_agent(agent.id, admin.id, name=agent.name, roles=["customer_support", "admin"])
    db.session.commit()
    resp = client.get("/customers/")
    assert resp.status_code == 302 and path_of(resp) == "/login/2fa-setup"
    client.get("/login/2fa-setup")
    db.session.expire_all()
    secret = db.session.get(User, agent.id).totp_secret
    resp = client.post("/login/2fa-setup", data={"code": pyotp.TOTP(secret).now()})
    assert resp.status_code == 302 and path_of(resp) == "/account"
    assert client.get("/customers/").status_code == 200


def test_optional_2fa_from_the_account_page(app, client, make):
    agent = make.user(roles=["technical_support"], skip_2fa=False)
    db.session.commit()
    login(client, agent.email)
    assert "Set up two-factor login" in client.get("/account").get_data(as_text=True)
    client.get("/login/2fa-setup")
    db.session.expire_all()
    code = pyotp.TOTP(db.session.get(User, agent.id).totp_secret)
    assert client.post("/login/2fa-setup", data={"code": code.now()}).status_code == 302
    client.post("/logout")

    assert path_of(login(client, agent.email)) == "/login/code"
    client.post("/login/code", data={"code": code.at(time.time() + 30)})
    assert is_logged_in(client)

    resp = client.post("/account/2fa/disable", data={"password": "not-my-password"})
    assert resp.status_code == 400 and "current password is not correct" in resp.get_data(as_text=True)
    resp = client.post("/account/2fa/disable", data={"password": PASSWORD})
    assert resp.status_code == 302
    db.session.expire_all()
    assert not db.session.get(User, agent.id).totp_enabled
    client.post("/logout")
    assert path_of(login(client, agent.email)) == "/"


def test_required_2fa_cannot_be_switched_off(app, client, make):
    user, code = totp_user(make, "billing")
    login(client, user.email)
    client.post("/login/code", data={"code": code.now()})
    assert "cannot be switched off" in client.get("/account").get_data(as_text=True)
    client.post("/account/2fa/disable", data={"password": PASSWORD})
    db.session.expire_all()
    assert db.session.get(User, user.id).totp_enabled


def test_totp_service_rejects_codes_outside_the_drift_window(app, make):
    user, code = totp_user(make, "admin")
    with pytest.raises(totp.WrongCode):
        totp.verify_login_code(user.id, code.at(time.time() - 120))
    with pytest.raises(totp.WrongCode):
        totp.verify_login_code(user.id, "12345a")
    assert totp.verify_login_code(user.id, code.now()).totp_last_step is not None


# ---------------------------------------------------------------- password reset

def test_forgot_password_gives_the_same_answer_for_unknown_emails(app, client, make, run_jobs):
    agent = make.user(email="sari@example.com")
    make.user(email="gone@example.com", active=False)
    db.session.commit()
    answers = []
    for email in ("sari@example.com", "nobody@example.com", "gone@example.com"):
        resp = client.post("/forgot-password", data={"email": email}, follow_redirects=True)
        answers.append(resp.get_data(as_text=True).replace(email, "EMAIL"))
    assert answers[0] == answers[1] == answers[2]
    assert "a link to choose a new password is on its way" in answers[0]
    assert db.session.execute(select(OutboxJob.func, OutboxJob.args)).all() == [
        ("helpdesk.auth.jobs.send_password_reset", [agent.id])]
    outbox = send_and_read_mail(run_jobs)
    assert [m.recipients for m in outbox] == [["sari@example.com"]]


def test_reset_link_sets_the_password_on_post_only_and_works_once(app, client, make, run_jobs):
    agent = make.user(email="bayu@example.com", locale="en")  # the mail is in the agent's language
    db.session.commit()
    email, uid = agent.email, agent.id
    client.post("/forgot-password", data={"email": "bayu@example.com"})
    outbox = send_and_read_mail(run_jobs)
    assert len(outbox) == 1 and "Reset your Helpdesk password" in outbox[0].subject
    link = link_in(outbox[0], "/reset-password/")

    page = client.get(link)
    assert page.status_code == 200 and "bayu@example.com" in page.get_data(as_text=True)
    assert services.authenticate(email, PASSWORD) is not None  # GET changed nothing

    resp = client.post(link, data={"password": NEW_PASSWORD, "confirm": "something-else-entirely"})
    assert resp.status_code == 200 and "not the same" in resp.get_data(as_text=True)
    resp = client.post(link, data={"password": "short", "confirm": "short"})
    assert resp.status_code == 200 and "at least 10" in resp.get_data(as_text=True)

    resp = client.post(link, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert resp.status_code == 302 and path_of(resp) == "/login"
    assert services.authenticate(email, PASSWORD) is None
    assert path_of(login(client, email, NEW_PASSWORD)) == "/"
    client.post("/logout")

    again = client.get(link)
    assert again.status_code == 400 and "already used" in again.get_data(as_text=True)
    resp = client.post(link, data={"password": "yet-another-password", "confirm": "yet-another-password"})
    assert resp.status_code == 400
    assert services.authenticate(email, NEW_PASSWORD) is not None
    assert db.session.execute(select(AuditEvent.action).where(AuditEvent.object_id == uid,
                                                              AuditEvent.object_type == "user")
                              ).scalars().all() == ["password_reset"]


def test_reset_link_expires(app, client, make, run_jobs):
    agent = make.user()
    db.session.commit()
    email = agent.email
    client.post("/forgot-password", data={"email": agent.email})
    link = link_in(send_and_read_mail(run_jobs)[0], "/reset-password/")
    max_age = app.config["PASSWORD_RESET_MAX_AGE"]
    with time_machine.travel(time.time() + max_age - 60, tick=False):
        assert client.get(link).status_code == 200
    with time_machine.travel(time.time() + max_age + 60, tick=False):
        resp = client.post(link, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
        assert resp.status_code == 400 and "expired" in resp.get_data(as_text=True)
    assert services.authenticate(email, PASSWORD) is not None


def test_reset_link_cannot_be_forged_or_reused_across_purposes(app, client, make, run_jobs):
    agent = make.user()
    db.session.commit()
    client.post("/forgot-password", data={"email": agent.email})
    link = link_in(send_and_read_mail(run_jobs)[0], "/reset-password/")
    token = link.rsplit("/", 1)[1]
    assert client.get("/reset-password/" + token[:-2] + ("AA" if token[-2:] != "AA" else "BB")).status_code == 400
    assert client.get("/invite/" + token).status_code == 400  # another salt
    assert client.get("/reset-password/not-a-token").status_code == 400


def test_reset_link_dies_when_the_account_is_deactivated(app, client, make, run_jobs):
    admin = make.user(roles=["admin"])
    agent = make.user()
    db.session.commit()
    agent_id, admin_id = agent.id, admin.id
    client.post("/forgot-password", data={"email": agent.email})
    link = link_in(send_and_read_mail(run_jobs)[0], "/reset-password/")
    services.deactivate(agent_id, admin_id)
    db.session.commit()
    assert client.get(link).status_code == 400


def test_reset_ends_sessions_elsewhere(app, make, run_jobs):
    agent = make.user()
    db.session.commit()
    old_browser, new_browser = app.test_client(), app.test_client()
    login(old_browser, agent.email)
    new_browser.post("/forgot-password", data={"email": agent.email})
    link = link_in(send_and_read_mail(run_jobs)[0], "/reset-password/")
    new_browser.post(link, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert not is_logged_in(old_browser)


def test_mail_is_in_the_agents_language(app, client, make, run_jobs):
    agent = make.user(locale="en")
    db.session.commit()
    email, name = agent.email, agent.name
    client.post("/forgot-password", data={"email": agent.email})
    outbox = send_and_read_mail(run_jobs)
    assert db.session.execute(select(func.count()).select_from(OutboxJob).where(OutboxJob.done_at.is_(None))
                              ).scalar() == 0
    assert outbox[0].recipients == [email] and name in outbox[0].body


def test_login_limit_with_the_production_storage_in_redis(app_factory):
    """The deployed limiter counts in Redis (shared by every web process), not in memory."""
    app = app_factory(RATELIMIT_STORAGE_URI=None)
    assert app.config["RATELIMIT_STORAGE_URI"].startswith(("redis://", "redis+unix://"))
    client = app.test_client()
    for i in range(10):
        assert login(client, f"guess{i}@example.com", "wrong-password").status_code == 200
    resp = login(client, "typed@example.com", "wrong-password")
    assert resp.status_code == 429 and 'value="typed@example.com"' in resp.get_data(as_text=True)
