"""The Odoo models the ERP sandbox serves: their fields as Odoo names and types them, and their SQLite tables.

One :class:`Model` per Odoo model; generic code (``orm``, ``domain``) reads these definitions, so adding a
field is a one-line change here. Field attributes follow what Odoo's ``fields_get`` reports.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

STORED_SCALAR_TYPES = {"char", "text", "selection", "date", "datetime", "integer", "float", "monetary", "boolean"}
SQL_TYPES = {
    "char": "TEXT", "text": "TEXT", "selection": "TEXT", "date": "TEXT", "datetime": "TEXT",
    "integer": "INTEGER", "many2one": "INTEGER", "boolean": "INTEGER", "float": "REAL", "monetary": "REAL",
}


@dataclasses.dataclass(frozen=True)
class Field:
    """One Odoo field. ``computed`` fields are maintained by the sandbox and ignored on write, as in Odoo."""

    name: str
    type: str
    string: str
    required: bool = False
    readonly: bool = False
    relation: str | None = None
    selection: tuple[tuple[str, str], ...] | None = None
    inverse_name: str | None = None
    """one2many: the many2one on the comodel pointing back here."""
    relation_table: str | None = None
    column1: str | None = None
    column2: str | None = None
    """many2many: the link table and its columns (this side, other side)."""
    relation_filter: str | None = None
    """many2many: an extra SQL condition on the link table (for a computed view of the same links)."""
    computed: bool = False
    default: object = None
    sql: Callable[[str], str] | None = None
    """Non-stored computed fields: their SQL expression for table alias ``a`` (read, search and order use it)."""

    @property
    def stored(self) -> bool:
        """Whether the field is a column of the model's table."""
        return (self.type in STORED_SCALAR_TYPES or self.type == "many2one") and self.sql is None

    def expression(self, alias: str) -> str:
        """The SQL giving this field's value for a row of alias ``alias``."""
        return self.sql(alias) if self.sql is not None else f"{alias}.{self.name}"

    @property
    def is_x2many(self) -> bool:
        return self.type in ("one2many", "many2many")


@dataclasses.dataclass
class Model:
    """One Odoo model and how the sandbox stores it."""

    name: str
    description: str
    fields: dict[str, Field]
    order: str = "id"
    rec_name: str = "name"
    display_sql: Callable[[str], str] | None = None
    """SQL expression of ``display_name`` for table alias ``a``; defaults to the ``rec_name`` column."""
    transient: bool = False

    @property
    def table(self) -> str:
        return self.name.replace(".", "_")

    @property
    def has_active(self) -> bool:
        return "active" in self.fields

    def display_expression(self, alias: str) -> str:
        if self.display_sql is not None:
            return self.display_sql(alias)
        return f"{alias}.{self.rec_name}"

    def stored_fields(self) -> list[Field]:
        return [f for f in self.fields.values() if f.stored]


def _f(name: str, type_: str, string: str, **kwargs: object) -> Field:
    return Field(name, type_, string, **kwargs)  # type: ignore[arg-type]


def _magic_fields() -> list[Field]:
    """The fields Odoo adds to every model."""
    return [
        _f("id", "integer", "ID", readonly=True),
        _f("display_name", "char", "Display Name", readonly=True, computed=True),
        _f("create_date", "datetime", "Created on", readonly=True),
        _f("create_uid", "many2one", "Created by", readonly=True, relation="res.users"),
        _f("write_date", "datetime", "Last Updated on", readonly=True),
        _f("write_uid", "many2one", "Last Updated by", readonly=True, relation="res.users"),
    ]


def _model(name: str, description: str, fields: list[Field], **kwargs: object) -> Model:
    by_name = {f.name: f for f in _magic_fields()}
    by_name.update({f.name: f for f in fields})
    model = Model(name, description, by_name, **kwargs)  # type: ignore[arg-type]
    model.fields["display_name"] = dataclasses.replace(by_name["display_name"], sql=model.display_expression)
    return model


def _of_move(column: str) -> Callable[[str], str]:
    """A journal item's field related to its move (Odoo's ``related='move_id.<column>'``)."""
    return lambda a: f"(SELECT m.{column} FROM account_move m WHERE m.id = {a}.move_id)"


MOVE_TYPES = (
    ("entry", "Journal Entry"), ("out_invoice", "Customer Invoice"), ("out_refund", "Customer Credit Note"),
    ("in_invoice", "Vendor Bill"), ("in_refund", "Vendor Credit Note"),
)
MOVE_STATES = (("draft", "Draft"), ("posted", "Posted"), ("cancel", "Cancelled"))
PAYMENT_STATES = (
    ("not_paid", "Not Paid"), ("in_payment", "In Payment"), ("paid", "Paid"), ("partial", "Partially Paid"),
    ("reversed", "Reversed"), ("blocked", "Blocked"), ("invoicing_legacy", "Invoicing App Legacy"),
)
ACCOUNT_PAYMENT_STATES = (
    ("draft", "Draft"), ("in_process", "In Process"), ("paid", "Paid"), ("canceled", "Canceled"),
    ("rejected", "Rejected"),
)


def _partner_display(a: str) -> str:
    # Odoo shows a contact of a company as "Company, Contact".
    return (
        f"CASE WHEN {a}.parent_id IS NOT NULL AND COALESCE({a}.is_company, 0) = 0 THEN "
        f"COALESCE((SELECT pp.name FROM res_partner pp WHERE pp.id = {a}.parent_id), '') || ', ' || "
        f"COALESCE({a}.name, '') ELSE {a}.name END"
    )


def _product_display(a: str) -> str:
    return (
        f"CASE WHEN COALESCE({a}.default_code, '') != '' THEN '[' || {a}.default_code || '] ' || {a}.name "
        f"ELSE {a}.name END"
    )


def _move_display(a: str) -> str:
    # Odoo's _get_move_display_name: drafts read "Draft Invoice (* 42)" until a number is assigned.
    kind = (
        f"CASE {a}.move_type WHEN 'out_invoice' THEN 'Draft Invoice' WHEN 'out_refund' THEN 'Draft Credit Note' "
        f"WHEN 'in_invoice' THEN 'Draft Bill' WHEN 'in_refund' THEN 'Draft Vendor Credit Note' "
        f"ELSE 'Draft Entry' END"
    )
    number = f"CASE WHEN {a}.name IS NULL OR {a}.name = '/' THEN '(* ' || {a}.id || ')' ELSE {a}.name END"
    return f"CASE WHEN {a}.state = 'draft' THEN {kind} || ' ' || {number} ELSE {a}.name END"


MODELS: dict[str, Model] = {
    m.name: m
    for m in (
        _model("res.users", "User", [
            _f("name", "char", "Name", required=True),
            _f("login", "char", "Login", required=True),
            _f("active", "boolean", "Active", default=True),
        ], order="name, login"),
        _model("res.company", "Companies", [
            _f("name", "char", "Company Name", required=True),
            _f("currency_id", "many2one", "Currency", required=True, relation="res.currency"),
            _f("country_id", "many2one", "Country", relation="res.country"),
        ], order="id"),
        _model("res.currency", "Currency", [
            _f("name", "char", "Currency", required=True),
            _f("full_name", "char", "Name"),
            _f("symbol", "char", "Symbol", required=True),
            _f("rounding", "float", "Rounding Factor"),
            _f("decimal_places", "integer", "Decimal Places", readonly=True),
            _f("position", "selection", "Symbol Position", selection=(("after", "After Amount"),
                                                                      ("before", "Before Amount"))),
            _f("active", "boolean", "Active", default=True),
        ], order="active desc, name"),
        _model("res.country", "Country", [
            _f("name", "char", "Country Name", required=True),
            _f("code", "char", "Country Code"),
            _f("currency_id", "many2one", "Currency", relation="res.currency"),
        ], order="name"),
        _model("res.partner", "Contact", [
            _f("name", "char", "Name"),
            _f("email", "char", "Email"),
            _f("phone", "char", "Phone"),
            _f("vat", "char", "Tax ID"),
            _f("ref", "char", "Reference"),
            _f("website", "char", "Website Link"),
            _f("is_company", "boolean", "Is a Company", default=False),
            _f("street", "char", "Street"),
            _f("city", "char", "City"),
            _f("zip", "char", "Zip"),
            _f("country_id", "many2one", "Country", relation="res.country"),
            _f("parent_id", "many2one", "Related Company", relation="res.partner"),
            _f("child_ids", "one2many", "Contact", relation="res.partner", inverse_name="parent_id"),
            _f("customer_rank", "integer", "Customer Rank", default=0),
            _f("supplier_rank", "integer", "Supplier Rank", default=0),
            _f("lang", "char", "Language"),
            _f("active", "boolean", "Active", default=True),
        ], order="name, id desc", display_sql=_partner_display),
        _model("product.product", "Product Variant", [
            _f("name", "char", "Name", required=True),
            _f("default_code", "char", "Internal Reference"),
            _f("list_price", "float", "Sales Price", default=0.0),
            _f("type", "selection", "Product Type", selection=(("consu", "Goods"), ("service", "Service"),
                                                                 ("combo", "Combo")), default="service"),
            _f("active", "boolean", "Active", default=True),
        ], order="default_code, name, id", display_sql=_product_display),
        _model("account.tax", "Tax", [
            _f("name", "char", "Tax Name", required=True),
            _f("amount", "float", "Amount", required=True),
            _f("amount_type", "selection", "Tax Computation", selection=(("percent", "Percentage of Price"),
                                                                            ("fixed", "Fixed")),
               default="percent"),
            _f("type_tax_use", "selection", "Tax Type", selection=(("sale", "Sales"), ("purchase", "Purchases"),
                                                                     ("none", "None")), default="sale"),
            _f("country_id", "many2one", "Country", relation="res.country"),
            _f("active", "boolean", "Active", default=True),
        ], order="name, id"),
        _model("account.move", "Journal Entry", [
            _f("name", "char", "Number", readonly=True, default="/"),
            _f("move_type", "selection", "Type", required=True, selection=MOVE_TYPES, default="entry"),
            _f("state", "selection", "Status", required=True, readonly=True, selection=MOVE_STATES,
               default="draft"),
            _f("partner_id", "many2one", "Partner", relation="res.partner"),
            _f("company_id", "many2one", "Company", readonly=True, relation="res.company", default=1),
            _f("date", "date", "Date", required=True),
            _f("invoice_date", "date", "Invoice/Bill Date"),
            _f("invoice_date_due", "date", "Due Date"),
            _f("currency_id", "many2one", "Currency", required=True, relation="res.currency"),
            _f("ref", "char", "Reference"),
            _f("invoice_origin", "char", "Origin"),
            _f("payment_reference", "char", "Payment Reference"),
            _f("narration", "text", "Terms and Conditions"),
            _f("invoice_line_ids", "one2many", "Invoice lines", relation="account.move.line",
               inverse_name="move_id"),
            _f("amount_untaxed", "monetary", "Untaxed Amount", readonly=True, computed=True),
            _f("amount_tax", "monetary", "Tax", readonly=True, computed=True),
            _f("amount_total", "monetary", "Total", readonly=True, computed=True),
            _f("amount_residual", "monetary", "Amount Due", readonly=True, computed=True),
            _f("payment_state", "selection", "Payment Status", readonly=True, computed=True,
               selection=PAYMENT_STATES),
            _f("reversed_entry_id", "many2one", "Reversal of", relation="account.move"),
            _f("reversal_move_ids", "one2many", "Reversal Move", relation="account.move",
               inverse_name="reversed_entry_id", readonly=True),
            _f("matched_payment_ids", "many2many", "Matched Payments", relation="account.payment",
               relation_table="account_payment_invoice_rel", column1="invoice_id", column2="payment_id",
               readonly=True, computed=True),
        ], order="date desc, name desc, id desc", display_sql=_move_display),
        _model("account.move.line", "Journal Item", [
            _f("move_id", "many2one", "Journal Entry", required=True, relation="account.move"),
            _f("sequence", "integer", "Sequence", default=10),
            _f("product_id", "many2one", "Product", relation="product.product"),
            _f("name", "char", "Label"),
            _f("quantity", "float", "Quantity", default=1.0),
            _f("price_unit", "float", "Unit Price", default=0.0),
            _f("discount", "float", "Discount (%)", default=0.0),
            _f("tax_ids", "many2many", "Taxes", relation="account.tax", relation_table="account_move_line_tax_rel",
               column1="line_id", column2="tax_id"),
            _f("price_subtotal", "monetary", "Subtotal", readonly=True, computed=True),
            _f("price_tax", "monetary", "Tax Amount", readonly=True, computed=True),
            _f("price_total", "monetary", "Total", readonly=True, computed=True),
            _f("currency_id", "many2one", "Currency", readonly=True, computed=True, relation="res.currency",
               sql=_of_move("currency_id")),
            _f("partner_id", "many2one", "Partner", readonly=True, computed=True, relation="res.partner",
               sql=_of_move("partner_id")),
            _f("parent_state", "selection", "Parent State", readonly=True, computed=True,
               selection=MOVE_STATES, sql=_of_move("state")),
        ], order="move_id desc, sequence, id", rec_name="name",
            display_sql=lambda a: f"COALESCE({a}.name, '')"),
        _model("account.payment", "Payments", [
            _f("name", "char", "Number", readonly=True, default="/"),
            _f("payment_type", "selection", "Payment Type", required=True,
               selection=(("outbound", "Send"), ("inbound", "Receive")), default="inbound"),
            _f("partner_type", "selection", "Partner Type", required=True,
               selection=(("customer", "Customer"), ("supplier", "Vendor")), default="customer"),
            _f("partner_id", "many2one", "Customer/Vendor", relation="res.partner"),
            _f("amount", "monetary", "Amount", default=0.0),
            _f("currency_id", "many2one", "Currency", required=True, relation="res.currency"),
            _f("date", "date", "Date", required=True),
            _f("memo", "char", "Memo"),
            _f("payment_reference", "char", "Payment Reference"),
            _f("state", "selection", "Status", required=True, readonly=True, selection=ACCOUNT_PAYMENT_STATES,
               default="draft"),
            _f("company_id", "many2one", "Company", readonly=True, relation="res.company", default=1),
            _f("invoice_ids", "many2many", "Invoices", relation="account.move",
               relation_table="account_payment_invoice_rel", column1="payment_id", column2="invoice_id"),
            _f("reconciled_invoice_ids", "many2many", "Reconciled Invoices", relation="account.move",
               relation_table="account_payment_invoice_rel", column1="payment_id", column2="invoice_id",
               relation_filter="amount > 0", readonly=True, computed=True),
            _f("is_reconciled", "boolean", "Is Reconciled", readonly=True, computed=True,
               sql=lambda a: f"EXISTS (SELECT 1 FROM account_payment_invoice_rel r "
                             f"WHERE r.payment_id = {a}.id AND r.amount > 0)"),
        ], order="date desc, name desc, id desc"),
        _model("account.payment.register", "Pay", [
            _f("amount", "monetary", "Amount"),
            _f("payment_date", "date", "Payment Date", required=True),
            _f("communication", "char", "Memo"),
            _f("currency_id", "many2one", "Currency", relation="res.currency"),
            _f("partner_id", "many2one", "Customer/Vendor", readonly=True, relation="res.partner"),
            _f("payment_type", "selection", "Payment Type", readonly=True,
               selection=(("outbound", "Send"), ("inbound", "Receive"))),
            _f("partner_type", "selection", "Partner Type", readonly=True,
               selection=(("customer", "Customer"), ("supplier", "Vendor"))),
            _f("line_ids", "many2many", "Journal items", relation="account.move", readonly=True,
               relation_table="account_payment_register_move_rel", column1="wizard_id", column2="move_id"),
        ], transient=True, display_sql=lambda a: "'Register Payment'"),
        _model("ir.model.data", "Model Data", [
            _f("name", "char", "External Identifier", required=True),
            _f("module", "char", "Module", required=True, default=""),
            _f("model", "char", "Model Name", required=True),
            _f("res_id", "integer", "Record ID"),
            _f("noupdate", "boolean", "Non Updatable", default=False),
            _f("complete_name", "char", "Complete ID", readonly=True, computed=True,
               sql=lambda a: f"{a}.module || '.' || {a}.name"),
        ], order="module, model, name", display_sql=lambda a: f"{a}.module || '.' || {a}.name"),
    )
}

MANY2MANY_TABLES = {
    "account_payment_invoice_rel": ("payment_id", "invoice_id", "amount REAL NOT NULL DEFAULT 0"),
    "account_move_line_tax_rel": ("line_id", "tax_id", None),
    "account_payment_register_move_rel": ("wizard_id", "move_id", None),
}
"""Link tables: (column1, column2, extra column). Payment links carry the amount reconciled against each invoice."""

INDEXES = (
    "CREATE INDEX IF NOT EXISTS {t}_write_date ON {t} (write_date, id)",
    "CREATE INDEX IF NOT EXISTS {t}_create_date ON {t} (create_date, id)",
)
EXTRA_INDEXES = (
    "CREATE INDEX IF NOT EXISTS res_partner_parent ON res_partner (parent_id)",
    "CREATE INDEX IF NOT EXISTS res_partner_vat ON res_partner (vat)",
    "CREATE INDEX IF NOT EXISTS res_partner_name ON res_partner (name)",
    "CREATE INDEX IF NOT EXISTS account_move_partner ON account_move (partner_id)",
    "CREATE INDEX IF NOT EXISTS account_move_name ON account_move (name)",
    "CREATE INDEX IF NOT EXISTS account_move_ref ON account_move (ref)",
    "CREATE INDEX IF NOT EXISTS account_move_origin ON account_move (invoice_origin)",
    "CREATE INDEX IF NOT EXISTS account_move_reversed ON account_move (reversed_entry_id)",
    "CREATE INDEX IF NOT EXISTS account_move_line_move ON account_move_line (move_id, sequence, id)",
    "CREATE INDEX IF NOT EXISTS account_payment_partner ON account_payment (partner_id)",
    "CREATE INDEX IF NOT EXISTS account_payment_invoice_rel_invoice ON account_payment_invoice_rel (invoice_id)",
    "CREATE UNIQUE INDEX IF NOT EXISTS ir_model_data_module_name_uniq_index ON ir_model_data (module, name)",
    "CREATE INDEX IF NOT EXISTS ir_model_data_model_res_id_index ON ir_model_data (model, res_id)",
)


def ddl() -> list[str]:
    """The CREATE statements of every table and index."""
    statements = []
    for model in MODELS.values():
        columns = ["id INTEGER PRIMARY KEY"]
        for field in model.stored_fields():
            if field.name != "id":
                columns.append(f"{field.name} {SQL_TYPES[field.type]}")
        statements.append(f"CREATE TABLE IF NOT EXISTS {model.table} ({', '.join(columns)})")
        statements.extend(index.format(t=model.table) for index in INDEXES)
    for table, (col1, col2, extra) in MANY2MANY_TABLES.items():
        extra_sql = f", {extra}" if extra else ""
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {table} ({col1} INTEGER NOT NULL, {col2} INTEGER NOT NULL{extra_sql}, "
            f"PRIMARY KEY ({col1}, {col2})) WITHOUT ROWID"
        )
    statements.append("CREATE TABLE IF NOT EXISTS sandbox_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    statements.append("CREATE TABLE IF NOT EXISTS sandbox_sequence (prefix TEXT PRIMARY KEY, last INTEGER NOT NULL)")
    statements.extend(EXTRA_INDEXES)
    return statements
