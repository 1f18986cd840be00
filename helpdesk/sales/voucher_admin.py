"""Vouchers admin (marketing and admins; 403 for the other agents): /offers/vouchers.

List (with how often each was used), create and edit: code (upper case), description, percent or
amount, value (a percentage typed as "10" meaning 10 %, stored in basis points: 1000; an amount in
rupiah "50.000"), validity dates, usage limit, once per customer, minimum order, active.
"""
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from ..billing.money import MoneyError, format_rupiah, parse_rupiah
from ..errors import DomainError, Forbidden, NotFound
from ..extensions import db
from ..timeutil import utcnow
from . import services
from .models import Voucher
from .offer_forms import VoucherForm
from .offer_views import may_offer

bp = Blueprint("vouchers", __name__, url_prefix="/offers/vouchers")


@bp.before_request
@login_required
def _marketing_only():
    if not may_offer(current_user):
        raise Forbidden(_("Only marketing can manage vouchers."))


def parse_percent(text):
    """"10" / "10%" / "12,5" -> basis points (1000 / 1250); DomainError otherwise."""
    raw = (text or "").strip().rstrip("%").strip().replace(",", ".")
    try:
        bp_value = round(float(raw) * 100)
    except ValueError:
        raise DomainError(_("Type a percentage such as 10."), field="value") from None
    if not 0 < bp_value <= 10_000:
        raise DomainError(_("A percentage above 0 and at most 100."), field="value")
    return bp_value


def show_value(voucher):
    if voucher.kind == "percent":
        whole, rest = divmod(int(voucher.value), 100)
        return str(whole) if not rest else f"{whole},{rest:02d}".rstrip("0")
    return format_rupiah(int(voucher.value))[3:]


def save_voucher(actor_id, voucher_id, *, code, description, kind, value, valid_from, valid_until, usage_limit,
                 one_per_customer, min_subtotal, active):
    """Create (voucher_id None) or update a voucher. Marketing and admins."""
    user = services._user_with(actor_id, services.OFFER_ROLES, _("Only marketing can manage vouchers."))
    code = (code or "").strip().upper()
    if not code or len(code) > 40 or any(c.isspace() for c in code):
        raise DomainError(_("A code without spaces, up to 40 characters."), field="code")
    if kind not in ("percent", "amount"):
        raise DomainError(_("Percent or amount."), field="kind")
    if kind == "percent":
        amount = parse_percent(value)
    else:
        try:
            amount = parse_rupiah(value) or 0
        except MoneyError:
            raise DomainError(_("Type an amount in rupiah such as 50.000."), field="value") from None
        if amount <= 0:
            raise DomainError(_("Type an amount in rupiah such as 50.000."), field="value")
    try:
        minimum = parse_rupiah(min_subtotal or "") or 0
    except MoneyError:
        raise DomainError(_("Type an amount in rupiah such as 50.000."), field="min_subtotal") from None
    if valid_from and valid_until and valid_until < valid_from:
        raise DomainError(_("The end date is before the start date."), field="valid_until")
    clash = db.session.execute(select(Voucher).where(Voucher.code == code)).scalar_one_or_none()
    if clash is not None and clash.id != voucher_id:
        raise DomainError(_("Another voucher has this code."), field="code")
    if voucher_id:
        voucher = db.session.get(Voucher, voucher_id)
        if voucher is None:
            raise NotFound(_("Voucher not found."))
    else:
        voucher = Voucher(used_count=0, created_at=utcnow())
        db.session.add(voucher)
    voucher.code, voucher.description, voucher.kind, voucher.value = code, (description or "").strip() or None, kind, amount
    voucher.valid_from, voucher.valid_until, voucher.usage_limit = valid_from, valid_until, usage_limit
    voucher.one_per_customer, voucher.min_subtotal, voucher.active = bool(one_per_customer), minimum, bool(active)
    db.session.flush()
    services._audit("voucher", voucher, user.id, "voucher", None, code)
    return voucher


@bp.route("")
def index():
    vouchers = db.session.execute(select(Voucher).order_by(Voucher.active.desc(), Voucher.code)).scalars().all()
    return render_template("admin/vouchers.html", vouchers=vouchers, show_value=show_value)


def _form_page(form, voucher, errors=None, status=200):
    return render_template("admin/vouchers_form.html", form=form, voucher=voucher, errors=errors or {}), status


def _save(form, voucher):
    if not form.validate():
        return _form_page(form, voucher, status=400)
    try:
        saved = save_voucher(current_user.id, voucher.id if voucher else None, code=form.code.data,
                             description=form.description.data, kind=form.kind.data, value=form.value.data,
                             valid_from=form.valid_from.data, valid_until=form.valid_until.data,
                             usage_limit=form.usage_limit.data, one_per_customer=form.one_per_customer.data,
                             min_subtotal=form.min_subtotal.data, active=form.active.data)
    except DomainError as exc:
        db.session.rollback()
        return _form_page(form, voucher, errors={exc.details.get("field") or "form": exc.message},
                          status=exc.status_code)
    db.session.commit()
    flash(_("Voucher %(code)s saved.", code=saved.code), "success")
    return redirect(url_for("vouchers.index"), 303)


@bp.route("/new", methods=["GET", "POST"])
def new():
    form = VoucherForm()
    if request.method == "GET":
        return _form_page(form, None)
    return _save(form, None)


@bp.route("/<int:voucher_id>", methods=["GET", "POST"])
def edit(voucher_id):
    voucher = db.session.get(Voucher, voucher_id)
    if voucher is None:
        raise NotFound(_("Voucher not found."))
    if request.method == "GET":
        form = VoucherForm(obj=voucher)
        form.value.data = show_value(voucher)
        form.min_subtotal.data = format_rupiah(int(voucher.min_subtotal or 0))[3:] if voucher.min_subtotal else ""
        return _form_page(form, voucher)
    return _save(VoucherForm(), voucher)
