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


@pytest.fixture
def our_mail(app, queue, make):
    """`our_mail(email)`: a ticket of that address's new customer and the Message-ID of a mail we
    sent about it (as a bounce of it would quote), committed: (ticket, message_id)."""
    from helpdesk.mail import tokens
    from helpdesk.mail.models import MailMessageId

    def sent(email):
        ticket = make.ticket(queue=queue, customer=make.customer(email=email))
        ours = tokens.make_message_id(ticket.id, app.config["SECRET_KEY"], "helpdesk.test")
        db.session.add(MailMessageId(message_id=ours, ticket_id=ticket.id, direction="out"))
        db.session.commit()
        return ticket, ours

    return sent
