"""Forms of the ticket page's repair card: the quote's lines (technical support), billing's price
edit and decision, cancelling and finishing the work."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, FieldList, Form, FormField, HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from .models import LINE_KINDS

LINE_KIND_LABELS = {"service": _l("Service"), "part": _l("Part"), "product": _l("Product")}
assert set(LINE_KIND_LABELS) == set(LINE_KINDS)


class LineForm(Form):
    """One quote line (a sub-form: the outer form carries the CSRF token)."""

    kind = SelectField(_l("Kind"), choices=list(LINE_KIND_LABELS.items()), default="service")
    description = StringField(_l("Description"), validators=[Optional(), Length(max=300)])
    quantity = StringField(_l("Quantity"), default="1", validators=[Optional(), Length(max=6)])
    unit_price = StringField(_l("Unit price (Rp)"), validators=[Optional(), Length(max=30)])
    covered = BooleanField(_l("Covered"))
    covered_reason = StringField(_l("Why covered"), validators=[Optional(), Length(max=300)])

    def is_blank(self):
        return not (self.description.data or "").strip() and not (self.unit_price.data or "").strip() \
            and not self.covered.data


class _Back(FlaskForm):
    back = HiddenField(default="ticket")


class DraftForm(_Back):
    pass


class QuoteLinesForm(_Back):
    lines = FieldList(FormField(LineForm), min_entries=1, max_entries=60)


class ReasonForm(_Back):
    reason = TextAreaField(_l("Reason"), validators=[DataRequired(), Length(max=2000)])


class CancelForm(ReasonForm):
    pass


class RejectForm(ReasonForm):
    pass


class PriceForm(_Back):
    line_id = HiddenField(validators=[DataRequired()])
    unit_price = StringField(_l("New unit price (Rp)"), validators=[DataRequired(), Length(max=30)])
    reason = StringField(_l("Reason for the change"), validators=[DataRequired(), Length(max=400)])


class ActionForm(_Back):
    """Submit to billing, approve: nothing to type."""


class CompleteForm(_Back):
    note = StringField(_l("Note (optional)"), validators=[Optional(), Length(max=500)])
