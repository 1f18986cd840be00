"""The eligibility engine: who pays for a ticket's service, and whether the cashback guarantee
can be claimed.

Pure code: no database, no Flask, no clock. Everything the decision depends on is passed in as
the frozen dataclasses below (the database layer fills them), so the same inputs always give the
same decision, whatever the server's time zone or the day the code runs.

Inputs
------
- :class:`ProductTerms` — a product's guarantee terms (warranty days, cashback window and the
  defect categories it covers, bundle entitlements).
- :class:`Item` — what the customer owns: product, purchase and activation dates, status, and the
  last free day when it came free with a bundle.
- :class:`Contract` — a service contract of the customer, with inclusive start and end days.
- :class:`Category` — the ticket's issue category (``is_defect``), or ``None`` when the ticket has
  no category yet.
- the complaint day: a ``date`` in Asia/Jakarta. :func:`complaint_day` turns a naive-UTC
  datetime (the database convention) into that local day; :func:`evaluate` also accepts such a
  datetime directly and converts it the same way.

Output: :func:`evaluate` returns a :class:`Decision` with two answers, because a hosting account in
its first month is both in warranty and cashback-eligible:

- ``charge`` (:class:`ChargeDecision`): ``free_warranty`` / ``free_contract`` / ``free_bundle`` /
  ``paid`` / ``needs_classification`` / ``unknown_item``, the rule that decided it, the last free
  day, and a plain explanation in Indonesian and English.
- ``cashback`` (:class:`CashbackDecision`): eligible or not, the last day of the window, the days
  left, and the reason in Indonesian and English.

Days and windows
----------------
- A window of N days starting on day S covers the days S .. S + N - 1: the start day is day 1 and
  the window ends at 24:00 Asia/Jakarta of day N (:func:`window_end`). A complaint on day N (even
  at 23:59 WIB, i.e. 16:59 UTC) is in; one at 00:00 WIB of day N + 1 (17:00 UTC of day N) is out.
- The warranty and the cashback window both start on the activation day, or on the purchase day
  when the item has not been activated. ``warranty_days`` of None/0 means no warranty;
  ``cashback_days`` of None/0 means no cashback guarantee (the default is 30 days: set it to 0
  for product lines without the guarantee — per the policy only websites and domain & hosting
  have it).
- A complaint dated *before* the start day (a problem setting up an item not yet live) is inside
  the warranty and the cashback window: the windows are "until the last day", never "not yet".
  This keeps the decisions monotonic in the complaint day: a later complaint can only lose
  coverage, never gain warranty or cashback back.
- Contracts cover their ``start`` and ``end`` days inclusive.
- A bundled item is free until ``Item.bundle_free_until`` inclusive (:meth:`BundleEntitlement.free_until`
  computes it for a new bundled item: free_days counted like a window from the main item's
  start day).

Charge rules, in order
----------------------
1. No item → ``unknown_item`` (rule ``no_item``).
2. No complaint day → ``needs_classification`` (rule ``no_complaint_date``): never shown as paid.
3. Item ``cancelled`` → ``paid`` (``item_cancelled``); item ``expired`` → ``paid`` (``item_expired``):
   the customer no longer holds the service, so neither warranty, contract nor bundle applies.
4. No category → ``needs_classification`` (``no_category``): never shown as paid.
5. Defect and complaint ≤ warranty end → ``free_warranty`` (``warranty_period``).
6. A contract covering the item (its product line is in ``covers_lines`` or its product code in
   ``covers_products``) and running on the complaint day → ``free_contract`` (``contract:<id>``).
   A service contract covers call service for any category, defect or not (it is a service
   agreement); the warranty and the bundle cover defects only. With overlapping contracts the one
   that ends latest is chosen (ties: the smallest id, compared as text), so ``until`` is the
   longest cover.
7. Defect and complaint ≤ ``bundle_free_until`` → ``free_bundle`` (``bundle``).
8. Otherwise ``paid``: ``not_a_defect`` for a non-defect category, else ``out_of_warranty``
   (the explanation names the warranty end and the bundle end when there were ones).

Precedence is therefore warranty, then contract, then bundle. A ``suspended`` item is still
evaluated by rules 4-8 (a suspension is usually temporary); its explanation says it is suspended.

Cashback rules, in order (the first failing one is the reason)
--------------------------------------------------------------
``no_item``, ``no_complaint_date``, ``no_cashback`` (product without a window),
``item_cancelled`` / ``item_expired`` / ``item_suspended`` (only an active item can claim),
``window_ended`` (complaint after the last day: *lapsed*), ``no_category`` (the window is open but
the ticket needs a category), ``not_a_defect``, ``category_not_covered`` (the product lists its
covered categories and this one is not among them; an empty set covers every defect), else
eligible (rule ``window``).

``until`` is the window's last day whenever the product has a window and the item a start day;
``days_left`` is the number of whole days left *after* the complaint day, ``until - complaint``
(0 on the last day), given while the window is open (complaint ≤ until) for an active item, even
when the category stops the claim (so the UI can say "cashback possible if this is a defect"); else
None. ``CashbackDecision.lapsed`` tells a lapse (``window_ended``) from the other reasons.

Serialisation
-------------
:meth:`Decision.as_dict` is exactly the API shape::

    {"charge": str, "rule": str, "until": "YYYY-MM-DD" | None,
     "explanation": {"id": str, "en": str},
     "cashback": {"eligible": bool, "until": "YYYY-MM-DD" | None, "days_left": int | None,
                  "reason": {"id": str, "en": str}}}

(``reason`` is the two-language dict, like ``explanation``.) :meth:`Decision.snapshot` adds, for
the audit snapshot, ``"cashback"["rule"]``, ``"inputs"`` (:func:`inputs_snapshot`: everything that
was evaluated, JSON-able) and ``"engine"`` (:data:`ENGINE_VERSION`).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

ENGINE_VERSION = 1
LOCAL_TZ = "Asia/Jakarta"

# product lines (codes as the web form's topics use them)
WEBSITE = "website"
DOMAIN_HOSTING = "domain_hosting"
RESELLER_FRANCHISE = "reseller_franchise"
ADS_SEO = "ads_seo"
DAILY_DEAL = "daily_deal"
PRODUCT_LINES = (WEBSITE, DOMAIN_HOSTING, RESELLER_FRANCHISE, ADS_SEO, DAILY_DEAL)

# item statuses
ACTIVE, SUSPENDED, EXPIRED, CANCELLED = "active", "suspended", "expired", "cancelled"
ITEM_STATUSES = (ACTIVE, SUSPENDED, EXPIRED, CANCELLED)

# charge decisions
FREE_WARRANTY = "free_warranty"
FREE_CONTRACT = "free_contract"
FREE_BUNDLE = "free_bundle"
PAID = "paid"
NEEDS_CLASSIFICATION = "needs_classification"
UNKNOWN_ITEM = "unknown_item"
CHARGE_CODES = (FREE_WARRANTY, FREE_CONTRACT, FREE_BUNDLE, PAID, NEEDS_CLASSIFICATION, UNKNOWN_ITEM)

DEFAULT_CASHBACK_DAYS = 30
DEFAULT_BUNDLE_DAYS = 365

_MONTHS = {
    "id": ("Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus",
           "September", "Oktober", "November", "Desember"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"),
}


# --------------------------------------------------------------------------- days

def complaint_day(dt, tz=LOCAL_TZ):
    """The local day (default Asia/Jakarta) of a naive-UTC datetime; an aware datetime is converted
    from its own zone; a plain ``date`` is returned as it is (already local)."""
    if dt is None:
        return None
    if not isinstance(dt, datetime):
        return dt
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(ZoneInfo(tz)).date()


def window_end(start, days):
    """The last day of a window of ``days`` days whose day 1 is ``start``; None without a window."""
    if start is None or not days or days <= 0:
        return None
    return start + timedelta(days=days - 1)


def format_date(d, lang="en", short=False):
    """'12 January 2027' / '12 Januari 2027'; with short=True '12 Jan' (the badge form)."""
    months = _MONTHS["id" if lang == "id" else "en"]
    if short:
        return f"{d.day} {months[d.month - 1][:3]}"
    return f"{d.day} {months[d.month - 1]} {d.year}"


def _both(template_id, template_en, **dates):
    """An explanation in both languages; ``dates`` are formatted per language."""
    return {
        "id": template_id.format(**{k: format_date(v, "id") for k, v in dates.items()}),
        "en": template_en.format(**{k: format_date(v, "en") for k, v in dates.items()}),
    }


def _iso(d):
    return d.isoformat() if d is not None else None


# --------------------------------------------------------------------------- inputs

@dataclass(frozen=True)
class BundleEntitlement:
    """Something a product includes for free: ``target`` is a product line or a product code
    (for example a website includes ``domain_hosting`` free for 365 days)."""
    target: str
    free_days: int = DEFAULT_BUNDLE_DAYS

    def matches(self, product):
        """Whether this entitlement covers ``product`` (by its code or its product line)."""
        return self.target in (product.code, product.product_line)

    def free_until(self, start):
        """The last free day of a bundled item whose free period starts on ``start``."""
        return window_end(start, self.free_days)


@dataclass(frozen=True)
class ProductTerms:
    """A product's guarantee terms. ``cashback_days`` None/0: no cashback guarantee.
    ``cashback_categories``: issue-category codes the cashback covers (empty: every defect)."""
    code: str
    name: str
    product_line: str
    warranty_days: int | None = 0
    cashback_days: int | None = DEFAULT_CASHBACK_DAYS
    cashback_categories: frozenset = frozenset()
    bundle: tuple = ()

    def __post_init__(self):
        object.__setattr__(self, "cashback_categories", frozenset(self.cashback_categories or ()))
        object.__setattr__(self, "bundle", tuple(self.bundle or ()))
        for name in ("warranty_days", "cashback_days"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} cannot be negative: {value}")


@dataclass(frozen=True)
class Item:
    """An owned item. ``bundle_free_until``: when it came free with a bundle, its last free day."""
    id: object
    product: ProductTerms
    purchase_date: date
    activation_date: date | None = None
    status: str = ACTIVE
    bundle_free_until: date | None = None
    identifier: str | None = None
    reference: str | None = None

    def __post_init__(self):
        if self.status not in ITEM_STATUSES:
            raise ValueError(f"unknown item status {self.status!r}")

    @property
    def start(self):
        """Day 1 of the warranty and the cashback window: activation, else purchase."""
        return self.activation_date or self.purchase_date

    @property
    def warranty_end(self):
        return window_end(self.start, self.product.warranty_days)

    @property
    def cashback_end(self):
        return window_end(self.start, self.product.cashback_days)


@dataclass(frozen=True)
class Contract:
    """A service contract: covers items of ``covers_lines`` or ``covers_products`` (product codes)
    from ``start`` to ``end``, both days included."""
    id: object
    plan_name: str
    start: date
    end: date
    covers_lines: frozenset = frozenset()
    covers_products: frozenset = frozenset()
    support_tier: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "covers_lines", frozenset(self.covers_lines or ()))
        object.__setattr__(self, "covers_products", frozenset(self.covers_products or ()))
        if self.end < self.start:
            raise ValueError(f"contract {self.id!r} ends ({self.end}) before it starts ({self.start})")

    def covers(self, product):
        return product.product_line in self.covers_lines or product.code in self.covers_products

    def runs_on(self, day):
        return self.start <= day <= self.end


@dataclass(frozen=True)
class Category:
    """An issue category; ``is_defect`` False for requests such as a content change."""
    code: str
    is_defect: bool


# --------------------------------------------------------------------------- outputs

@dataclass(frozen=True)
class ChargeDecision:
    code: str
    rule: str
    until: date | None
    explanation: dict


@dataclass(frozen=True)
class CashbackDecision:
    eligible: bool
    rule: str
    until: date | None
    days_left: int | None
    reason: dict

    @property
    def lapsed(self):
        """Not eligible because the window is over (as opposed to a category or status reason)."""
        return self.rule == "window_ended"


@dataclass(frozen=True)
class Decision:
    charge: ChargeDecision
    cashback: CashbackDecision
    inputs: dict = field(default_factory=dict)

    def as_dict(self):
        """Exactly the API's ``eligibility`` object."""
        return {
            "charge": self.charge.code,
            "rule": self.charge.rule,
            "until": _iso(self.charge.until),
            "explanation": dict(self.charge.explanation),
            "cashback": {
                "eligible": self.cashback.eligible,
                "until": _iso(self.cashback.until),
                "days_left": self.cashback.days_left,
                "reason": dict(self.cashback.reason),
            },
        }

    def snapshot(self):
        """The audit snapshot: the API object, the cashback rule, the inputs, the engine version."""
        data = self.as_dict()
        data["cashback"]["rule"] = self.cashback.rule
        data["inputs"] = self.inputs
        data["engine"] = ENGINE_VERSION
        return data


def inputs_snapshot(item, contracts, complaint, category):
    """A JSON-able record of everything :func:`evaluate` looked at."""
    product = item.product if item is not None else None
    return {
        "item": None if item is None else {
            "id": item.id,
            "status": item.status,
            "purchase_date": _iso(item.purchase_date),
            "activation_date": _iso(item.activation_date),
            "bundle_free_until": _iso(item.bundle_free_until),
            "identifier": item.identifier,
            "product": {
                "code": product.code,
                "name": product.name,
                "product_line": product.product_line,
                "warranty_days": product.warranty_days,
                "cashback_days": product.cashback_days,
                "cashback_categories": sorted(product.cashback_categories),
            },
        },
        "contracts": [{
            "id": c.id,
            "plan_name": c.plan_name,
            "start": _iso(c.start),
            "end": _iso(c.end),
            "covers_lines": sorted(c.covers_lines),
            "covers_products": sorted(c.covers_products),
            "support_tier": c.support_tier,
        } for c in contracts],
        "complaint_date": _iso(complaint),
        "category": None if category is None else {"code": category.code, "is_defect": category.is_defect},
    }


# --------------------------------------------------------------------------- the rules

def covering_contract(item, contracts, day):
    """The contract that covers ``item`` on ``day``: of several, the one ending latest (ties: the
    smallest id as text); None when none does."""
    running = [c for c in contracts if c.covers(item.product) and c.runs_on(day)]
    if not running:
        return None
    return min(running, key=lambda c: (-c.end.toordinal(), str(c.id)))


def _charge(code, rule, until, explanation):
    return ChargeDecision(code=code, rule=rule, until=until, explanation=explanation)


_SUSPENDED_NOTE = {"id": " (layanan sedang ditangguhkan)", "en": " (the item is suspended)"}


def _with_suspension(decision, item):
    if item.status != SUSPENDED:
        return decision
    explanation = {lang: text + _SUSPENDED_NOTE[lang] for lang, text in decision.explanation.items()}
    return _charge(decision.code, decision.rule, decision.until, explanation)


def decide_charge(item, contracts, complaint, category):
    """Who pays for the service (see the module docstring for the rules and their order)."""
    if item is None:
        return _charge(UNKNOWN_ITEM, "no_item", None, _both(
            "Belum ada produk terhubung — hubungkan tiket ke produk milik pelanggan",
            "No product linked — link the ticket to one of the customer's items"))
    if complaint is None:
        return _charge(NEEDS_CLASSIFICATION, "no_complaint_date", None, _both(
            "Tanggal keluhan belum diketahui — biaya ditentukan setelah tanggal keluhan diisi",
            "No complaint date — the charge is decided once the complaint date is known"))
    if item.status == CANCELLED:
        return _charge(PAID, "item_cancelled", None, _both(
            "Berbayar — layanan ini sudah dibatalkan; biaya servis ditambah suku cadang",
            "Paid — this item was cancelled; service fee plus parts"))
    if item.status == EXPIRED:
        return _charge(PAID, "item_expired", None, _both(
            "Berbayar — masa layanan ini sudah berakhir; biaya servis ditambah suku cadang",
            "Paid — this item has expired; service fee plus parts"))
    if category is None:
        return _with_suspension(_charge(NEEDS_CLASSIFICATION, "no_category", None, _both(
            "Perlu kategori — biaya ditentukan setelah masalah dikategorikan",
            "Needs a category — the charge is decided once the issue is categorised")), item)
    return _with_suspension(_decide_covered(item, contracts, complaint, category), item)


def _decide_covered(item, contracts, complaint, category):
    warranty_end = item.warranty_end
    if category.is_defect and warranty_end is not None and complaint <= warranty_end:
        return _charge(FREE_WARRANTY, "warranty_period", warranty_end, _both(
            "Gratis — masih garansi sampai {d}", "Free — in warranty until {d}", d=warranty_end))
    contract = covering_contract(item, contracts, complaint)
    if contract is not None:
        return _charge(FREE_CONTRACT, f"contract:{contract.id}", contract.end, _both(
            f"Gratis — kontrak layanan {contract.plan_name} berlaku sampai {{d}}",
            f"Free — covered by the {contract.plan_name} service contract until {{d}}", d=contract.end))
    bundle_end = item.bundle_free_until
    if category.is_defect and bundle_end is not None and complaint <= bundle_end:
        return _charge(FREE_BUNDLE, "bundle", bundle_end, _both(
            "Gratis — termasuk dalam paket, gratis sampai {d}",
            "Free — included in a bundle, free until {d}", d=bundle_end))
    if not category.is_defect:
        return _charge(PAID, "not_a_defect", None, _both(
            "Berbayar — permintaan ini bukan kerusakan, jadi tidak termasuk garansi; "
            "biaya servis ditambah suku cadang",
            "Paid — this request is not a defect, so the warranty does not cover it; "
            "service fee plus parts"))
    ended_id, ended_en = [], []
    if warranty_end is not None:
        ended_id.append(f"garansi berakhir {format_date(warranty_end, 'id')}")
        ended_en.append(f"the warranty ended on {format_date(warranty_end, 'en')}")
    else:
        ended_id.append("produk ini tanpa garansi")
        ended_en.append("this product has no warranty")
    if bundle_end is not None:
        ended_id.append(f"masa gratis paket berakhir {format_date(bundle_end, 'id')}")
        ended_en.append(f"the bundle's free period ended on {format_date(bundle_end, 'en')}")
    return _charge(PAID, "out_of_warranty", None, {
        "id": "Berbayar — " + ", ".join(ended_id) + "; biaya servis ditambah suku cadang",
        "en": "Paid — " + ", ".join(ended_en) + "; service fee plus parts",
    })


def _cashback(eligible, rule, until, days_left, reason_id, reason_en, **dates):
    return CashbackDecision(eligible=eligible, rule=rule, until=until, days_left=days_left,
                            reason=_both(reason_id, reason_en, **dates))


_STATUS_WORDS = {SUSPENDED: ("ditangguhkan", "suspended"), EXPIRED: ("kedaluwarsa", "expired"),
                 CANCELLED: ("dibatalkan", "cancelled")}


def decide_cashback(item, complaint, category):
    """Whether the cashback guarantee can be claimed (see the module docstring)."""
    if item is None:
        return _cashback(False, "no_item", None, None,
                         "Tidak ada produk terhubung", "No product linked")
    if complaint is None:
        return _cashback(False, "no_complaint_date", None, None,
                         "Tanggal keluhan belum diketahui", "No complaint date yet")
    product = item.product
    until = item.cashback_end
    if until is None:
        return _cashback(False, "no_cashback", None, None,
                         f"{product.name} tidak memiliki garansi cashback",
                         f"{product.name} has no cashback guarantee")
    if item.status != ACTIVE:
        word_id, word_en = _STATUS_WORDS[item.status]
        return _cashback(False, f"item_{item.status}", until, None,
                         f"Garansi cashback hanya untuk layanan aktif; {product.name} {word_id}",
                         f"The cashback guarantee is for active items only; the {product.name} is {word_en}")
    if complaint > until:
        return _cashback(False, "window_ended", until, None,
                         "Garansi cashback berakhir {d}", "The cashback guarantee ended on {d}", d=until)
    days_left = (until - complaint).days
    started_id, started_en = (("diaktifkan", "activated") if item.activation_date
                              else ("dibeli", "purchased"))
    left_id = "hari terakhir hari ini" if days_left == 0 else f"sisa {days_left} hari"
    left_en = ("today is the last day" if days_left == 0
               else f"{days_left} day{'s' if days_left != 1 else ''} left")
    window_id = f"{product.name} {started_id} {{s}}, {left_id} (sampai {{d}})"
    window_en = f"the {product.name} was {started_en} on {{s}}, {left_en} (until {{d}})"
    dates = {"s": item.start, "d": until}
    if category is None:
        return _cashback(False, "no_category", until, days_left,
                         "Perlu kategori — cashback mungkin jika ini kerusakan: " + window_id,
                         "Needs a category — cashback is possible if this is a defect: " + window_en,
                         **dates)
    if not category.is_defect:
        return _cashback(False, "not_a_defect", until, days_left,
                         "Bukan kerusakan, jadi tidak termasuk garansi cashback",
                         "Not a defect, so the cashback guarantee does not apply")
    if product.cashback_categories and category.code not in product.cashback_categories:
        return _cashback(False, "category_not_covered", until, days_left,
                         f"Kategori {category.code} tidak termasuk garansi cashback {product.name}",
                         f"The category {category.code} is not covered by the {product.name} cashback guarantee")
    return _cashback(True, "window", until, days_left,
                     "Garansi cashback: " + window_id, "Cashback guarantee: " + window_en, **dates)


def evaluate(item: Item | None, contracts: Sequence[Contract] | Iterable[Contract] = (),
             complaint: date | datetime | None = None, category: Category | None = None) -> Decision:
    """Both answers for a ticket. ``complaint`` is the local (Asia/Jakarta) day, or a naive-UTC
    datetime converted with :func:`complaint_day`."""
    contracts = tuple(contracts or ())
    complaint = complaint_day(complaint)
    return Decision(
        charge=decide_charge(item, contracts, complaint, category),
        cashback=decide_cashback(item, complaint, category),
        inputs=inputs_snapshot(item, contracts, complaint, category),
    )
