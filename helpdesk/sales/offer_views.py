"""Marketing's offer pages (marketing and admins; 403 for the other agents).

- GET /offers: the offers, newest first, filtered by status.
- GET /offers/new?lead_id= | ?customer_id=: a confirmation; its POST creates the draft
  (services.create_offer) and opens it.
- /offers/<id>: the offer. While a draft: the lines editor (catalogue product or free text,
  quantity, unit price (the product's when left empty), discount "10%" or "50.000"), voucher, tax,
  validity, language, notes, totals; Save, "Add a row" (keeps what was typed) and Send
  (POST /offers/<id>/send). Once sent: the status, the link, the customer's answer, the order.
- GET /offers/<id>/print: a clean printable page; GET /offers/<id>.pdf: the same as a PDF, both in
  the offer's language.
Views are thin: helpdesk.sales.services holds the rules.
"""
from datetime import timedelta

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import select

from ..billing.money import format_rupiah
from ..errors import DomainError, Forbidden
from ..extensions import db
from ..timeutil import utcnow
from ..warranty import rules
from ..warranty.models import Product
from . import services
from .models import OFFER_STATUSES, Offer, Order
from .offer_forms import MAX_ROWS, ButtonForm, OfferForm

bp = Blueprint("offers", __name__, url_prefix="/offers")

PAGE_SIZE = 100
OFFER_STATUS_LABELS = {"draft": _l("Draft"), "sent": _l("Sent"), "accepted": _l("Accepted"),
                       "declined": _l("Declined"), "expired": _l("Expired"), "cancelled": _l("Cancelled")}


def may_offer(user):
    return bool(getattr(user, "is_authenticated", False) and hasattr(user, "has_role")
                and any(user.has_role(r) for r in services.OFFER_ROLES))


@bp.before_request
@login_required
def _marketing_only():
    if not may_offer(current_user):
        raise Forbidden(_("Only marketing can make offers."))


@bp.app_context_processor
def _globals():
    return {"offers_visible": lambda: may_offer(current_user), "OFFER_STATUS_LABELS": OFFER_STATUS_LABELS}


@bp.app_template_global("sales_offers")
def sales_offers(customer_id=None, lead_id=None):
    """The offers of a customer or a lead (for their pages), newest first."""
    if not (customer_id or lead_id):
        return []
    return services.offers_of(customer_id=customer_id) if customer_id else services.offers_of(lead_id=lead_id)


@bp.app_template_global("offer_tax_label")
def offer_tax_label(rate_bp):
    from .pdf import tax_label

    return tax_label(rate_bp)


# ---------------------------------------------------------------- helpers

def party_of(offer):
    """(lead, customer) of an offer."""
    from ..customers.models import Customer
    from ..leads.models import Lead

    lead = db.session.get(Lead, offer.lead_id) if offer.lead_id else None
    customer = db.session.get(Customer, offer.customer_id) if offer.customer_id else None
    return lead, customer


def order_of(offer):
    return db.session.execute(select(Order).where(Order.offer_id == offer.id)).scalar_one_or_none()


def order_url(order):
    if order is None:
        return None
    from flask import current_app

    if "orders.show" in current_app.view_functions:
        return url_for("orders.show", order_id=order.id)
    return f"/orders/{order.id}"


def _products():
    return db.session.execute(select(Product).where(Product.active.is_(True))
                              .order_by(Product.name, Product.id)).scalars().all()


def _product_choices(products):
    return [("", _("Free text"))] + [(str(p.id), f"{p.name} ({format_rupiah(int(p.price or 0))})") for p in products]


def _today():
    return rules.complaint_day(utcnow())


def _fill(form, offer):
    """The editor's fields from a stored offer."""
    while len(form.lines):
        form.lines.pop_entry()
    for ln in offer.lines:
        form.lines.append_entry({"product_id": str(ln.product_id or ""), "description": ln.description,
                                 "quantity": str(ln.quantity), "unit_price": format_rupiah(ln.unit_price)[3:],
                                 "discount": format_rupiah(ln.discount)[3:] if ln.discount else ""})
    form.lines.append_entry()
    form.voucher.data = offer.voucher.code if offer.voucher is not None else ""
    form.tax_rate.data = str(offer.tax_rate_bp or 0)
    form.valid_days.data = max(1, (offer.valid_until - _today()).days)
    form.locale.data = offer.locale if offer.locale in ("id", "en") else "id"
    form.notes.data = offer.notes or ""


def _tax_choices(form, offer):
    """No tax, PPN 11 %, and the offer's or the configured rate when it is another one."""
    known = dict(form.tax_rate.choices)
    for rate in (offer.tax_rate_bp or 0, services.tax_rate_default()):
        if str(rate) not in known:
            known[str(rate)] = _("Tax %(rate)s", rate=offer_tax_label(rate))
    form.tax_rate.choices = list(known.items())


def _page(offer, form=None, status=200, field_errors=None):
    products = _products()
    if form is None:
        form = OfferForm(formdata=None)
        _fill(form, offer)
    _tax_choices(form, offer)
    choices = _product_choices(products)
    for row in form.lines:
        row.form.product_id.choices = choices
    lead, customer = party_of(offer)
    to, name, _locale = services.recipient(offer)
    order = order_of(offer)
    link = services.link_url(offer) if offer.status == "sent" else None
    return render_template("sales/offer.html", offer=offer, form=form, lead=lead, customer=customer,
                           recipient=(to, name), order=order, order_url=order_url(order), link=link,
                           button=ButtonForm(formdata=None), field_errors=field_errors or {},
                           prices={str(p.id): int(p.price or 0) for p in products},
                           line_discounts=(offer.discount_total or 0) - (offer.voucher_discount or 0),
                           max_rows=MAX_ROWS), status


# ---------------------------------------------------------------- pages

@bp.route("")
def index():
    status = request.args.get("status") or ""
    q = select(Offer)
    if status in OFFER_STATUSES:
        q = q.where(Offer.status == status)
    else:
        status = ""
    offers = db.session.execute(q.order_by(Offer.id.desc()).limit(PAGE_SIZE)).scalars().all()
    parties = {o.id: party_of(o) for o in offers}
    return render_template("sales/offers.html", offers=offers, status=status, parties=parties,
                           statuses=OFFER_STATUSES)


def _int_arg(source, name):
    value = (source.get(name) or "").strip()
    return int(value) if value.isdigit() else None


@bp.route("/new", methods=["GET", "POST"])
def new():
    """GET: "Make an offer for <name>?"; POST: the draft is created and opened."""
    from ..customers.models import Customer
    from ..leads.models import Lead

    source = request.form if request.method == "POST" else request.args
    lead_id, customer_id = _int_arg(source, "lead_id"), _int_arg(source, "customer_id")
    lead = db.session.get(Lead, lead_id) if lead_id else None
    customer = db.session.get(Customer, customer_id) if customer_id else None
    if lead is None and customer is None:
        return render_template("sales/offer_new.html", lead=None, customer=None, form=ButtonForm(formdata=None),
                               error=_("Open a lead or a customer and make the offer from there.")), 400
    form = ButtonForm()
    if request.method == "POST":
        if not form.validate():
            return render_template("sales/offer_new.html", lead=lead, customer=customer, form=form,
                                   error=_("The form has expired. Please try again.")), 400
        offer = services.create_offer(current_user.id, lead_id=lead.id if lead else None,
                                      customer_id=customer.id if customer else None)
        db.session.commit()
        flash(_("Offer %(number)s created. Add its lines.", number=offer.number), "success")
        return redirect(url_for("offers.show", offer_id=offer.id), 303)
    return render_template("sales/offer_new.html", lead=lead, customer=customer, form=ButtonForm(formdata=None),
                           error=None)


@bp.route("/<int:offer_id>", methods=["GET", "POST"])
def show(offer_id):
    offer = services.get_offer(offer_id)
    if request.method == "GET":
        return _page(offer)
    if offer.status != "draft":
        flash(_("Only a draft offer can be changed."), "error")
        return _page(offer, status=409)
    form = OfferForm()
    _tax_choices(form, offer)
    for row in form.lines:
        row.form.product_id.choices = _product_choices(_products())
    if form.action.data == "add_row":
        if len(form.lines) < MAX_ROWS:
            form.lines.append_entry()
        return _page(offer, form=form)
    if not form.validate():
        return _page(offer, form=form, status=400)
    try:
        services.save_lines(offer.id, current_user.id, form.raw_lines(), voucher_code=form.voucher.data,
                            tax_rate_bp=int(form.tax_rate.data or 0), notes=form.notes.data or "")
        offer.valid_until = _today() + timedelta(days=int(form.valid_days.data))
        offer.locale = form.locale.data if form.locale.data in ("id", "en") else offer.locale
    except DomainError as exc:
        db.session.rollback()
        offer = services.get_offer(offer_id)
        field = exc.details.get("field") or "form"
        return _page(offer, form=form, status=exc.status_code, field_errors={field: exc.message})
    db.session.commit()
    flash(_("Offer saved."), "success")
    return redirect(url_for("offers.show", offer_id=offer.id), 303)


@bp.route("/<int:offer_id>/send", methods=["POST"])
def send(offer_id):
    offer = services.get_offer(offer_id)
    form = ButtonForm()
    if not form.validate():
        flash(_("The form has expired. Please try again."), "error")
        return _page(offer, status=400)
    try:
        services.send(offer.id, current_user.id)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return _page(services.get_offer(offer_id), status=exc.status_code)
    db.session.commit()
    to, _name, _locale = services.recipient(offer)
    flash(_("Offer %(number)s sent to %(to)s.", number=offer.number, to=to), "success")
    return redirect(url_for("offers.show", offer_id=offer.id), 303)


# ---------------------------------------------------------------- print and PDF

def offer_lang(offer):
    return offer.locale if offer.locale in ("id", "en") else "id"


def party_lines(offer):
    lead, customer = party_of(offer)
    to, name, _locale = services.recipient(offer)
    lines = [name or (customer.name if customer else lead.name if lead else "")]
    if lead is not None and lead.company and not customer:
        lines.append(lead.company)
    if to:
        lines.append(to)
    return [x for x in lines if x]


def print_page(offer, template="sales/offer_print.html", **extra):
    lang = offer_lang(offer)
    with force_locale(lang):
        return render_template(template, offer=offer, lang=lang, party=party_lines(offer),
                               valid_until=rules.format_date(offer.valid_until, lang),
                               line_discounts=(offer.discount_total or 0) - (offer.voucher_discount or 0), **extra)


def pdf_response(offer, company):
    from .pdf import build_pdf, offer_document

    lang = offer_lang(offer)
    with force_locale(lang):
        doc = offer_document(offer, company, party_lines(offer), lambda d: rules.format_date(d, lang))
    data = build_pdf(doc)
    filename = offer.number.replace("/", "-") + ".pdf"
    return Response(data, mimetype="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{filename}"'})


def company_of():
    from flask import current_app

    return current_app.jinja_env.globals["company"]()


@bp.route("/<int:offer_id>/print")
def print_offer(offer_id):
    return print_page(services.get_offer(offer_id))


@bp.route("/<int:offer_id>.pdf")
def pdf(offer_id):
    return pdf_response(services.get_offer(offer_id), company_of())
