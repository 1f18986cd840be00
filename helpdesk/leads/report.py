"""The leads funnel report, per source and per campaign, over Asia/Jakarta days (the database stores
naive UTC).

What counts where (a cohort report: every number follows the leads created in the period):
- leads: leads created in the period (created_at in [from 00:00, to+1 00:00) Jakarta);
- offers: those of them an offer was sent to (offer_sent_at set — by the stage change to
  "offer sent", and by the offers module when it sends one);
- won: those of them that stand won now (stage "won"; a lead moved back out of won no longer counts);
- conversion rate: won / leads, in percent (None without leads);
- median days to convert: created_at → won_at of the won leads, nearest-rank median (as the SLA and
  guarantees reports), in days with one decimal.

One grouped query over ix_leads_created gives the counts per (source, campaign); one more reads the
won leads' two timestamps for the medians, taken in Python so SQLite and PostgreSQL agree.
"""
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import case, func, select

from ..extensions import db
from ..sla.report import percentile, period_bounds
from ..timeutil import to_local, utcnow
from ..warranty.report import add_months, safe_cell
from .models import LEAD_SOURCES, Lead

NO_CAMPAIGN = ""


@dataclass
class Funnel:
    leads: int = 0
    offers: int = 0
    won: int = 0
    days: list = field(default_factory=list)  # days to convert of the won leads

    @property
    def conversion(self):
        """Won / leads in percent, one decimal (None without leads)."""
        return round(100.0 * self.won / self.leads, 1) if self.leads else None

    @property
    def median_days(self):
        value = percentile(sorted(self.days), 50)
        return None if value is None else round(value, 1)

    def add(self, other):
        self.leads += other.leads
        self.offers += other.offers
        self.won += other.won
        self.days += other.days


def default_period(now=None):
    """(first day of this Jakarta month, today in Jakarta)."""
    today = to_local(now or utcnow()).date()
    return today.replace(day=1), today


def month_period(first):
    """(first, last) days of the month beginning on `first`."""
    return first, add_months(first, 1) - timedelta(days=1)


def funnel_report(start, end):
    """{"start", "end", "total": Funnel, "by_source": {source: Funnel} (every source, in LEAD_SOURCES
    order), "by_campaign": {campaign or "": Funnel} (most leads first)} for the leads created on the
    Jakarta days start..end inclusive."""
    lo, hi = period_bounds(start, end)
    in_period = (Lead.created_at >= lo, Lead.created_at < hi)
    won = func.sum(case((Lead.stage == "won", 1), else_=0))
    q = (select(Lead.source, Lead.campaign, func.count(Lead.id), func.count(Lead.offer_sent_at), won)
         .where(*in_period).group_by(Lead.source, Lead.campaign))
    cells = {}
    for source, campaign, n, offers, n_won in db.session.execute(q):
        cells[(source, campaign or NO_CAMPAIGN)] = Funnel(leads=n, offers=offers, won=int(n_won or 0))
    for source, campaign, created, won_at in db.session.execute(
            select(Lead.source, Lead.campaign, Lead.created_at, Lead.won_at)
            .where(*in_period, Lead.stage == "won", Lead.won_at.is_not(None))):
        if won_at >= created:
            cells[(source, campaign or NO_CAMPAIGN)].days.append((won_at - created).total_seconds() / 86400)
    total = Funnel()
    by_source = {s: Funnel() for s in LEAD_SOURCES}
    by_campaign = {}
    for (source, campaign), cell in cells.items():
        total.add(cell)
        by_source.setdefault(source, Funnel()).add(cell)
        by_campaign.setdefault(campaign, Funnel()).add(cell)
    by_campaign = dict(sorted(by_campaign.items(), key=lambda kv: (kv[0] == NO_CAMPAIGN, -kv[1].leads, kv[0])))
    return {"start": start, "end": end, "total": total, "by_source": by_source, "by_campaign": by_campaign}


CSV_HEADER = ["from", "to", "group", "key", "leads", "offers", "won", "conversion_percent", "median_days_to_convert"]


def csv_rows(report):
    """Per source (every source), per campaign, then the total; every cell through safe_cell."""
    start, end = report["start"].isoformat(), report["end"].isoformat()
    rows = []

    def add(group, key, f):
        rows.append([start, end, group, key, f.leads, f.offers, f.won, f.conversion, f.median_days])

    for source, f in report["by_source"].items():
        add("source", source, f)
    for campaign, f in report["by_campaign"].items():
        add("campaign", campaign or "(none)", f)
    add("total", "total", report["total"])
    return [CSV_HEADER] + [[safe_cell(v) for v in row] for row in rows]
