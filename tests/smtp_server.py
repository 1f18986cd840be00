"""A real SMTP server for tests (aiosmtpd) on a loopback port, collecting the raw messages it receives.

    server = SMTPServer().start()      # a free port on 127.0.0.1
    app = app_factory(**server.mail_config())
    ...
    server.messages                    # [Received(mail_from, rcpt_tos, raw bytes)], in arrival order
    server.stop(); server.start()      # an outage: the same port, refused connections in between

`smtp_server` is the shared server of a test session (cleared before each test that uses it);
outage tests make their own with `private_smtp`, never stopping the shared one.
"""
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller

from helpdesk.embedded_redis import free_port


@dataclass
class Received:
    """One message as the server got it: envelope and the exact bytes of DATA."""

    mail_from: str
    rcpt_tos: list
    raw: bytes
    parsed: object = field(default=None, repr=False)

    @property
    def message(self):
        """The message parsed with the modern policy (headers decoded)."""
        if self.parsed is None:
            self.parsed = message_from_bytes(self.raw, policy=policy.default)
        return self.parsed

    def __getitem__(self, header):
        return self.message[header]

    @property
    def message_id(self):
        return (self.message["Message-ID"] or "").strip().strip("<>")

    def part(self, content_type):
        """The decoded text of the first part of this type (text/plain, text/html)."""
        for p in self.message.walk():
            if p.get_content_type() == content_type and not p.is_attachment():
                return p.get_content().replace("\r\n", "\n")
        return None

    @property
    def text(self):
        return self.part("text/plain")

    @property
    def html(self):
        return self.part("text/html")

    def attachments(self):
        """[(filename, content_type, bytes)] of the attached files."""
        return [(p.get_filename(), p.get_content_type(), p.get_payload(decode=True))
                for p in self.message.iter_attachments()]


class _Collector:
    def __init__(self, server):
        self.server = server

    async def handle_RCPT(self, smtp, session, envelope, address, rcpt_options):
        if address.lower() in self.server.reject:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp, session, envelope):
        raw = envelope.original_content if envelope.original_content is not None else envelope.content
        with self.server.lock:
            self.server.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(raw)))
        return "250 Message accepted for delivery"


class SMTPServer:
    """aiosmtpd on 127.0.0.1:<port>; stop() and start() again keep the port."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.messages = []
        self.reject = set()  # recipients refused with 550 (a permanent failure)
        self.lock = threading.Lock()
        self.controller = None

    @property
    def running(self):
        return self.controller is not None

    def start(self):
        if self.controller is not None:
            return self
        deadline = time.monotonic() + 10
        while True:  # the port may linger for a moment after a stop
            controller = Controller(_Collector(self), hostname="127.0.0.1", port=self.port,
                                    decode_data=False, data_size_limit=50 * 1024 * 1024, ready_timeout=10)
            try:
                controller.start()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.controller = controller
        return self

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None
        return self

    def clear(self):
        with self.lock:
            self.messages.clear()
        self.reject.clear()

    def mail_config(self):
        """App config overrides that send real mail to this server."""
        return dict(MAIL_SERVER="127.0.0.1", MAIL_PORT=self.port, MAIL_USE_TLS=False, MAIL_USE_SSL=False,
                    MAIL_USERNAME=None, MAIL_PASSWORD=None, MAIL_SUPPRESS_SEND=False)

    def to(self, address):
        """Messages whose envelope includes this recipient."""
        address = address.lower()
        return [m for m in list(self.messages) if address in [r.lower() for r in m.rcpt_tos]]

    def by_message_id(self):
        """{Message-ID: number of copies received}."""
        out = {}
        for m in list(self.messages):
            out[m.message_id] = out.get(m.message_id, 0) + 1
        return out


@pytest.fixture(scope="session")
def shared_smtp():
    server = SMTPServer().start()
    yield server
    server.stop()


@pytest.fixture
def smtp_server(shared_smtp):
    """The session's SMTP server, emptied for this test."""
    shared_smtp.clear()
    yield shared_smtp
    shared_smtp.clear()


@pytest.fixture
def private_smtp():
    """An SMTP server of this test only: it may be stopped and started again on the same port."""
    server = SMTPServer().start()
    yield server
    server.stop()


@pytest.fixture
def smtp_app(app_factory, smtp_server):
    """`smtp_app(**config)`: an app (its context pushed for the test) whose mail really goes to the
    test SMTP server, with these config overrides."""
    from helpdesk.extensions import db

    contexts = []

    def start(**config):
        app = app_factory(**smtp_server.mail_config(), **config)
        ctx = app.app_context()
        ctx.push()
        contexts.append(ctx)
        return app

    yield start
    for ctx in reversed(contexts):
        db.session.remove()
        ctx.pop()
