"""Writing and reading single records: validation, the org's automation (derived fields, cascades), upsert."""

from __future__ import annotations

import dataclasses
from typing import Any

from sandboxes.salesforce.auth import ApiSession
from sandboxes.salesforce.errors import SalesforceError, insufficient_access, not_found
from sandboxes.salesforce.schema import CLOSED_STAGES, OPPORTUNITY_STAGES, SOBJECTS, WON_STAGES, Field, SObject
from sandboxes.salesforce.store import DELETED_AT, SalesforceStore
from sandboxes.salesforce.values import coerce, normalize_id, now_stamp, to_json

CASCADES: dict[str, tuple[tuple[str, str], ...]] = {
    # Master-detail children go to the recycle bin with their parent.
    "Account": (("Contact", "AccountId"), ("Opportunity", "AccountId")),
    "Opportunity": (("OpportunityLineItem", "OpportunityId"),),
}


@dataclasses.dataclass
class UpsertResult:
    record_id: str
    created: bool


class MultipleMatches(Exception):
    """An upsert or lookup by a non-unique external id matched several records (HTTP 300)."""

    def __init__(self, sobject: SObject, ids: list[str]) -> None:
        super().__init__(f"{len(ids)} {sobject.name} records match")
        self.sobject = sobject
        self.ids = ids


def require_readable(session: ApiSession, sobject: SObject | None) -> SObject:
    """The object, if the caller may see it; an unreadable object does not exist for them (404)."""
    if sobject is None or not session.permissions.can_read(sobject):
        raise not_found()
    return sobject


def require_writable(session: ApiSession, sobject: SObject) -> None:
    if not session.permissions.can_write(sobject):
        raise insufficient_access()


class RecordService:
    """Create, update, delete, upsert and retrieve records as an API user."""

    def __init__(self, store: SalesforceStore) -> None:
        self.store = store

    # ---- validation ---------------------------------------------------------------------------------

    def _checked_values(self, session: ApiSession, sobject: SObject, body: Any, creating: bool) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise SalesforceError(
                400, "JSON_PARSER_ERROR", "Cannot deserialize instance of sObject from a non-object value"
            )
        values: dict[str, Any] = {}
        for name, raw in body.items():
            if name == "attributes":
                continue
            field = sobject.field(name)
            if field is None or not session.permissions.can_see(sobject, field):
                raise SalesforceError(
                    400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {sobject.name}"
                )
            if field.name == "Id" and not creating:
                continue  # an update may echo the record's own Id
            allowed = field.createable if creating else field.updateable
            if not allowed:
                raise SalesforceError(
                    400,
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {field.name}. Please check the security settings of this "
                    "field and verify that it is read/write for your profile or permission set.",
                    [field.name],
                )
            values[field.name] = coerce(field, raw)
        return values

    def _check_required(self, sobject: SObject, values: dict[str, Any], creating: bool) -> None:
        missing = [
            f.name
            for f in sobject.fields.values()
            if (creating and f.required_on_create and values.get(f.name) is None)
            or (not f.nillable and f.name in values and values[f.name] is None and f.createable)
        ]
        if missing:
            raise SalesforceError(
                400, "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing
            )

    def _check_references(self, sobject: SObject, values: dict[str, Any]) -> None:
        for name, value in values.items():
            field = sobject.fields[name]
            if field.type != "reference" or value is None or field.reference_to not in SOBJECTS:
                continue
            target = SOBJECTS[field.reference_to]
            if value[:3] != target.key_prefix:
                raise SalesforceError(
                    400, "FIELD_INTEGRITY_EXCEPTION", f"{field.label}: id value of incorrect type: {value}", [name]
                )
            row = self.store.get(target, value)
            if row is None:
                raise SalesforceError(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [name])
            if row["IsDeleted"]:
                raise SalesforceError(400, "ENTITY_IS_DELETED", "entity is deleted", [name])

    def _check_unique(self, sobject: SObject, values: dict[str, Any], record_id: str | None) -> None:
        for name, value in values.items():
            field = sobject.fields[name]
            if not field.unique or value is None:
                continue
            others = [i for i in self.store.ids_where(sobject, name, value) if i != record_id]
            if others:
                raise SalesforceError(
                    400,
                    "DUPLICATE_VALUE",
                    f"duplicate value found: {name} duplicates value on record with id: {others[0]}",
                    [],
                )

    def _derive(self, sobject: SObject, values: dict[str, Any], existing: dict[str, Any] | None) -> None:
        """The automation a new org ships with: formula-like fields kept consistent on every write."""
        merged = {**(existing or {}), **values}
        if sobject.name == "Opportunity":
            stage = merged.get("StageName")
            values["IsClosed"] = int(stage in CLOSED_STAGES)
            values["IsWon"] = int(stage in WON_STAGES)
            stage_changed = existing is None or values.get("StageName", stage) != existing.get("StageName")
            if stage_changed and "Probability" not in values and stage in OPPORTUNITY_STAGES:
                values["Probability"] = float(OPPORTUNITY_STAGES[stage])
        elif sobject.name == "Contact":
            values["Name"] = " ".join(p for p in (merged.get("FirstName"), merged.get("LastName")) if p)
        elif sobject.name == "OpportunityLineItem":
            quantity, price = merged.get("Quantity"), merged.get("UnitPrice")
            values["TotalPrice"] = quantity * price if quantity is not None and price is not None else None
            if existing is None:
                opportunity = self.store.get(SOBJECTS["Opportunity"], merged["OpportunityId"]) or {}
                product = self.store.get(SOBJECTS["Product2"], merged["Product2Id"]) or {}
                values["Name"] = f"{opportunity.get('Name', '')} {product.get('Name', '')}".strip()
                values["CurrencyIsoCode"] = opportunity.get("CurrencyIsoCode") or merged.get("CurrencyIsoCode")

    # ---- writes -------------------------------------------------------------------------------------

    def create(self, session: ApiSession, sobject: SObject, body: Any) -> str:
        require_writable(session, sobject)
        if isinstance(body, dict) and any(k.lower() == "id" for k in body):
            raise SalesforceError(400, "INVALID_FIELD", "cannot specify Id in an insert call", ["Id"])
        values = self._checked_values(session, sobject, body, creating=True)
        for field in sobject.fields.values():
            if field.name not in values and field.default is not None and field.createable:
                values[field.name] = coerce(field, field.default)
        self._check_required(sobject, values, creating=True)
        self._check_references(sobject, values)
        self._check_unique(sobject, values, None)
        self._derive(sobject, values, None)
        stamp = now_stamp()
        record_id = self.store.next_id(sobject)
        values.update(
            {
                "Id": record_id,
                "IsDeleted": 0,
                "CreatedDate": stamp,
                "LastModifiedDate": stamp,
                "SystemModstamp": stamp,
                "CreatedById": session.user_id,
                "LastModifiedById": session.user_id,
            }
        )
        self.store.insert(sobject, values)
        return record_id

    def update(self, session: ApiSession, sobject: SObject, record_id: str, body: Any) -> None:
        require_writable(session, sobject)
        existing = self._existing(sobject, record_id)
        values = self._checked_values(session, sobject, body, creating=False)
        self._check_required(sobject, values, creating=False)
        self._check_references(sobject, values)
        self._check_unique(sobject, values, existing["Id"])
        self._derive(sobject, values, existing)
        stamp = now_stamp()
        values.update({"LastModifiedDate": stamp, "SystemModstamp": stamp, "LastModifiedById": session.user_id})
        self.store.update(sobject, existing["Id"], values)

    def delete(self, session: ApiSession, sobject: SObject, record_id: str) -> None:
        require_writable(session, sobject)
        existing = self._existing(sobject, record_id)
        self._move_to_recycle_bin(sobject, [existing["Id"]], session.user_id, now_stamp())

    def _move_to_recycle_bin(self, sobject: SObject, ids: list[str], user_id: str, stamp: str) -> None:
        if not ids:
            return
        marks = ", ".join("?" for _ in ids)
        self.store.db.execute(
            f'UPDATE "{sobject.name}" SET "IsDeleted" = 1, {DELETED_AT} = ?, "SystemModstamp" = ?, '
            f'"LastModifiedDate" = ?, "LastModifiedById" = ? WHERE "Id" IN ({marks}) AND "IsDeleted" = 0',
            [stamp, stamp, stamp, user_id, *ids],
        )
        for child_name, reference in CASCADES.get(sobject.name, ()):
            child = SOBJECTS[child_name]
            child_ids = [
                row[0]
                for row in self.store.db.execute(
                    f'SELECT "Id" FROM "{child_name}" WHERE "{reference}" IN ({marks}) AND "IsDeleted" = 0', ids
                )
            ]
            self._move_to_recycle_bin(child, child_ids, user_id, stamp)

    def undelete(self, sobject: SObject, record_id: str) -> bool:
        stamp = now_stamp()
        cursor = self.store.db.execute(
            f'UPDATE "{sobject.name}" SET "IsDeleted" = 0, {DELETED_AT} = NULL, "SystemModstamp" = ?, '
            f'"LastModifiedDate" = ? WHERE "Id" = ? AND "IsDeleted" = 1',
            (stamp, stamp, record_id),
        )
        return cursor.rowcount > 0

    def upsert(
        self, session: ApiSession, sobject: SObject, field_name: str, value: str, body: Any, update_only: bool = False
    ) -> UpsertResult:
        require_writable(session, sobject)
        field = self.external_id_field(session, sobject, field_name)
        if field.name == "Id":
            self.update(session, sobject, value, body)
            return UpsertResult(self._existing(sobject, value)["Id"], created=False)
        key = coerce(field, value)
        matches = self.store.ids_where(sobject, field.name, key)
        if len(matches) > 1:
            raise MultipleMatches(sobject, matches)
        if isinstance(body, dict):
            # The key comes from the URL; a body repeating it is fine, a body changing it is not honoured.
            body = {k: v for k, v in body.items() if k.lower() != field.name.lower()}
        if matches:
            self.update(session, sobject, matches[0], body)
            return UpsertResult(matches[0], created=False)
        if update_only:
            raise not_found()
        if not isinstance(body, dict):
            raise SalesforceError(
                400, "JSON_PARSER_ERROR", "Cannot deserialize instance of sObject from a non-object value"
            )
        return UpsertResult(self.create(session, sobject, {**body, field.name: key}), created=True)

    def external_id_field(self, session: ApiSession, sobject: SObject, name: str) -> Field:
        field = sobject.field(name)
        if (
            field is None
            or not (field.external_id or field.name == "Id")
            or not session.permissions.can_see(sobject, field)
        ):
            raise SalesforceError(
                404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {name}"
            )
        return field

    # ---- reads --------------------------------------------------------------------------------------

    def _existing(self, sobject: SObject, record_id: str) -> dict[str, Any]:
        normalized = normalize_id(record_id)
        if normalized is None or normalized[:3] != sobject.key_prefix:
            raise SalesforceError(
                404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {record_id}"
            )
        row = self.store.get(sobject, normalized)
        if row is None:
            raise not_found()
        if row["IsDeleted"]:
            raise SalesforceError(404, "ENTITY_IS_DELETED", "entity is deleted", [])
        return row

    def retrieve(
        self, session: ApiSession, sobject: SObject, record_id: str, version: str, fields: list[str] | None = None
    ) -> dict[str, Any]:
        row = self._existing(sobject, record_id)
        return self.render(session, sobject, row, version, fields)

    def find_by_external_id(self, session: ApiSession, sobject: SObject, field_name: str, value: str) -> str:
        field = self.external_id_field(session, sobject, field_name)
        if field.name == "Id":
            return self._existing(sobject, value)["Id"]
        matches = self.store.ids_where(sobject, field.name, coerce(field, value))
        if len(matches) > 1:
            raise MultipleMatches(sobject, matches)
        if not matches:
            raise not_found()
        return matches[0]

    def render(
        self, session: ApiSession, sobject: SObject, row: dict[str, Any], version: str, fields: list[str] | None = None
    ) -> dict[str, Any]:
        """A record as the REST API returns it: ``attributes`` first, then the visible fields."""
        if fields:
            chosen = []
            for name in fields:
                field = sobject.field(name.strip())
                if field is None or not session.permissions.can_see(sobject, field):
                    raise SalesforceError(
                        400,
                        "INVALID_FIELD",
                        f"No such column '{name.strip()}' on entity '{sobject.name}'. "
                        "If you are attempting to use a custom field, be sure to append the '__c' after "
                        "the custom field name. Please reference your WSDL or the describe call for the "
                        "appropriate names.",
                    )
                chosen.append(field)
        else:
            chosen = session.permissions.visible_fields(sobject)
        record: dict[str, Any] = {
            "attributes": {
                "type": sobject.name,
                "url": f"/services/data/v{version}/sobjects/{sobject.name}/{row['Id']}",
            }
        }
        for field in chosen:
            record[field.name] = to_json(field, row[field.name])
        return record
