"""``revloop doctor``: checks the configuration and reaches each configured system."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable

from revloop.settings import Settings

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class CheckResult:
    component: str
    target: str
    ok: bool
    detail: str
    seconds: float


def _timed(component: str, target: str, check: Callable[[], str]) -> CheckResult:
    started = time.perf_counter()
    try:
        detail = check()
        ok = True
    except Exception as exc:  # a doctor reports every failure rather than stopping at the first
        detail = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        ok = False
    return CheckResult(component, target, ok, detail, time.perf_counter() - started)


def check_warehouse(settings: Settings) -> CheckResult:
    from revloop import warehouse

    target = "embedded (pgserver)" if settings.database_url is None else "REVLOOP_DATABASE_URL"

    def run() -> str:
        url = warehouse.database_url(settings)
        return f"PostgreSQL {warehouse.server_version(url)} at {warehouse.redact(url)}"

    return _timed("warehouse", target, run)


def check_salesforce(settings: Settings) -> CheckResult:
    sf_settings = settings.salesforce
    if not sf_settings.configured:
        return CheckResult("salesforce", "-", False, "not configured (REVLOOP_SALESFORCE_* unset)", 0.0)

    def run() -> str:
        from revloop.connectors import salesforce

        sf = salesforce.connect(sf_settings)
        limits = sf.limits()
        daily = limits.get("DailyApiRequests", {})
        left = f"{daily.get('Remaining')}/{daily.get('Max')}"
        return f"OAuth ok, API v{sf_settings.api_version}, {left} daily API calls left"

    return _timed("salesforce", sf_settings.instance_url or "-", run)


def check_erp(settings: Settings) -> CheckResult:
    erp_settings = settings.erp
    if not erp_settings.configured:
        return CheckResult("erp", "-", False, "not configured (REVLOOP_ERP_* unset)", 0.0)

    def run() -> str:
        from revloop.connectors import erp

        conn = erp.connect(erp_settings, reader=True)
        partners = conn.get_model("res.partner").search_count(domain=[])
        invoices = conn.get_model("account.move").search_count(domain=[["move_type", "=", "out_invoice"]])
        return f"API key ok, database {erp_settings.database}: {partners} partners, {invoices} customer invoices"

    return _timed("erp", erp_settings.url or "-", run)


def check_payments(settings: Settings) -> CheckResult:
    pay_settings = settings.payments
    if not pay_settings.configured:
        return CheckResult("payments", "-", False, "not configured (REVLOOP_PAYMENTS_* unset)", 0.0)

    def run() -> str:
        from revloop.connectors import payments

        client = payments.connect(pay_settings, max_network_retries=0)
        account = client.v1.accounts.retrieve_current()
        customers = client.v1.customers.list({"limit": 1})
        more = "more" if customers.has_more else "no more"
        return f"key ok, account {account.id}, customers listed ({more} pages)"

    return _timed("payments", pay_settings.api_base, run)


def run_checks(settings: Settings) -> list[CheckResult]:
    """Every check, in a stable order."""
    return [check(settings) for check in (check_warehouse, check_salesforce, check_erp, check_payments)]
