"""Property tests for helpdesk/warranty/rules.py: the decision never depends on the server's time
zone; a later complaint never turns `paid` into `free_warranty`; cashback never comes back once it
has lapsed; the cashback window is exactly `cashback_days` days from day 1."""
import os
import time
from datetime import date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpdesk.warranty.rules import (
    ITEM_STATUSES, PRODUCT_LINES, Category, Contract, Item, ProductTerms, complaint_day, evaluate,
)

PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BASE = date(2025, 1, 1)
CATEGORY_CODES = ("down", "email_broken", "form_broken", "content_change")
# UTC-11 .. UTC+14, with and without DST
SERVER_ZONES = ("UTC", "Pacific/Pago_Pago", "America/Los_Angeles", "Europe/Berlin", "Asia/Jakarta",
                "Asia/Kolkata", "Pacific/Kiritimati")


def days(lo=0, hi=3 * 365):
    return st.integers(lo, hi).map(lambda n: BASE + timedelta(days=n))


products = st.builds(
    ProductTerms,
    code=st.sampled_from(("WEB-A", "WEB-B", "HOST-A", "SEO-A")),
    name=st.just("Produk"),
    product_line=st.sampled_from(PRODUCT_LINES),
    warranty_days=st.one_of(st.none(), st.integers(0, 400)),
    cashback_days=st.one_of(st.none(), st.integers(0, 60)),
    cashback_categories=st.frozensets(st.sampled_from(CATEGORY_CODES), max_size=2),
)


@st.composite
def items(draw, statuses=st.sampled_from(ITEM_STATUSES)):
    purchase = draw(days(0, 2 * 365))
    activation = draw(st.one_of(st.none(), st.integers(0, 40).map(lambda n: purchase + timedelta(days=n))))
    bundle = draw(st.one_of(st.none(), st.integers(0, 400).map(lambda n: purchase + timedelta(days=n))))
    return Item(draw(st.integers(1, 99)), draw(products), purchase, activation, draw(statuses), bundle)


@st.composite
def contracts(draw):
    start = draw(days(0, 3 * 365))
    end = start + timedelta(days=draw(st.integers(0, 500)))
    return Contract(draw(st.integers(1, 9)), "Plan", start, end,
                    covers_lines=draw(st.frozensets(st.sampled_from(PRODUCT_LINES), max_size=2)),
                    covers_products=draw(st.frozensets(st.sampled_from(("WEB-A", "HOST-A")), max_size=1)))


# no category yet, three defects, one request that is not a defect
categories = st.sampled_from((None, Category("down", True), Category("email_broken", True),
                              Category("form_broken", True), Category("content_change", False)))
utc_instants = st.integers(0, 4 * 365 * 1440).map(lambda m: datetime(2025, 1, 1) + timedelta(minutes=m))


def _under_zone(zone, fn):
    """fn() with the process's local time zone set to ``zone`` (restored afterwards)."""
    saved = os.environ.get("TZ")
    os.environ["TZ"] = zone
    time.tzset()
    try:
        return fn()
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved
        time.tzset()


@PROPS
@given(items(), st.lists(contracts(), max_size=3), utc_instants, categories)
def test_decision_never_depends_on_the_server_time_zone(item, contract_list, instant, category):
    def run():
        return (complaint_day(instant), evaluate(item, contract_list, instant, category).snapshot())

    results = [_under_zone(zone, run) for zone in SERVER_ZONES]
    assert all(result == results[0] for result in results)
    # and the day is the Jakarta day (UTC+7, no DST): the server's zone plays no part
    assert results[0][0] == (instant + timedelta(hours=7)).date()


def near(item, offset):
    """A day ``offset`` days from the item's purchase."""
    return item.purchase_date + timedelta(days=offset)


def every_day(item, contract_list):
    """Every day from 10 days before the purchase to 10 days after the last day any rule can turn
    (warranty, cashback, bundle, contracts): the properties below are checked on all pairs of them."""
    ends = [item.purchase_date, item.warranty_end, item.cashback_end, item.bundle_free_until]
    ends += [c.end for c in contract_list]
    first = item.purchase_date - timedelta(days=10)
    last = max(d for d in ends if d is not None) + timedelta(days=10)
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


@PROPS
@given(items(), st.lists(contracts(), max_size=2), categories)
def test_a_later_complaint_never_turns_paid_into_free_warranty(item, contract_list, category):
    seen_paid = seen_not_warranty = None
    for day in every_day(item, contract_list):
        code = evaluate(item, contract_list, day, category).charge.code
        if seen_paid:
            assert code not in ("free_warranty", "free_bundle"), (seen_paid, day, code)
        if seen_not_warranty:
            assert code != "free_warranty", (seen_not_warranty, day, code)
        seen_paid = seen_paid or (day if code == "paid" else None)
        seen_not_warranty = seen_not_warranty or (day if code != "free_warranty" else None)


@PROPS
@given(items(), categories)
def test_cashback_never_comes_back_once_lapsed(item, category):
    lapsed_on = None
    for day in every_day(item, []):
        cashback = evaluate(item, [], day, category).cashback
        if lapsed_on:
            assert not cashback.eligible, (lapsed_on, day)
            assert cashback.lapsed or cashback.rule.startswith("item_"), (lapsed_on, day, cashback.rule)
        if cashback.until is not None and day > cashback.until and item.status == "active":
            assert cashback.lapsed  # past the last day, an active item's reason is always the lapse
        lapsed_on = lapsed_on or (day if cashback.lapsed else None)


@PROPS
@given(items(statuses=st.just("active")), st.sampled_from(CATEGORY_CODES))
def test_cashback_window_is_exactly_cashback_days_from_day_1(item, code):
    category = Category(code, True)
    covered = not item.product.cashback_categories or code in item.product.cashback_categories
    start = item.activation_date or item.purchase_date
    span = [start + timedelta(days=n) for n in range(0, 80)]
    eligible = [d for d in span if evaluate(item, [], d, category).cashback.eligible]
    expected = (item.product.cashback_days or 0) if covered else 0
    assert len(eligible) == expected
    if eligible:
        assert eligible[0] == start and eligible == span[:expected]
        last = evaluate(item, [], eligible[-1], category).cashback
        assert last.days_left == 0 and last.until == eligible[-1]
        assert evaluate(item, [], start, category).cashback.days_left == expected - 1


@PROPS
@given(items(statuses=st.sampled_from(("active", "suspended"))), st.lists(contracts(), max_size=3),
       st.integers(-60, 800))
def test_no_category_is_never_shown_as_paid(item, contract_list, offset):
    complaint = near(item, offset)
    assert evaluate(item, contract_list, complaint, None).charge.code == "needs_classification"


@PROPS
@given(items(), st.lists(contracts(), max_size=3), st.integers(-60, 800), categories)
def test_free_decisions_carry_their_last_day_and_the_complaint_is_within_it(item, contract_list, offset,
                                                                           category):
    complaint = near(item, offset)
    charge = evaluate(item, contract_list, complaint, category).charge
    if charge.code.startswith("free_"):
        assert charge.until is not None and complaint <= charge.until
        assert category is not None
        if charge.code != "free_contract":
            assert category.is_defect
    else:
        assert charge.until is None
