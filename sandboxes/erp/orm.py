"""The generic ORM methods every model answers (search, read, create, write, unlink...), over SQLite.

Model-specific rules (invoice totals, posting, payments) hook in through :data:`HOOKS`; see ``accounting``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

from sandboxes.erp.domain import compile_domain, compile_order
from sandboxes.erp.errors import MissingError, OdooValueError, ValidationError
from sandboxes.erp.schema import MODELS, Field, Model
from sandboxes.erp.store import Store, utc_now

READ_CHUNK = 900
"""Ids per IN (...) when reading related rows; below SQLite's default host-parameter limits."""


@dataclasses.dataclass
class Env:
    """One call's environment: the store, the calling user and the request context (Odoo's ``env``)."""

    store: Store
    uid: int
    context: dict[str, Any]

    @property
    def conn(self) -> sqlite3.Connection:
        return self.store.conn

    @property
    def active_test(self) -> bool:
        return self.context.get("active_test", True) is not False

    def today(self) -> str:
        return dt.datetime.now(dt.UTC).date().isoformat()


@dataclasses.dataclass
class ModelHooks:
    """Model-specific behaviour around the generic methods."""

    prepare_create: Callable[[Env, Model, dict[str, Any]], None] | None = None
    before_write: Callable[[Env, Model, list[int], dict[str, Any]], None] | None = None
    after_change: Callable[[Env, Model, list[int]], None] | None = None
    before_unlink: Callable[[Env, Model, list[int]], Callable[[], None] | None] | None = None
    """May return a callable to run once the records are gone (to recompute what depended on them)."""


HOOKS: dict[str, ModelHooks] = {}


def get_model(name: str) -> Model:
    return MODELS[name]


# --------------------------------------------------------------------------------------------------- search


def search(env: Env, model: Model, domain: Any, offset: int = 0, limit: int | None = None,
           order: str | None = None) -> list[int]:
    where, params = compile_domain(model, domain, "a", env.active_test)
    sql = f"SELECT a.id FROM {model.table} a WHERE {where} ORDER BY {compile_order(model, order)}"
    sql, params = _paginate(sql, params, offset, limit)
    return [row[0] for row in env.conn.execute(sql, params)]


def search_count(env: Env, model: Model, domain: Any, limit: int | None = None) -> int:
    where, params = compile_domain(model, domain, "a", env.active_test)
    inner = f"SELECT 1 FROM {model.table} a WHERE {where}"
    inner, params = _paginate(inner, params, 0, limit)
    return int(env.conn.execute(f"SELECT COUNT(*) FROM ({inner})", params).fetchone()[0])


def _paginate(sql: str, params: list[Any], offset: Any, limit: Any) -> tuple[str, list[Any]]:
    offset = _non_negative_int(offset, "offset")
    limit = None if limit in (None, False) else _non_negative_int(limit, "limit")
    if limit is not None or offset:
        sql += " LIMIT ? OFFSET ?"
        params = [*params, -1 if limit is None else limit, offset]
    return sql, params


def _non_negative_int(value: Any, name: str) -> int:
    if value in (None, False):
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise OdooValueError(f"Invalid {name}: {value!r}, a non-negative integer is expected")
    return value


# ----------------------------------------------------------------------------------------------------- read


def normalize_ids(ids: Any) -> list[int]:
    """Odoo's ``browse`` accepts one id or a list of them."""
    if ids is None or ids is False:
        return []
    if isinstance(ids, int) and not isinstance(ids, bool):
        return [ids]
    if isinstance(ids, list | tuple) and all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        return list(dict.fromkeys(ids))
    raise OdooValueError(f"Invalid ids: {ids!r}, a list of integers is expected")


def check_exist(env: Env, model: Model, ids: list[int]) -> None:
    """Raise Odoo's ``MissingError`` when any of ``ids`` does not exist."""
    found: set[int] = set()
    for chunk in _chunks(ids):
        marks = ", ".join("?" * len(chunk))
        found.update(r[0] for r in env.conn.execute(f"SELECT id FROM {model.table} WHERE id IN ({marks})", chunk))
    missing = [i for i in ids if i not in found]
    if missing:
        shown = ", ".join(map(str, missing[:10])) + ("," if len(missing) == 1 else "")
        raise MissingError(
            f"Record does not exist or has been deleted.\n(Record: {model.name}({shown}), User: {env.uid})"
        )


def read(env: Env, model: Model, ids: list[int], fields: Any = None, load: str | None = "_classic_read",
         missing_ok: bool = False) -> list[dict[str, Any]]:
    """Read ``fields`` (all when empty) of ``ids``, in the order of ``ids``, formatted as Odoo's ``read``."""
    names = _field_names(model, fields)
    if not ids:
        return []
    scalar = [model.fields[n] for n in names if not model.fields[n].is_x2many and n != "id"]
    select = ", ".join(["a.id", *(f"{f.expression('a')} AS {f.name}" for f in scalar)])
    rows: dict[int, dict[str, Any]] = {}
    for chunk in _chunks(ids):
        marks = ", ".join("?" * len(chunk))
        cursor = env.conn.execute(f"SELECT {select} FROM {model.table} a WHERE a.id IN ({marks})", chunk)
        for row in cursor:
            record = {"id": row[0]}
            record.update({f.name: _to_read(f, value) for f, value in zip(scalar, row[1:], strict=True)})
            rows[row[0]] = record
    if not missing_ok:
        check_exist(env, model, [i for i in ids if i not in rows]) if len(rows) < len(ids) else None
    records = [rows[i] for i in ids if i in rows]
    for field in scalar:
        if field.type == "many2one" and load == "_classic_read":
            _attach_display_names(env, field, records)
    for name in names:
        field = model.fields[name]
        if field.is_x2many:
            _attach_x2many(env, field, records)
    return records


def _field_names(model: Model, fields: Any) -> list[str]:
    if fields in (None, False) or fields == []:
        return list(model.fields)
    if not isinstance(fields, list | tuple) or not all(isinstance(f, str) for f in fields):
        raise OdooValueError(f"Invalid fields: {fields!r}, a list of field names is expected")
    unknown = [f for f in fields if f not in model.fields]
    if unknown:
        raise OdooValueError(f"Invalid field {unknown[0]!r} on model {model.name!r}")
    names = list(dict.fromkeys(fields))
    return names if "id" in names else ["id", *names]


def _to_read(field: Field, value: Any) -> Any:
    kind = field.type
    if kind in ("integer",):
        return int(value or 0)
    if kind in ("float", "monetary"):
        return float(value or 0.0)
    if kind == "boolean":
        return bool(value)
    if value is None or value == "" and kind not in ("char", "text"):
        return False
    if kind == "datetime":
        return value[:19]
    return value


def _attach_display_names(env: Env, field: Field, records: list[dict[str, Any]]) -> None:
    comodel = MODELS[field.relation or ""]
    ids = list({r[field.name] for r in records if r[field.name]})
    names: dict[int, str] = {}
    for chunk in _chunks(ids):
        marks = ", ".join("?" * len(chunk))
        sql = f"SELECT a.id, {comodel.display_expression('a')} FROM {comodel.table} a WHERE a.id IN ({marks})"
        names.update((row[0], row[1] or "") for row in env.conn.execute(sql, chunk))
    for record in records:
        value = record[field.name]
        record[field.name] = [value, names.get(value, "")] if value else False


def _attach_x2many(env: Env, field: Field, records: list[dict[str, Any]]) -> None:
    comodel = MODELS[field.relation or ""]
    ids = [r["id"] for r in records]
    related: dict[int, list[int]] = {i: [] for i in ids}
    order = compile_order(comodel, None, "c")
    for chunk in _chunks(ids):
        marks = ", ".join("?" * len(chunk))
        if field.type == "one2many":
            sql = (f"SELECT c.{field.inverse_name}, c.id FROM {comodel.table} c "
                   f"WHERE c.{field.inverse_name} IN ({marks}) ORDER BY {order}")
        else:
            extra = f" AND r.{field.relation_filter}" if field.relation_filter else ""
            sql = (f"SELECT r.{field.column1}, c.id FROM {field.relation_table} r JOIN {comodel.table} c "
                   f"ON c.id = r.{field.column2} WHERE r.{field.column1} IN ({marks}){extra} ORDER BY {order}")
        for owner, child in env.conn.execute(sql, chunk):
            related[owner].append(child)
    for record in records:
        record[field.name] = related[record["id"]]


def _chunks(ids: list[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), READ_CHUNK):
        yield ids[start:start + READ_CHUNK]


# ---------------------------------------------------------------------------------------------------- write


def create(env: Env, model: Model, vals_list: list[dict[str, Any]]) -> list[int]:
    """Create one record per dict; x2many commands are applied once the record exists."""
    hooks = HOOKS.get(model.name, ModelHooks())
    created = []
    for vals in vals_list:
        if not isinstance(vals, dict):
            raise OdooValueError(f"Invalid values {vals!r}: a dictionary of field values is expected")
        vals = dict(vals)
        _check_known_fields(model, vals)
        for name, field in model.fields.items():
            if name not in vals and field.default is not None and field.stored:
                vals[name] = field.default
        if hooks.prepare_create:
            hooks.prepare_create(env, model, vals)
        columns, commands = convert_values(env, model, vals)
        _check_required(model, columns)
        record_id = env.store.next_id(model.table)
        now = utc_now()
        columns.update(id=record_id, create_date=now, write_date=now, create_uid=env.uid, write_uid=env.uid)
        _insert(env, model, columns)
        apply_x2many(env, model, record_id, commands)
        created.append(record_id)
    if hooks.after_change and created:
        hooks.after_change(env, model, created)
    return created


def write(env: Env, model: Model, ids: list[int], vals: dict[str, Any]) -> bool:
    if not isinstance(vals, dict):
        raise OdooValueError(f"Invalid values {vals!r}: a dictionary of field values is expected")
    check_exist(env, model, ids)
    vals = dict(vals)
    _check_known_fields(model, vals)
    hooks = HOOKS.get(model.name, ModelHooks())
    if hooks.before_write:
        hooks.before_write(env, model, ids, vals)
    columns, commands = convert_values(env, model, vals)
    for name, value in columns.items():
        field = model.fields[name]
        if field.required and value is None:
            _check_required(model, {name: None})
    touch(env, model, ids, columns)
    for record_id in ids:
        apply_x2many(env, model, record_id, commands)
    if hooks.after_change and ids:
        hooks.after_change(env, model, ids)
    return True


def touch(env: Env, model: Model, ids: list[int], columns: dict[str, Any] | None = None) -> None:
    """Update ``columns`` of ``ids`` and move their ``write_date`` (every change does, as in Odoo)."""
    columns = dict(columns or {})
    columns.update(write_date=utc_now(), write_uid=env.uid)
    assignments = ", ".join(f"{name} = ?" for name in columns)
    for chunk in _chunks(ids):
        marks = ", ".join("?" * len(chunk))
        _execute(env, model, f"UPDATE {model.table} SET {assignments} WHERE id IN ({marks})",
                 [*columns.values(), *chunk])


def unlink(env: Env, model: Model, ids: list[int]) -> bool:
    check_exist(env, model, ids)
    hooks = HOOKS.get(model.name, ModelHooks())
    after = hooks.before_unlink(env, model, ids) if hooks.before_unlink else None
    _cascade(env, model, ids)
    for chunk in _chunks(ids):
        marks = ", ".join("?" * len(chunk))
        env.conn.execute(f"DELETE FROM {model.table} WHERE id IN ({marks})", chunk)
    if after is not None:
        after()
    return True


RESTRICT_FIELDS = {"partner_id", "product_id", "currency_id", "country_id", "company_id"}
CASCADE_FIELDS = {("account.move.line", "move_id")}


def _cascade(env: Env, model: Model, ids: list[int]) -> None:
    """Apply ``ondelete``: journal items go with their entry; customers, products, currencies are protected."""
    marks = ", ".join("?" * len(ids))
    for other in MODELS.values():
        for field in other.stored_fields():
            if field.type != "many2one" or field.relation != model.name or field.name in ("create_uid", "write_uid"):
                continue
            where = f"{field.name} IN ({marks})"
            if (other.name, field.name) in CASCADE_FIELDS:
                children = [r[0] for r in env.conn.execute(f"SELECT id FROM {other.table} WHERE {where}", ids)]
                if children:
                    unlink(env, other, children)
            elif field.required or field.name in RESTRICT_FIELDS:
                if env.conn.execute(f"SELECT 1 FROM {other.table} WHERE {where} LIMIT 1", ids).fetchone():
                    raise ValidationError(
                        "The operation cannot be completed: another model requires the record being deleted. "
                        f"If possible, archive it instead.\n\nModel: {other.description} ({other.name}), "
                        f"Constraint: {other.table}_{field.name}_fkey"
                    )
            else:
                env.conn.execute(f"UPDATE {other.table} SET {field.name} = NULL WHERE {where}", ids)
        for field in other.fields.values():
            if field.type == "many2many" and field.relation == model.name and not field.relation_filter:
                env.conn.execute(f"DELETE FROM {field.relation_table} WHERE {field.column2} IN ({marks})", ids)
            if other.name == model.name and field.type == "many2many" and not field.relation_filter:
                env.conn.execute(f"DELETE FROM {field.relation_table} WHERE {field.column1} IN ({marks})", ids)


def _check_known_fields(model: Model, vals: dict[str, Any]) -> None:
    for name in vals:
        if name not in model.fields:
            raise OdooValueError(f"Invalid field {name!r} on model {model.name!r}")


def _check_required(model: Model, columns: dict[str, Any]) -> None:
    for field in model.stored_fields():
        if field.required and field.name != "id" and columns.get(field.name) in (None, ""):
            raise ValidationError(
                "The operation cannot be completed:\n- Create/update: a mandatory field is not set.\n"
                "- Delete: another model requires the record being deleted. If possible, archive it instead.\n\n"
                f"Model: {model.description} ({model.name})\nField: {field.string} ({field.name})"
            )


def _insert(env: Env, model: Model, columns: dict[str, Any]) -> None:
    names = list(columns)
    sql = f"INSERT INTO {model.table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
    _execute(env, model, sql, list(columns.values()))


def _execute(env: Env, model: Model, sql: str, params: list[Any]) -> None:
    try:
        env.conn.execute(sql, params)
    except sqlite3.IntegrityError as exc:
        raise unique_violation(model, exc) from exc


def unique_violation(model: Model, exc: sqlite3.IntegrityError) -> ValidationError:
    """PostgreSQL's unique violation, as Odoo turns it into a ``ValidationError`` for RPC callers."""
    detail = str(exc)
    if model.name == "ir.model.data":
        detail = ('duplicate key value violates unique constraint "ir_model_data_module_name_uniq_index"\n'
                  "DETAIL:  Key (module, name) already exists.")
    return ValidationError(f"The operation cannot be completed: {detail}")


# ---------------------------------------------------------------------------------------------- conversion


def convert_values(env: Env, model: Model, vals: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split ``vals`` into column values (converted and checked) and x2many commands; computed fields are ignored."""
    columns: dict[str, Any] = {}
    commands: dict[str, Any] = {}
    for name, value in vals.items():
        field = model.fields[name]
        if field.computed or name in ("id", "create_date", "write_date", "create_uid", "write_uid"):
            continue
        if field.is_x2many:
            commands[name] = value
        else:
            columns[name] = convert_scalar(env, model, field, value)
    return columns, commands


def convert_scalar(env: Env, model: Model, field: Field, value: Any) -> Any:
    """One value as stored, raising Odoo's errors for values of the wrong kind."""
    kind = field.type
    if kind == "boolean":
        return 1 if value else 0
    if value is False or value is None:
        return None
    try:
        if kind in ("char", "text"):
            return value if isinstance(value, str) else str(value)
        if kind == "integer":
            return int(value)
        if kind in ("float", "monetary"):
            return float(value)
        if kind == "selection":
            allowed = {key for key, _ in field.selection or ()}
            if value not in allowed:
                raise OdooValueError(f"Wrong value for {model.name}.{field.name}: {value!r}")
            return value
        if kind == "date":
            return dt.date.fromisoformat(str(value)[:10]).isoformat()
        if kind == "datetime":
            return dt.datetime.fromisoformat(str(value)).replace(tzinfo=None).isoformat(sep=" ", timespec="seconds")
        if kind == "many2one":
            if isinstance(value, list | tuple) and value:
                value = value[0]
            if isinstance(value, bool) or not isinstance(value, int):
                raise OdooValueError(f"Wrong value for {model.name}.{field.name}: {value!r}")
            comodel = MODELS[field.relation or ""]
            if not env.conn.execute(f"SELECT 1 FROM {comodel.table} WHERE id = ?", (value,)).fetchone():
                raise ValidationError(
                    "The operation cannot be completed: another model requires the record being deleted. "
                    f"If possible, archive it instead.\n\nModel: {model.description} ({model.name}), "
                    f"Field: {field.string} ({field.name}), Value: {comodel.name}({value},) does not exist"
                )
            return value
    except (TypeError, ValueError) as exc:
        raise OdooValueError(f"Wrong value for {model.name}.{field.name}: {value!r}") from exc
    raise OdooValueError(f"Field {model.name}.{field.name} cannot be written")


def apply_x2many(env: Env, model: Model, record_id: int, commands: dict[str, Any]) -> None:
    """Apply Odoo's x2many commands: (0,0,vals) (1,id,vals) (2,id) (3,id) (4,id) (5,) (6,0,ids)."""
    for name, value in commands.items():
        field = model.fields[name]
        comodel = MODELS[field.relation or ""]
        for command in _commands(model, field, value):
            code = command[0]
            if code == 0:
                vals = dict(command[2] or {}) if len(command) > 2 else {}
                if field.type == "one2many":
                    vals[field.inverse_name or ""] = record_id
                    create(env, comodel, [vals])
                else:
                    _link(env, field, record_id, create(env, comodel, [vals]))
            elif code == 1:
                write(env, comodel, [command[1]], dict(command[2] or {}))
            elif code == 2:
                unlink(env, comodel, [command[1]])
            elif code == 3:
                _unlink_relation(env, field, comodel, record_id, [command[1]])
            elif code == 4:
                _link(env, field, record_id, [command[1]])
            elif code == 5:
                _unlink_relation(env, field, comodel, record_id, None)
            elif code == 6:
                keep = normalize_ids(list(command[2] or []))
                _unlink_relation(env, field, comodel, record_id, None, keep=set(keep))
                _link(env, field, record_id, keep)


def _commands(model: Model, field: Field, value: Any) -> list[tuple[Any, ...]]:
    if value is False or value is None:
        return [(5,)]
    if not isinstance(value, list | tuple):
        raise OdooValueError(f"Wrong value for {model.name}.{field.name}: {value!r}")
    if value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return [(6, 0, list(value))]
    result = []
    for command in value:
        if not isinstance(command, list | tuple) or not command or command[0] not in range(7):
            raise OdooValueError(f"Wrong value for {model.name}.{field.name}: {command!r} is not an x2many command")
        arity = {0: 3, 1: 3, 2: 2, 3: 2, 4: 2, 5: 1, 6: 3}[command[0]]
        if len(command) < arity or (command[0] in (1, 2, 3, 4) and not isinstance(command[1], int)):
            raise OdooValueError(f"Wrong value for {model.name}.{field.name}: malformed command {command!r}")
        result.append(tuple(command))
    return result


def _link(env: Env, field: Field, record_id: int, ids: list[int]) -> None:
    comodel = MODELS[field.relation or ""]
    if ids:
        check_exist(env, comodel, ids)
    if field.type == "one2many":
        touch(env, comodel, ids, {field.inverse_name or "": record_id})
        return
    env.conn.executemany(
        f"INSERT OR IGNORE INTO {field.relation_table} ({field.column1}, {field.column2}) VALUES (?, ?)",
        [(record_id, i) for i in ids],
    )


def _unlink_relation(env: Env, field: Field, comodel: Model, record_id: int, ids: list[int] | None,
                     keep: set[int] | frozenset[int] = frozenset()) -> None:
    if field.type == "one2many":
        current = [r[0] for r in env.conn.execute(
            f"SELECT id FROM {comodel.table} WHERE {field.inverse_name} = ?", (record_id,))]
        targets = [i for i in current if i not in keep] if ids is None else [i for i in ids if i in current]
        inverse = comodel.fields[field.inverse_name or ""]
        if inverse.required:
            unlink(env, comodel, targets) if targets else None
        elif targets:
            touch(env, comodel, targets, {field.inverse_name or "": None})
        return
    if ids is None:
        env.conn.execute(f"DELETE FROM {field.relation_table} WHERE {field.column1} = ?", (record_id,))
    else:
        env.conn.executemany(
            f"DELETE FROM {field.relation_table} WHERE {field.column1} = ? AND {field.column2} = ?",
            [(record_id, i) for i in ids],
        )


# -------------------------------------------------------------------------------------------- introspection


def fields_get(model: Model, allfields: Any = None, attributes: Any = None) -> dict[str, dict[str, Any]]:
    """Odoo's ``fields_get``: each field's type, label, required/readonly flags, relation and selection."""
    names = list(model.fields) if not allfields else [n for n in allfields if n in model.fields]
    result = {}
    for name in names:
        field = model.fields[name]
        description: dict[str, Any] = {
            "type": field.type, "string": field.string, "required": field.required,
            "readonly": field.readonly, "store": field.stored or field.type == "many2many" and not field.computed,
            "sortable": field.stored or field.sql is not None, "searchable": True, "name": name,
        }
        if field.relation:
            description["relation"] = field.relation
        if field.inverse_name:
            description["relation_field"] = field.inverse_name
        if field.selection is not None:
            description["selection"] = [list(option) for option in field.selection]
        if attributes:
            description = {k: v for k, v in description.items() if k in attributes}
        result[name] = description
    return result


def name_search(env: Env, model: Model, name: Any = "", domain: Any = None, operator: str = "ilike",
                limit: int | None = 100) -> list[list[Any]]:
    terms = list(domain or [])
    if name:
        terms = ["&", *(terms or [(1, "=", 1)]), ("display_name", operator, name)]
    ids = search(env, model, terms, 0, limit)
    return [[r["id"], r["display_name"]] for r in read(env, model, ids, ["display_name"])]
