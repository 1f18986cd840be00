"""Order pages (issue #7 §3).

- GET /orders: the orders, newest first, filtered by status (50 a page).
- /orders/new?customer_id=: an order entered directly (written or spoken: channel, lines from the
  catalogue or free text with a discount, voucher, notes); a refused form keeps what was typed.
- /orders/<id>: lines, totals, the status timeline, the offer it came from, its invoice and the
  actions: confirm (the invoice is created and mailed), fulfil (owned items from an activation
  date), cancel (with a reason), repeat.
Any agent may look at orders (technical support fulfils them, billing follows their invoices);
marketing, customer support and admins enter, confirm, cancel and repeat them; technical support
also fulfils. Views are thin: helpdesk.sales.services holds the rules.
"""
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from ..billing.models import Invoice
from ..customers.models import Customer
from ..errors import DomainError, Forbidden, NotFound
from ..web import form_error
from ..extensions import db
from ..warranty.models import OwnedItem, Product
from . import services
from .models import ORDER_STATUSES, Offer, Order
from .order_forms import CHANNEL_LABELS, STATUS_LABELS, ButtonForm, CancelForm, FulfilForm, OrderForm

bp = Blueprint("orders", __name__, url_prefix="/orders")

PAGE_SIZE = 50
FULFIL_ROLES = services.ORDER_ROLES + ("technical_support",)


def _has(user, roles):
    return bool(getattr(user, "is_authenticated", False) and hasattr(user, "has_role")
                and any(user.has_role(r) for r in roles))


def may_enter(user):
    return _has(user, services.ORDER_ROLES)


def _require(roles, message):
    if not _has(current_user, roles):
        raise Forbidden(message)


@bp.before_request
@login_required
def _agents_only():
    """Any signed-in agent (customers are anonymous here: the login page)."""


@bp.app_context_processor
def _nav():
    return {"orders_visible": lambda: may_enter(current_user), "may_enter_orders": lambda: may_enter(current_user),
            "ORDER_STATUS_LABELS": STATUS_LABELS, "ORDER_CHANNEL_LABELS": CHANNEL_LABELS}


# ---------------------------------------------------------------- the list

@bp.route("")
def index():
    status = request.args.get("status") if request.args.get("status") in ORDER_STATUSES else ""
    page = request.args.get("page", "1")
    page = max(int(page) if page.isdigit() else 1, 1)
    q = select(Order, Customer.name).join(Customer, Customer.id == Order.customer_id)
    if status:
        q = q.where(Order.status == status)
    rows = db.session.execute(q.order_by(Order.id.desc()).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)).all()
    more = len(rows) > PAGE_SIZE
    return render_template("sales/orders.html", rows=rows[:PAGE_SIZE], status=status, page=page, more=more,
                           statuses=ORDER_STATUSES)


# ---------------------------------------------------------------- the direct order

def _products():
    return db.session.execute(select(Product).where(Product.active.is_(True))
                              .order_by(Product.product_line, Product.name)).scalars().all()


def _with_choices(form, products):
    choices = [("", _("Free text (no catalogue product)"))] + [
        (str(p.id), f"{p.name} ({p.code}) · Rp {int(p.price):,}".replace(",", ".")) for p in products]
    for entry in form.lines.entries:
        entry.form.product_id.choices = choices
    return form


def _line_dicts(form):
    """The typed lines without the blank rows; a quantity that is not a whole number is refused here."""
    out = []
    for n, entry in enumerate((e.form for e in form.lines.entries), start=1):
        if entry.is_blank():
            continue
        quantity = (entry.quantity.data or "1").strip()
        if not quantity.isdigit():
            raise DomainError(_("Line %(n)s: the quantity must be a whole number.", n=n), field="lines")
        product = (entry.product_id.data or "").strip()
        if product and not product.isdigit():
            raise DomainError(_("Line %(n)s: unknown product.", n=n), field="lines")
        out.append({"product_id": int(product) if product else None, "description": entry.description.data,
                    "identifier": entry.identifier.data, "quantity": int(quantity),
                    "unit_price": (entry.unit_price.data or "").strip(),
                    "discount": (entry.discount.data or "").strip()})
    return out


def _form_error(form):
    """The first error of the order's own fields; the lines' errors are shown on the lines."""
    return form_error(form, skip=("lines",), fallback=_("Check the lines."), fallback_field="lines")


def _render_new(form, customer, status=200, error=None, error_field=None):
    return render_template("sales/order_new.html", form=form, customer=customer, error=error,
                           error_field=error_field), status


@bp.route("/new", methods=["GET", "POST"])
def new():
    _require(services.ORDER_ROLES, _("Only marketing and customer support can enter orders."))
    products = _products()
    if request.method == "GET":
        form = OrderForm(formdata=None)
        raw = request.args.get("customer_id", "")
        form.customer_id.data = raw if raw.isdigit() else ""
        customer = db.session.get(Customer, int(raw)) if raw.isdigit() else None
        if customer is not None and customer.merged_into_id:
            customer = db.session.get(Customer, customer.merged_into_id)
            form.customer_id.data = str(customer.id)
        return _render_new(_with_choices(form, products), customer)
    form = _with_choices(OrderForm(), products)
    raw = form.customer_id.data or ""
    customer = db.session.get(Customer, int(raw)) if raw.isdigit() else None
    if request.form.get("add_row"):
        form.lines.append_entry({"quantity": "1"})
        return _render_new(_with_choices(form, products), customer)
    try:
        if customer is None or customer.merged_into_id:
            raise DomainError(_("Choose the customer first (from the customer's page)."), field="customer_id")
        if not form.validate():
            raise _form_error(form)
        order = services.create_order(current_user.id, customer_id=customer.id, lines=_line_dicts(form),
                                      channel=form.channel.data, voucher_code=form.voucher.data,
                                      notes=form.notes.data)
    except DomainError as exc:
        db.session.rollback()
        if isinstance(exc, Forbidden):
            raise
        flash(exc.message, "error")
        status = 400 if isinstance(exc, NotFound) else exc.status_code
        return _render_new(form, customer, status, exc.message, exc.details.get("field"))
    db.session.commit()
    flash(_("Order %(number)s placed.", number=order.number), "success")
    return redirect(url_for("orders.show", order_id=order.id), 303)


# ---------------------------------------------------------------- the order page

def timeline(order):
    """[(status, label, when, note)] of the steps the order went through."""
    steps = [("placed", order.created_at, None), ("confirmed", order.confirmed_at, None),
             ("paid", order.paid_at, None), ("fulfilled", order.fulfilled_at, None),
             ("cancelled", order.cancelled_at, order.cancel_reason)]
    return [{"status": s, "label": STATUS_LABELS[s], "at": at, "note": note} for s, at, note in steps if at]


def _render_show(order, status=200, forms=None):
    from ..warranty.services import local_today

    forms = forms or {}
    customer = db.session.get(Customer, order.customer_id)
    invoice = db.session.get(Invoice, order.invoice_id) if order.invoice_id else None
    offer = db.session.get(Offer, order.offer_id) if order.offer_id else None
    repeat_of = db.session.get(Order, order.repeat_of_id) if order.repeat_of_id else None
    items = db.session.execute(select(OwnedItem).where(OwnedItem.customer_id == order.customer_id,
                                                       OwnedItem.reference == order.number)
                               .order_by(OwnedItem.id)).scalars().all() if order.status == "fulfilled" else []
    enter, fulfil = may_enter(current_user), _has(current_user, FULFIL_ROLES)
    forms.setdefault("confirm", ButtonForm(formdata=None) if enter and order.status == "placed" else None)
    forms.setdefault("fulfil", FulfilForm(formdata=None, activation_date=local_today())
                     if fulfil and order.status == "paid" else None)
    forms.setdefault("cancel", CancelForm(formdata=None) if enter and order.status in ("placed", "confirmed")
                     else None)
    forms.setdefault("repeat", ButtonForm(formdata=None) if enter else None)
    return render_template("sales/order_show.html", order=order, customer=customer, invoice=invoice, offer=offer,
                           repeat_of=repeat_of, items=items, timeline=timeline(order), forms=forms,
                           billing_user=current_user.has_role("billing")), status


@bp.route("/<int:order_id>")
def show(order_id):
    return _render_show(services.get_order(order_id))


def _act(order, form, change, success, form_name):
    """Validate `form`, change the order through a service, commit and go to `change()`'s order; a
    refusal shows the order page again (the form as typed, the error), 403 / 404 as pages."""
    try:
        if not form.validate_on_submit():
            raise _form_error(form)
        result = change()
    except DomainError as exc:
        db.session.rollback()
        if isinstance(exc, (NotFound, Forbidden)):
            raise
        flash(exc.message, "error")
        field = exc.details.get("field")
        if field and field in form and not form[field].errors:
            form[field].errors = [exc.message]
        return _render_show(db.session.get(Order, order.id), exc.status_code, {form_name: form})
    db.session.commit()
    flash(success(result) if callable(success) else success, "success")
    return redirect(url_for("orders.show", order_id=result.id), 303)


@bp.route("/<int:order_id>/confirm", methods=["POST"])
def confirm(order_id):
    _require(services.ORDER_ROLES, _("Only marketing and customer support can confirm orders."))
    order = services.get_order(order_id)

    def success(o):
        invoice = db.session.get(Invoice, o.invoice_id)
        return _("Order confirmed: invoice %(number)s created and sent to the customer.", number=invoice.number)

    return _act(order, ButtonForm(), lambda: services.confirm(order.id, current_user.id), success, "confirm")


@bp.route("/<int:order_id>/fulfil", methods=["POST"])
def fulfil(order_id):
    _require(FULFIL_ROLES, _("You cannot fulfil orders."))
    order = services.get_order(order_id)
    form = FulfilForm()
    return _act(order, form, lambda: services.fulfil(order.id, current_user.id, form.activation_date.data),
                _("Order fulfilled: the customer's products are recorded."), "fulfil")


@bp.route("/<int:order_id>/cancel", methods=["POST"])
def cancel(order_id):
    _require(services.ORDER_ROLES, _("Only marketing and customer support can cancel orders."))
    order = services.get_order(order_id)
    form = CancelForm()
    return _act(order, form, lambda: services.cancel(order.id, current_user.id, form.reason.data),
                _("Order cancelled."), "cancel")


@bp.route("/<int:order_id>/repeat", methods=["POST"])
def repeat(order_id):
    _require(services.ORDER_ROLES, _("Only marketing and customer support can enter orders."))
    order = services.get_order(order_id)
    return _act(order, ButtonForm(), lambda: services.repeat(order.id, current_user.id),
                lambda o: _("New order %(number)s placed at today's prices.", number=o.number), "repeat")


@bp.app_template_global()
def order_of_invoice(invoice):
    """The order an invoice was made for (source_type "order"), or None (the billing invoice page)."""
    if invoice is None or invoice.source_type != "order" or not invoice.source_id:
        return None
    return db.session.get(Order, invoice.source_id)
