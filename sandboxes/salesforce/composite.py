"""sObject Collections (``composite/sobjects``): up to 200 records per call, per-record results or all-or-none."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sandboxes.salesforce.auth import ApiSession
from sandboxes.salesforce.errors import SalesforceError
from sandboxes.salesforce.records import MultipleMatches, RecordService, require_readable
from sandboxes.salesforce.schema import object_of_id, sobject
from sandboxes.salesforce.values import normalize_id

MAX_RECORDS = 200

_ROLLED_BACK = SalesforceError(
    400,
    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "Record rolled back because not all records were valid and the request was using AllOrNone header",
    [],
)


def _too_many() -> SalesforceError:
    return SalesforceError(
        400, "EXCEEDED_ID_LIMIT", f"record limit reached. cannot submit more than {MAX_RECORDS} records into this call"
    )


def _parse_body(body: Any) -> tuple[list[Any], bool]:
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise SalesforceError(400, "JSON_PARSER_ERROR", "The request body must be an object with a 'records' array")
    records = body["records"]
    if len(records) > MAX_RECORDS:
        raise _too_many()
    all_or_none = body.get("allOrNone", False)
    if not isinstance(all_or_none, bool):
        raise SalesforceError(400, "JSON_PARSER_ERROR", "allOrNone must be true or false")
    return records, all_or_none


def _record_type(record: Any) -> str:
    if not isinstance(record, dict):
        raise SalesforceError(400, "JSON_PARSER_ERROR", "Each record must be a JSON object")
    attributes = record.get("attributes")
    type_name = attributes.get("type") if isinstance(attributes, dict) else None
    if not type_name:
        raise SalesforceError(400, "INVALID_FIELD", "No type specified for sObject; set attributes.type", [])
    return str(type_name)


class CollectionService:
    """Runs each record of a collection request in its own savepoint, inside one transaction."""

    def __init__(self, records: RecordService) -> None:
        self.records = records
        self.store = records.store

    def _run(
        self,
        items: list[Any],
        all_or_none: bool,
        operation: Callable[[Any], dict[str, Any]],
        failure_id: Callable[[Any], str | None],
    ) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        failed = False
        self.store.db.execute("BEGIN")
        try:
            for item in items:
                try:
                    with self.store.transaction():
                        results.append(operation(item))
                except (SalesforceError, MultipleMatches) as exc:
                    failed = True
                    error = exc if isinstance(exc, SalesforceError) else _multiple(exc)
                    result: dict[str, Any] = {"success": False, "errors": [error.record_error()]}
                    record_id = failure_id(item)
                    if record_id:
                        result = {"id": record_id, **result}
                    results.append(result)
        except BaseException:
            self.store.db.execute("ROLLBACK")
            raise
        if failed and all_or_none:
            self.store.db.execute("ROLLBACK")
            return [
                {"id": r["id"], "success": False, "errors": [_ROLLED_BACK.record_error()]} if r["success"] else {**r}
                for r in results
            ]
        self.store.db.execute("COMMIT")
        return results

    def create(self, session: ApiSession, body: Any) -> list[dict[str, Any]]:
        items, all_or_none = _parse_body(body)

        def create_one(record: Any) -> dict[str, Any]:
            target = require_readable_named(session, _record_type(record))
            return {"id": self.records.create(session, target, record), "success": True, "errors": []}

        results = self._run(items, all_or_none, create_one, lambda record: None)
        # Rolled-back creates never had an Id to report.
        return [{k: v for k, v in r.items() if not (k == "id" and not r["success"] and all_or_none)} for r in results]

    def update(self, session: ApiSession, body: Any) -> list[dict[str, Any]]:
        items, all_or_none = _parse_body(body)

        def update_one(record: Any) -> dict[str, Any]:
            target = require_readable_named(session, _record_type(record))
            record_id = record.get("Id") or record.get("id")
            if not record_id:
                raise SalesforceError(400, "MISSING_ARGUMENT", "Id not specified in an update call", [])
            self.records.update(session, target, str(record_id), record)
            return {"id": normalize_id(str(record_id)) or record_id, "success": True, "errors": []}

        return self._run(items, all_or_none, update_one, lambda r: r.get("Id") if isinstance(r, dict) else None)

    def upsert(self, session: ApiSession, object_name: str, field_name: str, body: Any) -> list[dict[str, Any]]:
        items, all_or_none = _parse_body(body)
        target = require_readable_named(session, object_name)
        field = self.records.external_id_field(session, target, field_name)

        def upsert_one(record: Any) -> dict[str, Any]:
            if _record_type(record).lower() != target.name.lower():
                raise SalesforceError(400, "INVALID_FIELD", f"Record type must be {target.name} in this call", [])
            key = next((v for k, v in record.items() if k.lower() == field.name.lower()), None)
            if key in (None, ""):
                raise SalesforceError(400, "MISSING_ARGUMENT", f"{field.name} not specified", [field.name])
            outcome = self.records.upsert(session, target, field.name, str(key), record)
            return {"id": outcome.record_id, "success": True, "errors": [], "created": outcome.created}

        return self._run(items, all_or_none, upsert_one, lambda record: None)

    def delete(self, session: ApiSession, ids_param: str | None, all_or_none_param: str | None) -> list[dict[str, Any]]:
        ids = [i for i in (ids_param or "").split(",") if i]
        if not ids:
            raise SalesforceError(400, "MISSING_ARGUMENT", "ids parameter is required")
        if len(ids) > MAX_RECORDS:
            raise _too_many()
        all_or_none = (all_or_none_param or "false").lower() == "true"

        def delete_one(record_id: str) -> dict[str, Any]:
            normalized = normalize_id(record_id)
            type_name = object_of_id(normalized) if normalized else None
            if normalized is None or type_name is None:
                raise SalesforceError(400, "MALFORMED_ID", f"malformed id {record_id}", [])
            target = require_readable_named(session, type_name)
            self.records.delete(session, target, normalized)
            return {"id": normalized, "success": True, "errors": []}

        return self._run(ids, all_or_none, delete_one, lambda record_id: record_id)


def require_readable_named(session: ApiSession, name: str):  # type: ignore[no-untyped-def]
    try:
        return require_readable(session, sobject(name))
    except SalesforceError:
        raise SalesforceError(400, "INVALID_TYPE", f"sObject type '{name}' is not supported.", []) from None


def _multiple(exc: MultipleMatches) -> SalesforceError:
    return SalesforceError(
        300,
        "DUPLICATE_EXTERNAL_ID",
        f"more than one record found for external id field: {exc.ids}",
        [],
    )
