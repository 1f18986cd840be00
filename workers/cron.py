"""`rq cron` configuration. Run exactly one scheduler per deployment:

    rq cron workers/cron.py --url "$REDIS_URL"

Every entry is an idempotent sweep, so a missed or doubled tick does no harm.
"""
from rq import cron

from helpdesk.campaigns.jobs import cron_campaigns
from helpdesk.jobs import cron_auto_close, cron_sweep_outbox
from helpdesk.leads.jobs import cron_lead_reminders
from helpdesk.mail.fetch import cron_poll
from helpdesk.mail.scan_jobs import cron_rescan_pending
from helpdesk.maintenance.jobs import cron_maintenance_sweep
from helpdesk.sales.jobs import cron_expire_offers
from helpdesk.sales.renewals import cron_renewals
from helpdesk.sla.jobs import cron_sla_sweep

cron.register(cron_sweep_outbox, "default", interval=30, result_ttl=300, failure_ttl=24 * 3600)
cron.register(cron_auto_close, "default", interval=10 * 60, result_ttl=3600, failure_ttl=24 * 3600)
# Mailboxes without an IDLE holder (workers/mail_idle.py) are polled every minute, on the mail queue.
cron.register(cron_poll, "mail", interval=60, result_ttl=300, failure_ttl=24 * 3600)
# Attachments left unscanned while the ClamAV daemon was down are scanned when it is back.
cron.register(cron_rescan_pending, "default", interval=5 * 60, result_ttl=300, failure_ttl=24 * 3600)
# SLA warnings and breaches: claim the due alerts and enqueue their jobs, every minute on the sla queue.
cron.register(cron_sla_sweep, "sla", interval=60, result_ttl=300, failure_ttl=24 * 3600)
# Lead follow-ups that are due: one reminder to their owner (bell and mail), every minute.
cron.register(cron_lead_reminders, "default", interval=60, result_ttl=300, failure_ttl=24 * 3600)
# Sent offers past their validity become expired, hourly.
cron.register(cron_expire_offers, "default", interval=60 * 60, result_ttl=3600, failure_ttl=24 * 3600)
# Renewals: reminders, the renewal invoice and the expiry of unpaid items, hourly (each step happens
# once per item and expiry day, whatever the number of runs).
cron.register(cron_renewals, "default", interval=60 * 60, result_ttl=3600, failure_ttl=24 * 3600)
# Maintenance notices (announcement, reminder, completed, updated / extended, cancelled), at most
# ANNOUNCE_BATCH mails per notice per run, every minute (each recipient once per notice).
cron.register(cron_maintenance_sweep, "default", interval=60, result_ttl=300, failure_ttl=24 * 3600)
# Marketing announcements that are due (scheduled) or being sent, ANNOUNCE_BATCH mails per run, every minute.
cron.register(cron_campaigns, "default", interval=60, result_ttl=300, failure_ttl=24 * 3600)
