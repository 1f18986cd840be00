"""Customer pages for agents: search, profile with tickets, edit, merge."""
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import func, or_, select

from ..errors import DomainError
from ..extensions import db
from ..warranty import services as warranty_services
from ..warranty.forms import ContractForm, ItemForm
from ..warranty.models import ContractPlan, Product
from ..web import roles_required
from . import services
from .forms import AddEmailForm, CustomerForm, MergeCustomerForm, OrganisationForm
from .models import Customer, CustomerEmail, Organisation

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


def _org_choices():
    orgs = db.session.execute(select(Organisation).order_by(Organisation.name)).scalars().all()
    return [("", _("None"))] + [(str(o.id), o.name) for o in orgs]


@bp.route("/<int:customer_id>", methods=["GET", "POST"])
def show(customer_id):
    """A customer's profile, edit form and tickets."""
    cust = db.session.get(Customer, customer_id)
    if cust is None:
        abort(404)
    if cust.merged_into_id:
        return redirect(url_for("customers.show", customer_id=cust.merged_into_id), 301)
    form = CustomerForm(obj=cust)
    form.organisation_id.choices = _org_choices()
    if request.method == "GET":
        form.language.data = cust.language or ""
        form.organisation_id.data = str(cust.organisation_id or "")
    if form.validate_on_submit():
        try:
            org = form.organisation_id.data
            services.update_customer(cust.id, current_user.id, name=form.name.data, phone=form.phone.data,
                                     kind=form.kind.data, language=form.language.data or None, npwp=form.npwp.data,
                                     organisation_id=int(org) if (org or "").isdigit() else None)
            db.session.commit()
            flash(_("Saved."), "success")
            return redirect(url_for("customers.show", customer_id=cust.id))
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "error")
    return _render_show(cust, form)


def _item_form(bound=True):
    """The add-item form (bound to the posted data, or empty), with the active products."""
    form = ItemForm() if bound else ItemForm(formdata=None)
    products = db.session.execute(select(Product).where(Product.active.is_(True))
                                  .order_by(Product.product_line, Product.name)).scalars().all()
    form.product_id.choices = [(str(p.id), f"{p.name} ({p.code})") for p in products]
    return form


def _contract_form(bound=True):
    form = ContractForm() if bound else ContractForm(formdata=None)
    plans = db.session.execute(select(ContractPlan).where(ContractPlan.active.is_(True))
                               .order_by(ContractPlan.name)).scalars().all()
    form.plan_id.choices = [(str(p.id), p.name) for p in plans]
    return form


def _render_show(cust, form=None, item_form=None, contract_form=None, status=200):
    """The profile page; a rejected form is passed in and shown again as typed."""
    if form is None:
        form = CustomerForm(formdata=None, obj=cust)
        form.organisation_id.choices = _org_choices()
        form.language.data = cust.language or ""
        form.organisation_id.data = str(cust.organisation_id or "")
    tickets = services.customer_ticket_summary(cust.id, limit=50)
    items = warranty_services.items_of(cust.id)
    contracts = warranty_services.contracts_of(cust.id)
    today = warranty_services.local_today()
    from ..billing.services import invoices_of
    from ..warranty.views import covering_contracts
    from ..leads.services import leads_of_customer
    from ..sales.services import orders_of

    return render_template("customers/show.html", customer=cust, form=form, merge_form=MergeCustomerForm(),
                           email_form=AddEmailForm(), tickets=tickets, items=items,
                           item_contracts={i.id: covering_contracts(i, contracts) for i in items},
                           contracts=contracts, today=today, invoices=invoices_of(cust.id),
                           leads=leads_of_customer(cust.id),
                           orders=orders_of(cust.id),
                           effective_tier=warranty_services.effective_tier(cust, today),
                           item_form=item_form or _item_form(bound=False),
                           contract_form=contract_form or _contract_form(bound=False)), status


def _customer_or_404(customer_id):
    cust = db.session.get(Customer, customer_id)
    if cust is None or cust.merged_into_id:
        abort(404)
    return cust


def _add_owned(customer_id, form_factory, form_name, create, success):
    """Validate a customer-page form, create through the warranty service, or show the page again
    with the form as typed (a service error on a field is shown at that field)."""
    cust = _customer_or_404(customer_id)
    form = form_factory()
    if not form.validate_on_submit():
        return _render_show(cust, status=400, **{form_name: form})
    try:
        create(cust, form)
    except DomainError as exc:
        db.session.rollback()
        name = {"product": "product_id", "plan": "plan_id"}.get(exc.details.get("field"), exc.details.get("field"))
        field = getattr(form, name, None) if name else None
        if field is not None and hasattr(field, "errors"):
            field.errors = list(field.errors) + [exc.message]
        else:
            flash(exc.message, "error")
        return _render_show(cust, status=exc.status_code, **{form_name: form})
    db.session.commit()
    flash(success, "success")
    return redirect(url_for("customers.show", customer_id=cust.id))


@bp.route("/<int:customer_id>/items", methods=["POST"])
def add_item(customer_id):
    """Record something the customer owns (a website also brings its bundled domain and hosting)."""
    return _add_owned(customer_id, _item_form, "item_form", lambda cust, form: warranty_services.create_item(
        customer_id=cust.id, product_id=int(form.product_id.data), purchase_date=form.purchase_date.data,
        activation_date=form.activation_date.data, reference=form.reference.data,
        identifier=form.identifier.data, status=form.status.data, amount_paid=_rupiah(form.amount_paid.data),
        server=form.server.data),
        _("Item added."))


def _rupiah(text):
    """A typed rupiah amount ("1.250.000") or None; a bad one is refused on the amount field."""
    from ..billing.money import MoneyError, parse_rupiah

    try:
        return parse_rupiah(text)
    except MoneyError:
        raise DomainError(_("Enter the amount in whole rupiah."), field="amount_paid") from None


@bp.route("/<int:customer_id>/contracts", methods=["POST"])
def add_contract(customer_id):
    """Record a service contract of the customer (from its start, for the plan's coverage)."""
    return _add_owned(customer_id, _contract_form, "contract_form", lambda cust, form: warranty_services.add_contract(
        customer_id=cust.id, plan_id=int(form.plan_id.data), start=form.start.data,
        reference=form.contract_reference.data),
        _("Service contract added."))


@bp.route("/<int:customer_id>/emails", methods=["POST"])
def add_email(customer_id):
    """Add an email address to a customer."""
    form = AddEmailForm()
    if form.validate_on_submit():
        try:
            services.add_email(customer_id, current_user.id, form.email.data)
            db.session.commit()
            flash(_("Email address added."), "success")
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "error")
    else:
        flash(_("That is not a valid email address."), "error")
    return redirect(url_for("customers.show", customer_id=customer_id))


@bp.route("/organisations", methods=["GET", "POST"])
def organisations():
    """B2B organisations: list and create."""
    form = OrganisationForm()
    if form.validate_on_submit():
        org = services.create_organisation(name=form.name.data, npwp=form.npwp.data,
                                           contacts_see_all_tickets=form.contacts_see_all_tickets.data)
        db.session.commit()
        flash(_("Organisation created."), "success")
        return redirect(url_for("customers.organisation", org_id=org.id))
    orgs = db.session.execute(select(Organisation).order_by(Organisation.name)).scalars().all()
    return render_template("customers/organisations.html", orgs=orgs, form=form), (400 if form.errors else 200)


@bp.route("/organisations/<int:org_id>", methods=["GET", "POST"])
def organisation(org_id):
    """An organisation: its details and contact persons."""
    org = db.session.get(Organisation, org_id)
    if org is None:
        abort(404)
    form = OrganisationForm(obj=org)
    if form.validate_on_submit():
        try:
            services.update_organisation(org.id, current_user.id, name=form.name.data, npwp=form.npwp.data,
                                         contacts_see_all_tickets=form.contacts_see_all_tickets.data)
            db.session.commit()
            flash(_("Saved."), "success")
            return redirect(url_for("customers.organisation", org_id=org.id))
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "error")
    contacts = db.session.execute(select(Customer).where(Customer.organisation_id == org.id,
                                                         Customer.merged_into_id.is_(None))
                                  .order_by(Customer.name)).scalars().all()
    return render_template("customers/organisation.html", org=org, form=form, contacts=contacts)


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
