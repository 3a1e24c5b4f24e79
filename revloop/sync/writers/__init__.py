"""Target writers: how each intended write is applied exactly once to Salesforce, the ERP and payments.

``writer_for(system, settings)`` builds the writer of one system from Revloop's settings; the delivery
worker calls its ``deliver`` (and ``deliver_many`` where the target has a collection API).
"""

from __future__ import annotations

from revloop.settings import Settings
from revloop.sync.model import Writer

SYSTEMS = ("salesforce", "erp", "payments")


def writer_for(system: str, settings: Settings, *, database_url: str | None = None) -> Writer:
    """The writer of ``system`` configured from ``settings``.

    Salesforce tokens are shared through the warehouse's encrypted token store (so every worker process
    continues one rotating refresh-token chain) when a warehouse URL is given or configured; otherwise the
    writer logs in by client credentials and keeps its token in memory.
    """
    if system == "salesforce":
        from revloop.sync.writers.salesforce import SalesforceWriter

        url = database_url or (settings.database_url.get_secret_value() if settings.database_url else None)
        if url is None:
            return SalesforceWriter(settings.salesforce)
        from revloop.connectors.salesforce import SharedTokens
        from revloop.crypto import FieldCipher, load_keyring
        from revloop.http import pinned_session

        sf = settings.salesforce
        session = pinned_session(sf.instance_url or "", sf.ca_file)
        tokens = SharedTokens(sf, url, FieldCipher(load_keyring(settings.environment, settings.home)),
                              session=session, prefer_reader=False)
        return SalesforceWriter(sf, tokens, session=session)
    if system == "erp":
        from revloop.sync.writers.erp import ErpWriter

        return ErpWriter(settings.erp)
    if system == "payments":
        from revloop.sync.writers.payments import PaymentsWriter

        return PaymentsWriter(settings.payments)
    raise ValueError(f"no writer for system {system!r}; choose one of {', '.join(SYSTEMS)}")


__all__ = ["SYSTEMS", "writer_for"]
