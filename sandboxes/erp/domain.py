"""Odoo domains and ``order`` specifications translated to SQLite, so searches page a million rows quickly.

Semantics follow Odoo's ORM: prefix notation with an implicit ``&``; ``!=`` and ``not in`` match NULLs;
``= False`` matches unset values; a string compared with a many2one searches the related record's name;
dotted paths follow many2one, one2many and many2many fields; ``child_of`` walks ``parent_id``; archived
records are hidden unless the domain mentions ``active`` or the context sets ``active_test`` to false.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import orjson

from sandboxes.erp.errors import OdooValueError
from sandboxes.erp.schema import MODELS, Field, Model

OPERATORS = {
    "=", "!=", "<>", ">", ">=", "<", "<=", "in", "not in", "like", "not like", "ilike", "not ilike",
    "=like", "=ilike", "child_of", "=?",
}
LIKE_OPERATORS = {"like", "not like", "ilike", "not ilike", "=like", "=ilike"}
NEGATIVE_OPERATORS = {"!=", "<>", "not in", "not like", "not ilike"}
TRUE_LEAF = (1, "=", 1)
FALSE_LEAF = (0, "=", 1)
_INLINE_IN_LIMIT = 500
_aliases = itertools.count()


def normalize(domain: Any) -> list[Any]:
    """Odoo's ``normalize_domain``: make the implicit ``&`` explicit; reject malformed domains."""
    if domain is None or domain is False:
        return []
    if not isinstance(domain, list | tuple):
        raise OdooValueError(f"Invalid domain: {domain!r}")
    result: list[Any] = []
    expected = 1
    arity = {"!": 1, "&": 2, "|": 2}
    for token in domain:
        if expected == 0:
            result.insert(0, "&")
            expected = 1
        if isinstance(token, list | tuple):
            if len(token) != 3:
                raise OdooValueError(f"Invalid leaf {token!r}")
            expected -= 1
            result.append(tuple(token))
        elif isinstance(token, str) and token in arity:
            expected += arity[token] - 1
            result.append(token)
        else:
            raise OdooValueError(f"Invalid leaf {token!r}")
    if result and expected != 0:
        raise OdooValueError(f"Domain {list(domain)!r} is syntactically not correct.")
    return result


def mentions_active(tokens: list[Any]) -> bool:
    return any(isinstance(t, tuple) and isinstance(t[0], str) and t[0].split(".")[0] == "active" for t in tokens)


def compile_domain(model: Model, domain: Any, alias: str = "a", active_test: bool = True) -> tuple[str, list[Any]]:
    """The SQL condition (on table alias ``alias``) and parameters selecting ``domain``'s records."""
    tokens = normalize(domain)
    stack: list[tuple[str, list[Any]]] = []
    for token in reversed(tokens):
        if token == "!":
            sql, params = stack.pop()
            stack.append((f"(NOT {sql})", params))
        elif token in ("&", "|"):
            left, right = stack.pop(), stack.pop()
            joiner = " AND " if token == "&" else " OR "
            stack.append((f"({left[0]}{joiner}{right[0]})", left[1] + right[1]))
        else:
            stack.append(_leaf(model, alias, token))
    sql, params = stack[0] if stack else ("1 = 1", [])
    if active_test and model.has_active and not mentions_active(tokens):
        sql = f"({sql}) AND {alias}.active = 1"
    return sql, params


def _leaf(model: Model, alias: str, leaf: tuple[Any, Any, Any]) -> tuple[str, list[Any]]:
    if leaf == TRUE_LEAF:
        return "1 = 1", []
    if leaf == FALSE_LEAF:
        return "1 = 0", []
    path, operator, value = leaf
    if not isinstance(path, str) or not path:
        raise OdooValueError(f"Invalid field {path!r} in condition {leaf!r}")
    if not isinstance(operator, str) or operator.lower() not in OPERATORS:
        raise OdooValueError(f"Invalid operator {operator!r} in condition {leaf!r}")
    operator = operator.lower()
    if operator == "<>":
        operator = "!="
    name, _, rest = path.partition(".")
    field = model.fields.get(name)
    if field is None:
        raise OdooValueError(f"Invalid field {model.name}.{name} in condition {leaf!r}")
    if rest:
        return _path_leaf(model, alias, field, (rest, operator, value), leaf)
    if operator == "=?":
        if value is None or value is False:
            return "1 = 1", []
        operator = "="
    if operator == "child_of":
        return _child_of(model, alias, field, value, leaf)
    if field.is_x2many:
        return _x2many_leaf(model, alias, field, operator, value, leaf)
    if field.type == "many2one" and _is_name_search(operator, value):
        return _many2one_by_name(alias, field, operator, value)
    return _scalar_leaf(field.expression(alias), field, operator, value, leaf)


def _is_name_search(operator: str, value: Any) -> bool:
    if operator in LIKE_OPERATORS:
        return value is not False and value is not None
    if isinstance(value, str):
        return True
    return isinstance(value, list | tuple) and any(isinstance(v, str) for v in value)


def _many2one_by_name(alias: str, field: Field, operator: str, value: Any) -> tuple[str, list[Any]]:
    comodel = MODELS[field.relation or ""]
    sub = f"s{next(_aliases)}"
    positive = {"!=": "=", "not in": "in", "not like": "like", "not ilike": "ilike"}.get(operator, operator)
    condition, params = _scalar_leaf(comodel.display_expression(sub), None, positive, value,
                                     (field.name, operator, value))
    column = f"{alias}.{field.name}"
    subquery = f"SELECT {sub}.id FROM {comodel.table} {sub} WHERE {condition}"
    if operator in NEGATIVE_OPERATORS:
        return f"({column} IS NULL OR {column} NOT IN ({subquery}))", params
    return f"{column} IN ({subquery})", params


def _path_leaf(model: Model, alias: str, field: Field, subleaf: tuple[Any, Any, Any],
               leaf: tuple[Any, Any, Any]) -> tuple[str, list[Any]]:
    if field.relation is None:
        raise OdooValueError(f"Invalid field {model.name}.{leaf[0]} in condition {leaf!r}")
    comodel = MODELS[field.relation]
    sub = f"s{next(_aliases)}"
    condition, params = compile_domain(comodel, [subleaf], sub, active_test=False)
    if field.type == "many2one":
        return f"{alias}.{field.name} IN (SELECT {sub}.id FROM {comodel.table} {sub} WHERE {condition})", params
    if field.type == "one2many":
        return (
            f"{alias}.id IN (SELECT {sub}.{field.inverse_name} FROM {comodel.table} {sub} WHERE {condition})",
            params,
        )
    link = _link_condition(field, "r")
    return (
        f"{alias}.id IN (SELECT r.{field.column1} FROM {field.relation_table} r JOIN {comodel.table} {sub} "
        f"ON {sub}.id = r.{field.column2} WHERE {condition}{link})",
        params,
    )


def _link_condition(field: Field, link_alias: str) -> str:
    return f" AND {link_alias}.{field.relation_filter}" if field.relation_filter else ""


def _x2many_leaf(model: Model, alias: str, field: Field, operator: str, value: Any,
                 leaf: tuple[Any, Any, Any]) -> tuple[str, list[Any]]:
    if isinstance(value, str) or operator in LIKE_OPERATORS:
        return _path_leaf(model, alias, field, ("display_name", operator, value), leaf)
    if field.type == "one2many":
        comodel = MODELS[field.relation or ""]
        related = f"SELECT r.{field.inverse_name} FROM {comodel.table} r WHERE r.{field.inverse_name} IS NOT NULL"
        id_column = "r.id"
    else:
        related = f"SELECT r.{field.column1} FROM {field.relation_table} r WHERE 1 = 1{_link_condition(field, 'r')}"
        id_column = f"r.{field.column2}"
    if value is False or value is None:
        if operator in ("=", "in"):
            return f"{alias}.id NOT IN ({related})", []
        return f"{alias}.id IN ({related})", []
    ids = value if isinstance(value, list | tuple) else [value]
    in_sql, params = _in_list(id_column, list(ids))
    if operator in ("=", "in"):
        return f"{alias}.id IN ({related} AND {in_sql})", params
    if operator in ("!=", "not in"):
        return f"{alias}.id NOT IN ({related} AND {in_sql})", params
    raise OdooValueError(f"Invalid operator {operator!r} for a relational field in condition {leaf!r}")


def _child_of(model: Model, alias: str, field: Field, value: Any, leaf: tuple[Any, Any, Any]) -> tuple[str, list[Any]]:
    target = model if field.name == "id" else MODELS.get(field.relation or "")
    if target is None or "parent_id" not in target.fields or field.type not in ("integer", "many2one"):
        raise OdooValueError(f"Invalid path {leaf[0]!r} for operator 'child_of' in condition {leaf!r}")
    roots = value if isinstance(value, list | tuple) else [value]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in roots):
        raise OdooValueError(f"Invalid value for 'child_of' in condition {leaf!r}: ids are expected")
    in_sql, params = _in_list("id", list(roots))
    tree = (
        f"WITH RECURSIVE tree(id) AS (SELECT id FROM {target.table} WHERE {in_sql} "
        f"UNION SELECT c.id FROM {target.table} c JOIN tree ON c.parent_id = tree.id) SELECT id FROM tree"
    )
    return f"{alias}.{field.name} IN ({tree})", params


def _in_list(column: str, values: list[Any]) -> tuple[str, list[Any]]:
    if len(values) > _INLINE_IN_LIMIT:
        return f"{column} IN (SELECT value FROM json_each(?))", [orjson.dumps(values).decode()]
    return f"{column} IN ({', '.join('?' * len(values))})", values


def _db_value(field: Field | None, value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if field is not None and field.type == "many2one" and isinstance(value, list | tuple) and value:
        return value[0]
    return value


def _scalar_leaf(column: str, field: Field | None, operator: str, value: Any,
                 leaf: tuple[Any, Any, Any]) -> tuple[str, list[Any]]:
    is_text = field is None or field.type in ("char", "text", "selection")
    if operator in ("=", "!=") and isinstance(value, list | tuple) and not (field and field.type == "many2one"):
        operator = "in" if operator == "=" else "not in"
    if operator in ("in", "not in"):
        values = list(value) if isinstance(value, list | tuple) else [value]
        has_null = any(v is False or v is None for v in values) and (field is None or field.type != "boolean")
        concrete = [_db_value(field, v) for v in values if not ((v is False or v is None) and has_null)]
        if operator == "in":
            parts = []
            params: list[Any] = []
            if concrete:
                sql, params = _in_list(column, concrete)
                parts.append(sql)
            if has_null:
                parts.append(f"{column} IS NULL")
            return (f"({' OR '.join(parts)})" if parts else "1 = 0"), params
        if not concrete:
            return (f"{column} IS NOT NULL" if has_null else "1 = 1"), []
        sql, params = _in_list(column, concrete)
        null_part = f"{column} IS NOT NULL" if has_null else f"{column} IS NULL"
        joiner = " AND " if has_null else " OR "
        return f"(NOT ({sql}){joiner}{null_part})", params
    if field is not None and field.type == "boolean" and operator in ("=", "!="):
        truth = bool(value)
        if operator == "!=":
            truth = not truth
        return (f"COALESCE({column}, 0) != 0" if truth else f"COALESCE({column}, 0) = 0"), []
    if value is False or value is None:
        if operator == "=":
            return (f"({column} IS NULL OR {column} = '')" if is_text else f"{column} IS NULL"), []
        if operator == "!=":
            return (f"({column} IS NOT NULL AND {column} != '')" if is_text else f"{column} IS NOT NULL"), []
        if operator in LIKE_OPERATORS:
            value = ""
        else:
            return "1 = 0", []
    if operator in LIKE_OPERATORS:
        if not isinstance(value, str):
            value = str(value)
        pattern = value if operator.startswith("=") else f"%{value}%"
        if operator in ("ilike", "not ilike", "=ilike"):
            condition = f"lower({column}) LIKE lower(?)"
        else:
            condition = f"{column} LIKE ?"
        if operator.startswith("not"):
            return f"({column} IS NULL OR NOT ({condition}))", [pattern]
        return condition, [pattern]
    if isinstance(value, dict | list | tuple):
        raise OdooValueError(f"Invalid value {value!r} in condition {leaf!r}")
    db_value = _db_value(field, value)
    if operator == "=":
        return f"{column} = ?", [db_value]
    if operator == "!=":
        return f"({column} IS NULL OR {column} != ?)", [db_value]
    return f"{column} {operator} ?", [db_value]


_ORDER_TERM = re.compile(r"^\s*([a-z_][a-z0-9_]*)(?:\s+(asc|desc))?(?:\s+nulls\s+(first|last))?\s*$", re.IGNORECASE)


def compile_order(model: Model, order: Any, alias: str = "a") -> str:
    """The SQL ORDER BY list for an Odoo ``order`` string (``"write_date asc, id asc"``)."""
    spec = order if isinstance(order, str) and order.strip() else model.order
    terms = []
    has_id = False
    for part in spec.split(","):
        match = _ORDER_TERM.match(part)
        field = model.fields.get(match.group(1)) if match else None
        if match is None or field is None or field.is_x2many:
            raise OdooValueError(
                f'Invalid "order" specified ({spec}). A valid "order" specification is a comma-separated list '
                f"of valid field names (optionally followed by asc/desc for the direction)"
            )
        direction = (match.group(2) or "asc").upper()
        # PostgreSQL puts NULLs last in ascending order and first in descending order; SQLite does the opposite.
        nulls = (match.group(3) or ("last" if direction == "ASC" else "first")).upper()
        if field.type == "many2one" and field.sql is None:
            comodel = MODELS[field.relation or ""]
            sub = f"o{next(_aliases)}"
            expression = (
                f"(SELECT {comodel.display_expression(sub)} FROM {comodel.table} {sub} "
                f"WHERE {sub}.id = {alias}.{field.name})"
            )
        else:
            expression = field.expression(alias)
        has_id = has_id or field.name == "id"
        terms.append(f"{expression} {direction} NULLS {nulls}")
    if not has_id:
        terms.append(f"{alias}.id ASC")
    return ", ".join(terms)
