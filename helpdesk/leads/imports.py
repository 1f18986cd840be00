"""CSV imports of leads: upload → preview → start → the background job → the report.

- `create_import(...)`: marketing (or an admin) uploads a file; it is decoded and parsed at once
  (a file without a usable header, too big or too long is refused with the reason) and stored as
  text in a LeadImport in status "preview", with the import's source, campaign and owner (each row's
  own source and campaign columns win over them).
- `preview(import_id)`: what every row would become — a new lead, a merge into an existing lead
  (by email, else by phone), a merge into an earlier row of the same file, or rejected with the
  reasons — with the totals, and the first PREVIEW_ROWS rows in detail. Nothing is written.
- `start(import_id, actor_id)`: status "queued"; the job is enqueued through the outbox (pushed
  to RQ after the commit).
- `run_import(import_id)`: the job. Rows are captured one by one through `services.capture`
  (channel "csv_import": dedupe and merge as for every channel), BATCH rows per transaction: a
  batch commits its leads together with the import's counters and report entries, so a job that
  dies midway loses at most its open batch, which the next run (RQ retry, or the admin's requeue)
  redoes from `processed`: never a duplicate, never a row counted twice. A done import is left
  alone. Each batch locks the import row (FOR UPDATE on PostgreSQL), so two workers running the
  same import take turns instead of doing a batch twice. A row whose capture raises a DomainError
  is "rejected" with the message as reason, inside a savepoint: the other rows are unaffected.
"""
from sqlalchemy import select

from ..auth.i18n import _
from ..auth.models import User, UserRole
from ..errors import Conflict, DomainError, NotFound
from ..extensions import db
from ..jobs import enqueue
from ..timeutil import utcnow
from . import importer, services
from .models import LEAD_SOURCES, Lead, LeadImport

PREVIEW_ROWS = 20
BATCH = 100
RESULTS = ("created", "merged", "rejected")
_IN_CHUNK = 500


# ---------------------------------------------------------------- who and what

def marketing_agents():
    """Active marketing agents (who can own the imported leads), by name."""
    return db.session.execute(select(User).join(UserRole, UserRole.user_id == User.id)
                              .where(UserRole.role == "marketing", User.active.is_(True))
                              .order_by(User.name, User.id)).scalars().all()


def get_import(import_id, actor_id=None):
    """The import (NotFound when missing); with actor_id, only for marketing and admins."""
    if actor_id is not None:
        services.manager(actor_id)
    imp = db.session.get(LeadImport, import_id)
    if imp is None:
        raise NotFound(_("Import not found."))
    return imp


def recent_imports(actor_id, limit=20):
    services.manager(actor_id)
    return db.session.execute(select(LeadImport).order_by(LeadImport.id.desc()).limit(limit)).scalars().all()


# ---------------------------------------------------------------- upload

def create_import(actor_id, filename, data, source="other", campaign=None, owner_id=None, now=None):
    """A new import in status "preview" (see the module's docstring). `data`: the uploaded bytes."""
    user = services.manager(actor_id)
    if source not in LEAD_SOURCES:
        raise DomainError(_("Unknown source."), field="source")
    owner = services.owner_or_none(owner_id)
    if not data:
        raise importer.ImportFileError(_("Choose a CSV file."), field="file")
    text = importer.decode(data)
    parsed = importer.parse(text)
    if not parsed.rows:
        raise importer.ImportFileError(_("The file has a header but no rows."), field="file")
    now = now or utcnow()
    imp = LeadImport(created_at=now, created_by_id=user.id, filename=(filename or "leads.csv")[-255:], content=text,
                     source=source, campaign=(campaign or "").strip()[:80] or None, owner_id=owner,
                     status="preview", total=parsed.total, processed=0, created=0, merged=0, rejected=0, report=[])
    db.session.add(imp)
    db.session.flush()
    return imp


# ---------------------------------------------------------------- preview

def _existing_by(column, values):
    """{value: lead id} of the leads whose `column` is one of `values` (chunked IN lists)."""
    values = sorted(set(v for v in values if v))
    out = {}
    for i in range(0, len(values), _IN_CHUNK):
        chunk = values[i:i + _IN_CHUNK]
        for value, lead_id in db.session.execute(select(column, Lead.id).where(column.in_(chunk))):
            out[value] = lead_id
    return out


def outcomes(rows):
    """What each parsed row would become now: [{"row", "outcome": new|merge|rejected, "lead_id",
    "same_as_row", "problems"}] in file order. A row matches an existing lead by email first, then
    by phone (as capture does), else an earlier good row of the file (which would be created first)."""
    by_email = _existing_by(Lead.email, [r.email for r in rows if r.ok])
    by_phone = _existing_by(Lead.phone, [r.phone for r in rows if r.ok])
    seen_email, seen_phone = {}, {}
    out = []
    for row in rows:
        entry = {"row": row, "outcome": "rejected", "lead_id": None, "same_as_row": None, "problems": row.problems}
        if row.ok:
            lead_id = (row.email and by_email.get(row.email)) or (row.phone and by_phone.get(row.phone))
            earlier = (row.email and seen_email.get(row.email)) or (row.phone and seen_phone.get(row.phone))
            if lead_id:
                entry.update(outcome="merge", lead_id=lead_id)
            elif earlier:
                entry.update(outcome="merge", same_as_row=earlier)
            else:
                entry["outcome"] = "new"
            first = earlier or row.number
            if row.email:
                seen_email.setdefault(row.email, first)
            if row.phone:
                seen_phone.setdefault(row.phone, first)
        out.append(entry)
    return out


def preview(import_id, actor_id=None, limit=PREVIEW_ROWS):
    """{"import", "rows": the first `limit` outcomes, "totals": {"total", "new", "merge", "rejected"},
    "delimiter", "columns": [(header, field or None)]}."""
    imp = get_import(import_id, actor_id)
    parsed = importer.parse(imp.content)
    every = outcomes(parsed.rows)
    totals = {"total": len(every), "new": 0, "merge": 0, "rejected": 0}
    for entry in every:
        totals[entry["outcome"]] += 1
    columns = [(h, parsed.columns.get(i)) for i, h in enumerate(parsed.headers)]
    return {"import": imp, "rows": every[:limit], "totals": totals, "delimiter": parsed.delimiter,
            "columns": columns}


# ---------------------------------------------------------------- start and run

def start(import_id, actor_id, now=None):
    """The import goes to the queue (once: a started import is refused)."""
    services.manager(actor_id)
    imp = get_import(import_id)
    if imp.status != "preview":
        raise Conflict(_("This import has already been started."))
    imp.status = "queued"
    imp.error = None
    enqueue("helpdesk.leads.imports.run_import", imp.id, queue="default")
    return imp


def _lock(import_id):
    """The import row, locked for the batch (PostgreSQL; SQLite's writer lock serialises anyway)."""
    db.session.expire_all()
    return db.session.execute(select(LeadImport).where(LeadImport.id == import_id)
                              .with_for_update()).scalar_one_or_none()


def _entry(row_number, result, lead_id=None, reason=None, problems=None):
    entry = {"row": row_number, "result": result, "lead_id": lead_id, "reason": reason}
    if problems:
        entry["problems"] = [p.as_dict() for p in problems]
    return entry


def _capture_row(imp, row, owner_id, now):
    """(result, lead_id, reason) for one good row, inside a savepoint."""
    try:
        with db.session.begin_nested():
            fields = row.capture_fields()
            fields.update(source=row.source or imp.source, campaign=row.campaign or imp.campaign, owner_id=owner_id,
                          actor_id=imp.created_by_id, channel="csv_import", now=now)
            lead, created = services.capture(**fields)
            return ("created" if created else "merged"), lead.id, None
    except DomainError as exc:
        return "rejected", None, exc.message


def run_batch(import_id, size=BATCH, now=None, rows=None):
    """Capture the next `size` rows of the import and commit them with its counters. Returns True
    while rows remain (False when the import is done, or not runnable). `rows`: the parsed rows of
    the import's file, when the caller already has them (the file is parsed once per run)."""
    imp = _lock(import_id)
    if imp is None or imp.status not in ("queued", "running", "failed"):
        db.session.rollback()
        return False
    now = now or utcnow()
    if rows is None:
        rows = importer.parse(imp.content).rows
    if imp.status != "running":
        imp.status = "running"
        imp.started_at = imp.started_at or now
        imp.error = None
    try:
        owner_id = services.owner_or_none(imp.owner_id)
    except DomainError:  # the owner left marketing since the upload: the leads get no owner
        owner_id = None
    imp.total = len(rows)
    todo = rows[imp.processed:imp.processed + size]
    entries = []
    counts = dict.fromkeys(RESULTS, 0)
    for row in todo:
        if not row.ok:
            reason = "; ".join(importer.problem_text(p.code, p.value) for p in row.problems)
            entry = _entry(row.number, "rejected", reason=reason, problems=row.problems)
        else:
            result, lead_id, reason = _capture_row(imp, row, owner_id, now)
            entry = _entry(row.number, result, lead_id, reason)
        counts[entry["result"]] += 1
        entries.append(entry)
    imp.processed += len(todo)
    imp.created += counts["created"]
    imp.merged += counts["merged"]
    imp.rejected += counts["rejected"]
    imp.report = list(imp.report or []) + entries
    more = imp.processed < len(rows)
    if not more:
        imp.status = "done"
        imp.finished_at = utcnow() if now is None else now
    db.session.commit()
    return more


def run_import(import_id, batch=BATCH, max_batches=None):
    """The job (see the module's docstring): idempotent, resumes from `processed`. `max_batches`
    stops early (tests use it to play a job killed midway)."""
    done = 0
    rows = None
    while max_batches is None or done < max_batches:
        try:
            if rows is None:
                imp = db.session.get(LeadImport, import_id)
                if imp is None or imp.status not in ("queued", "running", "failed"):
                    return
                rows = importer.parse(imp.content).rows
            more = run_batch(import_id, batch, rows=rows)
        except Exception as exc:
            db.session.rollback()
            imp = db.session.get(LeadImport, import_id)
            if imp is not None and imp.status != "done":
                imp.status = "failed"
                imp.error = f"{type(exc).__name__}: {exc}"[:2000]
                db.session.commit()
            raise
        done += 1
        if not more:
            break


# ---------------------------------------------------------------- the report

def status_of(imp):
    """The numbers the progress bar polls."""
    percent = int(100 * imp.processed / imp.total) if imp.total else (100 if imp.status == "done" else 0)
    return {"id": imp.id, "status": imp.status, "total": imp.total, "processed": imp.processed,
            "created": imp.created, "merged": imp.merged, "rejected": imp.rejected, "percent": percent,
            "done": imp.status == "done", "failed": imp.status == "failed"}


def reason_text(entry):
    """A report entry's reason in the reader's language (the parse problems are stored as codes)."""
    if entry.get("problems"):
        return "; ".join(importer.problem_text(p.get("code"), p.get("value")) for p in entry["problems"])
    return entry.get("reason") or ""


def report_rows(imp, result=None):
    return [e for e in (imp.report or []) if result is None or e.get("result") == result]


CSV_HEADER = ["row", "result", "lead_id", "reason"]


def report_csv_rows(imp):
    from ..warranty.report import safe_cell

    return [CSV_HEADER] + [[safe_cell(v) for v in (e.get("row"), e.get("result"), e.get("lead_id"), reason_text(e))]
                           for e in imp.report or []]


def leads_by_id(ids):
    ids = sorted(set(i for i in ids if i))
    if not ids:
        return {}
    return {lead.id: lead for lead in db.session.execute(select(Lead).where(Lead.id.in_(ids))).scalars()}

