"""The payments platform: a ``stripe.StripeClient`` aimed at the configured API base."""

from __future__ import annotations

import stripe

from revloop.settings import PaymentsSettings


def connect(settings: PaymentsSettings, *, reader: bool = False, max_network_retries: int = 2) -> stripe.StripeClient:
    """A Stripe client using the secret key, or the restricted read-only key when ``reader``."""
    key = settings.reader_key if reader and settings.reader_key else settings.secret_key
    if key is None:
        raise ValueError("REVLOOP_PAYMENTS_SECRET_KEY is not set")
    return stripe.StripeClient(
        key.get_secret_value(),
        base_addresses={"api": settings.api_base.rstrip("/")},
        max_network_retries=max_network_retries,
    )
