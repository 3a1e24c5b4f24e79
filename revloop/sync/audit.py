"""Appends to ``sync.audit_log``: who or what did what, when, to which record, with which result."""

from __future__ import annotations

import getpass
import json
from typing import Any

import psycopg


def current_actor() -> str:
    """The operating-system user running a manual command (``revloop replay``), for the audit log."""
    try:
        return f"user:{getpass.getuser()}"
    except (OSError, KeyError):
        return "user:unknown"


def record(
    conn: psycopg.Connection,
    *,
    actor: str,
    action: str,
    result: str,
    target_system: str | None = None,
    target_object: str | None = None,
    target_id: str | None = None,
    idempotency_key: str | None = None,
    payload_hash: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one audit row (in the caller's transaction, so it commits with what it describes)."""
    conn.execute(
        """insert into sync.audit_log
               (actor, action, target_system, target_object, target_id, idempotency_key, payload_hash, result, detail)
           values (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb)""",
        (actor, action, target_system, target_object, target_id, idempotency_key, payload_hash, result,
         json.dumps(detail or {}, default=str)),
    )
