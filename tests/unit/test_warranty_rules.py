"""Table-driven tests for helpdesk/warranty/rules.py: every charge and cashback rule, and every
day boundary (day 1, day 30 at 23:59 WIB vs day 31 at 00:00 WIB, warranty last day vs the next)."""
import json
from datetime import date, datetime, timedelta

import pytest

from helpdesk.warranty.rules import (
    BundleEntitlement, Category, Contract, Item, ProductTerms, complaint_day, covering_contract,
    evaluate, format_date, window_end,
)

D = date.fromisoformat

HOSTING = ProductTerms("HOST-BISNIS", "Hosting Bisnis", "domain_hosting", warranty_days=365,
                       cashback_categories={"down", "email_broken"})
WEBSITE = ProductTerms("WEB-TOKO", "Website Toko Online", "website", warranty_days=90,
                       bundle=(BundleEntitlement("domain_hosting", 365),))
SEO = ProductTerms("SEO-LOKAL", "SEO Lokal", "ads_seo", warranty_days=30, cashback_days=0)
NO_WARRANTY = ProductTerms("DEAL-1", "Daily Deal Voucher", "daily_deal", warranty_days=0, cashback_days=None)

DOWN = Category("down", True)
BROKEN_FORM = Category("form_broken", True)
CONTENT = Category("content_change", False)

# hosting activated 3 Nov 2026: day 1 = 3 Nov, cashback day 30 = 2 Dec 2026,
# warranty day 365 = 2 Nov 2027
HOST_ITEM = Item(10, HOSTING, purchase_date=D("2026-11-01"), activation_date=D("2026-11-03"),
                 identifier="tokobatik.co.id")
# website activated 1 Jan 2026: warranty day 90 = 31 Mar 2026
WEB_ITEM = Item(20, WEBSITE, purchase_date=D("2025-12-20"), activation_date=D("2026-01-01"))
# bundled hosting of that website, free until 31 Dec 2026; its own warranty of 365 days from
# 1 Jan 2026 ends 31 Dec 2026 too, so give the bundled item a short-warranty product
BUNDLED_HOSTING = ProductTerms("HOST-FREE", "Hosting Gratis", "domain_hosting", warranty_days=14)
BUNDLE_ITEM = Item(21, BUNDLED_HOSTING, purchase_date=D("2026-01-01"), activation_date=D("2026-01-01"),
                   bundle_free_until=D("2026-12-31"))

GOLD = Contract(1, "Gold", D("2026-01-01"), D("2026-12-31"), covers_lines={"website"}, support_tier="gold")
SILVER_LATER = Contract(2, "Silver", D("2026-06-01"), D("2027-05-31"), covers_lines={"website"},
                        support_tier="silver")
BY_PRODUCT = Contract(3, "Hosting Care", D("2026-01-01"), D("2026-06-30"), covers_products={"HOST-FREE"})
OTHER_LINE = Contract(4, "SEO Care", D("2026-01-01"), D("2027-12-31"), covers_lines={"ads_seo"})


def _replace(item, **changes):
    return Item(**{**item.__dict__, **changes})


CHARGE_CASES = [
    # id, item, contracts, complaint, category, expected code, rule, until
    ("no item", None, [], D("2026-11-20"), DOWN, "unknown_item", "no_item", None),
    ("no item, no category", None, [], D("2026-11-20"), None, "unknown_item", "no_item", None),
    ("no category", HOST_ITEM, [], D("2026-11-20"), None, "needs_classification", "no_category", None),
    ("no category, out of warranty", WEB_ITEM, [], D("2027-01-01"), None,
     "needs_classification", "no_category", None),
    ("no complaint date", HOST_ITEM, [], None, DOWN, "needs_classification", "no_complaint_date", None),
    ("warranty day 1", HOST_ITEM, [], D("2026-11-03"), DOWN, "free_warranty", "warranty_period", D("2027-11-02")),
    ("warranty before activation", HOST_ITEM, [], D("2026-11-02"), DOWN,
     "free_warranty", "warranty_period", D("2027-11-02")),
    ("warranty last day", HOST_ITEM, [], D("2027-11-02"), DOWN, "free_warranty", "warranty_period", D("2027-11-02")),
    ("warranty day after", HOST_ITEM, [], D("2027-11-03"), DOWN, "paid", "out_of_warranty", None),
    ("website warranty last day", WEB_ITEM, [], D("2026-03-31"), DOWN,
     "free_warranty", "warranty_period", D("2026-03-31")),
    ("website warranty day after", WEB_ITEM, [], D("2026-04-01"), DOWN, "paid", "out_of_warranty", None),
    ("warranty from purchase when not activated", _replace(WEB_ITEM, activation_date=None), [],
     D("2026-03-19"), DOWN, "free_warranty", "warranty_period", D("2026-03-19")),
    ("not activated, day after", _replace(WEB_ITEM, activation_date=None), [], D("2026-03-20"), DOWN,
     "paid", "out_of_warranty", None),
    ("no warranty at all", Item(30, NO_WARRANTY, D("2026-01-01")), [], D("2026-01-01"), DOWN,
     "paid", "out_of_warranty", None),
    ("non-defect in warranty is paid", HOST_ITEM, [], D("2026-11-20"), CONTENT, "paid", "not_a_defect", None),
    ("contract after warranty", WEB_ITEM, [GOLD], D("2026-04-01"), DOWN, "free_contract", "contract:1", D("2026-12-31")),
    ("contract first day", _replace(WEB_ITEM, activation_date=D("2025-01-01")), [GOLD], D("2026-01-01"), DOWN,
     "free_contract", "contract:1", D("2026-12-31")),
    ("contract last day", WEB_ITEM, [GOLD], D("2026-12-31"), DOWN, "free_contract", "contract:1", D("2026-12-31")),
    ("contract day after", WEB_ITEM, [GOLD], D("2027-01-01"), DOWN, "paid", "out_of_warranty", None),
    ("contract before it starts", _replace(WEB_ITEM, activation_date=D("2025-01-01")), [GOLD], D("2025-12-31"),
     DOWN, "paid", "out_of_warranty", None),
    ("contract covers non-defect service", WEB_ITEM, [GOLD], D("2026-02-01"), CONTENT,
     "free_contract", "contract:1", D("2026-12-31")),
    ("contract for another line", WEB_ITEM, [OTHER_LINE], D("2026-04-01"), DOWN, "paid", "out_of_warranty", None),
    ("contract by product code", BUNDLE_ITEM, [BY_PRODUCT], D("2026-03-01"), CONTENT,
     "free_contract", "contract:3", D("2026-06-30")),
    ("overlap: latest end wins", WEB_ITEM, [GOLD, SILVER_LATER], D("2026-07-01"), DOWN,
     "free_contract", "contract:2", D("2027-05-31")),
    ("overlap: order does not matter", WEB_ITEM, [SILVER_LATER, GOLD], D("2026-07-01"), DOWN,
     "free_contract", "contract:2", D("2027-05-31")),
    ("overlap: only the running one", WEB_ITEM, [GOLD, SILVER_LATER], D("2026-05-31"), DOWN,
     "free_contract", "contract:1", D("2026-12-31")),
    ("bundle after its own warranty", BUNDLE_ITEM, [], D("2026-06-01"), DOWN, "free_bundle", "bundle", D("2026-12-31")),
    ("bundle last day", BUNDLE_ITEM, [], D("2026-12-31"), DOWN, "free_bundle", "bundle", D("2026-12-31")),
    ("expired bundle", BUNDLE_ITEM, [], D("2027-01-01"), DOWN, "paid", "out_of_warranty", None),
    ("bundle does not cover non-defects", BUNDLE_ITEM, [], D("2026-06-01"), CONTENT, "paid", "not_a_defect", None),
    ("precedence: warranty over contract and bundle", _replace(BUNDLE_ITEM, product=WEBSITE), [GOLD],
     D("2026-02-01"), DOWN, "free_warranty", "warranty_period", D("2026-03-31")),
    ("precedence: contract over bundle", _replace(BUNDLE_ITEM, product=WEBSITE), [GOLD],
     D("2026-06-01"), DOWN, "free_contract", "contract:1", D("2026-12-31")),
    ("precedence: bundle after contract", _replace(BUNDLE_ITEM, bundle_free_until=D("2027-03-01"),
                                                   product=WEBSITE), [GOLD],
     D("2027-02-01"), DOWN, "free_bundle", "bundle", D("2027-03-01")),
    ("suspended in warranty still free", _replace(HOST_ITEM, status="suspended"), [], D("2026-11-20"), DOWN,
     "free_warranty", "warranty_period", D("2027-11-02")),
    ("suspended out of warranty", _replace(WEB_ITEM, status="suspended"), [], D("2026-05-01"), DOWN,
     "paid", "out_of_warranty", None),
    ("cancelled in warranty is paid", _replace(HOST_ITEM, status="cancelled"), [], D("2026-11-20"), DOWN,
     "paid", "item_cancelled", None),
    ("cancelled with no category is paid", _replace(HOST_ITEM, status="cancelled"), [], D("2026-11-20"), None,
     "paid", "item_cancelled", None),
    ("expired under contract is paid", _replace(WEB_ITEM, status="expired"), [GOLD], D("2026-05-01"), DOWN,
     "paid", "item_expired", None),
]


@pytest.mark.parametrize("item,contracts,complaint,category,code,rule,until",
                         [c[1:] for c in CHARGE_CASES], ids=[c[0] for c in CHARGE_CASES])
def test_charge(item, contracts, complaint, category, code, rule, until):
    charge = evaluate(item, contracts, complaint, category).charge
    assert (charge.code, charge.rule, charge.until) == (code, rule, until)
    assert charge.explanation["id"] and charge.explanation["en"]
    assert charge.explanation["id"] != charge.explanation["en"]


CASHBACK_CASES = [
    # id, item, complaint, category, eligible, rule, until, days_left
    ("activation day is day 1", HOST_ITEM, D("2026-11-03"), DOWN, True, "window", D("2026-12-02"), 29),
    ("before activation", HOST_ITEM, D("2026-11-01"), DOWN, True, "window", D("2026-12-02"), 31),
    ("issue example: 12 days left", HOST_ITEM, D("2026-11-20"), DOWN, True, "window", D("2026-12-02"), 12),
    ("day 30 is the last day", HOST_ITEM, D("2026-12-02"), DOWN, True, "window", D("2026-12-02"), 0),
    ("day 31 lapsed", HOST_ITEM, D("2026-12-03"), DOWN, False, "window_ended", D("2026-12-02"), None),
    ("no category yet", HOST_ITEM, D("2026-11-20"), None, False, "no_category", D("2026-12-02"), 12),
    ("no category after the window", HOST_ITEM, D("2026-12-03"), None, False, "window_ended", D("2026-12-02"), None),
    ("non-defect", HOST_ITEM, D("2026-11-20"), CONTENT, False, "not_a_defect", D("2026-12-02"), 12),
    ("defect not among the covered", HOST_ITEM, D("2026-11-20"), BROKEN_FORM, False, "category_not_covered",
     D("2026-12-02"), 12),
    ("empty covered set covers every defect", WEB_ITEM, D("2026-01-30"), BROKEN_FORM, True, "window",
     D("2026-01-30"), 0),
    ("window from purchase when not activated", _replace(WEB_ITEM, activation_date=None), D("2026-01-18"),
     BROKEN_FORM, True, "window", D("2026-01-18"), 0),
    ("custom window length", Item(40, ProductTerms("WEB-X", "Website X", "website", cashback_days=7),
                                  D("2026-01-01"), D("2026-01-01")), D("2026-01-08"), DOWN,
     False, "window_ended", D("2026-01-07"), None),
    ("product without cashback (0)", Item(41, SEO, D("2026-01-01"), D("2026-01-01")), D("2026-01-02"), DOWN,
     False, "no_cashback", None, None),
    ("product without cashback (None)", Item(42, NO_WARRANTY, D("2026-01-01")), D("2026-01-02"), DOWN,
     False, "no_cashback", None, None),
    ("suspended item", _replace(HOST_ITEM, status="suspended"), D("2026-11-20"), DOWN,
     False, "item_suspended", D("2026-12-02"), None),
    ("cancelled item", _replace(HOST_ITEM, status="cancelled"), D("2026-11-20"), DOWN,
     False, "item_cancelled", D("2026-12-02"), None),
    ("expired item", _replace(HOST_ITEM, status="expired"), D("2026-11-20"), DOWN,
     False, "item_expired", D("2026-12-02"), None),
    ("no item", None, D("2026-11-20"), DOWN, False, "no_item", None, None),
    ("no complaint date", HOST_ITEM, None, DOWN, False, "no_complaint_date", None, None),
]


@pytest.mark.parametrize("item,complaint,category,eligible,rule,until,days_left",
                         [c[1:] for c in CASHBACK_CASES], ids=[c[0] for c in CASHBACK_CASES])
def test_cashback(item, complaint, category, eligible, rule, until, days_left):
    cashback = evaluate(item, [], complaint, category).cashback
    assert (cashback.eligible, cashback.rule, cashback.until, cashback.days_left) == (
        eligible, rule, until, days_left)
    assert cashback.lapsed == (rule == "window_ended")
    assert cashback.reason["id"] and cashback.reason["en"]


# day 30 of the hosting's window is 2 Dec 2026 (WIB = UTC+7)
@pytest.mark.parametrize("utc,local,eligible", [
    (datetime(2026, 11, 2, 17, 0), D("2026-11-03"), True),     # 00:00 WIB on day 1
    (datetime(2026, 12, 2, 16, 59), D("2026-12-02"), True),    # 23:59 WIB on day 30
    (datetime(2026, 12, 2, 16, 59, 59), D("2026-12-02"), True),
    (datetime(2026, 12, 2, 17, 0), D("2026-12-03"), False),    # 00:00 WIB on day 31
    (datetime(2026, 12, 2, 23, 0), D("2026-12-03"), False),
])
def test_day_30_counts_until_midnight_jakarta(utc, local, eligible):
    assert complaint_day(utc) == local
    assert evaluate(HOST_ITEM, [], complaint_day(utc), DOWN).cashback.eligible is eligible
    # a naive-UTC datetime passed straight to evaluate is converted the same way
    assert evaluate(HOST_ITEM, [], utc, DOWN).cashback.eligible is eligible


@pytest.mark.parametrize("utc,code", [
    (datetime(2027, 11, 2, 16, 59), "free_warranty"),   # 23:59 WIB on the warranty's last day
    (datetime(2027, 11, 2, 17, 0), "paid"),             # 00:00 WIB the day after
])
def test_warranty_expiry_falls_at_midnight_jakarta(utc, code):
    assert evaluate(HOST_ITEM, [], utc, DOWN).charge.code == code


def test_complaint_day_other_zone_and_aware_and_plain_date():
    from datetime import timezone
    assert complaint_day(datetime(2026, 12, 2, 17, 0), tz="Asia/Makassar") == D("2026-12-03")  # WITA = UTC+8
    assert complaint_day(datetime(2026, 12, 2, 15, 59), tz="Asia/Makassar") == D("2026-12-02")
    aware = datetime(2026, 12, 3, 0, 30, tzinfo=timezone(timedelta(hours=7)))
    assert complaint_day(aware) == D("2026-12-03")
    assert complaint_day(D("2026-12-02")) == D("2026-12-02")
    assert complaint_day(None) is None


def test_first_month_hosting_is_both_free_warranty_and_cashback_eligible():
    decision = evaluate(HOST_ITEM, [], D("2026-11-20"), DOWN)
    assert decision.charge.code == "free_warranty"
    assert decision.cashback.eligible
    assert decision.cashback.reason["en"] == (
        "Cashback guarantee: the Hosting Bisnis was activated on 3 November 2026, 12 days left "
        "(until 2 December 2026)")
    assert decision.cashback.reason["id"] == (
        "Garansi cashback: Hosting Bisnis diaktifkan 3 November 2026, sisa 12 hari (sampai 2 Desember 2026)")


@pytest.mark.parametrize("item,contracts,complaint,date_id,date_en", [
    (HOST_ITEM, [], D("2026-11-20"), "2 November 2027", "2 November 2027"),             # warranty
    (WEB_ITEM, [GOLD], D("2026-04-01"), "31 Desember 2026", "31 December 2026"),       # contract
    (BUNDLE_ITEM, [], D("2026-06-01"), "31 Desember 2026", "31 December 2026"),        # bundle
    (WEB_ITEM, [], D("2026-08-01"), "31 Maret 2026", "31 March 2026"),                 # paid: ended
])
def test_explanations_mention_the_date_in_both_languages(item, contracts, complaint, date_id, date_en):
    explanation = evaluate(item, contracts, complaint, DOWN).charge.explanation
    assert date_id in explanation["id"]
    assert date_en in explanation["en"]


def test_explanation_wording():
    assert evaluate(Item(1, HOSTING, D("2026-01-13"), D("2026-01-13")), [], D("2026-02-01"),
                    DOWN).charge.explanation == {
        "id": "Gratis — masih garansi sampai 12 Januari 2027",
        "en": "Free — in warranty until 12 January 2027",
    }
    contract = evaluate(WEB_ITEM, [GOLD], D("2026-04-01"), DOWN).charge.explanation
    assert "Gold" in contract["id"] and "Gold" in contract["en"]
    expired_bundle = evaluate(BUNDLE_ITEM, [], D("2027-01-01"), DOWN).charge.explanation
    assert "14 Januari 2026" in expired_bundle["id"] and "31 Desember 2026" in expired_bundle["id"]
    assert "14 January 2026" in expired_bundle["en"] and "31 December 2026" in expired_bundle["en"]


def test_suspension_is_mentioned_in_both_languages():
    plain = evaluate(HOST_ITEM, [], D("2026-11-20"), DOWN).charge.explanation
    suspended = evaluate(_replace(HOST_ITEM, status="suspended"), [], D("2026-11-20"), DOWN).charge.explanation
    assert "ditangguhkan" in suspended["id"] and "ditangguhkan" not in plain["id"]
    assert "suspended" in suspended["en"] and "suspended" not in plain["en"]


def test_last_day_and_one_day_wording():
    last = evaluate(HOST_ITEM, [], D("2026-12-02"), DOWN).cashback.reason
    assert "today is the last day" in last["en"] and "hari terakhir" in last["id"]
    one = evaluate(HOST_ITEM, [], D("2026-12-01"), DOWN).cashback.reason
    assert "1 day left" in one["en"] and "sisa 1 hari" in one["id"]
    not_activated = evaluate(_replace(HOST_ITEM, activation_date=None), [], D("2026-11-05"), DOWN).cashback.reason
    assert "purchased on 1 November 2026" in not_activated["en"]
    assert "dibeli 1 November 2026" in not_activated["id"]


def test_as_dict_is_exactly_the_api_shape():
    data = evaluate(HOST_ITEM, [], D("2026-11-20"), DOWN).as_dict()
    assert data == {
        "charge": "free_warranty",
        "rule": "warranty_period",
        "until": "2027-11-02",
        "explanation": {"id": "Gratis — masih garansi sampai 2 November 2027",
                        "en": "Free — in warranty until 2 November 2027"},
        "cashback": {
            "eligible": True,
            "until": "2026-12-02",
            "days_left": 12,
            "reason": {
                "id": "Garansi cashback: Hosting Bisnis diaktifkan 3 November 2026, sisa 12 hari "
                      "(sampai 2 Desember 2026)",
                "en": "Cashback guarantee: the Hosting Bisnis was activated on 3 November 2026, "
                      "12 days left (until 2 December 2026)",
            },
        },
    }
    unknown = evaluate(None, [], D("2026-11-20"), None).as_dict()
    assert unknown["until"] is None and unknown["cashback"]["until"] is None
    assert unknown["cashback"]["days_left"] is None


def test_snapshot_records_the_inputs_and_is_json():
    decision = evaluate(WEB_ITEM, [SILVER_LATER, GOLD], datetime(2026, 7, 1, 3, 0), CONTENT)
    snap = json.loads(json.dumps(decision.snapshot()))
    assert snap["charge"] == "free_contract" and snap["rule"] == "contract:2"
    assert snap["cashback"]["rule"] == "window_ended"
    assert snap["engine"] == 1
    inputs = snap["inputs"]
    assert inputs["complaint_date"] == "2026-07-01"
    assert inputs["category"] == {"code": "content_change", "is_defect": False}
    assert inputs["item"]["id"] == 20 and inputs["item"]["status"] == "active"
    assert inputs["item"]["activation_date"] == "2026-01-01"
    assert inputs["item"]["product"]["code"] == "WEB-TOKO"
    assert inputs["item"]["product"]["warranty_days"] == 90
    assert [c["id"] for c in inputs["contracts"]] == [2, 1]
    assert inputs["contracts"][1] == {"id": 1, "plan_name": "Gold", "start": "2026-01-01", "end": "2026-12-31",
                                      "covers_lines": ["website"], "covers_products": [], "support_tier": "gold"}
    assert evaluate(None, [], None, None).snapshot()["inputs"] == {
        "item": None, "contracts": [], "complaint_date": None, "category": None}


def test_window_end_and_bundle_entitlement():
    assert window_end(D("2026-11-03"), 30) == D("2026-12-02")
    assert window_end(D("2026-11-03"), 1) == D("2026-11-03")
    assert window_end(D("2026-11-03"), 0) is None
    assert window_end(D("2026-11-03"), None) is None
    assert window_end(None, 30) is None
    entitlement = WEBSITE.bundle[0]
    assert entitlement.matches(HOSTING) and not entitlement.matches(SEO)
    assert BundleEntitlement("SEO-LOKAL").matches(SEO)
    assert entitlement.free_until(D("2026-01-01")) == D("2026-12-31")
    assert entitlement.free_until(D("2028-01-01")) == D("2028-12-30")  # leap year: 365 days
    assert HOST_ITEM.warranty_end == D("2027-11-02") and HOST_ITEM.cashback_end == D("2026-12-02")


def test_covering_contract_ties_break_on_the_id():
    a = Contract("b", "Plan B", D("2026-01-01"), D("2026-12-31"), covers_lines={"website"})
    b = Contract("a", "Plan A", D("2026-03-01"), D("2026-12-31"), covers_lines={"website"})
    assert covering_contract(WEB_ITEM, [a, b], D("2026-04-01")).id == "a"
    assert covering_contract(WEB_ITEM, [a, b], D("2026-02-01")).id == "b"
    assert covering_contract(WEB_ITEM, [a, b], D("2027-01-01")) is None


def test_inputs_are_validated_and_coerced():
    with pytest.raises(ValueError):
        Item(1, HOSTING, D("2026-01-01"), status="deleted")
    with pytest.raises(ValueError):
        Contract(1, "Backwards", D("2026-02-01"), D("2026-01-31"))
    with pytest.raises(ValueError):
        ProductTerms("X", "X", "website", warranty_days=-1)
    product = ProductTerms("X", "X", "website", cashback_categories=["down"], bundle=[BundleEntitlement("Y")])
    assert product.cashback_categories == frozenset({"down"}) and isinstance(product.bundle, tuple)
    assert product.cashback_days == 30 and product.bundle[0].free_days == 365
    contract = Contract(1, "C", D("2026-01-01"), D("2026-01-01"), covers_lines=["website"])
    assert contract.covers_lines == frozenset({"website"}) and contract.runs_on(D("2026-01-01"))


def test_format_date():
    assert format_date(D("2027-01-12"), "id") == "12 Januari 2027"
    assert format_date(D("2027-01-12"), "en") == "12 January 2027"
    assert format_date(D("2027-01-12"), "en", short=True) == "12 Jan"
    assert format_date(D("2026-08-17"), "id", short=True) == "17 Agu"
