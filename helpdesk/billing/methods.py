"""The payment methods: one pluggable list. A gateway (QRIS, virtual accounts) adds an entry here;
invoices and payments only store the code."""
from flask_babel import lazy_gettext as _l

PAYMENT_METHODS = {
    "bank_transfer": _l("Bank transfer"),
    "cash": _l("Cash"),
}


def register(code, label):
    """Add a payment method (a gateway integration calls this at import)."""
    PAYMENT_METHODS[code] = label


def label(code):
    return PAYMENT_METHODS.get(code, code)
