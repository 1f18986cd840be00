"""Inbound mail throughput: N realistic support mails from a private Dovecot to tickets.

    python bench/ingest.py --messages 2000                              # a fresh SQLite file
    python bench/ingest.py --messages 2000 \\
        --database-url postgresql://postgres@127.0.0.1:5432/bench_ingest  # schema dropped and migrated

1. Generates N support mails, deterministic for a seed: plain and HTML, Indonesian names, UTF-8 and
   ISO-8859-1 headers and bodies, about 10 % with attachments of 10-500 KB, 20 % replies (threaded
   by In-Reply-To, by References only, or by a [#N] subject tag only) and 3 % auto-replies and
   bounces.
2. Migrates a fresh database (`flask db upgrade`), with --existing N loads N tickets into it (with
   their customers and the queues' agents), creates a queue and a Mailbox row for a private
   Dovecot user (tests/dovecot.py) and APPENDs every mail.
3. Measures the raw ceilings: IMAP fetch only (MailboxConnection.fetch_raw over every UID) and
   parse only (helpdesk.mail.parser.parse on one core and on every core).
4. Writes the project's bytecode (`make bytecode`), then times the whole `flask mail fetch --once`
   process (wall clock, from start to exit) and checks
   that every message became what it should: the created, appended and ignored counts and the
   ticket of every reply (`threading_correct=1`).
5. Starts the IDLE worker (`python -m workers.mail_idle`), APPENDs mails one at a time and measures
   the time from APPEND to processed row by polling the database.

Output is `name=value` lines on stdout (progress on stderr). Exit status 1 when the check fails.
"""
import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from email import policy
from email.header import Header
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, select, text  # noqa: E402

from bench.web_latency import _ensure_pg_database, percentile  # noqa: E402
from config import _normalise_db_url  # noqa: E402

FIRST_TICKET_NUMBER = 1001  # a fresh database numbers tickets from here, in creation order
# (--existing N: the desk already holds N tickets, numbered from 1001, and the mail's from 1001 + N)
SECRET = "bench-ingest-secret"
SUPPORT = "support@helpdesk.test"
PASSWORD_ENV = "BENCH_IMAP_PASSWORD"


def log(msg):
    print(f"# {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the mails

FIRST = ["Budi", "Siti", "Agus", "Dewi", "Rina", "Andi", "Wahyu", "Putri", "Made", "Ketut", "Nyoman", "Yusuf",
         "Fitri", "Eko", "Sri", "Joko", "Ayu", "Rizky", "Indah", "Hendra", "Lestari", "Bambang", "Dian", "Teguh",
         "Ratna", "Gede", "Aisyah", "Fajar", "Nur", "Kadek", "Wayan", "Yohanes", "Maria", "Stefanus", "Lina"]
LAST = ["Santoso", "Wijaya", "Kusuma", "Saputra", "Hidayat", "Pratama", "Siregar", "Nasution", "Simanjuntak",
        "Wibowo", "Gunawan", "Setiawan", "Halim", "Tanjung", "Lubis", "Harahap", "Sitompul", "Purnomo",
        "Susanto", "Hakim", "Sinaga", "Panjaitan", "Manurung", "Rahayu", "Kurniawan"]
# Latin-1 names (mail from clients that still write ISO-8859-1)
ACCENTED = ["André Siregar", "Dédé Kurniawan", "René Halim", "Zoë Tanjung", "Désirée Wijaya", "José Pangaribuan",
            "Inès Rahayu", "Noël Simatupang", "Ibu Müller", "Françoise Lubis"]
DOMAINS = ["gmail.com", "yahoo.co.id", "pelanggan.co.id", "tokoonline.id", "cvmajujaya.co.id", "ptsinarabadi.com",
           "outlook.com", "telkom.net.id", "kampus.ac.id", "rumahsakit-sehat.co.id"]
TOPICS = [
    ("Website tidak bisa dibuka", "Website kami {site} tidak bisa dibuka sejak pagi, muncul error 503."),
    ("Email kantor tidak terkirim", "Email dari alamat kantor tidak terkirim ke pelanggan, selalu kembali."),
    ("Tagihan bulan ini salah", "Tagihan nomor INV-2026-{n:05d} tertulis Rp {amount}, padahal paket kami lebih murah."),
    ("Permintaan reset password", "Saya lupa password panel hosting untuk akun {site}. Mohon dibantu reset."),
    ("Domain akan expired", "Domain {site} akan expired minggu depan. Bagaimana cara perpanjangnya?"),
    ("Upgrade paket hosting", "Kami ingin upgrade dari paket Basic ke Business untuk {site}."),
    ("Server lambat sekali", "Sejak kemarin server sangat lambat, waktu muat halaman lebih dari 10 detik."),
    ("Sertifikat SSL error", "Browser menampilkan peringatan sertifikat tidak valid di {site}."),
    ("Cannot login to control panel", "I cannot log in to the control panel for {site}, it says invalid token."),
    ("Pertanyaan tentang backup", "Apakah backup harian termasuk database? Kami perlu restore data tanggal {day}."),
    ("Refund request", "We were charged twice for order ORD-{n:06d}. Please refund the duplicate payment."),
    ("Migrasi dari provider lama", "Kami ingin memindahkan {site} dari provider lama, mohon panduannya."),
]
SENTENCES = [
    "Kami sudah mencoba membersihkan cache browser tetapi masalahnya tetap sama.",
    "Mohon segera dibantu karena ini mengganggu operasional toko online kami.",
    "Terlampir tangkapan layar dari pesan error yang muncul.",
    "Masalah ini terjadi di semua perangkat, baik laptop maupun ponsel.",
    "Tim kami bekerja dari jam 08.00 sampai 17.00 WIB, silakan hubungi di jam tersebut.",
    "Sebelumnya semuanya berjalan normal sampai kemarin sore.",
    "Apakah ada gangguan di data center Jakarta?",
    "Kami pelanggan sejak 2019 dan baru kali ini mengalami hal seperti ini.",
    "Please let me know if you need any further information from our side.",
    "Nomor pelanggan kami tercantum di bawah tanda tangan.",
    "Kami sudah restart router dan modem, hasilnya sama saja.",
    "Kalau memungkinkan, mohon dijadwalkan perbaikan di luar jam kerja.",
]
LATIN1_SENTENCES = [
    "Suhu ruang server mencapai 45°C kemarin siang.",
    "Biaya tambahan ± Rp 250.000 sudah kami transfer.",
    "Kami menunggu ½ hari tanpa kabar; mohon kepastiannya «segera».",
    "Dokumen untuk café kami sudah dikirim ulang.",
]
SIGNATURES = [
    "Salam,\n{name}\n{company}\nTelp. 0812-{a:04d}-{b:04d}",
    "Terima kasih,\n{name}",
    "Regards,\n{name}\n{company}",
    "Hormat kami,\n{name}\nStaf IT, {company}\n\nDikirim dari iPhone saya",
]
COMPANIES = ["CV Maju Jaya", "PT Sinar Abadi", "Toko Berkah", "Klinik Sehat Sentosa", "PT Nusantara Digital",
             "Koperasi Sejahtera", "UD Sumber Rejeki", "Yayasan Pendidikan Harapan"]
ATTACHMENT_TYPES = [("faktur_{n}.pdf", "application", "pdf"), ("screenshot error {n}.png", "image", "png"),
                    ("foto_{n}.jpg", "image", "jpeg"), ("Laporan Keuangan Q3 — {n}.xlsx", "application",
                    "vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
                    ("surat_permohonan_{n}.docx", "application",
                     "vnd.openxmlformats-officedocument.wordprocessingml.document"),
                    ("data_pelanggan_{n}.csv", "text", "csv"), ("arsip_{n}.zip", "application", "zip")]


class Generated:
    """One generated mail and what it must become."""

    __slots__ = ("index", "raw", "message_id", "kind", "rule", "root", "rank", "subject")

    def __init__(self, index, raw, message_id, kind, rule=None, root=None, rank=None, subject=None):
        self.index, self.raw, self.message_id, self.kind = index, raw, message_id, kind
        self.rule, self.root, self.rank, self.subject = rule, root, rank, subject


class Thread:
    def __init__(self, root, rank, name, addr, subject, charset, body, first_number=FIRST_TICKET_NUMBER):
        self.root, self.rank, self.name, self.addr, self.subject = root, rank, name, addr, subject
        self.first_number = first_number
        self.charset, self.body = charset, body
        self.ids = []  # Message-IDs of the thread so far, oldest first (without <>)

    @property
    def number(self):
        return self.first_number + self.rank


def _addr_header(name, addr, charset):
    return formataddr((name, addr), charset=charset)


def _encoded(value, charset):
    """A header value as RFC 2047 encoded-words when it is not ASCII."""
    try:
        value.encode("ascii")
        return value
    except UnicodeEncodeError:
        return Header(value, charset).encode(linesep="\r\n")


class MailFactory:
    """Deterministic support mail: `make(n)` returns N Generated mails in APPEND order."""

    def __init__(self, seed, first_number=FIRST_TICKET_NUMBER):
        self.rng = random.Random(seed)
        self.seed = seed
        self.first_number = first_number
        self.t0 = datetime(2026, 11, 28, 1, 0, tzinfo=timezone.utc)
        self.customers = []

    # -------------------------------------------------------- pieces

    def _customer(self, latin1):
        rng = self.rng
        if self.customers and rng.random() < 0.25:  # a returning customer
            return rng.choice(self.customers)
        name = rng.choice(ACCENTED) if latin1 else f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        local = "".join(c for c in name.lower().replace(" ", ".") if c.isascii() and (c.isalnum() or c == "."))
        addr = f"{local}{rng.randrange(1, 999)}@{rng.choice(DOMAINS)}"
        cust = (name, addr)
        self.customers.append(cust)
        return cust

    def _msgid(self, index, domain):
        return f"{index:05d}.{self.rng.getrandbits(48):012x}.{self.seed}@{domain}"

    def _body(self, name, latin1, fmt):
        rng = self.rng
        parts = [f"Selamat {rng.choice(['pagi', 'siang', 'sore'])},", "", fmt]
        for _ in range(rng.randint(1, 5)):
            para = " ".join(rng.choice(SENTENCES) for _ in range(rng.randint(2, 6)))
            if latin1 and rng.random() < 0.6:
                para += " " + rng.choice(LATIN1_SENTENCES)
            parts += ["", para]
        parts += ["", rng.choice(SIGNATURES).format(name=name, company=rng.choice(COMPANIES),
                                                     a=rng.randrange(10000), b=rng.randrange(10000))]
        return "\n".join(parts)

    @staticmethod
    def _html(text_body):
        paras = "".join(f"<p>{p.replace(chr(10), '<br>')}</p>\n" for p in text_body.split("\n\n"))
        return ("<html><head><meta http-equiv=\"Content-Type\" content=\"text/html\"><style>p{margin:0 0 8px}"
                "</style></head><body><div style=\"font-family:Arial,sans-serif;font-size:13px\">\n"
                f"{paras}</div></body></html>\n")

    def _attachment(self, index):
        rng = self.rng
        name, maintype, subtype = rng.choice(ATTACHMENT_TYPES)
        size = int(10 * 1024 * 50 ** rng.random())  # 10-500 KB, log-uniform: most files are small
        if maintype == "text":
            rows = ["nama;email;kota"] + [f"{rng.choice(FIRST)} {rng.choice(LAST)};p{i}@contoh.id;Jakarta"
                                           for i in range(size // 40)]
            data = "\n".join(rows).encode()
        else:
            data = rng.randbytes(size)
        return name.format(n=index), maintype, subtype, data

    def _build(self, *, index, frm, subject, body, charset, html_mode, message_id, date, in_reply_to=None,
               references=None, extra=(), attach=False, cc=None):
        """Raw bytes (CRLF). html_mode: "text", "alt" (text + HTML) or "html" (HTML only)."""
        part = EmailMessage(policy=policy.SMTP)
        cte = "quoted-printable" if charset == "iso-8859-1" or self.rng.random() < 0.5 else "8bit"
        if html_mode == "html":
            part.set_content(self._html(body), subtype="html", charset=charset, cte=cte)
        else:
            part.set_content(body, charset=charset, cte=cte)
            if html_mode == "alt":
                part.add_alternative(self._html(body), subtype="html", charset=charset, cte=cte)
        if attach:
            name, maintype, subtype, data = self._attachment(index)
            if maintype == "text":
                part.add_attachment(data.decode(), subtype=subtype, filename=name)
            else:
                part.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
        head = [f"From: {frm}", f"To: {SUPPORT}"]
        if cc:
            head.append(f"Cc: {cc}")
        head += [f"Subject: {_encoded(subject, charset)}", f"Date: {format_datetime(date)}",
                 f"Message-ID: <{message_id}>"]
        if in_reply_to:
            head.append(f"In-Reply-To: <{in_reply_to}>")
        if references:
            head.append("References: " + "\r\n ".join(f"<{r}>" for r in references))
        head += [f"{k}: {v}" for k, v in extra]
        head.append("X-Mailer: " + self.rng.choice(["Microsoft Outlook 16.0", "Apple Mail (2.3774)",
                                                      "Thunderbird 115.5", "Roundcube Webmail/1.6.5"]))
        return ("\r\n".join(head) + "\r\n").encode("ascii") + part.as_bytes(policy=policy.SMTP)

    # -------------------------------------------------------- kinds

    def _new(self, index, rank, date):
        rng = self.rng
        latin1 = rng.random() < 0.12
        charset = "iso-8859-1" if latin1 else "utf-8"
        name, addr = self._customer(latin1)
        topic, fmt = rng.choice(TOPICS)
        site = addr.split("@")[1] if rng.random() < 0.5 else f"toko{rng.randrange(1000)}.id"
        fmt = fmt.format(site=site, n=rng.randrange(100000), amount=f"{rng.randrange(100, 9000)}.000",
                         day=f"{rng.randint(1, 28)} November")
        subject = f"{topic} - {site}" if rng.random() < 0.5 else topic
        if latin1 and rng.random() < 0.5:
            subject += " «mohon bantuan»"
        elif not latin1 and rng.random() < 0.1:
            subject += " 🙏"
        body = self._body(name, latin1, fmt)
        html_mode = rng.choices(["text", "alt", "html"], [50, 40, 10])[0]
        mid = self._msgid(index, addr.split("@")[1])
        cc = None
        if rng.random() < 0.1:
            cc = f"{rng.choice(FIRST).lower()}@{addr.split('@')[1]}"
        raw = self._build(index=index, frm=_addr_header(name, addr, charset), subject=subject, body=body,
                          charset=charset, html_mode=html_mode, message_id=mid, date=date,
                          attach=rng.random() < 0.10, cc=cc)
        thread = Thread(index, rank, name, addr, subject, charset, body, self.first_number)
        thread.ids.append(mid)
        return Generated(index, raw, mid, "created", rule="new", root=index, rank=rank, subject=subject), thread

    def _reply(self, index, thread, date):
        rng = self.rng
        rule = rng.choices(["in_reply_to", "references", "subject_tag"], [55, 25, 20])[0]
        name, addr = thread.name, thread.addr
        if rule == "in_reply_to" and rng.random() < 0.1:  # a colleague answers in the thread
            name, addr = f"{rng.choice(FIRST)} {rng.choice(LAST)}", f"rekan{rng.randrange(99)}@{addr.split('@')[1]}"
        new_text = " ".join(rng.choice(SENTENCES) for _ in range(rng.randint(1, 4)))
        if rng.random() < 0.3:
            new_text = "Terima kasih, masalahnya sudah teratasi. " + new_text
        quoted = "\n".join("> " + line for line in thread.body.splitlines())
        when = format_datetime(date - timedelta(hours=2))
        lead = rng.choice([f"Pada {when}, Tim Support <{SUPPORT}> menulis:",
                           f"On {when}, Support <{SUPPORT}> wrote:"])
        body = f"{new_text}\n\n{name}\n\n{lead}\n{quoted}\n"
        if rule == "subject_tag":
            subject = f"{rng.choice(['Re', 'RE', 'Balas', 'Fwd'])}: [#{thread.number}] {thread.subject}"
            in_reply_to, refs = None, None
        else:
            subject = f"{rng.choice(['Re', 'RE', 'Balas', 'AW'])}: {thread.subject}"
            parent = thread.ids[-1] if rng.random() < 0.7 else rng.choice(thread.ids)
            refs = thread.ids[: thread.ids.index(parent) + 1]
            in_reply_to = parent if rule == "in_reply_to" else None
        mid = self._msgid(index, addr.split("@")[1])
        raw = self._build(index=index, frm=_addr_header(name, addr, thread.charset), subject=subject, body=body,
                          charset=thread.charset, html_mode=rng.choices(["text", "alt"], [60, 40])[0],
                          message_id=mid, date=date, in_reply_to=in_reply_to, references=refs,
                          attach=rng.random() < 0.10)
        thread.ids.append(mid)
        return Generated(index, raw, mid, "appended", rule=rule, root=thread.root, rank=thread.rank, subject=subject)

    def _auto_reply(self, index, thread, date):
        rng = self.rng
        style = rng.randrange(3)
        subject = [f"Out of Office: [#{thread.number}] {thread.subject}", f"Balasan otomatis: {thread.subject}",
                   "Automatic reply: Re: " + thread.subject][style]
        extra = [[("Auto-Submitted", "auto-replied")], [("X-Autoreply", "yes"), ("Precedence", "auto_reply")],
                 [("Auto-Submitted", "auto-replied"), ("X-Auto-Response-Suppress", "All")]][style]
        body = ("Terima kasih atas email Anda. Saya sedang cuti sampai tanggal 5 Desember dan akan membalas "
                "setelah kembali.\n\nI am out of the office until 5 December.")
        mid = self._msgid(index, thread.addr.split("@")[1])
        raw = self._build(index=index, frm=_addr_header(thread.name, thread.addr, "utf-8"), subject=subject,
                          body=body, charset="utf-8", html_mode="text", message_id=mid, date=date,
                          in_reply_to=f"ack{index}.t{thread.rank}@helpdesk.test", extra=extra)
        return Generated(index, raw, mid, "ignored", rule="auto_reply", subject=subject)

    def _bounce(self, index, thread, date):
        mx = thread.addr.split("@")[1]
        mid = self._msgid(index, "mx." + mx)
        status = self.rng.choice(["5.1.1", "5.2.2", "4.4.1"])
        boundary = f"BOUND{index}"
        raw = (
            f"Return-Path: <>\r\nFrom: Mail Delivery System <MAILER-DAEMON@mx.{mx}>\r\nTo: {SUPPORT}\r\n"
            f"Subject: Undelivered Mail Returned to Sender\r\nDate: {format_datetime(date)}\r\n"
            f"Message-ID: <{mid}>\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
            f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"\r\n\r\n'
            f"--{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
            f"This is the mail system at host mx.{mx}.\r\n\r\nI'm sorry to have to inform you that your message "
            f"could not be delivered to one or more recipients.\r\n\r\n<{thread.addr}>: host mx.{mx} said: "
            f"550 {status} User unknown\r\n\r\n"
            f"--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.{mx}\r\n\r\n"
            f"Final-Recipient: rfc822; {thread.addr}\r\nAction: {'failed' if status[0] == '5' else 'delayed'}\r\n"
            f"Status: {status}\r\n\r\n"
            f"--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n"
            f"Message-ID: <ack{index}.unknown@helpdesk.test>\r\nFrom: {SUPPORT}\r\nTo: {thread.addr}\r\n"
            f"Subject: [#{thread.number}] {thread.subject.encode('ascii', 'replace').decode()}\r\n\r\n"
            f"--{boundary}--\r\n").encode()
        return Generated(index, raw, mid, "ignored", rule="bounce", subject="Undelivered Mail Returned to Sender")

    def make(self, n, start=0, kinds=None):
        """n mails; kinds: a list of "new"/"reply"/"auto"/"bounce" (default: the realistic mix)."""
        rng = self.rng
        if kinds is None:
            n_noise = round(n * 0.03)
            n_bounce = n_noise // 3
            n_reply = round(n * 0.20)
            head = min(20, n)
            rest = ["reply"] * n_reply + ["auto"] * (n_noise - n_bounce) + ["bounce"] * n_bounce
            rest += ["new"] * (n - head - len(rest))
            rng.shuffle(rest)
            kinds = ["new"] * head + rest
        threads, out = [], []
        for i, kind in enumerate(kinds):
            index = start + i
            date = self.t0 + timedelta(seconds=37 * index)
            if kind == "new" or not threads:
                g, t = self._new(index, len(threads), date)
                threads.append(t)
            else:
                # replies and noise follow recent tickets more often than old ones
                t = threads[max(0, len(threads) - 1 - int(rng.expovariate(1 / 60)))]
                g = {"reply": self._reply, "auto": self._auto_reply, "bounce": self._bounce}[kind](index, t, date)
            out.append(g)
        return out


# ---------------------------------------------------------------- the database and the environment

def prepare_database(url, env):
    """Drop and recreate the PostgreSQL schema (like tests/conftest.py), then `flask db upgrade`."""
    if url.startswith("postgresql"):
        _ensure_pg_database(url)
        eng = create_engine(url)
        with eng.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        eng.dispose()
    proc = subprocess.run([sys.executable, "-m", "flask", "db", "upgrade"], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"flask db upgrade failed:\n{proc.stderr[-3000:]}")


def make_app(env):
    from config import DevConfig
    from helpdesk import create_app

    saved = dict(os.environ)
    os.environ.update(env)
    try:
        return create_app(DevConfig())
    finally:
        os.environ.clear()
        os.environ.update(saved)


def seed_existing(app, n):
    """N tickets in the desk before the mail arrives (the agent-page benchmark's bulk loader)."""
    from helpdesk.extensions import db
    from helpdesk.tickets import bulkseed

    t0 = time.perf_counter()
    with app.app_context():
        bulkseed.seed(n)
        db.session.remove()
    log(f"seeded {n} existing tickets in {time.perf_counter() - t0:.1f} s")


def setup_mailbox(app, user):
    from helpdesk.extensions import db
    from helpdesk.mail.models import Mailbox
    from helpdesk.tickets.models import Queue

    with app.app_context():
        q = db.session.execute(select(Queue).where(Queue.slug == "customer-support")).scalar_one_or_none()
        if q is None:  # (--existing: the seeded desk has it)
            q = Queue(slug="customer-support", name="Customer Support")
            db.session.add(q)
            db.session.flush()
        mb = Mailbox(name="support", host=user.host, port=user.port, security="plain", username=user.username,
                     password_env=PASSWORD_ENV, folder="INBOX", queue_id=q.id, from_address=SUPPORT)
        db.session.add(mb)
        db.session.commit()
        mailbox_id = mb.id
        db.session.remove()
    return mailbox_id


# ---------------------------------------------------------------- ceilings

def imap_ceiling(user, batch):
    """(msgs/s, raws) of fetch_raw over every UID, on one connection."""
    from helpdesk.mail.imap import ImapSettings, MailboxConnection

    settings = ImapSettings(host=user.host, port=user.port, security="plain", username=user.username,
                            password=user.password)
    t0 = time.perf_counter()
    raws = []
    with MailboxConnection(settings) as conn:
        conn.select("INBOX")
        uids = conn.uids_after(0)
        for chunk in conn.fetch_raw(uids, batch=batch):
            raws.extend(raw for _uid, raw in chunk)
    return len(raws) / (time.perf_counter() - t0), raws


def _parse(raw):
    from helpdesk.mail.parser import parse

    parse(raw)
    return 1


def parse_ceilings(raws):
    """(msgs/s on one core, msgs/s on every core) of helpdesk.mail.parser.parse."""
    import multiprocessing

    t0 = time.perf_counter()
    for raw in raws:
        _parse(raw)
    one = len(raws) / (time.perf_counter() - t0)
    workers = os.cpu_count() or 1
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        pool.map(_parse, raws[:workers * 4], chunksize=1)  # start the workers first
        t0 = time.perf_counter()
        pool.map(_parse, raws, chunksize=max(1, len(raws) // (workers * 8)))
        every = len(raws) / (time.perf_counter() - t0)
    return one, every


# ---------------------------------------------------------------- the end-to-end run

class TreeRss:
    """Samples the summed RSS of a process and its descendants (the parse pool) every 50 ms."""

    def __init__(self, pid):
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        try:
            import psutil
        except ImportError:
            return
        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._stop.is_set():
            try:
                procs = [root] + root.children(recursive=True)
                total = 0
                for p in procs:
                    try:
                        total += p.memory_info().rss
                    except psutil.Error:
                        pass
                self.peak = max(self.peak, total)
            except psutil.Error:
                return
            self._stop.wait(0.05)

    def stop(self):
        self._stop.set()
        self._thread.join(2)
        return self.peak


def write_bytecode():
    """The project's bytecode, as `make bytecode` writes it: the fetch then starts as it does after
    its first run, even where PYTHONDONTWRITEBYTECODE is set (as it is on the development machine)."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", "helpdesk", "workers", "config.py",
                    "wsgi.py"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def run_fetch(env, workdir, profile=None):
    """Run `flask mail fetch --once`: (seconds, summary dict, largest RSS MB, summed tree RSS MB, CPU seconds)."""
    import json

    cmd = [sys.executable, "-m", "flask", "mail", "fetch", "--once"]
    if profile:
        cmd = [sys.executable, "-m", "pyinstrument", "-o", profile, "-r", "text", "-m", "flask", "mail", "fetch",
               "--once"]
    out_path = workdir / "fetch.out"
    with open(out_path, "wb") as out, open(workdir / "fetch.err", "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=err)
        sampler = TreeRss(proc.pid)
        _pid, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    tree_peak = sampler.stop()
    if proc.returncode:
        sys.exit(f"flask mail fetch --once exited with {proc.returncode}:\n"
                 f"{(workdir / 'fetch.err').read_text(errors='replace')[-3000:]}")
    lines = out_path.read_text().splitlines()
    summary = json.loads(lines[-1]) if lines else {}
    # ru_maxrss is in KiB on Linux: the largest process of the tree (the fetcher or a parse worker)
    # CPU: user + system of the fetcher and its waited-for children (the parse pool)
    return seconds, summary, usage.ru_maxrss / 1024, tree_peak / (1024 * 1024), usage.ru_utime + usage.ru_stime


def verify(url, mails, first_number=FIRST_TICKET_NUMBER):
    """Every mail became what it should. Returns (ok, counts, problems)."""
    from collections import Counter

    eng = create_engine(url)
    with eng.connect() as conn:
        rows = conn.execute(text(
            "SELECT i.message_id, i.result, i.ticket_id, t.number FROM inbound_messages i "
            "LEFT JOIN tickets t ON t.id = i.ticket_id")).all()
    eng.dispose()
    by_mid = {}
    counts = Counter()
    for mid, result, ticket_id, number in rows:
        counts[result] += 1
        by_mid.setdefault(mid, []).append((result, ticket_id, number))
    problems = []
    root_ticket = {}
    for g in mails:
        got = by_mid.get(g.message_id, [])
        final = [r for r in got if r[0] != "duplicate"]
        if len(final) != 1:
            problems.append(f"{g.message_id}: {len(final)} results {got}")
            continue
        result, ticket_id, number = final[0]
        if result != g.kind:
            problems.append(f"{g.message_id} ({g.rule}): {result}, expected {g.kind}")
            continue
        if g.kind == "created":
            root_ticket[g.index] = ticket_id
            if number != first_number + g.rank:
                problems.append(f"{g.message_id}: ticket #{number}, expected #{first_number + g.rank}")
        elif g.kind == "appended" and ticket_id != root_ticket.get(g.root):
            problems.append(f"{g.message_id} ({g.rule}): on ticket #{number}, expected the ticket of mail {g.root}")
        elif g.kind == "ignored" and ticket_id is not None:
            problems.append(f"{g.message_id} ({g.rule}): ignored but on ticket #{number}")
    return not problems, counts, problems


# ---------------------------------------------------------------- IDLE latency

def idle_latency(env, url, user, mailbox_id, factory, start, count, gap, workdir):
    """APPEND `count` mails one at a time while the IDLE worker runs: APPEND -> processed seconds."""
    mails = factory.make(count, start=start, kinds=["new"] * count)
    err = open(workdir / "idle.err", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "workers.mail_idle"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    eng = create_engine(url)
    latencies = []
    try:
        _wait_idle_ready(env, mailbox_id, proc)
        appended = {}
        done = {}
        stop = threading.Event()

        def poll():
            while not stop.is_set():
                waiting = [m for m in appended if m not in done]
                if waiting:
                    with eng.connect() as conn:
                        found = conn.execute(text(
                            "SELECT message_id FROM inbound_messages WHERE result IN ('created', 'appended', 'ignored')"
                            " AND message_id IN :ids").bindparams(_expanding("ids")), {"ids": waiting}).scalars().all()
                    now = time.perf_counter()
                    for m in found:
                        done.setdefault(m, now)
                stop.wait(0.02)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        for g in mails:
            t = time.perf_counter()
            user.append("INBOX", g.raw)
            appended[g.message_id] = t
            time.sleep(gap)
        deadline = time.perf_counter() + 60
        while len(done) < len(mails) and time.perf_counter() < deadline:
            time.sleep(0.05)
        stop.set()
        poller.join(2)
        for m, t in appended.items():
            latencies.append(done[m] - t if m in done else float("inf"))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        err.close()
        eng.dispose()
    return latencies


def _expanding(name):
    from sqlalchemy import bindparam

    return bindparam(name, expanding=True)


def _wait_idle_ready(env, mailbox_id, proc, timeout=30):
    """Until the worker's heartbeat is in Redis (it is about to IDLE); without Redis, a few seconds."""
    deadline = time.perf_counter() + timeout
    redis = None
    if env.get("REDIS_URL"):
        from redis import Redis

        redis = Redis.from_url(env["REDIS_URL"])
    key = f"helpdesk:mail:idle:{mailbox_id}"
    if redis is not None:
        redis.delete(key)
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the IDLE worker exited with {proc.returncode}")
        if redis is not None:
            try:
                if redis.exists(key):
                    time.sleep(0.3)
                    return
            except Exception:  # noqa: BLE001 - Redis unavailable: fall back to waiting
                redis = None
        elif time.perf_counter() > deadline - timeout + 4:
            return
        time.sleep(0.05)


# ---------------------------------------------------------------- main

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--database-url", default=None,
                    help="PostgreSQL URL of a database of your own (its public schema is dropped); "
                         "default: a fresh SQLite file in a temporary directory")
    ap.add_argument("--redis-url", default=os.environ.get("REDIS_URL"),
                    help="Redis for the outbox and the IDLE heartbeat (default: $REDIS_URL; without it the "
                         "acknowledgements wait in the outbox)")
    ap.add_argument("--seed", type=int, default=20261128)
    ap.add_argument("--existing", type=int, default=0,
                    help="tickets already in the desk before the mail arrives (helpdesk.tickets.bulkseed: "
                         "customers, messages, the search index), so the ingest is measured on a desk in use")
    ap.add_argument("--batch", type=int, default=None, help="MAIL_FETCH_BATCH for the fetcher (default: its own)")
    ap.add_argument("--parse-workers", type=int, default=None,
                    help="MAIL_PARSE_WORKERS for the fetcher (default: its own)")
    ap.add_argument("--idle-messages", type=int, default=30, help="mails for the IDLE latency (0: skip)")
    ap.add_argument("--idle-gap", type=float, default=0.3, help="seconds between those APPENDs")
    ap.add_argument("--profile", default=None, help="run the fetcher under pyinstrument, text report to this file")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args(argv)

    from tests.dovecot import start_dovecot

    workdir = Path(tempfile.mkdtemp(prefix="helpdesk-bench-ingest-"))
    url = _normalise_db_url(args.database_url) if args.database_url else f"sqlite:///{workdir}/bench.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HELPDESK_CRASH", "IMAP_", "MAIL_"))}
    env.update({"DATABASE_URL": url, "HELPDESK_ENV": "dev", "FLASK_APP": "wsgi.py",
                "HELPDESK_INSTANCE": str(workdir / "instance"), "RAW_MAIL_DIR": str(workdir / "raw-mail"),
                "ATTACHMENT_DIR": str(workdir / "attachments"), "SECRET_KEY": SECRET,
                "MAIL_DEFAULT_SENDER": SUPPORT})
    if args.redis_url:
        env["REDIS_URL"] = args.redis_url
    else:
        env.pop("REDIS_URL", None)
    if args.batch:
        env["MAIL_FETCH_BATCH"] = str(args.batch)
    if args.parse_workers:
        env["MAIL_PARSE_WORKERS"] = str(args.parse_workers)
    server = None
    try:
        t0 = time.perf_counter()
        first_number = FIRST_TICKET_NUMBER + args.existing
        mails = MailFactory(args.seed, first_number).make(args.messages)
        size = sum(len(g.raw) for g in mails)
        log(f"generated {len(mails)} mails, {size / 1e6:.1f} MB, in {time.perf_counter() - t0:.1f} s")

        prepare_database(url, env)
        app = make_app(env)
        if args.existing:
            seed_existing(app, args.existing)
        server = start_dovecot()
        user = server.add_user()
        env[PASSWORD_ENV] = user.password
        mailbox_id = setup_mailbox(app, user)
        t0 = time.perf_counter()
        user.append_many("INBOX", [g.raw for g in mails])
        log(f"appended in {time.perf_counter() - t0:.1f} s")

        imap_rate, raws = imap_ceiling(user, int(args.batch or 200))
        log(f"IMAP fetch only: {imap_rate:.0f} msgs/s")
        parse_one, parse_all = parse_ceilings(raws)
        log(f"parse only: {parse_one:.0f} msgs/s on one core, {parse_all:.0f} msgs/s on {os.cpu_count()} cores")
        del raws

        write_bytecode()
        load_before = os.getloadavg()[0]
        seconds, summary, peak_rss, tree_rss, cpu = run_fetch(env, workdir, args.profile)
        rate = len(mails) / seconds
        log(f"flask mail fetch --once: {seconds:.2f} s, {rate:.0f} msgs/s; summary {summary}")
        ok, counts, problems = verify(url, mails, first_number)
        for p in problems[:20]:
            log(f"WRONG: {p}")
        expected = {k: sum(1 for g in mails if g.kind == k) for k in ("created", "appended", "ignored")}

        latencies = []
        if args.idle_messages:
            latencies = idle_latency(env, url, user, mailbox_id, MailFactory(args.seed + 1, first_number),
                                     len(mails), args.idle_messages, args.idle_gap, workdir)
            log("IDLE latencies: " + " ".join(f"{x:.2f}" for x in latencies))

        from helpdesk.extensions import db

        with app.app_context():
            dialect = db.engine.dialect.name
            db.engine.dispose()
        results = {
            "db": dialect, "existing_tickets": args.existing, "messages": len(mails),
            "megabytes": round(size / 1e6, 1),
            "seconds": round(seconds, 2), "msgs_per_s": round(rate, 1), "fetch_cpu_s": round(cpu, 2),
            "imap_fetch_msgs_per_s": round(imap_rate, 1), "parse_msgs_per_s_1core": round(parse_one, 1),
            "parse_msgs_per_s_all": round(parse_all, 1),
            "ratio": round(rate / min(imap_rate, parse_all), 3),
            "created": counts.get("created", 0), "appended": counts.get("appended", 0),
            "ignored": counts.get("ignored", 0), "quarantined": counts.get("quarantined", 0),
            "expected_created": expected["created"], "expected_appended": expected["appended"],
            "expected_ignored": expected["ignored"],
            "threading_correct": int(ok), "peak_rss_mb": round(peak_rss, 1), "peak_rss_tree_mb": round(tree_rss, 1),
            "loadavg_1min_before": round(load_before, 2),
        }
        if latencies:
            results["idle_latency_p50_s"] = round(percentile(latencies, 50), 2)
            results["idle_latency_p95_s"] = round(percentile(latencies, 95), 2)
        for key, value in results.items():
            print(f"{key}={value}", flush=True)
        if not ok:
            log(f"{len(problems)} message(s) did not end as expected")
            return 1
        return 0
    finally:
        if server is not None:
            server.stop()
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
