"""Forms of technical support's maintenance pages: the window (start and end typed in Asia/Jakarta),
the cancellation, and the buttons with nothing to type. The services validate the rules; these
forms only check shapes so a refused form comes back with what was typed."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, IntegerField, SelectField, SelectMultipleField, StringField, TextAreaField, TimeField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from .schedule import MAX_ANNOUNCE_DAYS

IMPACT_LABELS = {"downtime": _l("Downtime"), "degraded": _l("Degraded performance"), "none": _l("No interruption")}
STATUS_LABELS = {"draft": _l("Draft"), "scheduled": _l("Published"), "cancelled": _l("Cancelled")}
PHASE_LABELS = {"upcoming": _l("Upcoming"), "ongoing": _l("Ongoing"), "past": _l("Past")}
NOTICE_LABELS = {"announce": _l("Announcement"), "reminder": _l("Reminder"), "completed": _l("Completed"),
                 "extended": _l("Extended"), "updated": _l("Updated"), "cancelled": _l("Cancelled"),
                 "autoreply": _l("Auto-reply")}
DELIVERY_LABELS = {"queued": _l("Queued"), "sent": _l("Sent"), "failed": _l("Failed"), "held": _l("Held"),
                   "skipped": _l("Skipped"), "bounced": _l("Bounced")}
TARGET_LABELS = {"server": _l("Server"), "product": _l("Product"), "item": _l("Item")}


class WindowForm(FlaskForm):
    title_id = StringField(_l("Title (Indonesian)"), validators=[DataRequired(), Length(max=200)])
    title_en = StringField(_l("Title (English)"), validators=[DataRequired(), Length(max=200)])
    description_id = TextAreaField(_l("Description (Indonesian)"), validators=[Optional(), Length(max=5000)])
    description_en = TextAreaField(_l("Description (English)"), validators=[Optional(), Length(max=5000)])
    start_date = DateField(_l("Start date"), validators=[DataRequired()])
    start_time = TimeField(_l("Start time (WIB)"), validators=[DataRequired()])
    end_date = DateField(_l("End date"), validators=[DataRequired()])
    end_time = TimeField(_l("End time (WIB)"), validators=[DataRequired()])
    impact = SelectField(_l("Impact"), choices=list(IMPACT_LABELS.items()), default="downtime")
    announce_days = IntegerField(_l("Announce days before"), validators=[Optional(),
                                                                         NumberRange(0, MAX_ANNOUNCE_DAYS)])
    servers = StringField(_l("Servers"), validators=[Optional(), Length(max=2000)])
    product_ids = SelectMultipleField(_l("Products"), choices=[], coerce=str, validate_choice=False)
    item_ids = StringField(_l("Item numbers"), validators=[Optional(), Length(max=2000)])
    change_note = StringField(_l("What changed (sent to those already notified)"),
                              validators=[Optional(), Length(max=500)])


class CancelForm(FlaskForm):
    reason = TextAreaField(_l("Reason"), validators=[DataRequired(), Length(max=500)])


class ButtonForm(FlaskForm):
    """Nothing to type (publish)."""
