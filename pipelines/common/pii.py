"""PII never reaches the warehouse in plain text: encrypted value plus a keyed hash for matching.

A column declared PII, say ``email`` of kind ``email``, becomes two columns: ``email_enc`` (the
encrypted token, see :mod:`revloop.crypto`) and ``email_hash`` (HMAC of the normalized value). The
plaintext column is dropped before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa

from revloop.crypto import FieldCipher, MatchHasher


class PiiProtector:
    """Encrypts and hashes the PII columns of Arrow tables (or dict rows) of one system."""

    def __init__(self, system: str, cipher: FieldCipher, hasher: MatchHasher) -> None:
        self.system = system
        self.cipher = cipher
        self.hasher = hasher

    def field_name(self, table: str, column: str) -> str:
        """The associated data bound into each token: a token only opens for its own column."""
        return f"{self.system}.{table}.{column}"

    def protect_table(self, table_name: str, table: pa.Table, pii: Mapping[str, str]) -> pa.Table:
        """``table`` with each PII column (name -> kind) replaced by ``<name>_enc`` and ``<name>_hash``."""
        for column, kind in pii.items():
            if column not in table.column_names:
                continue
            values = table.column(column).to_pylist()
            field = self.field_name(table_name, column)
            encrypted = [self.cipher.encrypt(None if v is None else str(v), field) for v in values]
            hashed = [self.hasher.hash(None if v is None else str(v), kind) for v in values]
            index = table.column_names.index(column)
            table = table.remove_column(index)
            table = table.add_column(index, pa.field(f"{column}_enc", pa.string()), pa.array(encrypted, pa.string()))
            table = table.add_column(index + 1, pa.field(f"{column}_hash", pa.string()), pa.array(hashed, pa.string()))
        return table

    def protect_row(self, table_name: str, row: dict[str, object], pii: Mapping[str, str]) -> dict[str, object]:
        """The dict-row form of :meth:`protect_table` (used for small payloads such as quarantine)."""
        result = dict(row)
        for column, kind in pii.items():
            if column not in result:
                continue
            value = result.pop(column)
            text = None if value is None else str(value)
            result[f"{column}_enc"] = self.cipher.encrypt(text, self.field_name(table_name, column))
            result[f"{column}_hash"] = self.hasher.hash(text, kind)
        return result
