"""What the ERP source reads: models, their columns and kinds, PII columns, page sizes and windows.

Constants only. To add a model, append a :class:`ModelSpec` to :data:`MODELS` (its table name is the model
name with dots replaced by underscores, dlt's snake_case); to add a column, add its Odoo field with a kind.
Fields missing on the server (``mobile`` was dropped from ``res.partner`` in recent Odoo versions, for
example) are skipped and reported in the load summary, not fatal.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

# Column kinds: how an Odoo field's JSON value becomes raw-layer columns.
INT = "int"
TEXT = "text"
BOOL = "bool"
DATETIME = "datetime"  # Odoo's naive UTC "YYYY-MM-DD HH:MM:SS" -> timestamptz
DATE = "date"
DECIMAL = "decimal"  # float/monetary -> numeric(38, 10)
CURRENCY_CODE = "currency_code"  # res.currency.name: an ISO 4217 code, checked
MANY2ONE = "many2one"  # [id, display name] -> <base>_id integer + <base>_name text
MANY2ONE_ID = "many2one_id"  # [id, display name] -> <field> integer only (the name may be a person's)
CURRENCY = "currency"  # a many2one to res.currency, its display name checked as an ISO 4217 code
ID_LIST = "id_list"  # x2many ids -> JSON array text

DECIMAL_PRECISION = 38
DECIMAL_SCALE = 10

ODOO_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"

INVOICE_TYPES = ["out_invoice", "out_refund"]
"""Customer invoices and credit notes: vendor bills and journal entries are not part of the revenue book."""


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One Odoo model loaded into one raw table."""

    model: str
    fields: tuple[tuple[str, str], ...]
    domain: tuple[tuple[str, str, object], ...] = ()
    incremental: bool = True
    """False: small tables read whole at every run (deletes found by comparing all ids)."""

    @property
    def table(self) -> str:
        return self.model.replace(".", "_")


MAGIC_FIELDS: tuple[tuple[str, str], ...] = (
    ("id", INT),
    ("create_date", DATETIME),
    ("create_uid", MANY2ONE_ID),
    ("write_date", DATETIME),
    ("write_uid", MANY2ONE_ID),
)
"""Every model's log-access fields. Users are people: only their ids are kept."""

MODELS: tuple[ModelSpec, ...] = (
    ModelSpec("res.currency", (
        ("name", CURRENCY_CODE), ("full_name", TEXT), ("symbol", TEXT), ("rounding", DECIMAL),
        ("decimal_places", INT), ("position", TEXT), ("active", BOOL),
    ), incremental=False),
    ModelSpec("res.country", (("name", TEXT), ("code", TEXT), ("currency_id", CURRENCY)), incremental=False),
    ModelSpec("product.product", (
        ("name", TEXT), ("default_code", TEXT), ("list_price", DECIMAL), ("type", TEXT), ("active", BOOL),
    )),
    ModelSpec("res.partner", (
        ("name", TEXT), ("is_company", BOOL), ("email", TEXT), ("phone", TEXT), ("mobile", TEXT), ("vat", TEXT),
        ("ref", TEXT), ("website", TEXT), ("street", TEXT), ("street2", TEXT), ("city", TEXT), ("zip", TEXT),
        ("country_id", MANY2ONE), ("parent_id", MANY2ONE_ID), ("customer_rank", INT), ("supplier_rank", INT),
        ("lang", TEXT), ("active", BOOL),
    )),
    ModelSpec("account.move", (
        ("name", TEXT), ("move_type", TEXT), ("state", TEXT), ("payment_state", TEXT),
        ("partner_id", MANY2ONE_ID), ("company_id", MANY2ONE), ("date", DATE), ("invoice_date", DATE),
        ("invoice_date_due", DATE), ("currency_id", CURRENCY), ("ref", TEXT), ("invoice_origin", TEXT),
        ("payment_reference", TEXT), ("narration", TEXT), ("amount_untaxed", DECIMAL), ("amount_tax", DECIMAL),
        ("amount_total", DECIMAL), ("amount_residual", DECIMAL), ("reversed_entry_id", MANY2ONE),
    ), domain=(("move_type", "in", INVOICE_TYPES),)),
    # A line's currency, partner and state are related fields of its move: they change without moving the
    # line's write_date, so they are taken from account_move (join on move_id), never copied here.
    ModelSpec("account.move.line", (
        ("move_id", MANY2ONE), ("sequence", INT), ("product_id", MANY2ONE), ("name", TEXT), ("quantity", DECIMAL),
        ("price_unit", DECIMAL), ("discount", DECIMAL), ("tax_ids", ID_LIST), ("price_subtotal", DECIMAL),
        ("price_tax", DECIMAL), ("price_total", DECIMAL),
    ), domain=(("move_id.move_type", "in", INVOICE_TYPES),)),
    ModelSpec("account.payment", (
        ("name", TEXT), ("payment_type", TEXT), ("partner_type", TEXT), ("partner_id", MANY2ONE_ID),
        ("amount", DECIMAL), ("currency_id", CURRENCY), ("date", DATE), ("memo", TEXT),
        ("payment_reference", TEXT), ("state", TEXT), ("company_id", MANY2ONE), ("is_reconciled", BOOL),
        ("invoice_ids", ID_LIST),
    )),
)

PII_COLUMNS: dict[str, dict[str, str]] = {
    "res_partner": {
        "email": "email", "phone": "phone", "mobile": "phone", "street": "address", "street2": "address",
        "vat": "tax_id",
    },
}
"""Per table, column -> kind (see ``revloop.crypto.MatchHasher``): each becomes ``<col>_enc`` + ``<col>_hash``."""

PERSON_NAME_COLUMNS: dict[str, tuple[str, str]] = {"res_partner": ("name", "is_company")}
"""Per table, (name column, is-company flag): a person's name is PII (``name_enc``/``name_hash``, plain
``name`` left null), a company's name stays plain in ``name``."""

PAGE_SIZE = 5000
"""Records per search_read: ~1.5 MB of JSON, a few tens of milliseconds on a local server."""

ID_PAGE_SIZE = 50_000
"""Ids per search when diffing ids to find deleted records."""

OVERLAP = dt.timedelta(minutes=5)
"""Each incremental read starts this far before the cursor: Odoo stamps write_date at the start of a
transaction, so a record written by a long transaction can commit after later-stamped ones were read."""

RECENT_IDS_CAP = 20_000
"""At most this many (id, write_date) pairs from the overlap window are remembered to skip unchanged re-reads."""

LIVE_ROWS_RECOUNT = dt.timedelta(hours=1)
"""The deletion check's count of the warehouse's live rows is kept in the load state between runs (counting
the table took 0.2 s per cycle on the large book); the table itself is counted again after this long, so
rows lost on the warehouse's side (a restore, a manual delete) are found and loaded again within it."""
