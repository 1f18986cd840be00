"""Customer pages for agents: search, profile with tickets, edit, merge."""
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import func, or_, select

from ..errors import DomainError
from ..extensions import db
from ..web import roles_required
from . import services
from .forms import CustomerForm, MergeCustomerForm
from .models import Customer, CustomerEmail

bp = Blueprint("customers", __name__, url_prefix="/customers")


@bp.before_request
@login_required
def _require_login():
    """Agents only."""


@bp.route("/")
def index():
    """Customers by name prefix or exact email (indexed lookups), newest first."""
    q = (request.args.get("q") or "").strip()
    stmt = select(Customer).where(Customer.merged_into_id.is_(None))
    if q:
        if "@" in q:
            stmt = stmt.where(Customer.id.in_(select(CustomerEmail.customer_id).where(CustomerEmail.email == q.lower())))
        else:
            stmt = stmt.where(or_(func.lower(Customer.name).like(q.lower() + "%"), Customer.phone == q))
    customers = db.session.execute(stmt.order_by(Customer.id.desc()).limit(50)).scalars().all()
    return render_template("customers/index.html", customers=customers, q=q)


@bp.route("/<int:customer_id>", methods=["GET", "POST"])
def show(customer_id):
    cust = db.session.get(Customer, customer_id)
    if cust is None:
        abort(404)
    if cust.merged_into_id:
        return redirect(url_for("customers.show", customer_id=cust.merged_into_id), 301)
    form = CustomerForm(obj=cust)
    if request.method == "GET":
        form.language.data = cust.language or ""
    if form.validate_on_submit():
        try:
            services.update_customer(cust.id, current_user.id, name=form.name.data, phone=form.phone.data,
                                     kind=form.kind.data, language=form.language.data or None, npwp=form.npwp.data)
            db.session.commit()
            flash(_("Saved."), "success")
            return redirect(url_for("customers.show", customer_id=cust.id))
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "error")
    tickets = services.customer_ticket_summary(cust.id, limit=50)
    return render_template("customers/show.html", customer=cust, form=form, merge_form=MergeCustomerForm(),
                           tickets=tickets)


@bp.route("/<int:customer_id>/merge", methods=["POST"])
@roles_required("admin", "customer_support")
def merge(customer_id):
    """Merge this customer into another (emails, tickets and history move)."""
    form = MergeCustomerForm()
    if not form.validate_on_submit():
        abort(400)
    raw = form.target_id.data.strip()
    target = services.find_by_email(raw) if "@" in raw else (db.session.get(Customer, int(raw)) if raw.isdigit() else None)
    if target is None:
        flash(_("No such customer."), "error")
        return redirect(url_for("customers.show", customer_id=customer_id))
    try:
        services.merge_customers(customer_id, target.id, current_user.id)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("customers.show", customer_id=customer_id))
    db.session.commit()
    flash(_("Customers merged."), "success")
    return redirect(url_for("customers.show", customer_id=target.id))
