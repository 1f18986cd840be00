"""Marketing announcements (issue #8 §3): write, preview, send now or at a set time, cancel, report.

Public API (all only flush; the caller commits):

    create(actor_id, **fields) / update(campaign_id, actor_id, **fields) -> Campaign   (drafts only)
    languages(campaign)                      -> ["id", "en"] written completely (subject and body)
    locale_for(campaign, language)           -> "id" | "en" | None (None: both parts, Indonesian first)
    count(campaign) / first_recipients(campaign, n)
    preview(campaign)                        -> {"count", "first", "samples": [{locale, count, to, subject, text, html}]}
    send_now(campaign_id, actor_id, now)     -> the campaign goes out through the outbox (a job) and the sweeps
    schedule(campaign_id, actor_id, when_utc, now) / cancel(campaign_id, actor_id, now)
    run_batch(campaign_id, now, limit)       -> mails queued (one batch; idempotent; see jobs.py)
    report(campaign_ids)                     -> {campaign_id: {recipients, claimed, queued, sent, failed, held,
                                                 skipped, bounced, unsubscribed}}

A recipient whose language (id / en) is written gets that language; otherwise the other one. A lead
(no language) or a customer without one gets both parts when both are written. Bodies are plain
text: the mail templates escape them (paragraphs and line breaks), never render them as HTML.
"""
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import case, func, select
from sqlalchemy import update as sql_update

from .. import jobs as job_queue
from ..errors import DomainError, NotFound
from ..extensions import db
from ..mail.models import OutboundMail
from ..subscriptions import delivery
from ..subscriptions.models import AnnouncementDelivery, ConsentEvent
from ..timeutil import utcnow
from . import segments
from .models import AUDIENCES, CAMPAIGN_TOPICS, Campaign

LANGS = ("id", "en")
MAIL_KIND = "campaign"
EDITABLE = ("draft",)
CANCELLABLE = ("scheduled", "sending")
EXAMPLE_ADDRESS = "recipient@example.com"


def get(campaign_id):
    c = db.session.get(Campaign, campaign_id)
    if c is None:
        raise NotFound(_("Unknown announcement."))
    return c


def _clean_text(value, limit=None):
    value = (value or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    return value[:limit] if limit else value


def languages(c):
    return [lang for lang in LANGS if getattr(c, f"subject_{lang}") and getattr(c, f"body_{lang}")]


def locale_for(c, language):
    written = languages(c)
    if len(written) == 1:
        return written[0]
    if language in written:
        return language
    return None


def _apply(c, *, name, topic, audience, segment, subject_id="", body_id="", subject_en="", body_en=""):
    name = _clean_text(name, 200)
    if not name:
        raise DomainError(_("Give the announcement a name."), field="name")
    if topic not in CAMPAIGN_TOPICS:
        raise DomainError(_("Unknown topic."), field="topic")
    if audience not in AUDIENCES:
        raise DomainError(_("Choose leads or customers."), field="audience")
    texts = {"subject_id": _clean_text(subject_id, 300).replace("\n", " "), "body_id": _clean_text(body_id),
             "subject_en": _clean_text(subject_en, 300).replace("\n", " "), "body_en": _clean_text(body_en)}
    for lang in LANGS:
        subject, body = texts[f"subject_{lang}"], texts[f"body_{lang}"]
        if bool(subject) != bool(body):
            missing = f"body_{lang}" if subject else f"subject_{lang}"
            raise DomainError(_("Write both the subject and the text of a language, or leave both empty."),
                              field=missing)
    if not any(texts[f"subject_{lang}"] for lang in LANGS):
        raise DomainError(_("Write the announcement in Indonesian or English (subject and text)."),
                          field="subject_id")
    c.name, c.topic, c.audience = name, topic, audience
    c.segment = segments.normalize(audience, segment)
    for key, value in texts.items():
        setattr(c, key, value or None)


def create(actor_id, *, now=None, **fields):
    now = now or utcnow()
    c = Campaign(created_by_id=actor_id, status="draft", created_at=now, updated_at=now, recipients_total=0)
    _apply(c, **fields)
    db.session.add(c)
    db.session.flush()
    return c


def update(campaign_id, actor_id, *, now=None, **fields):
    c = get(campaign_id)
    if c.status not in EDITABLE:
        raise DomainError(_("Only a draft can be changed."))
    _apply(c, **fields)
    c.updated_at = now or utcnow()
    db.session.flush()
    return c


# ---------------------------------------------------------------- recipients and preview

def recipients_query(c):
    return segments.recipients(c.topic, c.audience, c.segment)


def count(c):
    q = recipients_query(c).order_by(None).subquery()
    return db.session.execute(select(func.count()).select_from(q)).scalar_one()


def first_recipients(c, n=20):
    return db.session.execute(recipients_query(c).limit(n)).all()


def _kind(c):
    return "lead" if c.audience == "leads" else "customer"


def mail_context(c, name):
    """The templates' context of one recipient's mail (JSON: kept with the outbox job)."""
    return {"campaign_mail": {"id": c.id, "name": name or "",
                              "bodies": {lang: getattr(c, f"body_{lang}") for lang in languages(c)}}}


def subject_for(c, locale):
    from ..mail import outbound

    return outbound.render_subject(MAIL_KIND, locale, campaign_mail={"subjects": {
        lang: getattr(c, f"subject_{lang}") for lang in languages(c)}})


def render(c, *, sid, email, name, locale, delivery_id=None):
    """(subject, text, html) of the mail as the send job builds it (without sending anything)."""
    from ..mail import outbound
    from ..mail.jobs import build_message

    subject = subject_for(c, locale)
    from_addr, _name, _mailbox = outbound.sender_for(None)
    row = OutboundMail(kind=MAIL_KIND, to_addrs=[email], cc_addrs=[], subject=subject, locale=locale, automatic=True,
                       message_id=outbound.new_message_id(None, MAIL_KIND, from_addr), status="queued")
    context = dict(mail_context(c, name), delivery_id=delivery_id, unsub=[_kind(c), sid, c.topic])
    _msg, text, html = build_message(row, context)
    return subject, text, html


def preview(c, n=20):
    """The count, the first recipients, and one sample mail per language variant that goes out (each
    rendered for the first recipient who gets it)."""
    q = recipients_query(c).order_by(None).subquery()
    groups = db.session.execute(select(q.c.language, func.count(), func.min(q.c.id)).group_by(q.c.language)).all()
    variants = {}
    for language, n_rows, first_id in groups:
        loc = locale_for(c, language)
        v = variants.setdefault(loc, {"count": 0, "first_id": first_id})
        v["count"] += n_rows
        v["first_id"] = min(v["first_id"], first_id)
    samples = []
    id_col = segments.id_column(c.audience)
    for loc, v in sorted(variants.items(), key=lambda kv: LANGS.index(kv[0]) if kv[0] in LANGS else 9):
        row = db.session.execute(recipients_query(c).where(id_col == v["first_id"])).first()
        if row is None:
            continue
        subject, text, html = render(c, sid=row[0], email=row[1], name=row[3], locale=loc)
        samples.append({"locale": loc, "count": v["count"], "to": row[1], "subject": subject, "text": text,
                        "html": html})
    if not samples and languages(c):  # nobody yet: how the mail looks, for an example address
        written = languages(c)
        for loc in written + ([None] if len(written) > 1 else []):
            subject, text, html = render(c, sid=0, email=EXAMPLE_ADDRESS, name="", locale=loc)
            samples.append({"locale": loc, "count": 0, "to": EXAMPLE_ADDRESS, "subject": subject, "text": text,
                            "html": html})
    return {"count": sum(v["count"] for v in variants.values()), "first": first_recipients(c, n) if n else [],
            "samples": samples}


# ---------------------------------------------------------------- sending

def schedule(campaign_id, actor_id, when, *, now=None):
    """Send at `when` (naive UTC, in the future)."""
    now = now or utcnow()
    c = get(campaign_id)
    if c.status not in ("draft", "scheduled"):
        raise DomainError(_("This announcement is already being sent or was cancelled."))
    if when is None or when <= now:
        raise DomainError(_("The sending time must be in the future."), field="send_date")
    c.status, c.scheduled_at, c.updated_at = "scheduled", when, now
    db.session.flush()
    return c


def send_now(campaign_id, actor_id, *, now=None):
    """Due now: a job (through the outbox, after the commit) sends the first batch, the sweeps the rest."""
    now = now or utcnow()
    c = get(campaign_id)
    if c.status not in ("draft", "scheduled"):
        raise DomainError(_("This announcement is already being sent or was cancelled."))
    c.status, c.scheduled_at, c.updated_at = "scheduled", now, now
    job_queue.enqueue("helpdesk.campaigns.jobs.send_campaign", c.id)
    db.session.flush()
    return c


def cancel(campaign_id, actor_id, *, now=None):
    """Stop a scheduled announcement (or the rest of one being sent); a draft stays a draft."""
    now = now or utcnow()
    c = get(campaign_id)
    if c.status not in CANCELLABLE:
        raise DomainError(_("Only a scheduled announcement can be cancelled."))
    c.status, c.updated_at = "cancelled", now
    c.finished_at = c.finished_at or (now if c.started_at else None)
    db.session.flush()
    return c


def _start(c, now):
    """scheduled → sending, once (a conditional UPDATE: two sweeps at once start it once)."""
    total = count(c)
    res = db.session.execute(sql_update(Campaign).where(Campaign.id == c.id, Campaign.status == "scheduled")
                             .values(status="sending", started_at=now, recipients_total=total, updated_at=now)
                             .execution_options(synchronize_session=False))
    db.session.refresh(c)
    return res.rowcount


def run_batch(campaign_id, now=None, limit=None):
    """Queue the mails of up to `limit` recipients who have no delivery of this campaign yet. Each goes
    through delivery.claim (unique key per campaign and recipient) + delivery.send, so a second run,
    or a second worker at once, queues nothing twice. When no one is left the campaign is "sent".
    Returns (mails queued, done)."""
    now = now or utcnow()
    limit = limit or current_app.config.get("ANNOUNCE_BATCH", 200)
    c = db.session.get(Campaign, campaign_id)
    if c is None or c.status not in ("scheduled", "sending"):
        return 0, True
    if c.status == "scheduled":
        if c.scheduled_at is None or c.scheduled_at > now:
            return 0, False
        _start(c, now)
    kind = _kind(c)
    id_col = segments.id_column(c.audience)
    delivery_col = AnnouncementDelivery.lead_id if kind == "lead" else AnnouncementDelivery.customer_id
    done_already = select(AnnouncementDelivery.id).where(AnnouncementDelivery.campaign_id == c.id,
                                                         delivery_col == id_col)
    rows = db.session.execute(recipients_query(c).where(~done_already.exists()).limit(limit)).all()
    queued = 0
    prefix = "l" if kind == "lead" else "c"
    for sid, email, language, name in rows:
        did = delivery.claim(f"k{c.id}:{prefix}{sid}", now=now, campaign_id=c.id, kind="campaign",
                             email=email, **({"lead_id": sid} if kind == "lead" else {"customer_id": sid}))
        if did is None:
            continue  # another sweep has it
        loc = locale_for(c, language)
        delivery.send(did, MAIL_KIND, topic=c.topic, kind=kind, sid=sid, to=email, locale=loc,
                      subject=subject_for(c, loc), context=mail_context(c, name), now=now)
        queued += 1
    finished = len(rows) < limit
    if finished:
        db.session.execute(sql_update(Campaign).where(Campaign.id == c.id, Campaign.status == "sending")
                           .values(status="sent", finished_at=now, updated_at=now)
                           .execution_options(synchronize_session=False))
    db.session.flush()
    return queued, finished


def due_ids(now, limit=100):
    """Campaigns being sent, then the scheduled ones that are due (index status, scheduled_at)."""
    sending = db.session.execute(select(Campaign.id).where(Campaign.status == "sending")
                                 .order_by(Campaign.scheduled_at, Campaign.id).limit(limit)).scalars().all()
    due = db.session.execute(select(Campaign.id).where(Campaign.status == "scheduled", Campaign.scheduled_at <= now)
                             .order_by(Campaign.scheduled_at, Campaign.id).limit(limit)).scalars().all()
    return list(sending) + [i for i in due if i not in sending]


# ---------------------------------------------------------------- report

COUNTS = ("recipients", "claimed", "queued", "sent", "failed", "held", "skipped", "bounced", "unsubscribed")


def report(campaign_ids):
    """{campaign_id: counts} (see COUNTS) of these campaigns' deliveries."""
    ids = list(campaign_ids)
    out = {i: dict.fromkeys(COUNTS, 0) for i in ids}
    if not ids:
        return out
    D, M = AnnouncementDelivery, OutboundMail

    def n(cond):
        return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)

    rows = db.session.execute(
        select(D.campaign_id, func.count(D.id), n(M.status == "queued"), n(M.status == "sent"),
               n(M.status == "failed"), n(M.status == "held"), n((D.status == "skipped") | (M.status == "skipped")),
               n(D.bounced_at.is_not(None)))
        .outerjoin(M, M.id == D.outbound_id).where(D.campaign_id.in_(ids)).group_by(D.campaign_id)).all()
    for cid, claimed, queued, sent, failed, held, skipped, bounced in rows:
        out[cid].update(claimed=claimed, queued=queued, sent=sent, failed=failed, held=held, skipped=skipped,
                        bounced=bounced)
    unsub = db.session.execute(
        select(D.campaign_id, func.count(func.distinct(ConsentEvent.id))).join(ConsentEvent, ConsentEvent.delivery_id == D.id)
        .where(D.campaign_id.in_(ids), ConsentEvent.action == "unsubscribe").group_by(D.campaign_id)).all()
    for cid, k in unsub:
        out[cid]["unsubscribed"] = k
    for cid, total in db.session.execute(select(Campaign.id, Campaign.recipients_total).where(Campaign.id.in_(ids))):
        out[cid]["recipients"] = total
    return out
