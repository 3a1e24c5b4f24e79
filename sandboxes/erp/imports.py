"""Odoo's ``load(fields, data)``: rows of strings imported by external id, all or nothing.

Columns: ``id`` (external id ``module.name``, or a bare name stored under ``__import__``), ``.id`` (a
database id), plain fields (a many2one is matched by name), ``<many2one>/id`` (by external id) and
``<many2one>/.id`` (by database id). One2many sub-columns (``invoice_line_ids/product_id``) are refused.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sandboxes.erp import orm
from sandboxes.erp.errors import OdooError, OdooValueError
from sandboxes.erp.orm import Env
from sandboxes.erp.schema import MODELS, Field, Model

IMPORT_MODULE = "__import__"
TRUE_STRINGS = {"1", "true", "yes", "y", "t"}
FALSE_STRINGS = {"0", "false", "no", "n", "f", ""}


class RowError(Exception):
    """A bad cell: reported in ``messages`` for its row and field; the whole batch is then rolled back."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def split_xmlid(xmlid: str) -> tuple[str, str]:
    module, dot, name = xmlid.partition(".")
    return (module, name) if dot else (IMPORT_MODULE, xmlid)


def resolve_xmlid(env: Env, xmlid: str, model_name: str | None = None) -> int | None:
    """The database id an external id names, when it exists (and points at ``model_name``)."""
    module, name = split_xmlid(xmlid)
    row = env.conn.execute("SELECT model, res_id FROM ir_model_data WHERE module = ? AND name = ?",
                           (module, name)).fetchone()
    if row is None or (model_name is not None and row[0] != model_name):
        return None
    target = MODELS.get(row[0])
    if target is None or not env.conn.execute(f"SELECT 1 FROM {target.table} WHERE id = ?", (row[1],)).fetchone():
        return None
    return int(row[1])


def load(env: Env, model: Model, ids: list[int], fields: Any, data: Any) -> dict[str, Any]:
    """Import ``data`` (rows of strings) into ``fields``; on any error nothing is written and ``ids`` is false."""
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        raise OdooValueError(f"Invalid fields {fields!r}: a list of column names is expected")
    if not isinstance(data, list) or not all(isinstance(r, list | tuple) for r in data):
        raise OdooValueError(f"Invalid data {data!r}: a list of rows is expected")
    messages: list[dict[str, Any]] = []
    result: list[int] = []
    env.conn.execute("SAVEPOINT odoo_load")
    for index, row in enumerate(data):
        try:
            if len(row) != len(fields):
                raise RowError(f"Row {index + 1} has {len(row)} values for {len(fields)} columns")
            result.append(_import_row(env, model, fields, [_cell(v) for v in row]))
        except RowError as exc:
            messages.append(_message(model, index, exc.message, exc.field))
        except OdooError as exc:
            messages.append(_message(model, index, exc.message, None))
    if messages:
        env.conn.execute("ROLLBACK TO SAVEPOINT odoo_load")
        env.conn.execute("RELEASE SAVEPOINT odoo_load")
        return {"ids": False, "messages": messages, "nextrow": 0}
    env.conn.execute("RELEASE SAVEPOINT odoo_load")
    return {"ids": result, "messages": [], "nextrow": 0}


def _cell(value: Any) -> str:
    if value is None or value is False:
        return ""
    return value if isinstance(value, str) else str(value)


def _message(model: Model, index: int, message: str, field: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": "error", "message": message, "record": index,
                             "rows": {"from": index, "to": index}}
    if field:
        entry["field"] = field
        if field in model.fields:
            entry["field_name"] = model.fields[field].string
    return entry


def _import_row(env: Env, model: Model, columns: list[str], row: list[str]) -> int:
    xmlid: str | None = None
    record_id: int | None = None
    vals: dict[str, Any] = {}
    for column, cell in zip(columns, row, strict=True):
        if column == "id":
            xmlid = cell or None
            continue
        if column == ".id":
            record_id = _integer(cell, ".id") if cell else None
            continue
        name, _, sub = column.partition("/")
        field = model.fields.get(name)
        if field is None or field.computed or field.type == "one2many":
            raise RowError(f"Unknown field '{column}' for import on {model.name}", column)
        if not cell:
            vals[name] = False if field.type != "many2many" else [(5,)]
            continue
        vals[name] = _convert(env, field, sub, cell)
    if record_id is None and xmlid:
        record_id = resolve_xmlid(env, xmlid, model.name)
    if record_id is not None:
        orm.write(env, model, [record_id], vals)
        return record_id
    created = orm.create(env, model, [{k: v for k, v in vals.items() if v is not False}])[0]
    if xmlid:
        module, name = split_xmlid(xmlid)
        orm.create(env, MODELS["ir.model.data"], [{"module": module, "name": name, "model": model.name,
                                                    "res_id": created}])
    return created


def _convert(env: Env, field: Field, sub: str, cell: str) -> Any:
    label = field.string
    if field.type in ("many2one", "many2many"):
        comodel = MODELS[field.relation or ""]
        references = [cell] if field.type == "many2one" else [c.strip() for c in cell.split(",") if c.strip()]
        ids = [_reference(env, comodel, field, sub, ref) for ref in references]
        return ids[0] if field.type == "many2one" else [(6, 0, ids)]
    if sub:
        raise RowError(f"Unknown field '{field.name}/{sub}': only relational fields have sub-columns", field.name)
    if field.type == "boolean":
        if cell.strip().lower() not in TRUE_STRINGS | FALSE_STRINGS:
            raise RowError(f"Unknown value '{cell}' for boolean field '{label}'", field.name)
        return cell.strip().lower() in TRUE_STRINGS
    if field.type == "integer":
        return _integer(cell, label, field.name)
    if field.type in ("float", "monetary"):
        try:
            return float(cell)
        except ValueError:
            raise RowError(f"'{cell}' does not seem to be a number for field '{label}'", field.name) from None
    if field.type == "selection":
        for key, text in field.selection or ():
            if cell in (key, text) or cell.lower() == text.lower():
                return key
        raise RowError(f"Value '{cell}' not found in selection field '{label}'", field.name)
    if field.type == "date":
        try:
            return dt.date.fromisoformat(cell).isoformat()
        except ValueError:
            raise RowError(f"'{cell}' does not seem to be a valid date for field '{label}'", field.name) from None
    return cell


def _reference(env: Env, comodel: Model, field: Field, sub: str, value: str) -> int:
    if sub == "id":
        found = resolve_xmlid(env, value, comodel.name)
        if found is None:
            raise RowError(f"No matching record found for external id '{value}' in field '{field.string}'", field.name)
        return found
    if sub == ".id":
        found_id = _integer(value, field.string, field.name)
        orm.check_exist(env, comodel, [found_id])
        return found_id
    if sub:
        raise RowError(f"Unknown sub-field '{sub}' of '{field.name}': use '{field.name}/id' or '{field.name}/.id'",
                       field.name)
    matches = orm.search(env, comodel, [("display_name", "=", value)], limit=1)
    if not matches:
        raise RowError(f"No matching record found for name '{value}' in field '{field.string}'", field.name)
    return matches[0]


def _integer(cell: str, label: str, field: str | None = None) -> int:
    try:
        return int(cell)
    except ValueError:
        raise RowError(f"'{cell}' does not seem to be an integer for field '{label}'", field) from None
