"""`flask mail fetch` and `flask mail import`: one JSON line per message, then a JSON summary line."""
import gc
import json
import mailbox as mbox_lib
import os
import sys
from collections import Counter
from pathlib import Path

import click
from flask.cli import AppGroup

from ..extensions import db

mail_cli = AppGroup("mail", help="The email channel: fetch mailboxes, import old mail.")


def _printer(counts):
    def emit(outcome):
        counts[outcome.action] += 1
        click.echo(outcome.as_json())
    return emit


def _summary(counts, **extra):
    data = {"summary": True, "messages": sum(counts.values()), **{k: counts.get(k, 0) for k in
            ("created", "appended", "ignored", "duplicate", "quarantined")}, **extra}
    click.echo(json.dumps(data))


def settle_gc():
    """Before a long run of mail: the objects of the start-up (the app, its models, SQLAlchemy's
    compiled caches: hundreds of thousands) are moved out of the garbage collector's generations
    (gc.freeze), and its young generation is collected less often. A batch allocates many
    short-lived objects, and each full collection walked all of those start-up objects again:
    0.7 s of a 2,000-message `flask mail fetch --once` on the development machine, 0.1 s after.
    (The parse pool's workers are forked after this, and share those pages undisturbed.)"""
    if gc.get_freeze_count():  # once per process: what is frozen stays out of the collector's reach
        return
    gc.freeze()
    gc.set_threshold(5000, 10, 10)


@mail_cli.command("fetch")
@click.option("--mailbox", "name", default=None, help="Only this mailbox (by name).")
@click.option("--once", is_flag=True, help="Drain the mailboxes once and exit (else: the IDLE loop).")
def fetch_command(name, once):
    """Fetch configured mailboxes (or the IMAP_* default) and turn mail into tickets."""
    from . import fetch, services

    if not services.mailbox_configs(name):
        raise click.ClickException(f"no mailbox named {name!r}" if name else
                                   "no mailbox is configured (admin → Mailboxes, or IMAP_HOST)")
    settle_gc()
    if not once:
        from workers.mail_idle import run_idle

        run_idle(name=name)
        return
    counts = Counter()
    errors = []
    fetch.fetch_all(name, on_outcome=_printer(counts), errors=errors)
    _summary(counts, mailbox_errors=errors)


def _iter_sources(paths):
    """(source label, raw bytes) for .eml files, folders of them, mbox files and Maildir folders."""
    for p in paths:
        path = Path(p)
        if path.is_dir() and (path / "cur").is_dir() and (path / "new").is_dir():
            md = mbox_lib.Maildir(str(path), factory=None, create=False)
            for key in sorted(md.keys()):
                yield f"{path}#{key}", md.get_bytes(key)
        elif path.is_dir():
            for f in sorted(path.rglob("*")):
                if f.is_file() and not f.name.startswith("."):
                    yield from _iter_file(f)
        elif path.is_file():
            yield from _iter_file(path)
        else:
            raise click.ClickException(f"{p}: no such file or folder")


def _iter_file(f):
    with open(f, "rb") as fh:
        head = fh.read(5)
    if head == b"From " and f.suffix.lower() not in (".eml", ".box", ".msg"):
        box = mbox_lib.mbox(str(f), factory=None, create=False)
        for i, key in enumerate(box.keys()):
            yield f"{f}#{i + 1}", box.get_bytes(key, from_=False)
    else:
        yield str(f), f.read_bytes()


@mail_cli.command("import")
@click.argument("paths", nargs=-1, required=True)
@click.option("--mailbox", "name", default=None, help="File the tickets under this mailbox's queue.")
@click.option("--batch", default=200, show_default=True, help="Messages per commit.")
def import_command(paths, name, batch):
    """Import .eml files, folders of them, mbox files and Maildir folders (from an old system)."""
    from . import services
    from .models import Mailbox

    mailbox_id = None
    if name:
        mb = db.session.execute(db.select(Mailbox).where(Mailbox.name == name)).scalar_one_or_none()
        if mb is None:
            raise click.ClickException(f"no mailbox named {name!r}")
        mailbox_id = mb.id
    sources = list(_iter_sources(paths))  # labels and bytes; a move from an old system fits in memory
    settle_gc()
    counts = Counter()
    emit = _printer(counts)
    show_bar = sys.stderr.isatty()
    with services.ParsePool() as pool, click.progressbar(length=len(sources), label="importing",
                                                         file=sys.stderr if show_bar else open(os.devnull, "w"),
                                                         ) as bar:
        for i in range(0, len(sources), batch):
            chunk = sources[i:i + batch]
            ids = [services.store_file(raw, label, mailbox_id) for label, raw in chunk]
            db.session.commit()
            for outcome in services.process_pending(ids=ids, pool=pool):
                emit(outcome)
            bar.update(len(chunk))
    _summary(counts)
