"""Currencies as Stripe sees them: minor units, zero-decimal currencies, minimum charge amounts."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

ZERO_DECIMAL_CURRENCIES = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"}
)
"""Currencies whose amounts Stripe takes in whole units (``amount=1200`` is ¥1200)."""

SUPPORTED_CURRENCIES = frozenset(
    ZERO_DECIMAL_CURRENCIES
    | {
        "aed", "aud", "bgn", "brl", "cad", "chf", "cny", "czk", "dkk", "eur", "gbp", "hkd", "huf", "idr",
        "ils", "inr", "lkr", "mxn", "myr", "nok", "nzd", "php", "pkr", "pln", "ron", "sek", "sgd", "thb",
        "try", "twd", "usd", "zar", "bdt", "npr",
    }
)
"""The presentment currencies this sandbox accepts; anything else is answered as Stripe answers an unknown code."""

MINIMUM_CHARGE_AMOUNTS = {
    "usd": 50, "aud": 50, "brl": 50, "cad": 50, "chf": 50, "eur": 50, "inr": 50, "nzd": 50, "sgd": 50,
    "gbp": 30, "dkk": 250, "hkd": 400, "jpy": 50, "mxn": 1000, "myr": 200, "nok": 300, "pln": 200,
    "ron": 200, "sek": 300, "thb": 1000, "aed": 200, "czk": 1500, "huf": 17500, "bgn": 100,
}
"""Stripe's documented minimum charge per currency, in minor units; currencies not listed have none here."""


def exponent(currency: str) -> int:
    """Decimal places Stripe uses for ``currency`` (0 for zero-decimal currencies, else 2)."""
    return 0 if currency.lower() in ZERO_DECIMAL_CURRENCIES else 2


def to_minor_units(amount: Decimal, currency: str) -> int:
    """Convert a major-unit amount (``Decimal("10.50")`` SGD) to Stripe's integer amount (1050)."""
    scaled = amount * (Decimal(10) ** exponent(currency))
    return int(scaled.to_integral_value(rounding=ROUND_HALF_UP))


def format_amount(amount: int, currency: str) -> str:
    """Human-readable amount for messages, e.g. ``$0.50`` style without the symbol: ``0.50 usd``."""
    places = exponent(currency)
    if places == 0:
        return f"{amount} {currency.lower()}"
    return f"{Decimal(amount) / (Decimal(10) ** places):.{places}f} {currency.lower()}"
