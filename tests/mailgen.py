"""Build raw test mails (bytes) with the stdlib, the way real clients write them."""
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from datetime import datetime, timezone


def mail(*, frm="Budi Santoso <budi@pelanggan.co.id>", to="support@helpdesk.test", subject="Website down",
         body="Website kami tidak bisa dibuka sejak pagi.", html=None, message_id=True, in_reply_to=None,
         references=None, cc=None, reply_to=None, headers=(), attachments=(), date=None):
    """A raw RFC 5322 message. attachments: [(filename, content_type, bytes)]."""
    m = EmailMessage()
    m["From"] = frm
    m["To"] = to
    if cc:
        m["Cc"] = cc
    if reply_to:
        m["Reply-To"] = reply_to
    m["Subject"] = subject
    m["Date"] = format_datetime(date or datetime(2026, 11, 28, 3, 0, tzinfo=timezone.utc))
    if message_id is True:
        m["Message-ID"] = make_msgid(domain="pelanggan.co.id")
    elif message_id:
        m["Message-ID"] = message_id
    if in_reply_to:
        m["In-Reply-To"] = in_reply_to
    if references:
        m["References"] = references
    for name, value in headers:
        m[name] = value
    m.set_content(body)
    if html:
        m.add_alternative(html, subtype="html")
    for filename, ctype, data in attachments:
        maintype, subtype = ctype.split("/", 1)
        m.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return bytes(m)


def dsn(*, original_message_id, recipient, status="5.1.1", frm="MAILER-DAEMON@mx.pelanggan.co.id",
        to="support@helpdesk.test"):
    """A delivery status notification (RFC 3464) bouncing one of our mails."""
    return (
        f"From: Mail Delivery System <{frm}>\r\n"
        f"To: {to}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: {make_msgid(domain='mx.pelanggan.co.id')}\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="BOUND"\r\n'
        "\r\n"
        "--BOUND\r\n"
        "Content-Type: text/plain\r\n\r\n"
        f"This is the mail system. Your message could not be delivered to {recipient}.\r\n"
        "--BOUND\r\n"
        "Content-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.pelanggan.co.id\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        "Action: " + ("failed" if status.startswith("5") else "delayed") + "\r\n"
        f"Status: {status}\r\n"
        "\r\n"
        "--BOUND\r\n"
        "Content-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: <{original_message_id}>\r\n"
        f"To: {recipient}\r\n"
        "Subject: [#1001] Website down\r\n"
        "--BOUND--\r\n"
    ).encode()
