"""Forms of the announcement pages: the message and its segment, the sending time (typed in
Asia/Jakarta), and the buttons with nothing to type. The service checks the rules; these forms only
check lengths and shapes, so a refused form comes back with what was typed."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, RadioField, SelectField, SelectMultipleField, StringField, TextAreaField, TimeField
from wtforms.validators import DataRequired, Length, Optional

from ..leads.forms import LINE_LABELS, SOURCE_LABELS, STAGE_LABELS, MultiCheckboxField
from ..leads.models import LEAD_SOURCES, LEAD_STAGES, PRODUCT_LINES

TOPIC_LABELS = {"promotions": _l("Product news and promotions"), "general": _l("General announcements")}
AUDIENCE_LABELS = {"leads": _l("Leads (prospects)"), "customers": _l("Customers")}
KIND_LABELS = {"": _l("B2B and B2C"), "b2b": _l("B2B (businesses)"), "b2c": _l("B2C (consumers)")}
STATUS_LABELS = {"draft": _l("Draft"), "scheduled": _l("Scheduled"), "sending": _l("Sending"), "sent": _l("Sent"),
                 "cancelled": _l("Cancelled")}
COUNT_LABELS = {"recipients": _l("Recipients"), "queued": _l("Queued"), "sent": _l("Sent"), "failed": _l("Failed"),
                "held": _l("Held"), "skipped": _l("Skipped"), "bounced": _l("Bounced"),
                "unsubscribed": _l("Unsubscribed")}


class CampaignForm(FlaskForm):
    name = StringField(_l("Name (for marketing only)"), validators=[DataRequired(), Length(max=200)])
    topic = SelectField(_l("Topic"), choices=list(TOPIC_LABELS.items()), default="promotions")
    audience = RadioField(_l("Send to"), choices=list(AUDIENCE_LABELS.items()), default="customers")
    subject_id = StringField(_l("Subject (Indonesian)"), validators=[Optional(), Length(max=300)])
    body_id = TextAreaField(_l("Text (Indonesian)"), validators=[Optional(), Length(max=20000)])
    subject_en = StringField(_l("Subject (English)"), validators=[Optional(), Length(max=300)])
    body_en = TextAreaField(_l("Text (English)"), validators=[Optional(), Length(max=20000)])
    # leads
    sources = MultiCheckboxField(_l("Source"), choices=[(s, SOURCE_LABELS[s]) for s in LEAD_SOURCES])
    campaigns = StringField(_l("Lead campaigns or promo codes (comma-separated)"),
                            validators=[Optional(), Length(max=500)])
    interests = MultiCheckboxField(_l("Interest"), choices=[(ln, LINE_LABELS[ln]) for ln in PRODUCT_LINES])
    stages = MultiCheckboxField(_l("Stage"), choices=[(s, STAGE_LABELS[s]) for s in LEAD_STAGES])
    # customers
    product_lines = MultiCheckboxField(_l("Owns a product line"),
                                       choices=[(ln, LINE_LABELS[ln]) for ln in PRODUCT_LINES])
    product_ids = SelectMultipleField(_l("Owns a product"), choices=[], coerce=str, validate_choice=False)
    kind = SelectField(_l("Customer type"), choices=list(KIND_LABELS.items()), default="")

    def segment(self):
        if self.audience.data == "leads":
            return {"sources": self.sources.data or [], "interests": self.interests.data or [],
                    "stages": self.stages.data or [],
                    "campaigns": [c.strip() for c in (self.campaigns.data or "").split(",") if c.strip()]}
        return {"product_lines": self.product_lines.data or [], "product_ids": self.product_ids.data or [],
                "kind": self.kind.data or ""}

    def fields(self):
        return {"name": self.name.data, "topic": self.topic.data, "audience": self.audience.data,
                "segment": self.segment(), "subject_id": self.subject_id.data, "body_id": self.body_id.data,
                "subject_en": self.subject_en.data, "body_en": self.body_en.data}

    def fill(self, c):
        """The form of an existing campaign."""
        for key in ("name", "topic", "audience", "subject_id", "body_id", "subject_en", "body_en"):
            getattr(self, key).data = getattr(c, key) or ""
        seg = c.segment or {}
        if c.audience == "leads":
            self.sources.data = seg.get("sources") or []
            self.interests.data = seg.get("interests") or []
            self.stages.data = seg.get("stages") or []
            self.campaigns.data = ", ".join(seg.get("campaigns") or [])
        else:
            self.product_lines.data = seg.get("product_lines") or []
            self.product_ids.data = [str(i) for i in seg.get("product_ids") or []]
            self.kind.data = seg.get("kind") or ""


class ScheduleForm(FlaskForm):
    send_date = DateField(_l("Date"), validators=[DataRequired()])
    send_time = TimeField(_l("Time (WIB)"), validators=[DataRequired()])


class ButtonForm(FlaskForm):
    """Nothing to type (send now, cancel)."""
