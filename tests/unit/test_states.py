"""The workflow rules in tickets/states.py."""
import pytest

from helpdesk.tickets import states


@pytest.mark.parametrize("old,new", [("new", "open"), ("open", "pending_customer"), ("pending_customer", "open"),
                                     ("open", "pending_billing"), ("pending_billing", "resolved"),
                                     ("resolved", "open"), ("resolved", "closed"), ("open", "closed")])
def test_legal_transitions(old, new):
    assert states.check_transition(old, new) == new


@pytest.mark.parametrize("old,new", [("closed", "open"), ("closed", "resolved"), ("resolved", "pending_customer"),
                                     ("open", "new"), ("open", "bogus")])
def test_illegal_transitions_raise_a_clear_error(old, new):
    with pytest.raises(states.IllegalTransition) as exc:
        states.check_transition(old, new)
    assert old in str(exc.value) and new in str(exc.value)


@pytest.mark.parametrize("status,new_status,effect", [
    ("pending_customer", "open", "resume"),
    ("pending_billing", None, "flag_billing"),
    ("resolved", "open", "reopen"),
    ("closed", None, "new_linked_ticket"),
    ("open", None, "none"),
    ("new", None, "none"),
])
def test_customer_message_rules(status, new_status, effect):
    out = states.on_customer_message(status)
    assert (out.new_status, out.effect) == (new_status, effect)


def test_agent_reply_opens_a_new_ticket_and_checks_requested_status():
    assert states.on_agent_reply("new") == "open"
    assert states.on_agent_reply("open", "pending_customer") == "pending_customer"
    with pytest.raises(states.IllegalTransition):
        states.on_agent_reply("resolved", "pending_billing")
