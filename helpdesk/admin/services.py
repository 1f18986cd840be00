"""Admin rules for queues, queue membership and canned responses (audited; the caller commits)."""
import re

from sqlalchemy import delete, select

from ..auth.i18n import _
from ..auth.models import User
from ..errors import DomainError, NotFound
from ..extensions import db
from ..tickets.models import CannedResponse, Queue, QueueMember
from ..tickets.services import audit

PLACEHOLDERS = ("customer_name", "ticket_number", "agent_name")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_ ]*)\}")
SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


def _get(model, object_id, message):
    obj = db.session.get(model, object_id) if object_id else None
    if obj is None:
        raise NotFound(message)
    return obj


def _queue(queue_id):
    return _get(Queue, queue_id, _("No such queue."))


def _agent(user_id):
    return _get(User, user_id, _("No such agent."))


# ---------------------------------------------------------------- queues

def create_queue(*, slug, name, actor_id):
    """A new department queue; the slug is unique and link-friendly."""
    slug, name = (slug or "").strip().lower(), " ".join((name or "").split())
    if not SLUG.match(slug) or len(slug) > 40:
        raise DomainError(_("Lower-case letters, digits and single dashes only."), field="slug")
    if not name or len(name) > 80:
        raise DomainError(_("A name of at most 80 characters is required."), field="name")
    if db.session.execute(select(Queue.id).where(Queue.slug == slug)).first():
        raise DomainError(_("A queue called %(slug)s exists already.", slug=slug), field="slug")
    queue = Queue(slug=slug, name=name)
    db.session.add(queue)
    db.session.flush()
    audit(None, actor_id, "created", new=f"{slug} {name}", object_type="queue", object_id=queue.id)
    return queue


def _is_member(queue_id, user_id):
    return db.session.get(QueueMember, (queue_id, user_id)) is not None


def add_member(queue_id, user_id, actor_id):
    """Put an active agent in a queue (no-op when already there)."""
    queue, user = _queue(queue_id), _agent(user_id)
    if not user.is_active:
        raise DomainError(_("%(name)s is deactivated.", name=user.name), field="user")
    if _is_member(queue.id, user.id):
        return False
    db.session.add(QueueMember(queue_id=queue.id, user_id=user.id))
    audit(None, actor_id, "member_added", new=user.email, object_type="queue", object_id=queue.id)
    audit(None, actor_id, "queue_added", new=queue.slug, object_type="user", object_id=user.id)
    db.session.flush()
    db.session.expire(queue, ["members"])
    return True


def remove_member(queue_id, user_id, actor_id):
    """Take an agent out of a queue; a lead who leaves stops being the lead."""
    queue, user = _queue(queue_id), _agent(user_id)
    if not _is_member(queue.id, user.id):
        return False
    db.session.execute(delete(QueueMember).where(QueueMember.queue_id == queue.id, QueueMember.user_id == user.id))
    if queue.lead_id == user.id:
        queue.lead_id = None
        audit(None, actor_id, "lead", old=user.email, new=None, object_type="queue", object_id=queue.id)
    audit(None, actor_id, "member_removed", old=user.email, object_type="queue", object_id=queue.id)
    audit(None, actor_id, "queue_removed", old=queue.slug, object_type="user", object_id=user.id)
    db.session.flush()
    db.session.expire(queue, ["members"])
    return True


def set_lead(queue_id, user_id, actor_id):
    """Make an agent the queue's lead (they become a member), or clear the lead with None."""
    queue = _queue(queue_id)
    if user_id:
        user = _agent(user_id)
        if not user.is_active:
            raise DomainError(_("%(name)s is deactivated.", name=user.name), field="lead")
        add_member(queue.id, user.id, actor_id)
    if queue.lead_id == (user_id or None):
        return queue
    old = queue.lead.email if queue.lead else None
    queue.lead_id = user_id or None
    db.session.flush()
    db.session.expire(queue, ["lead"])
    audit(None, actor_id, "lead", old=old, new=queue.lead.email if queue.lead else None,
          object_type="queue", object_id=queue.id)
    return queue


def set_user_queues(user_id, queue_ids, actor_id):
    """Make an agent a member of exactly these queues."""
    user = _agent(user_id)
    wanted = {int(q) for q in queue_ids}
    for qid in sorted(wanted):
        _queue(qid)
    current = set(db.session.execute(select(QueueMember.queue_id).where(QueueMember.user_id == user.id)).scalars())
    for qid in sorted(current - wanted):
        remove_member(qid, user.id, actor_id)
    for qid in sorted(wanted - current):
        add_member(qid, user.id, actor_id)
    return wanted


# ---------------------------------------------------------------- canned responses

def check_placeholders(body):
    """Refuse {placeholders} that would stay as typed in the reply (a typo like {customer})."""
    unknown = sorted({m for m in _PLACEHOLDER.findall(body or "") if m not in PLACEHOLDERS})
    if unknown:
        raise DomainError(_("Unknown placeholder(s): %(names)s. Use %(known)s.",
                            names=", ".join("{%s}" % u for u in unknown),
                            known=", ".join("{%s}" % p for p in PLACEHOLDERS)), field="body")


def _canned_values(queue_id, title, body):
    if queue_id:
        _queue(queue_id)
    title = " ".join((title or "").split())
    if not title or len(title) > 120:
        raise DomainError(_("A title of at most 120 characters is required."), field="title")
    if not (body or "").strip():
        raise DomainError(_("The text is required."), field="body")
    check_placeholders(body)
    return queue_id or None, title, body.replace("\r\n", "\n")


def create_canned(*, queue_id, title, body, actor_id):
    """A canned response for one queue (or every queue with queue_id None)."""
    queue_id, title, body = _canned_values(queue_id, title, body)
    canned = CannedResponse(queue_id=queue_id, title=title, body=body)
    db.session.add(canned)
    db.session.flush()
    audit(None, actor_id, "created", new=title, object_type="canned", object_id=canned.id)
    return canned


def get_canned(canned_id):
    """The canned response, else NotFound."""
    return _get(CannedResponse, canned_id, _("No such canned response."))


def update_canned(canned_id, *, queue_id, title, body, actor_id):
    """Change a canned response's queue, title or text."""
    canned = get_canned(canned_id)
    queue_id, title, body = _canned_values(queue_id, title, body)
    old_title = canned.title
    canned.queue_id, canned.title, canned.body = queue_id, title, body
    audit(None, actor_id, "updated", old=old_title, new=title, object_type="canned", object_id=canned.id)
    db.session.flush()
    return canned


def delete_canned(canned_id, actor_id):
    """Remove a canned response (replies already sent keep their text)."""
    canned = get_canned(canned_id)
    audit(None, actor_id, "deleted", old=canned.title, object_type="canned", object_id=canned.id)
    db.session.delete(canned)
    db.session.flush()
