"""The public model methods, their signatures (for argument binding and ``/doc-bearer``) and how a call runs.

Both protocols end in :func:`call`: JSON-2 passes named arguments and ``ids``; JSON-RPC and XML-RPC pass
Odoo's ``execute_kw`` positional ``args`` (record methods take the ids first) and ``kwargs``.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

from sandboxes.erp import accounting, imports, orm
from sandboxes.erp.access import Integration, check_access
from sandboxes.erp.errors import AccessError, HttpError, OdooTypeError, OdooValueError, UserError
from sandboxes.erp.orm import Env
from sandboxes.erp.schema import MODELS, Model
from sandboxes.erp.store import Store

REQUIRED = inspect.Parameter.empty


@dataclasses.dataclass(frozen=True)
class Method:
    """A public method: its parameters (name -> default, ``REQUIRED`` when none), kind and access."""

    name: str
    parameters: tuple[tuple[str, Any], ...]
    api_model: bool
    operation: str
    run: Callable[..., Any]
    models: frozenset[str] | None = None
    var_keyword: str | None = None
    doc: str = ""

    @property
    def signature(self) -> inspect.Signature:
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
        params = [inspect.Parameter("self", kind)]
        params += [inspect.Parameter(name, kind, default=default) for name, default in self.parameters]
        if self.var_keyword:
            params.append(inspect.Parameter(self.var_keyword, inspect.Parameter.VAR_KEYWORD))
        return inspect.Signature(params)


def _search_read(env: Env, model: Model, ids: list[int], domain: Any = None, fields: Any = None, offset: Any = 0,
                 limit: Any = None, order: Any = None, **read_kwargs: Any) -> list[dict[str, Any]]:
    found = orm.search(env, model, domain or [], offset, limit, order)
    return orm.read(env, model, found, fields, read_kwargs.get("load", "_classic_read"))


def _create(env: Env, model: Model, ids: list[int], vals_list: Any) -> list[int]:
    values = [vals_list] if isinstance(vals_list, dict) else vals_list
    if not isinstance(values, list):
        raise OdooValueError(f"Invalid values {vals_list!r}: a dictionary or a list of dictionaries is expected")
    return orm.create(env, model, values)


def _context_get(env: Env, model: Model, ids: list[int]) -> dict[str, Any]:
    return {"lang": "en_US", "tz": "UTC", "uid": env.uid}


_MOVE = frozenset({"account.move"})
_PAYMENT = frozenset({"account.payment"})
METHODS: dict[str, Method] = {m.name: m for m in (
    Method("search", (("domain", REQUIRED), ("offset", 0), ("limit", None), ("order", None)), True, "read",
           lambda env, model, ids, domain, offset=0, limit=None, order=None:
           orm.search(env, model, domain, offset, limit, order),
           doc="Search for the records that satisfy the given domain."),
    Method("search_read", (("domain", None), ("fields", None), ("offset", 0), ("limit", None), ("order", None)),
           True, "read", _search_read, var_keyword="read_kwargs",
           doc="Perform a search() followed by a read()."),
    Method("search_count", (("domain", REQUIRED), ("limit", None)), True, "read",
           lambda env, model, ids, domain, limit=None: orm.search_count(env, model, domain, limit),
           doc="Return the number of records matching the domain."),
    Method("read", (("fields", None), ("load", "_classic_read")), False, "read",
           lambda env, model, ids, fields=None, load="_classic_read": orm.read(env, model, ids, fields, load),
           doc="Read the requested fields of the records."),
    Method("create", (("vals_list", REQUIRED),), True, "create", _create, doc="Create new records."),
    Method("write", (("vals", REQUIRED),), False, "write",
           lambda env, model, ids, vals: orm.write(env, model, ids, vals), doc="Update the records."),
    Method("unlink", (), False, "unlink", lambda env, model, ids: orm.unlink(env, model, ids),
           doc="Delete the records."),
    Method("exists", (), False, "read",
           lambda env, model, ids: orm.search(env, model, [("id", "in", ids)] if ids else [(0, "=", 1)],
                                              order="id") if ids else [],
           doc="The subset of records that exist."),
    Method("fields_get", (("allfields", None), ("attributes", None)), True, "read",
           lambda env, model, ids, allfields=None, attributes=None: orm.fields_get(model, allfields, attributes),
           doc="Return the definition of each field."),
    Method("name_search", (("name", ""), ("domain", None), ("operator", "ilike"), ("limit", 100)), True, "read",
           lambda env, model, ids, name="", domain=None, operator="ilike", limit=100:
           orm.name_search(env, model, name, domain, operator, limit),
           doc="Search for records whose display name matches the given name pattern."),
    Method("load", (("fields", REQUIRED), ("data", REQUIRED)), True, "create", imports.load,
           doc="Import rows of strings, creating or updating records by external id."),
    Method("action_post", (), False, "write",
           lambda env, model, ids: (accounting.payment_action_post if model.name == "account.payment"
                                    else accounting.action_post)(env, model, ids),
           models=frozenset({"account.move", "account.payment"}), doc="Post the entries or payments."),
    Method("button_draft", (), False, "write", accounting.button_draft, models=_MOVE, doc="Reset to draft."),
    Method("button_cancel", (), False, "write", accounting.button_cancel, models=_MOVE, doc="Cancel the entries."),
    Method("action_draft", (), False, "write", accounting.payment_action_draft, models=_PAYMENT,
           doc="Reset the payments to draft (undoes their reconciliation)."),
    Method("action_cancel", (), False, "write", accounting.payment_action_cancel, models=_PAYMENT,
           doc="Cancel the payments."),
    Method("action_create_payments", (), False, "write", accounting.action_create_payments,
           models=frozenset({"account.payment.register"}), doc="Create and reconcile the payments."),
    Method("context_get", (), True, "read", _context_get, models=frozenset({"res.users"}),
           doc="The user's context."),
)}


def resolve(model_name: str, method_name: str, for_json2: bool) -> tuple[Model, Method]:
    """The model and method named in a call, or the error Odoo answers for either."""
    model = MODELS.get(model_name)
    if model is None:
        if for_json2:
            raise HttpError(404, f"the model {model_name!r} does not exist")
        raise UserError(f"Object {model_name} doesn't exist")
    if method_name.startswith("_"):
        raise AccessError(f"Private methods (such as '{model_name}.{method_name}') cannot be called remotely.")
    method = METHODS.get(method_name)
    if method is None or (method.models is not None and model_name not in method.models):
        message = f"The method '{model_name}.{method_name}' does not exist"
        if for_json2:
            raise HttpError(404, message)
        raise OdooValueError(message) from None
    return model, method


def methods_of(model: Model) -> list[Method]:
    return [m for m in METHODS.values() if m.models is None or model.name in m.models]


def call(store: Store, user: Integration, model: Model, method: Method, ids: Any, args: list[Any],
         kwargs: dict[str, Any], for_json2: bool) -> Any:
    """Bind the arguments as Python would, check access rights, then run the method in one transaction."""
    context = kwargs.pop("context", None) or {}
    if not isinstance(context, dict):
        raise OdooValueError(f"Invalid context {context!r}: a dictionary is expected")
    record_ids = orm.normalize_ids(ids)
    if method.api_model and record_ids and for_json2:
        raise HttpError(422, f"cannot call {model.name}.{method.name} with ids")
    try:
        bound = method.signature.bind(record_ids, *args, **kwargs)
    except TypeError as exc:
        if for_json2:
            raise HttpError(422, str(exc.args[0])) from None
        raise OdooTypeError(f"{model.name}.{method.name}() {exc.args[0]}") from None
    check_access(user, model.name, method.operation)
    if method.name == "load":
        check_access(user, model.name, "write")
    arguments = dict(bound.arguments)
    arguments.pop("self")
    extra = arguments.pop(method.var_keyword, {}) if method.var_keyword else {}
    with store.transaction():
        env = Env(store, user.uid, context)
        return method.run(env, model, record_ids, **arguments, **extra)
