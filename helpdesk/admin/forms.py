"""Admin forms: agents, queues, canned responses."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import DataRequired, Email, Length, Regexp

from ..web import ROLE_LABELS


class ActionForm(FlaskForm):
    """A button that changes something: only the CSRF token."""


class AgentForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    roles = SelectMultipleField(_l("Roles"), choices=list(ROLE_LABELS.items()))
    queues = SelectMultipleField(_l("Queues"), coerce=int, choices=[])


class InviteForm(AgentForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Email(), Length(max=254)])


class QueueForm(FlaskForm):
    slug = StringField(_l("Short name (for links)"), validators=[
        DataRequired(), Length(max=40),
        Regexp(r"^[a-z0-9]+(-[a-z0-9]+)*$", message=_l("Lower-case letters, digits and single dashes only."))],
        description=_l("For example technical-support."))
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=80)])


class QueueLeadForm(FlaskForm):
    lead = SelectField(_l("Lead"), coerce=int, choices=[])


class QueueMemberForm(FlaskForm):
    user = SelectField(_l("Agent"), coerce=int, choices=[], validators=[DataRequired()])


class CannedForm(FlaskForm):
    queue = SelectField(_l("Queue"), coerce=int, choices=[])  # 0 = every queue
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=120)])
    body = TextAreaField(_l("Text"), validators=[DataRequired(), Length(max=20000)], render_kw={"rows": 8})


class DataRequestDecisionForm(FlaskForm):
    """Approve or reject a customer's deletion request, with an optional note."""
    decision = SelectField(_l("Decision"), choices=[("approve", _l("Approve")), ("reject", _l("Reject"))],
                           validators=[DataRequired()])
    note = StringField(_l("Note (optional)"), validators=[Length(max=500)])
