"""``POST /v1/disputes/{id}/close``: the merchant accepts a dispute instead of answering it with evidence.

Closing is irreversible. A dispute that needs (or is under) a response becomes ``lost``; an inquiry (a
``warning_*`` dispute) becomes ``warning_closed``. The disputed amount already left the balance when the
dispute opened (:func:`sandboxes.payments.ledger.for_dispute`), so losing it moves no money again; the charge
stays ``disputed``. Stripe announces it with ``charge.dispute.closed``, delivered like every other event.
Retrieving and listing disputes live with the other payment objects in :mod:`sandboxes.payments.payments`.
"""

from __future__ import annotations

from typing import Any

from sandboxes.payments.errors import state_error
from sandboxes.payments.service import Call, Service, diff

CLOSED_AS = {
    "needs_response": "lost",
    "under_review": "lost",
    "warning_needs_response": "warning_closed",
    "warning_under_review": "warning_closed",
}
"""The status a dispute takes when the merchant closes it, by its current status; any other status is final."""


def close(svc: Service, call: Call) -> dict[str, Any]:
    call.params.allow(())
    dispute = svc.load("dispute", call.path["id"])
    status = CLOSED_AS.get(dispute["status"])
    if status is None:
        raise state_error(f"This dispute is already closed (its status is {dispute['status']}); closing a "
                          "dispute is irreversible.")
    before = dict(dispute)
    dispute["status"] = status
    svc.store.save(dispute, tag=status)
    svc.emit(call, "charge.dispute.closed", dispute, diff(before, dispute))
    return svc.expand(dispute, call.expand_list())


ROUTES = [
    ("POST", "/v1/disputes/{id}/close", close, "disputes"),
]
