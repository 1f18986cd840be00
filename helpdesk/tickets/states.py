"""The ticket workflow, in one place and pure: which status changes are legal and what a
customer message does to a ticket in each status."""
from dataclasses import dataclass

STATUSES = ("new", "open", "pending_customer", "pending_billing", "resolved", "closed")
OPEN_STATUSES = ("new", "open", "pending_customer", "pending_billing")

# Changes an agent (or the customer portal, for resolve/reopen) may make.
TRANSITIONS = {
    "new": {"open", "pending_customer", "pending_billing", "resolved", "closed"},
    "open": {"pending_customer", "pending_billing", "resolved", "closed"},
    "pending_customer": {"open", "pending_billing", "resolved", "closed"},
    "pending_billing": {"open", "pending_customer", "resolved", "closed"},
    "resolved": {"open", "closed"},
    "closed": set(),
}


class IllegalTransition(ValueError):
    """Raised for a status change the workflow does not allow."""

    def __init__(self, old, new):
        super().__init__(f"A ticket cannot go from '{old}' to '{new}'.")
        self.old, self.new = old, new


def check_transition(old, new):
    """Return `new` if the change is legal, else raise IllegalTransition."""
    if new not in STATUSES:
        raise IllegalTransition(old, new)
    if new not in TRANSITIONS.get(old, set()):
        raise IllegalTransition(old, new)
    return new


def allowed_targets(old):
    """The statuses a ticket in `old` may move to, in workflow order."""
    return [s for s in STATUSES if s in TRANSITIONS.get(old, set())]


@dataclass(frozen=True)
class CustomerMessageOutcome:
    """What a customer's message does: the new status (or None), and how it is counted."""

    new_status: str | None
    effect: str  # "none" | "resume" | "reopen" | "flag_billing" | "new_linked_ticket"


def on_customer_message(status):
    """Apply the workflow rule for a customer message arriving on a ticket in `status`."""
    if status == "pending_customer":
        return CustomerMessageOutcome("open", "resume")
    if status == "pending_billing":
        return CustomerMessageOutcome(None, "flag_billing")
    if status == "resolved":
        return CustomerMessageOutcome("open", "reopen")
    if status == "closed":
        return CustomerMessageOutcome(None, "new_linked_ticket")
    return CustomerMessageOutcome(None, "none")


def on_agent_reply(status, requested=None):
    """The status after a public agent reply: the requested one (checked), else new -> open."""
    if requested and requested != status:
        return check_transition(status, requested)
    if status == "new":
        return "open"
    return status
