"""ISO 4217 currency codes in use, with their minor-unit exponents (the number of decimal places)."""

from __future__ import annotations

_TWO_DECIMALS = """
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL BSD BTN BWP BYN BZD CAD
CDF CHF CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD
HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD
MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON
RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD
TZS UAH USD UYU UZS VES WST XCD YER ZAR ZMW ZWG
""".split()  # noqa: SIM905 (a table reads better as text)
_ZERO_DECIMALS = """
BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF
""".split()  # noqa: SIM905 (a table reads better as text)
_THREE_DECIMALS = """
BHD IQD JOD KWD LYD OMR TND
""".split()  # noqa: SIM905 (a table reads better as text)
_FOUR_DECIMALS = """
CLF UYW
""".split()  # noqa: SIM905 (a table reads better as text)

EXPONENTS: dict[str, int] = {
    **{code: 2 for code in _TWO_DECIMALS},
    **{code: 0 for code in _ZERO_DECIMALS},
    **{code: 3 for code in _THREE_DECIMALS},
    **{code: 4 for code in _FOUR_DECIMALS},
}

STRIPE_ZERO_DECIMAL = frozenset(
    "BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split()  # noqa: SIM905
)
"""Currencies whose Stripe amounts are whole units (Stripe's list differs from ISO 4217: MGA, not ISK)."""


def exponent(code: str) -> int:
    """ISO 4217 minor-unit exponent of ``code`` (upper case); ``KeyError`` for an unknown code."""
    return EXPONENTS[code]


def stripe_exponent(code: str) -> int:
    """How many decimals Stripe's integer amounts imply for ``code`` (case-insensitive)."""
    upper = code.upper()
    if upper in STRIPE_ZERO_DECIMAL:
        return 0
    # Stripe keeps two decimals for ISO's zero-decimal ISK/HUF/TWD cases and three for BHD, KWD, ...
    return 3 if upper in _THREE_DECIMALS else 2
