"""The Salesforce sandbox: an org over HTTPS with OAuth, REST, SOQL, sObject Collections and Bulk API 2.0 queries.

Layout, moto-style: ``schema`` (the data model), ``store``/``seed`` (state), ``records``/``composite``/
``query``/``bulk``/``soql`` (behaviour), ``rest``/``backend`` (routing), ``errors`` (Salesforce's error bodies).
"""

from __future__ import annotations

import datetime as dt

from sandboxes.common.config import SandboxConfig
from sandboxes.common.credentials import load_or_create
from sandboxes.common.faults import FaultState
from sandboxes.salesforce.auth import MAIN_APP, make_credentials
from sandboxes.salesforce.backend import API_VERSION, SalesforceBackend
from sandboxes.salesforce.seed import seed_store, seeded_on
from sandboxes.salesforce.store import SalesforceStore

STORE_FILE = "salesforce.sqlite3"
CREDENTIALS_FILE = "credentials.json"


def create_backend(config: SandboxConfig, faults: FaultState) -> SalesforceBackend:
    """Open the org's store under ``config.system_dir``, seeding it from the book on first start."""
    config.system_dir.mkdir(parents=True, exist_ok=True)
    store = SalesforceStore(config.system_dir / STORE_FILE)
    if seeded_on(store) is None:
        seed_store(store, config.seed, config.scale, dt.datetime.now(dt.UTC).date())
    return SalesforceBackend(config, faults, store)


def client_env(config: SandboxConfig) -> dict[str, str]:
    """The ``REVLOOP_SALESFORCE_*`` settings a client needs to reach this org."""
    credentials = load_or_create(config.system_dir / CREDENTIALS_FILE, make_credentials)
    apps = credentials["apps"]
    return {
        "REVLOOP_SALESFORCE_INSTANCE_URL": config.base_url,
        "REVLOOP_SALESFORCE_TOKEN_URL": f"{config.base_url}/services/oauth2/token",
        "REVLOOP_SALESFORCE_CLIENT_ID": apps[MAIN_APP]["client_id"],
        "REVLOOP_SALESFORCE_CLIENT_SECRET": apps[MAIN_APP]["client_secret"],
        "REVLOOP_SALESFORCE_READER_CLIENT_ID": apps["revloop-reader"]["client_id"],
        "REVLOOP_SALESFORCE_READER_CLIENT_SECRET": apps["revloop-reader"]["client_secret"],
        "REVLOOP_SALESFORCE_REFRESH_TOKEN": credentials["initial_refresh_token"],
        "REVLOOP_SALESFORCE_CA_FILE": str(config.tls_dir / "ca.pem"),
        "REVLOOP_SALESFORCE_API_VERSION": API_VERSION,
    }
