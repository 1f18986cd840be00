"""Background jobs of the sales side."""
from ..extensions import db
from ..timeutil import utcnow
from . import services


def cron_expire_offers():
    """rq cron (queue "default", hourly): sent offers past their validity become expired."""
    from ..jobs import app_context

    with app_context():
        try:
            count = services.expire_offers(utcnow())
            db.session.commit()
            return count
        finally:
            db.session.remove()
