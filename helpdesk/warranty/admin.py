"""Admin pages of the catalogue (on the admin blueprint, so admin-only): products with their warranty,
cashback window and bundles; service contract plans; issue categories.

Thin views: read the form, call helpdesk.warranty.admin_services with the acting admin's id and the
time, commit, flash, redirect. A rejected form is shown again (400) with what was typed and the errors.
"""
from flask import abort, flash, redirect, render_template, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user

from ..admin.views import bp
from ..errors import DomainError, NotFound
from ..extensions import db
from ..timeutil import utcnow
from . import admin_services as svc
from .admin_forms import LINE_CHOICES, LINE_LABELS, IssueCategoryForm, PlanForm, ProductForm

CATALOGUE_ENDPOINTS = ("admin.warranty_products", "admin.warranty_product_new", "admin.warranty_product_edit",
                       "admin.warranty_plans", "admin.warranty_plan_new", "admin.warranty_plan_edit",
                       "admin.warranty_categories", "admin.warranty_category_new", "admin.warranty_category_edit")


@bp.context_processor
def _catalogue_nav():
    return {"CATALOGUE_ENDPOINTS": CATALOGUE_ENDPOINTS}


def _saved(form, call):
    """Validate the form and run the service call: the committed result, or None after showing each
    error next to its field (a domain error's errors={field: message})."""
    if not form.validate_on_submit():
        return None
    try:
        result = call()
    except DomainError as exc:
        db.session.rollback()
        errors = dict(exc.details.get("errors") or {}) or {exc.details.get("field"): exc.message}
        for field, message in errors.items():
            if field and field in form:
                form[field].errors = list(form[field].errors) + [message]
            else:
                flash(message, "error")
        return None
    db.session.commit()
    return result


def _found(call, row_id):
    if row_id is None:
        return None
    try:
        return call(row_id)
    except NotFound:
        abort(404)


def _status(form):
    return 400 if form.is_submitted() else 200


def _english():
    return str(get_locale() or "id").startswith("en")


def _category_label(category):
    return category.name_en if _english() else category.name_id


def _render(template, form, **context):
    return render_template(template, form=form, LINE_LABELS=LINE_LABELS, category_label=_category_label,
                           **context), _status(form)


# ---------------------------------------------------------------- products

@bp.route("/catalogue/products")
def warranty_products():
    """The catalogue: every product with its price and guarantee terms."""
    return render_template("admin/warranty_products.html", products=svc.list_products(), LINE_LABELS=LINE_LABELS,
                           unusual_cashback=svc.unusual_cashback)


def _product_form(product):
    form = ProductForm(obj=product)  # a POST's data wins over the stored values
    form.cashback_categories.choices = [(c.code, f"{_category_label(c)} ({c.code})")
                                        for c in svc.list_categories() if c.is_defect]
    if not form.is_submitted() and product is not None:
        form.price.data = svc.format_rupiah_input(product.price)
        form.bundle.data = svc.format_bundle(product.bundle)
    return form


def _save_product(product_id):
    product = _found(svc.get_product, product_id)
    form = _product_form(product)
    saved = _saved(form, lambda: svc.save_product(
        product_id, current_user.id, utcnow(), code=form.code.data, name=form.name.data,
        product_line=form.product_line.data, price=form.price.data, warranty_days=form.warranty_days.data or 0,
        cashback_days=form.cashback_days.data or 0, cashback_categories=form.cashback_categories.data or [],
        bundle=form.bundle.data, active=form.active.data, term_days=form.term_days.data))
    if saved is not None:
        flash(_("Product %(code)s saved.", code=saved.code), "success")
        if svc.unusual_cashback(saved):
            flash(_("Note: %(code)s has a cashback guarantee although only websites and domain & hosting "
                    "normally have one.", code=saved.code), "warning")
        return redirect(url_for("admin.warranty_products"), 303)
    return _render("admin/warranty_product_form.html", form, product=_found(svc.get_product, product_id),
                   product_codes=sorted(svc.product_codes()))


@bp.route("/catalogue/products/new", methods=["GET", "POST"])
def warranty_product_new():
    return _save_product(None)


@bp.route("/catalogue/products/<int:product_id>", methods=["GET", "POST"])
def warranty_product_edit(product_id):
    return _save_product(product_id)


# ---------------------------------------------------------------- contract plans

@bp.route("/catalogue/plans")
def warranty_plans():
    products = {p.code: p for p in svc.list_products()}
    return render_template("admin/warranty_plans.html", plans=svc.list_plans(), products=products,
                           LINE_LABELS=LINE_LABELS)


def _plan_form(plan):
    form = PlanForm(obj=plan)
    form.covers_lines.choices = LINE_CHOICES
    form.covers_products.choices = [(p.code, f"{p.code} — {p.name}") for p in svc.list_products()]
    if not form.is_submitted() and plan is not None:
        form.price.data = svc.format_rupiah_input(plan.price)
    return form


def _save_plan(plan_id):
    plan = _found(svc.get_plan, plan_id)
    form = _plan_form(plan)
    saved = _saved(form, lambda: svc.save_plan(
        plan_id, current_user.id, utcnow(), name=form.name.data, coverage_days=form.coverage_days.data,
        covers_lines=form.covers_lines.data or [], covers_products=form.covers_products.data or [],
        support_tier=form.support_tier.data, price=form.price.data, active=form.active.data))
    if saved is not None:
        flash(_("Contract plan %(name)s saved.", name=saved.name), "success")
        return redirect(url_for("admin.warranty_plans"), 303)
    return _render("admin/warranty_plan_form.html", form, plan=_found(svc.get_plan, plan_id), tiers=svc.known_tiers())


@bp.route("/catalogue/plans/new", methods=["GET", "POST"])
def warranty_plan_new():
    return _save_plan(None)


@bp.route("/catalogue/plans/<int:plan_id>", methods=["GET", "POST"])
def warranty_plan_edit(plan_id):
    return _save_plan(plan_id)


# ---------------------------------------------------------------- issue categories

@bp.route("/catalogue/categories")
def warranty_categories():
    return render_template("admin/warranty_categories.html", categories=svc.list_categories(),
                           LINE_LABELS=LINE_LABELS)


def _save_category(category_id):
    category = _found(svc.get_category, category_id)
    form = IssueCategoryForm(obj=category)
    if form.product_line.data is None:
        form.product_line.data = ""  # any product line (stored as NULL, or left out of a post)
    saved = _saved(form, lambda: svc.save_category(
        category_id, current_user.id, code=form.code.data, name_id=form.name_id.data, name_en=form.name_en.data,
        is_defect=form.is_defect.data, product_line=form.product_line.data or None, active=form.active.data))
    if saved is not None:
        flash(_("Issue category %(code)s saved.", code=saved.code), "success")
        return redirect(url_for("admin.warranty_categories"), 303)
    return _render("admin/warranty_category_form.html", form, category=_found(svc.get_category, category_id))


@bp.route("/catalogue/categories/new", methods=["GET", "POST"])
def warranty_category_new():
    return _save_category(None)


@bp.route("/catalogue/categories/<int:category_id>", methods=["GET", "POST"])
def warranty_category_edit(category_id):
    return _save_category(category_id)
