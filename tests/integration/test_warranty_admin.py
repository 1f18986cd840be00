"""Admin pages of the catalogue: products (rupiah prices, guarantees, bundles), service contract
plans, issue categories."""
import html

import pytest
from sqlalchemy import select

from helpdesk.extensions import db
from helpdesk.sla.models import SlaPolicy, SlaRule
from helpdesk.tickets.models import AuditEvent
from helpdesk.warranty import admin_services
from helpdesk.warranty.models import ContractPlan, IssueCategory, Product
from tests.factories import PASSWORD
from tests.integration.test_mail_admin import admin, flashes  # noqa: F401  (the logged-in admin fixture)


@pytest.fixture
def catalogue(app):
    site_down = IssueCategory(code="site_down", name_id="Situs tidak bisa dibuka", name_en="Site down",
                              is_defect=True, product_line="domain_hosting")
    bug = IssueCategory(code="bug", name_id="Bug / error", name_en="Bug or error", is_defect=True)
    content = IssueCategory(code="content_change", name_id="Ubah konten", name_en="Content change", is_defect=False)
    hosting = Product(code="HOST-1G", name="Hosting 1 GB", product_line="domain_hosting", price=600_000,
                      warranty_days=30, cashback_days=30)
    db.session.add_all([site_down, bug, content, hosting])
    db.session.commit()
    return {"site_down": site_down, "bug": bug, "content": content, "hosting": hosting}


def page(resp):
    return html.unescape(resp.get_data(as_text=True))


def product_data(**overrides):
    data = {"code": "web-toko", "name": "Website Toko Online", "product_line": "website", "price": "4.500.000",
            "warranty_days": "90", "cashback_days": "30", "cashback_categories": ["site_down"],
            "bundle": "domain_hosting 365", "active": "y"}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_non_admins_are_refused(app, make, client, catalogue):
    agent = make.user(roles=["customer_support", "technical_support", "billing", "marketing"])
    db.session.commit()
    client.post("/login", data={"email": agent.email, "password": PASSWORD})
    for url in ("/admin/catalogue/products", "/admin/catalogue/products/new",
                f"/admin/catalogue/products/{catalogue['hosting'].id}", "/admin/catalogue/plans",
                "/admin/catalogue/plans/new", "/admin/catalogue/categories", "/admin/catalogue/categories/new",
                f"/admin/catalogue/categories/{catalogue['bug'].id}"):
        assert client.get(url).status_code == 403, url
    assert client.post("/admin/catalogue/products/new", data=product_data()).status_code == 403
    assert db.session.execute(select(Product.code)).scalars().all() == ["HOST-1G"]


def test_create_a_product_with_a_rupiah_price_and_a_bundle(app, client, admin, catalogue):
    form = page(client.get("/admin/catalogue/products/new"))
    assert "Website" in form and "Domain & hosting" in form and "Daily deal" in form  # the product lines
    assert "Site down (site_down)" in form and "Content change" not in form  # only defects for the cashback
    resp = client.post("/admin/catalogue/products/new", data=product_data())
    assert resp.status_code == 303, page(resp)[:3000]
    p = db.session.execute(select(Product).where(Product.code == "WEB-TOKO")).scalar_one()
    assert (p.name, p.product_line, p.price, p.warranty_days, p.cashback_days, p.active) == (
        "Website Toko Online", "website", 4_500_000, 90, 30, True)
    assert p.cashback_categories == ["site_down"]
    assert p.bundle == [{"target": "domain_hosting", "free_days": 365}]
    assert "Product WEB-TOKO saved." in flashes(client)
    listing = page(client.get("/admin/catalogue/products"))
    assert "WEB-TOKO" in listing and "Rp 4.500.000" in listing and "Rp 600.000" in listing
    assert "Domain & hosting: 365 days" in listing or "Domain & hosting: 365 hari" in listing
    audit = db.session.execute(select(AuditEvent).where(AuditEvent.object_type == "product")).scalar_one()
    assert audit.action == "created" and audit.object_id == p.id and "price=4500000" in audit.new_value


def test_edit_a_product_plain_digits_price_and_a_product_code_bundle(app, client, admin, catalogue):
    client.post("/admin/catalogue/products/new", data=product_data())
    p = db.session.execute(select(Product).where(Product.code == "WEB-TOKO")).scalar_one()
    form = page(client.get(f"/admin/catalogue/products/{p.id}"))
    assert 'value="4.500.000"' in form and "domain_hosting 365" in form  # shown as typed back
    resp = client.post(f"/admin/catalogue/products/{p.id}", data=product_data(
        price="7500000", bundle="host-1g 180\ndomain_hosting", cashback_categories=None, active=None))
    assert resp.status_code == 303, page(resp)[:3000]
    db.session.refresh(p)
    assert p.price == 7_500_000 and p.active is False and p.cashback_categories == []
    assert p.bundle == [{"target": "HOST-1G", "free_days": 180}, {"target": "domain_hosting", "free_days": 365}]
    audit = db.session.execute(select(AuditEvent).where(AuditEvent.object_type == "product",
                                                        AuditEvent.action == "updated")).scalar_one()
    assert "price=4500000" in audit.old_value and "price=7500000" in audit.new_value


def test_a_cashback_outside_websites_and_hosting_is_saved_with_a_warning(app, client, admin, catalogue):
    resp = client.post("/admin/catalogue/products/new", data=product_data(
        code="SEO-1", name="SEO bulanan", product_line="ads_seo", price="Rp 1.500.000", bundle=""))
    assert resp.status_code == 303
    assert db.session.execute(select(Product.price).where(Product.code == "SEO-1")).scalar_one() == 1_500_000
    assert "only websites and domain & hosting normally have one" in flashes(client)


@pytest.mark.parametrize("overrides, field_error", [
    ({"price": "4.50.000"}, "is not an amount in rupiah"),
    ({"price": "-100"}, "is not an amount in rupiah"),
    ({"code": "WEB TOKO!"}, "Capital letters, digits and dashes only"),
    ({"code": "host-1g"}, "HOST-1G is already taken."),
    ({"bundle": "vps 365"}, "VPS is neither a product line"),
    ({"bundle": "domain_hosting lama"}, "Line 1: write the target, then the number of days"),
    ({"bundle": "domain_hosting 0"}, "Line 1: the free days must be between 1 and 3650."),
    ({"bundle": "web-toko 30"}, "A product cannot bundle itself."),
    ({"warranty_days": "-1"}, "Number must be between 0 and 3650."),
])
def test_invalid_product_is_shown_again_with_the_typed_values(app, client, admin, catalogue, overrides,
                                                               field_error):
    data = product_data(name="Toko Batik Sekar", **overrides)
    resp = client.post("/admin/catalogue/products/new", data=data)
    body = page(resp)
    assert resp.status_code == 400
    assert field_error in body
    assert 'value="Toko Batik Sekar"' in body  # what was typed stays
    if "price" in overrides:
        assert f'value="{overrides["price"]}"' in body
    if "bundle" in overrides:
        assert overrides["bundle"] in body
    assert db.session.execute(select(Product.code)).scalars().all() == ["HOST-1G"]


def test_a_referenced_product_code_cannot_change(app, client, admin, catalogue):
    client.post("/admin/catalogue/products/new", data=product_data(bundle="HOST-1G 365"))
    host = catalogue["hosting"]
    resp = client.post(f"/admin/catalogue/products/{host.id}", data=product_data(
        code="HOST-1GB", name="Hosting 1 GB", product_line="domain_hosting", price="600.000", bundle=""))
    assert resp.status_code == 400
    assert "The code is used by Website Toko Online: change those first." in page(resp)
    db.session.refresh(host)
    assert host.code == "HOST-1G"


def test_contract_plan_with_lines_products_and_a_tier(app, client, admin, catalogue):
    policy = db.session.execute(select(SlaPolicy).limit(1)).scalar_one()
    db.session.add(SlaRule(position=1, kind="tier", value="gold", policy_id=policy.id))
    db.session.commit()
    form = page(client.get("/admin/catalogue/plans/new"))
    assert "gold" in form and "standard" in form  # the tiers the SLA rules use, as a hint
    assert "HOST-1G — Hosting 1 GB" in form
    resp = client.post("/admin/catalogue/plans/new", data={
        "name": "Premium Care", "coverage_days": "365", "covers_lines": ["website"], "covers_products": ["HOST-1G"],
        "support_tier": "Premium", "price": "2.400.000", "active": "y"})
    assert resp.status_code == 303, page(resp)[:3000]
    plan = db.session.execute(select(ContractPlan)).scalar_one()
    assert (plan.coverage_days, plan.covers_lines, plan.covers_products, plan.support_tier, plan.price) == (
        365, ["website"], ["HOST-1G"], "premium", 2_400_000)
    listing = page(client.get("/admin/catalogue/plans"))
    assert "Premium Care" in listing and "Rp 2.400.000" in listing and "Hosting 1 GB" in listing
    assert "premium" in listing
    # edit: the stored values are in the form; a plan covering nothing is refused with what was typed
    edit = page(client.get(f"/admin/catalogue/plans/{plan.id}"))
    assert 'value="2.400.000"' in edit and 'value="Premium Care"' in edit
    resp = client.post(f"/admin/catalogue/plans/{plan.id}", data={
        "name": "Premium Care Plus", "coverage_days": "180", "support_tier": "premium", "price": "2.400.000"})
    assert resp.status_code == 400
    body = page(resp)
    assert "Choose the product lines or the products the plan covers." in body
    assert 'value="Premium Care Plus"' in body and 'value="180"' in body
    db.session.refresh(plan)
    assert plan.name == "Premium Care"
    resp = client.post(f"/admin/catalogue/plans/{plan.id}", data={
        "name": "Premium Care", "coverage_days": "365", "covers_lines": ["website", "domain_hosting"],
        "support_tier": "premium vip", "price": "2.400.000"})
    assert resp.status_code == 400 and "A short lower-case word such as standard or premium." in page(resp)


def test_issue_category_create_and_edit(app, client, admin, catalogue):
    resp = client.post("/admin/catalogue/categories/new", data={
        "code": "Email_Down", "name_id": "Email tidak berfungsi", "name_en": "Email not working", "is_defect": "y",
        "product_line": "domain_hosting", "active": "y"})
    assert resp.status_code == 303, page(resp)[:3000]
    cat = db.session.execute(select(IssueCategory).where(IssueCategory.code == "email_down")).scalar_one()
    assert (cat.name_id, cat.name_en, cat.is_defect, cat.product_line, cat.active) == (
        "Email tidak berfungsi", "Email not working", True, "domain_hosting", True)
    resp = client.post("/admin/catalogue/categories/new", data={
        "code": "billing_question", "name_id": "Pertanyaan tagihan", "name_en": "Billing question", "product_line": "",
        "active": "y"})
    assert resp.status_code == 303
    billing = db.session.execute(select(IssueCategory).where(IssueCategory.code == "billing_question")).scalar_one()
    assert billing.is_defect is False and billing.product_line is None
    listing = page(client.get("/admin/catalogue/categories"))
    assert "Email tidak berfungsi" in listing and "Billing question" in listing
    # a duplicate code is refused, with the names kept
    resp = client.post("/admin/catalogue/categories/new", data={
        "code": "email_down", "name_id": "Email mati", "name_en": "Email dead", "is_defect": "y"})
    assert resp.status_code == 400
    assert "email_down is already taken." in page(resp), page(resp)[-3000:]
    assert 'value="Email mati"' in page(resp)
    # a category a product's cashback covers cannot stop being a defect
    client.post("/admin/catalogue/products/new", data=product_data())
    site_down = catalogue["site_down"]
    resp = client.post(f"/admin/catalogue/categories/{site_down.id}", data={
        "code": "site_down", "name_id": "Situs mati", "name_en": "Site down", "product_line": "", "active": "y"})
    assert resp.status_code == 400
    assert "The cashback guarantee of Website Toko Online covers this category" in page(resp)
    resp = client.post(f"/admin/catalogue/categories/{catalogue['bug'].id}", data={
        "code": "bug", "name_id": "Bug atau error", "name_en": "Bug or error", "is_defect": "y", "active": ""})
    assert resp.status_code == 303, page(resp)[-2500:]
    db.session.refresh(catalogue["bug"])
    assert catalogue["bug"].name_id == "Bug atau error" and catalogue["bug"].active is False
    events = db.session.execute(select(AuditEvent.action).where(AuditEvent.object_type == "issue_category")
                                .order_by(AuditEvent.id)).scalars().all()
    assert events == ["created", "created", "updated"]


def test_admin_tab_and_sub_navigation(app, client, admin, catalogue):
    body = page(client.get("/admin/catalogue/categories"))
    assert 'href="/admin/catalogue/products" aria-current="page"' not in body
    assert 'aria-current="page" href="/admin/catalogue/products"' in body  # the admin tab
    assert 'aria-current="page" href="/admin/catalogue/categories"' in body  # the sub-navigation
    assert "Situs tidak bisa dibuka" in body


@pytest.mark.parametrize("text, value", [("4.500.000", 4_500_000), ("4500000", 4_500_000), ("Rp 3.500.000", 3_500_000),
                                         ("4,500,000", 4_500_000), ("Rp4.500.000,-", 4_500_000), ("0", 0), ("", None)])
def test_parse_rupiah(text, value):
    assert admin_services.parse_rupiah(text) == value


@pytest.mark.parametrize("text", ["4.50.000", "abc", "-5", "4,5", "4.500.000,50", "1.5jt"])
def test_parse_rupiah_refuses(text):
    with pytest.raises(ValueError):
        admin_services.parse_rupiah(text)
