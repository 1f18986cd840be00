"""factory_boy factories for the models, and a small facade the tests use through `make`."""
import factory
from factory.alchemy import SQLAlchemyModelFactory

from helpdesk.auth.models import User, UserRole
from helpdesk.auth.services import hash_password
from helpdesk.customers.models import Customer, CustomerEmail, Organisation
from helpdesk.extensions import db
from helpdesk.tickets import services as ticket_services
from helpdesk.tickets.models import Queue, QueueMember

PASSWORD = "correct-horse-battery"


class Base(SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_factory = lambda: db.session  # noqa: E731
        sqlalchemy_session_persistence = "flush"


class QueueFactory(Base):
    class Meta:
        model = Queue

    slug = factory.Sequence(lambda n: f"queue-{n}")
    name = factory.Sequence(lambda n: f"Queue {n}")


class UserFactory(Base):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"agent{n}@example.com")
    name = factory.Faker("name", locale="id_ID")
    active = True
    skip_2fa = True
    password_hash = factory.LazyFunction(lambda: hash_password(PASSWORD))

    @factory.post_generation
    def roles(obj, create, extracted, **kwargs):
        for r in extracted or ():
            obj.roles_rel.append(UserRole(role=r))

    @factory.post_generation
    def queues(obj, create, extracted, **kwargs):
        for q in extracted or ():
            db.session.add(QueueMember(queue_id=q.id, user_id=obj.id))
        db.session.flush()


class OrganisationFactory(Base):
    class Meta:
        model = Organisation

    name = factory.Faker("company", locale="id_ID")


class CustomerFactory(Base):
    class Meta:
        model = Customer

    name = factory.Faker("name", locale="id_ID")
    kind = "b2c"

    @factory.post_generation
    def email(obj, create, extracted, **kwargs):
        db.session.flush()
        db.session.add(CustomerEmail(customer_id=obj.id, email=extracted or f"customer{obj.id}@example.net",
                                     is_primary=True))
        db.session.flush()
        db.session.refresh(obj)


class Factories:
    """`make.user(roles=[...], queues=[...])`, `make.queue()`, `make.customer()`, `make.ticket(...)`."""

    def queue(self, **kw):
        return QueueFactory(**kw)

    def user(self, **kw):
        return UserFactory(**kw)

    def customer(self, **kw):
        return CustomerFactory(**kw)

    def organisation(self, **kw):
        return OrganisationFactory(**kw)

    def ticket(self, *, queue=None, customer=None, subject="Website down", body="Help, our site is down.",
               channel="web", priority="normal", **kw):
        queue = queue or self.queue()
        customer = customer or self.customer()
        return ticket_services.create_ticket(customer_id=customer.id, subject=subject, body_text=body,
                                             channel=channel, queue_id=queue.id, priority=priority, **kw)


def wib(*args):
    """A WIB (UTC+7) wall time as the naive UTC the database stores: wib(2026, 12, 7, 9, 0)."""
    from datetime import datetime, timedelta

    return datetime(*args) - timedelta(hours=7)
