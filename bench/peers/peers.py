"""The peers: how each is installed, pointed at its sandbox, configured, and which streams it syncs.

Every setting below is one the peer documents for its users; nothing of the peer's code is changed. The
only thing that is not a setting is the vendor host each one has fixed in its code, which the wrappers in
``wrappers/`` send to the sandbox (see ``wrappers/vendor_redirect.py`` and README.md for why).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Any, Literal

from bench.peers.access import PaymentsAccess, SalesforceAccess

TARGET_POSTGRES_ENV = "meltanolabs-target-postgres"

Access = SalesforceAccess | PaymentsAccess


@dataclasses.dataclass(frozen=True)
class Options:
    """Run-wide choices shared by every peer."""

    start_date: dt.date


@dataclasses.dataclass(frozen=True)
class Peer:
    """One extractor and how the benchmark runs it."""

    name: str
    kind: Literal["airbyte", "singer"]
    system: Literal["salesforce", "payments"]
    environment: str
    """The virtualenv (and ``requirements/<environment>.txt``) it runs in."""
    wrapper: str
    """The script in ``wrappers/`` that redirects the vendor host and calls the peer's own entry point."""
    make_config: Callable[[Any, Options], dict[str, Any]]
    select_all_streams: bool
    """True: every stream the peer discovers. False: those with a sandbox object to compare, plus ``extra_streams``."""
    extra_streams: tuple[str, ...] = ()
    stream_aliases: dict[str, str] = dataclasses.field(default_factory=dict)
    """The peer's stream name -> the sandbox object it reads, where the names differ."""
    catalog_flag: str = "--catalog"
    notes: str = ""


def _iso(day: dt.date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def _tap_salesforce_config(api_type: str) -> Callable[[SalesforceAccess, Options], dict[str, Any]]:
    def make(access: SalesforceAccess, options: Options) -> dict[str, Any]:
        return {
            "client_id": access.client_id,
            "client_secret": access.client_secret,
            "refresh_token": access.tokens.refresh_token,
            "start_date": _iso(options.start_date),
            "api_type": api_type,
            "select_fields_by_default": True,
            "is_sandbox": False,
        }

    return make


def _airbyte_salesforce_config(access: SalesforceAccess, options: Options) -> dict[str, Any]:
    return {
        "client_id": access.client_id,
        "client_secret": access.client_secret,
        "refresh_token": access.tokens.refresh_token,
        "start_date": _iso(options.start_date),
        "is_sandbox": False,
        "force_use_bulk_api": False,
        # One Bulk job per stream per year instead of per 30 days (the default): same data, fewer jobs.
        "stream_slice_step": "P365D",
    }


def _tap_stripe_config(access: PaymentsAccess, options: Options) -> dict[str, Any]:
    return {
        "client_secret": access.secret_key,
        "account_id": access.account_id,
        "start_date": _iso(options.start_date),
    }


def _airbyte_stripe_config(access: PaymentsAccess, options: Options) -> dict[str, Any]:
    return {
        "client_secret": access.secret_key,
        "account_id": access.account_id,
        "start_date": _iso(options.start_date),
        "slice_range": 365,
        "num_workers": 4,
    }


PEERS: dict[str, Peer] = {
    peer.name: peer
    for peer in (
        Peer(
            name="tap-salesforce",
            kind="singer",
            system="salesforce",
            environment="tap-salesforce",
            wrapper="run_tap_salesforce.py",
            make_config=_tap_salesforce_config("REST"),
            select_all_streams=True,
            catalog_flag="--properties",
            notes="api_type REST: queryAll with nextRecordsUrl paging",
        ),
        Peer(
            name="tap-salesforce-bulk",
            kind="singer",
            system="salesforce",
            environment="tap-salesforce",
            wrapper="run_tap_salesforce.py",
            make_config=_tap_salesforce_config("BULK"),
            select_all_streams=True,
            catalog_flag="--properties",
            notes="api_type BULK: Bulk API 1.0 (/services/async), polls each batch every 20 s",
        ),
        Peer(
            name="airbyte-source-salesforce",
            kind="airbyte",
            system="salesforce",
            environment="airbyte-source-salesforce",
            wrapper="run_airbyte_source_salesforce.py",
            make_config=_airbyte_salesforce_config,
            select_all_streams=True,
            notes="Bulk API 2.0 query jobs, REST queryAll for objects Bulk cannot serve or when Bulk is refused",
        ),
        Peer(
            name="tap-stripe",
            kind="singer",
            system="payments",
            environment="tap-stripe",
            wrapper="run_tap_stripe.py",
            make_config=_tap_stripe_config,
            select_all_streams=False,
            extra_streams=("events",),
            # payout_transactions are the balance transactions of payouts; with no payouts there is nothing to
            # compare, so the stream is not matched to balance transactions.
            stream_aliases={"invoice_line_items": "invoiceitem"},
            notes="stripe-python 5.5; created[gte]/[lt] windows of 30 days; events only for the last 30 days",
        ),
        Peer(
            name="airbyte-source-stripe",
            kind="airbyte",
            system="payments",
            environment="airbyte-source-stripe",
            wrapper="run_airbyte_source_stripe.py",
            make_config=_airbyte_stripe_config,
            select_all_streams=False,
            extra_streams=("events",),
            # /v1/accounts lists connected accounts, never the platform's own: nothing in the sandbox to compare.
            stream_aliases={"invoice_line_items": "invoiceitem", "accounts": "connected_account"},
            notes="low-code manifest; created[gte]/[lte] slices of 365 days; 400/403/404 answers are skipped silently",
        ),
    )
}

# tap-salesforce-bulk is left out by default: the sandbox org, like many real ones, has the Async API
# (Bulk 1.0) turned off, and tap-salesforce has no fallback, so it only shows that failure.
DEFAULT_PEERS = tuple(name for name in PEERS if name != "tap-salesforce-bulk")
