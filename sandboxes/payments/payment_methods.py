"""Stripe's test payment methods and cards, and the outcome each one produces."""

from __future__ import annotations

import dataclasses
from typing import Any

from sandboxes.payments.errors import StripeError


@dataclasses.dataclass(frozen=True)
class TestMethod:
    """What confirming a payment with one test method does."""

    brand: str
    last4: str
    result: str
    """``succeeded``, ``declined``, ``async_succeeded`` (processing, then succeeded), ``async_failed``."""
    failure_code: str | None = None
    decline_code: str | None = None
    message: str | None = None
    method_type: str = "card"
    disputed: bool = False


_DECLINED = "Your card was declined."
_INSUFFICIENT = "Your card has insufficient funds."

METHODS: dict[str, TestMethod] = {
    "pm_card_visa": TestMethod("visa", "4242", "succeeded"),
    "pm_card_visa_debit": TestMethod("visa", "5556", "succeeded"),
    "pm_card_mastercard": TestMethod("mastercard", "4444", "succeeded"),
    "pm_card_amex": TestMethod("amex", "8431", "succeeded"),
    "pm_card_jcb": TestMethod("jcb", "0000", "succeeded"),
    "pm_card_sg": TestMethod("visa", "0004", "succeeded"),
    "pm_card_jp": TestMethod("visa", "0003", "succeeded"),
    "pm_card_chargeDeclined": TestMethod("visa", "0002", "declined", "card_declined", "generic_decline", _DECLINED),
    "pm_card_chargeDeclinedInsufficientFunds": TestMethod(
        "visa", "9995", "declined", "card_declined", "insufficient_funds", _INSUFFICIENT
    ),
    "pm_card_chargeDeclinedExpiredCard": TestMethod(
        "visa", "0069", "declined", "expired_card", "expired_card", "Your card has expired."
    ),
    "pm_card_chargeDeclinedIncorrectCvc": TestMethod(
        "visa", "0127", "declined", "incorrect_cvc", "incorrect_cvc", "Your card's security code is incorrect."
    ),
    "pm_card_chargeDeclinedProcessingError": TestMethod(
        "visa", "0119", "declined", "processing_error", "processing_error",
        "An error occurred while processing your card. Try again in a little bit.",
    ),
    "pm_card_createDispute": TestMethod("visa", "0259", "succeeded", disputed=True),
    "pm_usBankAccount_success": TestMethod("us_bank_account", "6789", "async_succeeded", method_type="us_bank_account"),
    "pm_usBankAccount_insufficientFunds": TestMethod(
        "us_bank_account", "1115", "async_failed", "insufficient_funds", None,
        "The customer's account has insufficient funds to cover this payment.", method_type="us_bank_account",
    ),
    "pm_usBankAccount_accountClosed": TestMethod(
        "us_bank_account", "1113", "async_failed", "bank_account_unusable", None,
        "The customer's bank account has been closed.", method_type="us_bank_account",
    ),
}

TOKENS = {"tok_visa": "pm_card_visa", "tok_mastercard": "pm_card_mastercard", "tok_amex": "pm_card_amex",
          "tok_chargeDeclined": "pm_card_chargeDeclined",
          "tok_chargeDeclinedInsufficientFunds": "pm_card_chargeDeclinedInsufficientFunds"}

CARD_NUMBERS = {
    "4242424242424242": "pm_card_visa",
    "5555555555554444": "pm_card_mastercard",
    "4000000000000002": "pm_card_chargeDeclined",
    "4000000000009995": "pm_card_chargeDeclinedInsufficientFunds",
    "4000000000000069": "pm_card_chargeDeclinedExpiredCard",
    "4000000000000127": "pm_card_chargeDeclinedIncorrectCvc",
    "4000000000000119": "pm_card_chargeDeclinedProcessingError",
    "4000000000000259": "pm_card_createDispute",
}


def resolve(reference: str | dict[str, Any] | None, param: str = "payment_method") -> tuple[str, TestMethod]:
    """Map ``pm_card_visa``, ``tok_visa`` or ``{"card": {"number": ...}}`` to its method id and behaviour.

    Raises:
        StripeError: 404 ``resource_missing`` for an unknown payment method, as Stripe answers.
    """
    if isinstance(reference, dict):
        number = str((reference.get("card") or {}).get("number", "")).replace(" ", "")
        name = CARD_NUMBERS.get(number)
        if name is None:
            raise StripeError(402, "Your card number is incorrect.", type="card_error", code="incorrect_number",
                              param="card[number]")
        return name, METHODS[name]
    if not reference:
        raise StripeError(400, "You cannot confirm this PaymentIntent because it's missing a payment method. "
                          "To confirm the PaymentIntent, you must provide a payment method.",
                          code="payment_intent_unexpected_state", param=param)
    name = TOKENS.get(reference, reference)
    if name in CARD_NUMBERS:
        name = CARD_NUMBERS[name]
    method = METHODS.get(name)
    if method is None:
        raise StripeError(404, f"No such PaymentMethod: '{reference}'", code="resource_missing", param=param)
    return reference, method


def details(method_id: str, method: TestMethod) -> dict[str, Any]:
    """The charge's ``payment_method_details`` for a test method."""
    if method.method_type == "us_bank_account":
        return {"type": "us_bank_account", "us_bank_account": {
            "account_holder_type": "company", "account_type": "checking", "bank_name": "STRIPE TEST BANK",
            "last4": method.last4, "routing_number": "110000000"}}
    return {"type": "card", "card": {
        "brand": method.brand, "checks": {"address_line1_check": None, "address_postal_code_check": None,
                                          "cvc_check": "pass"},
        "country": "US", "exp_month": 12, "exp_year": 2034, "fingerprint": method_id[-16:],
        "funding": "credit", "last4": method.last4, "network": method.brand, "three_d_secure": None,
        "wallet": None}}


def outcome(method: TestMethod) -> dict[str, Any]:
    """The charge's ``outcome`` block (Radar's verdict and the network's answer)."""
    if method.result in ("succeeded", "async_succeeded"):
        return {"network_status": "approved_by_network", "reason": None, "risk_level": "normal",
                "risk_score": 20, "seller_message": "Payment complete.", "type": "authorized"}
    return {"network_status": "declined_by_network", "reason": method.decline_code or method.failure_code,
            "risk_level": "normal", "risk_score": 20,
            "seller_message": "The bank did not return any further details with this decline.",
            "type": "issuer_declined"}
