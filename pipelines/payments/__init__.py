"""The payments (Stripe) source: objects by list on backfill, then kept current from the events feed."""

from __future__ import annotations

from collections.abc import Iterator

import dlt
from dlt.extract.resource import DltResource

from pipelines.common.runner import LoadContext
from pipelines.payments.load import PaymentsLoad
from pipelines.payments.settings import EVENT_TABLE, OBJECTS


@dlt.source(name="payments", max_table_nesting=0)
def payments_source(context: LoadContext) -> Iterator[DltResource]:
    """One resource per Stripe object (``invoice`` also fills ``invoice_line``) and one for the events.

    The first run (or ``full_refresh``) lists every object; later runs read the events feed from the
    stored cursor and upsert each changed object's newest snapshot. Every table merges on ``id``
    (``invoice_line`` on ``invoice, id``).

    Args:
        context: the load's settings, warehouse, PII protector and quarantine (see ``run_load``).
    """
    load = PaymentsLoad(context)
    for table in OBJECTS:
        yield dlt.resource(load.object_rows(table), name=table, write_disposition="merge", primary_key="id")
    yield dlt.resource(load.event_rows(), name=EVENT_TABLE, write_disposition="merge", primary_key="id")


__all__ = ["payments_source"]
