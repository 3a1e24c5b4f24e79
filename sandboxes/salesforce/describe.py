"""Describe results (``sobjects``, ``sobjects/X/describe``) as the calling user sees the schema."""

from __future__ import annotations

import datetime as dt
import email.utils
from typing import Any

from sandboxes.salesforce.permissions import PermissionSet
from sandboxes.salesforce.schema import NUMBER_TYPES, SOAP_TYPES, SOBJECTS, Field, SObject

# The org's schema is fixed for the life of the server (and each user's access to it), so its metadata last
# changed when the server started: a describe asked "if modified since" a later moment is not modified.
METADATA_MODIFIED_AT = dt.datetime.now(dt.UTC).replace(microsecond=0)


def not_modified_since(header: str | None) -> bool:
    """Whether an ``If-Modified-Since`` value (an HTTP date) is at or after the last metadata change.

    A value that is not a date is ignored (the describe is returned), as web servers do.
    """
    if not header:
        return False
    try:
        since = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return False
    if since.tzinfo is None:
        since = since.replace(tzinfo=dt.UTC)
    return since >= METADATA_MODIFIED_AT


def _urls(sobject: SObject, version: str) -> dict[str, str]:
    base = f"/services/data/v{version}/sobjects/{sobject.name}"
    return {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"}


def _object_summary(sobject: SObject, permissions: PermissionSet, version: str) -> dict[str, Any]:
    writable = permissions.can_write(sobject)
    return {
        "activateable": False,
        "createable": writable,
        "custom": sobject.custom,
        "customSetting": False,
        "deletable": writable,
        "deprecatedAndHidden": False,
        "feedEnabled": False,
        "keyPrefix": sobject.key_prefix,
        "label": sobject.label,
        "labelPlural": sobject.label_plural,
        "layoutable": True,
        "mergeable": sobject.name in ("Account", "Contact"),
        "mruEnabled": True,
        "name": sobject.name,
        "queryable": True,
        "replicateable": True,
        "retrieveable": True,
        "searchable": True,
        "triggerable": True,
        "undeletable": writable,
        "updateable": writable,
        "urls": _urls(sobject, version),
    }


def describe_global(permissions: PermissionSet, version: str) -> dict[str, Any]:
    return {
        "encoding": "UTF-8",
        "maxBatchSize": 200,
        "sobjects": [_object_summary(o, permissions, version) for o in SOBJECTS.values() if permissions.can_read(o)],
    }


def basic_info(sobject: SObject, permissions: PermissionSet, version: str) -> dict[str, Any]:
    return {"objectDescribe": _object_summary(sobject, permissions, version), "recentItems": []}


def _field(field: Field, writable: bool) -> dict[str, Any]:
    numeric = field.type in NUMBER_TYPES
    return {
        "autoNumber": False,
        "calculated": not field.createable and not field.updateable and field.name not in ("Id", "IsDeleted"),
        "caseSensitive": False,
        "createable": writable and field.createable,
        "custom": field.custom,
        "defaultValue": field.default if field.type == "boolean" else None,
        "defaultedOnCreate": field.default is not None
        or field.name in ("Id", "IsDeleted", "CreatedDate", "LastModifiedDate", "SystemModstamp"),
        "digits": 0,
        "externalId": field.external_id,
        "filterable": field.type != "textarea" or field.length <= 255,
        "groupable": not numeric and field.type not in ("datetime", "textarea"),
        "idLookup": field.name == "Id" or field.external_id,
        "label": field.label,
        "length": field.length if not numeric and field.type not in ("boolean", "date", "datetime") else 0,
        "name": field.name,
        "nameField": field.name == "Name",
        "nillable": field.nillable,
        "picklistValues": [
            {"active": True, "defaultValue": value == field.default, "label": value, "validFor": None, "value": value}
            for value in field.picklist
        ],
        "precision": 18 if numeric else 0,
        "referenceTo": [field.reference_to] if field.reference_to else [],
        "relationshipName": field.relationship_name,
        "restrictedPicklist": field.restricted_picklist,
        "scale": 2 if numeric else 0,
        "soapType": SOAP_TYPES[field.type],
        "sortable": field.type != "textarea" or field.length <= 255,
        "type": field.type,
        "unique": field.unique,
        "updateable": writable and field.updateable,
    }


def describe(sobject: SObject, permissions: PermissionSet, version: str) -> dict[str, Any]:
    writable = permissions.can_write(sobject)
    children = [
        {
            "cascadeDelete": child.name == "OpportunityLineItem"
            or (sobject.name == "Account" and child.name in ("Contact", "Opportunity")),
            "childSObject": child.name,
            "field": field.name,
            "relationshipName": None,
        }
        for child in SOBJECTS.values()
        if permissions.can_read(child)
        for field in child.fields.values()
        if field.reference_to == sobject.name
    ]
    return {
        **_object_summary(sobject, permissions, version),
        "childRelationships": children,
        "fields": [_field(f, writable) for f in permissions.visible_fields(sobject)],
        "recordTypeInfos": [],
        "supportedScopes": [{"label": "All records", "name": "everything"}],
    }
