"""What every page of a browser test must satisfy: no console errors, no request to another host,
no failed request, and (with axe-core) no accessibility violation."""
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-output" / "browser"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"


class PageWatch:
    """Console errors, failed requests and requests to any host but the test server, for one page."""

    def __init__(self, page, base_url, axe_source=None):
        self.page = page
        self.axe_source = axe_source
        self.host = urlsplit(base_url).netloc
        self.errors, self.foreign, self.failed, self.http_errors = [], [], [], []
        page.on("console", lambda m: m.type == "error" and self.errors.append(f"{page.url}: {m.text}"))
        page.on("pageerror", lambda e: self.errors.append(f"{page.url}: {e}"))
        page.on("request", self._request)
        page.on("requestfailed", self._request_failed)
        page.on("response", lambda r: r.status >= 400 and self.http_errors.append(f"{r.status} {r.url}"))

    def _request(self, request):
        parts = urlsplit(request.url)
        if parts.scheme in ("data", "blob", "about"):
            return
        if parts.scheme not in ("http", "https") or parts.netloc != self.host:
            self.foreign.append(request.url)

    def axe_violations(self):
        """axe-core's violations on the current page, as readable lines (injected through the
        DevTools protocol: the page's CSP rightly refuses inline scripts)."""
        self.page.evaluate(self.axe_source)
        found = self.page.evaluate("""async () => {
            const r = await axe.run(document, {resultTypes: ['violations']});
            return r.violations.map(v => `${v.id} (${v.impact}): ${v.help} -> ` +
                v.nodes.map(n => n.target.join(' ')).join(', '));
        }""")
        return [f"{self.page.url}: {line}" for line in found]

    def _request_failed(self, request):
        # ERR_ABORTED is the browser cancelling a request because the page navigated away (a
        # favicon still loading when the next page opens): not a failure of the app.
        if "ERR_ABORTED" in (request.failure or ""):
            return
        self.failed.append(f"{request.url}: {request.failure}")

    def assert_clean(self, step):
        assert not self.errors, f"console errors after {step}: {self.errors}"
        assert not self.foreign, f"requests to other hosts after {step}: {self.foreign}"
        assert not self.failed, f"failed requests after {step}: {self.failed}"
        assert not self.http_errors, f"error responses after {step}: {self.http_errors}"
        if self.axe_source is not None:
            violations = self.axe_violations()
            assert not violations, f"axe-core violations after {step}: {violations}"


def desk_page(browser, base_url, axe_source):
    """A desktop page in English and Asia/Jakarta, watched (PageWatch), and a screenshot function
    that saves under SHOTS: (context, page, watch, shot). The caller closes the context."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US",
                                  timezone_id="Asia/Jakarta", service_workers="block")
    page = context.new_page()
    page.set_default_timeout(15_000)

    def shot(name):
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    return context, page, PageWatch(page, base_url, axe_source), shot


def login_en(page, base_url, email):
    """Sign an agent in on the English login page (the test users' password)."""
    from flask_babel import force_locale, gettext

    from tests.factories import PASSWORD

    with force_locale("en"):
        email_label, password_label, button = gettext("Email"), gettext("Password"), gettext("Log in")
    page.goto(base_url + "/login?lang=en")
    page.get_by_label(email_label).fill(email)
    page.get_by_label(password_label).fill(PASSWORD)
    page.get_by_role("button", name=button).click()


class People:
    """`people(email)`: a person's own desktop page (desk_page: its own browser context, so its own
    cookies), signed in as that agent, or anonymous with email None; returns (page, watch, shot).
    `close()` closes every context it made."""

    def __init__(self, browser, base_url, axe_source):
        self.browser, self.base_url, self.axe_source, self.contexts = browser, base_url, axe_source, []

    def __call__(self, email=None):
        context, page, watch, shot = desk_page(self.browser, self.base_url, self.axe_source)
        self.contexts.append(context)
        if email:
            login_en(page, self.base_url, email)
        return page, watch, shot

    def close(self):
        for context in self.contexts:
            context.close()
