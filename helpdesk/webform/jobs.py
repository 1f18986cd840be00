"""The web form's acknowledgement job of the first release, kept so that outbox rows queued before
the upgrade still run: it records the threaded acknowledgement (helpdesk.mail.outbound), which the
"mail" job queued with it sends. Safe to run twice: a ticket gets one acknowledgement."""
from ..mail import outbound


def send_acknowledgement(ticket_id, email):
    """Acknowledge a web ticket to the address typed in the form."""
    if not email:
        return 0
    return 1 if outbound.queue_acknowledgement(ticket_id, email) is not None else 0
