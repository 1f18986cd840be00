"""Forms and labels of marketing's lead pages: manual entry and edit, the stage control, an activity,
a follow-up task (due date and time typed in Asia/Jakarta), and the buttons with nothing to type.

The services validate the rules (a name, an email or a phone, a marketing owner...); these forms only
check lengths and shapes so a refused form comes back with what was typed."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, SelectMultipleField, StringField, TextAreaField, TimeField
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from ..warranty.admin_forms import LINE_LABELS as _WARRANTY_LINE_LABELS
from .models import LEAD_SOURCES, LEAD_STAGES, PRODUCT_LINES

SOURCE_LABELS = {"seminar": _l("Seminar"), "print": _l("Print media"), "social": _l("Social media"),
                 "sms": _l("SMS"), "chat": _l("Chat"), "website": _l("Website"), "referral": _l("Referral"),
                 "daily_deal": _l("Daily deal"), "other": _l("Other")}
STAGE_LABELS = {"new": _l("New"), "contacted": _l("Contacted"), "offer_sent": _l("Offer sent"), "won": _l("Won"),
                "lost": _l("Lost")}
LINE_LABELS = {line: _WARRANTY_LINE_LABELS.get(line, line) for line in PRODUCT_LINES}
# What marketing can add to a lead's log by hand (helpdesk.leads.services.ACTIVITY_KINDS).
ACTIVITY_LABELS = {"note": _l("Note"), "call": _l("Call"), "email": _l("Email"), "meeting": _l("Meeting"),
                   "chat": _l("Chat")}
# Every entry of the log.
LOG_LABELS = dict(ACTIVITY_LABELS, created=_l("Created"), merged=_l("Merged"), edited=_l("Edited"),
                  stage=_l("Stage changed"), task=_l("Task"), task_done=_l("Task done"),
                  converted=_l("Converted to a customer"))
# Where a capture came from (the log's "created" and "merged" entries).
CHANNEL_LABELS = {"manual": _l("Entered by marketing"), "csv_import": _l("CSV import"), "offer_form": _l("Offer form"),
                  "support_form": _l("Support form"), "api": _l("API")}
FIELD_LABELS = {"name": _l("Name"), "company": _l("Company"), "email": _l("Email"), "phone": _l("Phone"),
                "source": _l("Source"), "campaign": _l("Campaign or promo code"), "product_lines": _l("Product lines"),
                "owner_id": _l("Owner"), "notes": _l("Notes")}


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class LeadForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    company = StringField(_l("Company"), validators=[Optional(), Length(max=200)])
    email = StringField(_l("Email"), validators=[Optional(), Length(max=254)])
    phone = StringField(_l("Phone"), validators=[Optional(), Length(max=32)])
    source = SelectField(_l("Source"), choices=[(s, SOURCE_LABELS[s]) for s in LEAD_SOURCES], default="other")
    campaign = StringField(_l("Campaign or promo code"), validators=[Optional(), Length(max=80)])
    product_lines = MultiCheckboxField(_l("Product lines"), choices=[(ln, LINE_LABELS[ln]) for ln in PRODUCT_LINES])
    owner_id = SelectField(_l("Owner"), choices=[], validate_choice=False)
    notes = TextAreaField(_l("Notes"), validators=[Optional(), Length(max=5000)])


class StageForm(FlaskForm):
    stage = SelectField(_l("Stage"), choices=[(s, STAGE_LABELS[s]) for s in LEAD_STAGES])
    reason = StringField(_l("Why was it lost?"), validators=[Optional(), Length(max=500)])


class ActivityForm(FlaskForm):
    kind = SelectField(_l("What"), choices=list(ACTIVITY_LABELS.items()), default="call")
    text = TextAreaField(_l("What happened"), validators=[DataRequired(), Length(max=5000)])


class TaskForm(FlaskForm):
    title = StringField(_l("Follow-up"), validators=[DataRequired(), Length(max=300)])
    due_date = DateField(_l("Due date"), validators=[DataRequired()])
    due_time = TimeField(_l("Due time (WIB)"), validators=[DataRequired()])
    owner_id = SelectField(_l("Owner"), choices=[], validate_choice=False)


class ButtonForm(FlaskForm):
    """Nothing to type (mark a task done, convert)."""
