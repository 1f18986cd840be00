"""Agent desk forms."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import MultipleFileField
from wtforms import BooleanField, EmailField, HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Email, Length, Optional

from ..web import PRIORITY_LABELS
from .models import CHANNELS, PRIORITIES


class ReplyForm(FlaskForm):
    body = TextAreaField(_l("Message"), validators=[Optional(), Length(max=100_000)])
    kind = SelectField(_l("Type"), choices=[("reply", _l("Reply to customer")), ("note", _l("Internal note"))])
    status = SelectField(_l("Then set status to"), choices=[], validate_choice=False, validators=[Optional()])
    attachments = MultipleFileField(_l("Attachments"))
    seen_last_message_id = HiddenField()
    force = BooleanField(_l("Send anyway"))


class StatusForm(FlaskForm):
    status = SelectField(_l("Status"), choices=[], validate_choice=False)


class PriorityForm(FlaskForm):
    priority = SelectField(_l("Priority"), choices=[(p, PRIORITY_LABELS[p]) for p in PRIORITIES])


class AssignForm(FlaskForm):
    assignee_id = SelectField(_l("Assignee"), choices=[], validate_choice=False)


class TransferForm(FlaskForm):
    queue_id = SelectField(_l("Queue"), choices=[], validate_choice=False, validators=[DataRequired()])
    note = TextAreaField(_l("Handover note"), validators=[DataRequired(), Length(max=5000)])


class TagsForm(FlaskForm):
    tags = StringField(_l("Tags (comma separated)"), validators=[Optional(), Length(max=500)])


class MergeForm(FlaskForm):
    target_number = StringField(_l("Merge into ticket number"), validators=[DataRequired()])


class BulkForm(FlaskForm):
    action = SelectField(_l("Action"), choices=[("assign", _l("Assign to")), ("status", _l("Set status")),
                                                ("close", _l("Close"))])
    value = StringField(validators=[Optional()])


class CallForm(FlaskForm):
    """A phone or walk-in call taken by an agent for an existing or new customer."""

    channel = SelectField(_l("Channel"), choices=[("phone", _l("Phone")), ("walk_in", _l("Walk-in"))])
    customer_email = EmailField(_l("Customer email"), validators=[DataRequired(), Email()])
    customer_name = StringField(_l("Customer name (for a new customer)"), validators=[Optional(), Length(max=200)])
    customer_phone = StringField(_l("Phone"), validators=[Optional(), Length(max=40)])
    queue_id = SelectField(_l("Queue"), choices=[], validate_choice=False, validators=[DataRequired()])
    priority = SelectField(_l("Priority"), choices=[(p, PRIORITY_LABELS[p]) for p in PRIORITIES], default="normal")
    subject = StringField(_l("Subject"), validators=[DataRequired(), Length(max=300)])
    body = TextAreaField(_l("What the customer said"), validators=[DataRequired(), Length(max=100_000)])
    attachments = MultipleFileField(_l("Attachments"))


CHANNEL_CHOICES = CHANNELS
