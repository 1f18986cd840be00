"""Fixtures shared by the integration tests."""
import pytest

from helpdesk.extensions import db


@pytest.fixture
def queue(app, make):
    """The Customer Support queue, for mail tests: support@helpdesk.test is our own address (never
    a customer or a Cc)."""
    app.config["MAIL_DEFAULT_SENDER"] = "support@helpdesk.test"
    q = make.queue(slug="customer-support", name="Customer Support")
    db.session.commit()
    return q
