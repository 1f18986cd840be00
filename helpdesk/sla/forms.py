"""Forms of the SLA admin pages: policies, calendars and their company days, rules.

Durations and working hours are free text fields: helpdesk.sla.admin_services parses and validates
them, so a rejected form shows the text as typed."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, IntegerField, SelectField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from ..tickets.models import PRIORITIES
from .admin_services import WEEKDAYS
from .models import RULE_KINDS, TARGETS

TARGET_LABELS = {"first_response": _l("First response"), "next_response": _l("Next response"),
                 "resolution": _l("Resolution")}
WEEKDAY_LABELS = (_l("Monday"), _l("Tuesday"), _l("Wednesday"), _l("Thursday"), _l("Friday"), _l("Saturday"),
                  _l("Sunday"))
RULE_KIND_LABELS = {"tier": _l("Customer support tier"), "queue": _l("Queue"), "channel": _l("Channel")}


def _optional_int(value):
    return int(value) if value not in (None, "", "None", "0", 0) else None


class PolicyForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=80)])
    calendar_id = SelectField(_l("Business calendar"), coerce=int, choices=[])
    pause_statuses = SelectMultipleField(_l("Statuses that pause the resolution clock"), choices=[])
    warn_percent = IntegerField(_l("Warn when this percentage of the target is used"),
                                validators=[Optional(), NumberRange(min=1, max=99)],
                                description=_l("For example 75. Empty: no percentage."))
    warn_minutes = IntegerField(_l("Or warn when this many business minutes are left"),
                                validators=[Optional(), NumberRange(min=1)],
                                description=_l("For example 30. When both are set, the earlier warning wins."))
    escalate_priority = BooleanField(_l("On breach: raise the priority one step"))
    escalate_to_lead = BooleanField(_l("On breach: reassign to the queue lead"))
    escalate_notify_user_id = SelectField(_l("On breach: notify this manager"), coerce=_optional_int, choices=[])
    reopen_new_cycle = BooleanField(_l("A reopened ticket starts a new resolution cycle"), default=True)
    is_default = BooleanField(_l("Default policy (tickets no rule matches)"))
    recompute = BooleanField(_l("Recompute the deadlines of open tickets on this policy"),
                             description=_l("Otherwise the change applies to new tickets only."))

    def target_field(self, priority, target):
        return self[f"{priority}_{target}"]


for _p in PRIORITIES:
    for _t in TARGETS:
        setattr(PolicyForm, f"{_p}_{_t}", StringField(validators=[Length(max=40)]))  # labelled in the template


class CalendarForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=80)])
    tz = SelectField(_l("Time zone"), choices=[], default="Asia/Jakarta", validate_choice=False)
    always_open = BooleanField(_l("Open 24x7 (working hours and holidays are ignored)"))
    country = SelectField(_l("Public holidays"), choices=[("ID", _l("Indonesia")), ("", _l("None"))], default="ID")


for _wd in WEEKDAYS:
    setattr(CalendarForm, f"hours_{_wd}", StringField(WEEKDAY_LABELS[_wd], validators=[Length(max=200)]))


class CalendarDayForm(FlaskForm):
    day = DateField(_l("Date"), validators=[DataRequired()])
    name = StringField(_l("Name (optional)"), validators=[Length(max=120)],
                       description=_l("For example: company anniversary."))
    closed = BooleanField(_l("Closed all day"), default=True)
    hours = StringField(_l("Or special hours"), validators=[Length(max=200)],
                        description=_l("For example 08:00-12:00, when the day is not closed."))


class RuleForm(FlaskForm):
    kind = SelectField(_l("When"), choices=[(k, RULE_KIND_LABELS[k]) for k in RULE_KINDS])
    tier = StringField(_l("Support tier"), validators=[Length(max=80)], description=_l("For example premium."))
    queue = SelectField(_l("Queue"), choices=[], validate_choice=False)
    channel = SelectField(_l("Channel"), choices=[], validate_choice=False)
    policy_id = SelectField(_l("Policy"), coerce=int, choices=[])

