"""The org's data model: every sObject and field the sandbox serves, defined once.

Describe, write validation, SOQL type checking and the SQLite columns are all derived from these
definitions, so they cannot drift apart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from sandboxes.book import CURRENCIES

STRING_TYPES = frozenset({"id", "reference", "string", "picklist", "email", "phone", "url", "textarea"})
NUMBER_TYPES = frozenset({"double", "currency", "percent"})
SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "string": "xsd:string",
    "picklist": "xsd:string",
    "email": "xsd:string",
    "phone": "xsd:string",
    "url": "xsd:string",
    "textarea": "xsd:string",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "boolean": "xsd:boolean",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
}


@dataclasses.dataclass(frozen=True)
class Field:
    """One field of an sObject, with what describe reports about it."""

    name: str
    type: str
    label: str
    length: int = 0
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    external_id: bool = False
    unique: bool = False
    picklist: tuple[str, ...] = ()
    restricted_picklist: bool = False
    reference_to: str | None = None
    relationship_name: str | None = None
    default: object = None
    """Value set on create when the request leaves the field out (``defaultedOnCreate``)."""

    @property
    def custom(self) -> bool:
        return self.name.endswith("__c")

    @property
    def required_on_create(self) -> bool:
        """Salesforce's rule: a createable field that is not nillable and has no default must be sent."""
        return self.createable and not self.nillable and self.default is None and self.type != "boolean"

    @property
    def sql_type(self) -> str:
        if self.type in NUMBER_TYPES:
            return "REAL"
        if self.type == "boolean":
            return "INTEGER"
        return "TEXT"


@dataclasses.dataclass(frozen=True)
class SObject:
    """One object type: its key prefix (the first three characters of its Ids) and fields by name."""

    name: str
    label: str
    label_plural: str
    key_prefix: str
    fields: dict[str, Field]

    @property
    def custom(self) -> bool:
        return self.name.endswith("__c")

    def field(self, name: str) -> Field | None:
        """The field called ``name``, matched case-insensitively as SOQL and REST do."""
        found = self.fields.get(name)
        if found is not None:
            return found
        return _lower_index(self).get(name.lower())

    def relationship(self, name: str) -> Field | None:
        """The reference field whose relationship name is ``name`` (``Account`` -> ``AccountId``)."""
        lowered = name.lower()
        for field in self.fields.values():
            if field.relationship_name and field.relationship_name.lower() == lowered:
                return field
        return None

    def external_id_fields(self) -> list[Field]:
        return [f for f in self.fields.values() if f.external_id]


_LOWER_CACHE: dict[str, dict[str, Field]] = {}


def _lower_index(sobject: SObject) -> dict[str, Field]:
    index = _LOWER_CACHE.get(sobject.name)
    if index is None:
        index = {name.lower(): field for name, field in sobject.fields.items()}
        _LOWER_CACHE[sobject.name] = index
    return index


# ---- field helpers ------------------------------------------------------------------------------------


def _text(name: str, label: str, length: int = 255, **kw: object) -> Field:
    return Field(name, "string", label, length=length, **kw)  # type: ignore[arg-type]


def _picklist(name: str, label: str, values: Iterable[str], restricted: bool = True, **kw: object) -> Field:
    return Field(
        name,
        "picklist",
        label,
        length=255,
        picklist=tuple(values),
        restricted_picklist=restricted,
        **kw,  # type: ignore[arg-type]
    )


def _reference(name: str, label: str, to: str, relationship: str, **kw: object) -> Field:
    return Field(name, "reference", label, length=18, reference_to=to, relationship_name=relationship, **kw)  # type: ignore[arg-type]


def _currency(name: str, label: str, **kw: object) -> Field:
    return Field(name, "currency", label, **kw)  # type: ignore[arg-type]


def _system_fields(name_field: Field) -> list[Field]:
    """Fields every object carries; none of them can be written through the API."""
    readonly = {"createable": False, "updateable": False}
    return [
        Field("Id", "id", "Record ID", length=18, nillable=False, **readonly),
        Field("IsDeleted", "boolean", "Deleted", nillable=False, **readonly),
        name_field,
        _picklist("CurrencyIsoCode", "Currency ISO Code", sorted(CURRENCIES), nillable=False, default="SGD"),
        Field("CreatedDate", "datetime", "Created Date", nillable=False, **readonly),
        _reference("CreatedById", "Created By ID", "User", "CreatedBy", nillable=False, **readonly),
        Field("LastModifiedDate", "datetime", "Last Modified Date", nillable=False, **readonly),
        _reference("LastModifiedById", "Last Modified By ID", "User", "LastModifiedBy", nillable=False, **readonly),
        Field("SystemModstamp", "datetime", "System Modstamp", nillable=False, **readonly),
    ]


def _sobject(name: str, label: str, plural: str, prefix: str, name_field: Field, fields: list[Field]) -> SObject:
    all_fields = [*_system_fields(name_field), *fields]
    return SObject(name, label, plural, prefix, {f.name: f for f in all_fields})


OPPORTUNITY_STAGES: dict[str, int] = {
    "Prospecting": 10,
    "Qualification": 10,
    "Needs Analysis": 20,
    "Value Proposition": 50,
    "Id. Decision Makers": 60,
    "Perception Analysis": 70,
    "Proposal/Price Quote": 75,
    "Negotiation/Review": 90,
    "Closed Won": 100,
    "Closed Lost": 0,
}
"""Stage -> default probability, as in a new org's sales process."""

CLOSED_STAGES = frozenset({"Closed Won", "Closed Lost"})
WON_STAGES = frozenset({"Closed Won"})

PAYMENT_STATUSES = ("Unpaid", "Partially Paid", "Paid", "Failed", "Refunded", "Disputed")

INDUSTRIES = (
    "Apparel",
    "Banking",
    "Biotechnology",
    "Construction",
    "Consulting",
    "Education",
    "Electronics",
    "Energy",
    "Engineering",
    "Finance",
    "Food & Beverage",
    "Healthcare",
    "Hospitality",
    "Insurance",
    "Manufacturing",
    "Media",
    "Retail",
    "Shipping",
    "Technology",
    "Telecommunications",
    "Transportation",
    "Other",
)
PRODUCT_FAMILIES = ("Billing", "Payments", "Reconciliation", "Finance Operations", "Services", "Support")

_readonly = {"createable": False, "updateable": False}

SOBJECTS: dict[str, SObject] = {
    o.name: o
    for o in (
        _sobject(
            "Account",
            "Account",
            "Accounts",
            "001",
            _text("Name", "Account Name", nillable=False),
            [
                _picklist("Type", "Account Type", ("Prospect", "Customer", "Partner", "Other")),
                # Unrestricted, as in a new org: integrations may send industries the list does not know.
                _picklist("Industry", "Industry", INDUSTRIES, restricted=False),
                Field("BillingStreet", "textarea", "Billing Street", length=255),
                _text("BillingCity", "Billing City", 40),
                _text("BillingPostalCode", "Billing Zip/Postal Code", 20),
                _text("BillingCountry", "Billing Country", 80),
                Field("Phone", "phone", "Account Phone", length=40),
                Field("Website", "url", "Website", length=255),
                _text("AccountNumber", "Account Number", 40),
                Field("Description", "textarea", "Account Description", length=32000),
                _text("VAT_Number__c", "VAT Number", 40),
                # Deliberately not unique: the duplicate-account mess can leave two Accounts with one ERP id.
                _text("ERP_Partner_Id__c", "ERP Partner Id", 40, external_id=True),
            ],
        ),
        _sobject(
            "Contact",
            "Contact",
            "Contacts",
            "003",
            Field("Name", "string", "Full Name", length=121, nillable=False, **_readonly),
            [
                _text("FirstName", "First Name", 40),
                _text("LastName", "Last Name", 80, nillable=False),
                _reference("AccountId", "Account ID", "Account", "Account"),
                Field("Email", "email", "Email", length=80),
                Field("Phone", "phone", "Business Phone", length=40),
                _text("Title", "Title", 128),
            ],
        ),
        _sobject(
            "Product2",
            "Product",
            "Products",
            "01t",
            _text("Name", "Product Name", nillable=False),
            [
                _text("ProductCode", "Product Code"),
                _picklist("Family", "Product Family", PRODUCT_FAMILIES, restricted=False),
                Field("IsActive", "boolean", "Active", nillable=False, default=True),
                Field("Description", "textarea", "Product Description", length=4000),
                _text("ERP_Product_Id__c", "ERP Product Id", 40, external_id=True, unique=True),
            ],
        ),
        _sobject(
            "Opportunity",
            "Opportunity",
            "Opportunities",
            "006",
            _text("Name", "Name", 120, nillable=False),
            [
                _reference("AccountId", "Account ID", "Account", "Account"),
                _picklist("StageName", "Stage", OPPORTUNITY_STAGES, nillable=False),
                _currency("Amount", "Amount"),
                Field("CloseDate", "date", "Close Date", nillable=False),
                Field("IsClosed", "boolean", "Closed", nillable=False, **_readonly),
                Field("IsWon", "boolean", "Won", nillable=False, **_readonly),
                Field("Probability", "percent", "Probability (%)"),
                _picklist("Type", "Opportunity Type", ("New Business", "Existing Business", "Upsell", "Renewal")),
                _picklist(
                    "LeadSource", "Lead Source", ("Web", "Partner", "Referral", "Event", "Other"), restricted=False
                ),
                Field("Description", "textarea", "Description", length=32000),
            ],
        ),
        _sobject(
            "OpportunityLineItem",
            "Opportunity Product",
            "Opportunity Product",
            "00k",
            Field("Name", "string", "Opportunity Product Name", length=376, **_readonly),
            [
                _reference(
                    "OpportunityId", "Opportunity ID", "Opportunity", "Opportunity", nillable=False, updateable=False
                ),
                _reference("Product2Id", "Product ID", "Product2", "Product2", nillable=False, updateable=False),
                Field("Quantity", "double", "Quantity", nillable=False),
                _currency("UnitPrice", "Sales Price", nillable=False),
                _currency("TotalPrice", "Total Price", **_readonly),
                Field("Description", "textarea", "Line Description", length=255),
            ],
        ),
        _sobject(
            "Invoice__c",
            "Invoice",
            "Invoices",
            "a0B",
            _text("Name", "Invoice Name", 80, nillable=False),
            [
                _reference("Opportunity__c", "Opportunity", "Opportunity", "Opportunity__r"),
                _reference("Account__c", "Account", "Account", "Account__r"),
                # Not unique: a re-posted ERP invoice can briefly sit on two records, which upsert answers with 300.
                _text("ERP_Invoice_Id__c", "ERP Invoice Id", 40, external_id=True),
                _text("ERP_Invoice_Number__c", "ERP Invoice Number", 40),
                Field("Invoice_Date__c", "date", "Invoice Date"),
                Field("Due_Date__c", "date", "Due Date"),
                _currency("Amount__c", "Amount"),
                _picklist("Status__c", "Status", ("Draft", "Posted", "Cancelled"), restricted=False),
                _picklist("Payment_Status__c", "Payment Status", PAYMENT_STATUSES, default="Unpaid"),
                Field("Paid_At__c", "datetime", "Paid At"),
                _text("Revloop_Key__c", "Revloop Key", 80, external_id=True, unique=True),
            ],
        ),
        _sobject(
            "Subscription__c",
            "Subscription",
            "Subscriptions",
            "a0C",
            _text("Name", "Subscription Name", 80, nillable=False),
            [
                _reference("Account__c", "Account", "Account", "Account__r"),
                Field("Start_Date__c", "date", "Start Date"),
                Field("End_Date__c", "date", "End Date"),
                _picklist("Status__c", "Status", ("Active", "Expired", "Cancelled")),
                _currency("Amount__c", "Amount"),
                _reference("Renewal_Opportunity__c", "Renewal Opportunity", "Opportunity", "Renewal_Opportunity__r"),
                _text("Revloop_Key__c", "Revloop Key", 80, external_id=True, unique=True),
            ],
        ),
    )
}

KEY_PREFIXES: dict[str, str] = {o.key_prefix: o.name for o in SOBJECTS.values()}
USER_KEY_PREFIX = "005"
ORG_KEY_PREFIX = "00D"


def sobject(name: str) -> SObject | None:
    """The object called ``name``, matched case-insensitively."""
    found = SOBJECTS.get(name)
    if found is not None:
        return found
    lowered = name.lower()
    return next((o for o in SOBJECTS.values() if o.name.lower() == lowered), None)


def object_of_id(record_id: str) -> str | None:
    """The object an Id belongs to, from its key prefix."""
    return KEY_PREFIXES.get(record_id[:3])
