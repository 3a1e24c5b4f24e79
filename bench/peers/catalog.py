"""Choosing what a peer syncs: the configured catalog handed to an Airbyte source or a Singer tap."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any


def normalise(name: str) -> str:
    """``invoice_line_items`` / ``InvoiceLineItem`` / ``invoice_line_item`` -> ``invoicelineitem``."""
    key = re.sub(r"[^a-z0-9]", "", name.lower())
    return key[:-1] if key.endswith("s") and not key.endswith("ss") else key


COMPARABLE_NAMES = {"invoice_line": "invoice_line_items"}
"""Revloop tables whose peer streams are named differently (beyond case, separators and plurals)."""


def comparable(name: str) -> str:
    """The key under which a Revloop table and a peer's stream read the same vendor object.

    ``Invoice__c`` / ``invoice_c``, ``charges`` / ``charge``, ``invoice_line_items`` / ``invoice_line``.
    """
    return normalise(COMPARABLE_NAMES.get(name, name))


def flatten_counts(stats: Mapping[str, Any], prefix: str = "") -> dict[str, int]:
    """A sandbox's ``records`` document as ``{object name: count}`` (nested groups are flattened)."""
    result: dict[str, int] = {}
    for key, value in stats.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            result[key] = value
        elif isinstance(value, Mapping):
            result.update(flatten_counts(value, f"{prefix}{key}."))
    return result


def expected_count(stream: str, sandbox_counts: Mapping[str, int], aliases: Mapping[str, str]) -> int | None:
    """What the sandbox holds for the peer's ``stream``, or None when it has no such object."""
    wanted = normalise(aliases.get(stream, stream))
    for name, count in sandbox_counts.items():
        if normalise(name.rsplit(".", 1)[-1]) == wanted:
            return count
    return None


def airbyte_configured_catalog(
    catalog: Mapping[str, Any], selected: Iterable[str], prefer_incremental: bool
) -> dict[str, Any]:
    """An Airbyte ``ConfiguredAirbyteCatalog`` for the ``selected`` streams of a discovered catalog."""
    wanted = set(selected)
    streams = []
    for stream in catalog.get("streams", []):
        if stream["name"] not in wanted:
            continue
        modes = stream.get("supported_sync_modes", ["full_refresh"])
        incremental = prefer_incremental and "incremental" in modes
        dedup = incremental and stream.get("source_defined_primary_key")
        configured: dict[str, Any] = {
            "stream": stream,
            "sync_mode": "incremental" if incremental else "full_refresh",
            "destination_sync_mode": "append_dedup" if dedup else "overwrite",
        }
        if incremental:
            configured["cursor_field"] = stream.get("default_cursor_field", [])
        if stream.get("source_defined_primary_key"):
            configured["primary_key"] = stream["source_defined_primary_key"]
        streams.append(configured)
    return {"streams": streams}


def airbyte_primary_keys(configured: Mapping[str, Any]) -> dict[str, list[str]]:
    """Stream -> top-level primary key fields of a configured catalog."""
    result = {}
    for entry in configured["streams"]:
        key = entry.get("primary_key") or []
        result[entry["stream"]["name"]] = [path[0] for path in key if path]
    return result


def singer_select(catalog: dict[str, Any], selected: Iterable[str]) -> dict[str, Any]:
    """Mark the ``selected`` streams (and all their supported fields) selected in a Singer catalog."""
    wanted = set(selected)
    for stream in catalog.get("streams", []):
        chosen = stream["tap_stream_id"] in wanted
        for entry in stream.get("metadata", []):
            meta = entry.setdefault("metadata", {})
            if entry.get("breadcrumb") == []:
                meta["selected"] = chosen
                if chosen:
                    keys = meta.get("valid-replication-keys") or []
                    forced = meta.get("forced-replication-method")
                    if forced:
                        meta["replication-method"] = forced
                    elif keys:
                        meta["replication-method"] = "INCREMENTAL"
                        meta["replication-key"] = keys[0]
                    else:
                        meta["replication-method"] = "FULL_TABLE"
            elif chosen and meta.get("inclusion") != "unsupported":
                meta["selected"] = True
    return catalog


def singer_stream_names(catalog: Mapping[str, Any]) -> list[str]:
    return [stream["tap_stream_id"] for stream in catalog.get("streams", [])]


def airbyte_stream_names(catalog: Mapping[str, Any]) -> list[str]:
    return [stream["name"] for stream in catalog.get("streams", [])]
