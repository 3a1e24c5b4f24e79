"""Integration users, their API keys and their access rights per model (Odoo's ``ir.model.access``).

Odoo ties an API key to a user, and a user's groups decide what it may read or change per model. The
sandbox has one user per integration, each with its own key, stable across restarts.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from sandboxes.common.credentials import load_or_create, token
from sandboxes.erp.errors import AccessError
from sandboxes.erp.schema import MODELS

DATABASE = "revloop"
ALL_MODELS = "*"


@dataclasses.dataclass(frozen=True)
class Integration:
    """One integration user: its login, and the models it may read and write."""

    uid: int
    login: str
    name: str
    reads: frozenset[str]
    writes: frozenset[str]


INTEGRATIONS = (
    Integration(2, "admin", "Administrator", frozenset({ALL_MODELS}), frozenset({ALL_MODELS})),
    Integration(6, "revloop-sync", "Revloop Sync", frozenset({ALL_MODELS}),
                frozenset({"res.partner", "account.move", "account.move.line", "account.payment",
                           "account.payment.register", "ir.model.data"})),
    Integration(7, "revloop-reader", "Revloop Reader", frozenset({ALL_MODELS}), frozenset()),
    Integration(8, "revloop-restricted", "Revloop Restricted",
                frozenset({"res.partner", "res.country", "res.currency", "res.users"}), frozenset()),
)
BY_UID = {i.uid: i for i in INTEGRATIONS}
BY_LOGIN = {i.login: i for i in INTEGRATIONS}

GROUPS = {"account": "Accounting / Billing", "res.partner": "Contact / Creation"}
VERBS = {"read": "access", "write": "modify", "create": "create", "unlink": "delete"}
ACCESS_MODEL = {"account.payment.register": "account.payment", "account.move.line": "account.move"}
"""Writes through a wizard or on journal items are checked against the record they change."""


class Credentials:
    """The API keys (one per integration user), kept in ``credentials.json`` of the system's folder."""

    def __init__(self, path: Path) -> None:
        self.keys: dict[str, str] = load_or_create(
            path, lambda: {i.login: token("rvk_") for i in INTEGRATIONS}
        )
        self._by_key = {key: BY_LOGIN[login] for login, key in self.keys.items() if login in BY_LOGIN}

    def user_of_key(self, key: str | None) -> Integration | None:
        return self._by_key.get(key or "")

    def check_password(self, uid: Any, password: Any) -> Integration | None:
        """The user when ``password`` is the API key of user ``uid`` (Odoo's ``res.users.check``)."""
        user = self.user_of_key(password if isinstance(password, str) else None)
        return user if user is not None and user.uid == uid else None

    def login(self, login: Any, password: Any) -> Integration | None:
        user = self.user_of_key(password if isinstance(password, str) else None)
        return user if user is not None and user.login == login else None


def check_access(user: Integration, model_name: str, operation: str) -> None:
    """Raise Odoo's ``AccessError`` when ``user`` may not do ``operation`` on ``model_name``."""
    if model_name == "res.users" and operation == "read":
        return
    target = ACCESS_MODEL.get(model_name, model_name) if operation != "read" else model_name
    allowed = user.reads if operation == "read" else user.writes
    if ALL_MODELS in allowed or target in allowed:
        return
    model = MODELS[target]
    group = GROUPS.get(target) or GROUPS.get(target.split(".")[0], "Administration / Settings")
    raise AccessError(
        f"You are not allowed to {VERBS[operation]} '{model.description}' ({model.name}) records.\n\n"
        f"This operation is allowed for the following groups:\n\t- {group}\n\n"
        "Contact your administrator to request access if necessary."
    )
