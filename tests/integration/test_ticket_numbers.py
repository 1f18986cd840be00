"""Ticket numbers stay sequential and unique when many tickets are created at once."""
import threading

from sqlalchemy import select

from helpdesk.extensions import db
from helpdesk.tickets import services
from helpdesk.tickets.models import Ticket


def test_concurrent_creation_gives_unique_sequential_numbers(app, make):
    q = make.queue()
    c = make.customer()
    db.session.commit()
    qid, cid = q.id, c.id
    errors, barrier = [], threading.Barrier(8)

    def worker():
        with app.app_context():
            try:
                barrier.wait()
                for _ in range(10):
                    services.create_ticket(customer_id=cid, subject="Serbu", body_text="x", channel="web", queue_id=qid)
                    db.session.commit()
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(repr(exc))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    numbers = sorted(db.session.execute(select(Ticket.number)).scalars())
    assert len(numbers) == 80
    assert numbers == list(range(numbers[0], numbers[0] + 80))
