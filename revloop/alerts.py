"""Alerts for the on-call engineer: Slack in production, a table the demo and the tests can read.

Every alert names what failed, how often, and links to the runbook section that says what to do.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import Any, Protocol

import psycopg

logger = logging.getLogger(__name__)

RUNBOOK_URL = os.environ.get("REVLOOP_RUNBOOK_URL", "docs/runbooks.md")

DDL = """
create schema if not exists ops;
create table if not exists ops.alerts (
    id        bigserial primary key,
    at        timestamptz not null default now(),
    severity  text not null,
    kind      text not null,
    title     text not null,
    runbook   text not null,
    detail    jsonb not null default '{}'::jsonb
);
"""


@dataclasses.dataclass(frozen=True)
class Alert:
    severity: str
    """``error`` or ``warn``."""
    kind: str
    """Stable name of the condition, also the runbook anchor: ``write-dead-lettered``, ``write-parked``..."""
    title: str
    detail: dict[str, Any]

    @property
    def runbook(self) -> str:
        return f"{RUNBOOK_URL}#{self.kind}"


class Alerter(Protocol):
    def send(self, alert: Alert) -> None: ...


class TableAlerter:
    """Writes alerts to ``ops.alerts`` (the local channel of the demo and the tests; also an archive)."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        with psycopg.connect(database_url) as conn, conn.transaction():
            # concurrent "create ... if not exists" can collide on the catalog: take turns
            conn.execute("select pg_advisory_xact_lock(hashtextextended('revloop.alerts.schema', 0))")
            conn.execute(DDL)

    def send(self, alert: Alert) -> None:
        with psycopg.connect(self.database_url) as conn:
            conn.execute(
                "insert into ops.alerts (severity, kind, title, runbook, detail) values (%s, %s, %s, %s, %s::jsonb)",
                (alert.severity, alert.kind, alert.title, alert.runbook, json.dumps(alert.detail, default=str)),
            )
        logger.warning("alert %s: %s (%s)", alert.kind, alert.title, alert.runbook)


class SlackAlerter:
    """Posts to a Slack channel with slack_sdk (what dagster-slack uses), keeping a copy in the table."""

    def __init__(self, token: str, channel: str, archive: TableAlerter | None = None) -> None:
        from slack_sdk import WebClient

        self.client = WebClient(token=token)
        self.channel = channel
        self.archive = archive

    def send(self, alert: Alert) -> None:
        icon = ":red_circle:" if alert.severity == "error" else ":warning:"
        facts = "\n".join(f"• {key}: {value}" for key, value in alert.detail.items())
        self.client.chat_postMessage(
            channel=self.channel,
            text=f"{icon} *{alert.title}*\n{facts}\nRunbook: {alert.runbook}",
        )
        if self.archive is not None:
            self.archive.send(alert)


def alerter_from_environment(database_url: str) -> Alerter:
    """Slack when ``REVLOOP_SLACK_TOKEN`` and ``REVLOOP_SLACK_CHANNEL`` are set, else the table."""
    table = TableAlerter(database_url)
    token, channel = os.environ.get("REVLOOP_SLACK_TOKEN"), os.environ.get("REVLOOP_SLACK_CHANNEL")
    if token and channel:
        return SlackAlerter(token, channel, archive=table)
    return table
