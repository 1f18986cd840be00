"""Admin rules of the catalogue: products (with their guarantee terms and bundles), service contract
plans, issue categories.

Services take ids and primitives (the acting admin's id and `now` included), raise DomainError and
only flush: the view owns the commit. A rejected input raises DomainError with
`errors={field name: message}` (every problem of the form at once). Every change is recorded in the
audit trail (object types product, contract_plan, issue_category).

Money is integer rupiah; an admin types "4.500.000", "4500000" or "Rp 4.500.000" (parse_rupiah).
A bundle is typed one entitlement a line: "<product line or product code> <free days>"
("domain_hosting 365"); the days default to 365 (parse_bundle).
"""
import re

from sqlalchemy import func, select

from ..auth.i18n import _
from ..errors import DomainError
from ..extensions import db
from ..sla.admin_services import _get, _raise
from ..tickets.services import audit
from . import rules
from .models import ContractPlan, IssueCategory, Product

MAX_DAYS = 3650
MAX_PRICE = 10 ** 12
PRODUCT_CODE = re.compile(r"^[A-Z0-9](?:[A-Z0-9-]{0,38}[A-Z0-9])?$")
CATEGORY_CODE = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,38}[a-z0-9])?$")
TIER = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,30}[a-z0-9])?$")
CASHBACK_LINES = (rules.WEBSITE, rules.DOMAIN_HOSTING)  # the lines the cashback guarantee normally exists for
_RUPIAH = (re.compile(r"\d+(?:,-|,00)?"),  # 4500000, 4500000,-
           re.compile(r"\d{1,3}(?:\.\d{3})+(?:,-|,00)?"),  # 4.500.000 (Indonesian), 4.500.000,-
           re.compile(r"\d{1,3}(?:,\d{3})+(?:\.00)?"),  # 4,500,000 (English)
           re.compile(r"\d{1,3}(?: \d{3})+"))  # 4 500 000


# ---------------------------------------------------------------- parsing

def parse_rupiah(text):
    """Integer rupiah from 4500000, "4500000", "4.500.000", "4,500,000", "Rp 4.500.000" or "4.500.000,-";
    None when empty. Raises ValueError for anything else (negative amounts and cents included)."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text < 0:
            raise ValueError(text)
        return text
    raw = re.sub(r"^rp\.?\s*", "", (text or "").strip(), flags=re.I).strip()
    if not raw:
        if (text or "").strip():
            raise ValueError(text)
        return None
    if not any(pattern.fullmatch(raw) for pattern in _RUPIAH):
        raise ValueError(text)
    value = int(re.sub(r"\D", "", re.sub(r"(?:[.,]00|,-)$", "", raw)))
    if value > MAX_PRICE:
        raise ValueError(text)
    return value


def format_rupiah_input(amount):
    """4500000 -> "4.500.000" (what the form shows to edit); "" for None."""
    return "" if amount is None else f"{int(amount):,}".replace(",", ".")


def parse_bundle(text):
    """[{"target": ..., "free_days": n}] from lines "domain_hosting 365", "HOST-1G: 180" or "domain_hosting"
    (365 days). Targets are not checked here (see validate_bundle). Raises ValueError(message)."""
    out = []
    for n, line in enumerate((text or "").replace(";", "\n").splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        parts = [p for p in re.split(r"[\s:=,]+", line) if p]
        days = rules.DEFAULT_BUNDLE_DAYS
        if len(parts) == 2 and parts[1].isdigit():
            days = int(parts[1])
        elif len(parts) == 2 and parts[1].lower() in ("hari", "days", "day", "d"):
            raise ValueError(_("Line %(n)d: write the target, then the number of days (domain_hosting 365).", n=n))
        elif len(parts) == 3 and parts[1].isdigit() and parts[2].lower() in ("hari", "days", "day", "d"):
            days = int(parts[1])
        elif len(parts) != 1:
            raise ValueError(_("Line %(n)d: write the target, then the number of days (domain_hosting 365).", n=n))
        if not 1 <= days <= MAX_DAYS:
            raise ValueError(_("Line %(n)d: the free days must be between 1 and %(max)d.", n=n, max=MAX_DAYS))
        target = parts[0]
        target = target.lower() if target.lower() in rules.PRODUCT_LINES else target.upper()
        if any(b["target"] == target for b in out):
            raise ValueError(_("Line %(n)d: %(target)s is listed twice.", n=n, target=target))
        out.append({"target": target, "free_days": days})
    return out


def format_bundle(bundle):
    return "\n".join(f"{b['target']} {int(b.get('free_days') or rules.DEFAULT_BUNDLE_DAYS)}" for b in bundle or ())


# ---------------------------------------------------------------- helpers

def _text(value, field, errors, max_len=120, required=True):
    value = " ".join((value or "").split())
    if required and not value:
        errors[field] = _("This field is required.")
    elif len(value) > max_len:
        errors[field] = _("At most %(num)d characters.", num=max_len)
    return value


def _days(value, field, errors, minimum=0):
    if value is None or isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= MAX_DAYS:
        errors[field] = _("A number of days between %(min)d and %(max)d.", min=minimum, max=MAX_DAYS)
        return None
    return value


def _price(value, errors):
    try:
        price = parse_rupiah(value)
    except ValueError:
        errors["price"] = _("%(value)s is not an amount in rupiah: write 4500000 or 4.500.000.", value=value)
        return None
    if price is None:
        errors["price"] = _("Give the price in rupiah (0 when free).")
    return price


def _taken(model, column, value, row_id):
    return db.session.execute(select(model.id).where(func.lower(column) == value.lower(),
                                                     model.id != (row_id or 0))).first() is not None


def _code(code, pattern, model, row_id, errors, format_message):
    """A unique code of the right shape (error field "code")."""
    if not code:
        errors["code"] = _("This field is required.")
    elif not pattern.match(code):
        errors["code"] = format_message
    elif _taken(model, model.code, code, row_id):
        errors["code"] = _("%(name)s is already taken.", name=code)
    return code


def _record(row, actor_id, object_type, old, new):
    if old is None:
        audit(None, actor_id, "created", new=new, object_type=object_type, object_id=row.id)
    elif new != old:
        audit(None, actor_id, "updated", old=old, new=new, object_type=object_type, object_id=row.id)


def product_codes():
    return set(db.session.execute(select(Product.code)).scalars())


# ---------------------------------------------------------------- products

def get_product(product_id):
    return _get(Product, product_id, _("No such product."))


def list_products():
    return db.session.execute(select(Product).order_by(Product.product_line, Product.price, Product.code)).scalars().all()


def _product_references(code):
    """Names of the products and plans that refer to a product code (its bundles, plans' covers)."""
    users = [p.name for p in list_products() if any(b.get("target") == code for b in p.bundle or ())]
    users += [p.name for p in list_plans() if code in (p.covers_products or ())]
    return users


def validate_bundle(bundle, own_code, errors):
    """Each target must be a product line or an existing product code (not the product itself)."""
    codes = product_codes()
    for b in bundle:
        target = b["target"]
        if target == own_code:
            errors["bundle"] = _("A product cannot bundle itself.")
        elif target not in rules.PRODUCT_LINES and target not in codes:
            errors["bundle"] = _("%(target)s is neither a product line (%(lines)s) nor a product code.",
                                 target=target, lines=", ".join(rules.PRODUCT_LINES))


def save_product(product_id, actor_id, now, *, code, name, product_line, price, warranty_days=0, cashback_days=0,
                 cashback_categories=(), bundle="", active=True, term_days=None):
    """Create (product_id None) or update a product. `price`: rupiah (int or text); `bundle`: text lines or
    a list of {"target", "free_days"}; `term_days`: the renewal term of a renewable product (None: one-off).
    Error fields: code, name, product_line, price, warranty_days, cashback_days, cashback_categories,
    bundle, term_days. Returns the product."""
    product = get_product(product_id) if product_id else None
    errors = {}
    code = _code((code or "").strip().upper(), PRODUCT_CODE, Product, product_id, errors,
                 _("Capital letters, digits and dashes only, at most 40 (for example WEB-TOKO)."))
    if "code" not in errors and product is not None and code != product.code and _product_references(product.code):
        errors["code"] = _("The code is used by %(names)s: change those first.",
                           names=", ".join(_product_references(product.code)))
    name = _text(name, "name", errors)
    if product_line not in rules.PRODUCT_LINES:
        errors["product_line"] = _("Choose a product line.")
    price = _price(price, errors)
    warranty_days = _days(warranty_days, "warranty_days", errors)
    cashback_days = _days(cashback_days, "cashback_days", errors)
    if term_days is not None:
        term_days = _days(term_days, "term_days", errors, minimum=1)
    categories = list(dict.fromkeys(cashback_categories or ()))
    defects = {c.code for c in list_categories() if c.is_defect}
    if set(categories) - defects:
        errors["cashback_categories"] = _("Only defect categories can be covered by the cashback guarantee.")
    try:
        entitlements = list(bundle) if isinstance(bundle, (list, tuple)) else parse_bundle(bundle)
    except ValueError as exc:
        errors["bundle"] = str(exc)
    else:
        validate_bundle(entitlements, code, errors)
    _raise(errors)

    old = None if product is None else _product_summary(product)
    if product is None:
        product = Product(created_at=now)
        db.session.add(product)
    product.code, product.name, product.product_line, product.price = code, name, product_line, price
    product.warranty_days, product.cashback_days = warranty_days, cashback_days
    product.cashback_categories = categories
    product.bundle = [{"target": b["target"], "free_days": int(b["free_days"])} for b in entitlements]
    product.active = bool(active)
    product.term_days = term_days
    product.updated_at = now
    db.session.flush()
    _record(product, actor_id, "product", old, _product_summary(product))
    return product


def unusual_cashback(product):
    """True when a product outside websites and domain & hosting has a cashback window (allowed, but
    the policy normally gives it to those two lines only)."""
    return bool(product.cashback_days) and product.product_line not in CASHBACK_LINES


def _product_summary(p):
    bundle = ",".join(f"{b['target']}:{b['free_days']}" for b in p.bundle or ())
    return (f"{p.code} {p.name} line={p.product_line} price={p.price} warranty={p.warranty_days} "
            f"cashback={p.cashback_days}[{','.join(p.cashback_categories or [])}] bundle={bundle or '-'} "
            f"active={p.active}" + (f" term={p.term_days}" if p.term_days else ""))[:300]


# ---------------------------------------------------------------- contract plans

def get_plan(plan_id):
    return _get(ContractPlan, plan_id, _("No such contract plan."))


def list_plans():
    return db.session.execute(select(ContractPlan).order_by(ContractPlan.name)).scalars().all()


def known_tiers():
    """Support tiers in use: the SLA rules' tier values, the plans' tiers, "standard"."""
    from ..sla.models import SlaRule

    tiers = set(db.session.execute(select(SlaRule.value).where(SlaRule.kind == "tier")).scalars())
    tiers |= set(db.session.execute(select(ContractPlan.support_tier)).scalars())
    tiers.add("standard")
    return sorted(t for t in tiers if t)


def save_plan(plan_id, actor_id, now, *, name, coverage_days, covers_lines=(), covers_products=(),
              support_tier="standard", price=0, active=True):
    """Create or update a contract plan. Error fields: name, coverage_days, covers_lines, covers_products,
    support_tier, price. Returns the plan."""
    plan = get_plan(plan_id) if plan_id else None
    errors = {}
    name = _text(name, "name", errors)
    if name and "name" not in errors and _taken(ContractPlan, ContractPlan.name, name, plan_id):
        errors["name"] = _("%(name)s is already taken.", name=name)
    coverage_days = _days(coverage_days, "coverage_days", errors, minimum=1)
    lines = list(dict.fromkeys(covers_lines or ()))
    if set(lines) - set(rules.PRODUCT_LINES):
        errors["covers_lines"] = _("Choose product lines from the list.")
    products = list(dict.fromkeys(covers_products or ()))
    unknown = set(products) - product_codes()
    if unknown:
        errors["covers_products"] = _("Unknown product code: %(codes)s.", codes=", ".join(sorted(unknown)))
    if not lines and not products and "covers_lines" not in errors and "covers_products" not in errors:
        errors["covers_lines"] = _("Choose the product lines or the products the plan covers.")
    tier = (support_tier or "").strip().lower()
    if not TIER.match(tier):
        errors["support_tier"] = _("A short lower-case word such as standard or premium.")
    price = _price(price, errors)
    _raise(errors)

    old = None if plan is None else _plan_summary(plan)
    if plan is None:
        plan = ContractPlan(created_at=now)
        db.session.add(plan)
    plan.name, plan.coverage_days, plan.covers_lines, plan.covers_products = name, coverage_days, lines, products
    plan.support_tier, plan.price, plan.active = tier, price, bool(active)
    db.session.flush()
    _record(plan, actor_id, "contract_plan", old, _plan_summary(plan))
    return plan


def _plan_summary(p):
    return (f"{p.name} days={p.coverage_days} lines={','.join(p.covers_lines or [])} "
            f"products={','.join(p.covers_products or [])} tier={p.support_tier} price={p.price} active={p.active}")[:300]


# ---------------------------------------------------------------- issue categories

def get_category(category_id):
    return _get(IssueCategory, category_id, _("No such issue category."))


def list_categories():
    return db.session.execute(select(IssueCategory).order_by(IssueCategory.is_defect.desc(),
                                                             IssueCategory.code)).scalars().all()


def save_category(category_id, actor_id, *, code, name_id, name_en, is_defect=True, product_line=None, active=True):
    """Create or update an issue category. Error fields: code, name_id, name_en, product_line.
    Returns the category."""
    category = get_category(category_id) if category_id else None
    errors = {}
    code = _code((code or "").strip().lower(), CATEGORY_CODE, IssueCategory, category_id, errors,
                 _("Lower-case letters, digits, _ and - only, at most 40 (for example site_down)."))
    if "code" not in errors and category is not None and code != category.code:
        users = [p.name for p in list_products() if category.code in (p.cashback_categories or ())]
        if users:
            errors["code"] = _("The code is used by %(names)s: change those first.", names=", ".join(users))
    name_id = _text(name_id, "name_id", errors)
    name_en = _text(name_en, "name_en", errors)
    product_line = product_line or None
    if product_line is not None and product_line not in rules.PRODUCT_LINES:
        errors["product_line"] = _("Choose a product line.")
    if category is not None and not is_defect and category.is_defect:
        users = [p.name for p in list_products() if category.code in (p.cashback_categories or ())]
        if users:
            errors["is_defect"] = _("The cashback guarantee of %(names)s covers this category: change those first.",
                                    names=", ".join(users))
    _raise(errors)

    old = None if category is None else _category_summary(category)
    if category is None:
        category = IssueCategory()
        db.session.add(category)
    category.code, category.name_id, category.name_en = code, name_id, name_en
    category.is_defect, category.product_line, category.active = bool(is_defect), product_line, bool(active)
    db.session.flush()
    _record(category, actor_id, "issue_category", old, _category_summary(category))
    return category


def _category_summary(c):
    return (f"{c.code} {c.name_id} / {c.name_en} defect={c.is_defect} line={c.product_line or '-'} "
            f"active={c.active}")[:300]
