"""Integration users' permission sets: which objects and fields each connected app may read or write."""

from __future__ import annotations

import dataclasses

from sandboxes.salesforce.schema import SOBJECTS, Field, SObject


@dataclasses.dataclass(frozen=True)
class PermissionSet:
    """Object and field access of one integration user (profile plus permission sets, flattened)."""

    name: str
    readable: frozenset[str] | None
    """Objects the user may read; None means every object."""
    writable: frozenset[str]
    """Objects the user may create, edit and delete."""
    hidden_fields: frozenset[str] = frozenset()
    """``Object.Field`` pairs that field-level security hides (not even describe shows them)."""

    def can_read(self, sobject: SObject) -> bool:
        return self.readable is None or sobject.name in self.readable

    def can_write(self, sobject: SObject) -> bool:
        return self.can_read(sobject) and sobject.name in self.writable

    def can_see(self, sobject: SObject, field: Field) -> bool:
        return f"{sobject.name}.{field.name}" not in self.hidden_fields

    def visible_fields(self, sobject: SObject) -> list[Field]:
        return [f for f in sobject.fields.values() if self.can_see(sobject, f)]


ALL_OBJECTS = frozenset(SOBJECTS)

PERMISSION_SETS: dict[str, PermissionSet] = {
    p.name: p
    for p in (
        # The sync service reads everything and writes back what the ERP and payments decide.
        PermissionSet("revloop-sync", None, frozenset({"Account", "Opportunity", "Invoice__c", "Subscription__c"})),
        # Analytics and reconciliation: read-only everywhere.
        PermissionSet("revloop-reader", None, frozenset()),
        # A support-desk integration: no finance objects, no personal contact details, edits Contacts only.
        PermissionSet(
            "revloop-support",
            ALL_OBJECTS - {"Invoice__c", "Subscription__c"},
            frozenset({"Contact"}),
            frozenset({"Contact.Email", "Contact.Phone"}),
        ),
        # The org administrator, for setting up test scenarios.
        PermissionSet("revloop-admin", None, ALL_OBJECTS),
    )
}
