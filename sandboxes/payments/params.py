"""Typed access to a request's decoded parameters, answering bad input with Stripe's 400 errors."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sandboxes.payments.errors import StripeError, invalid_param, missing_param, unknown_param
from sandboxes.payments.money import SUPPORTED_CURRENCIES

ALWAYS_ALLOWED = frozenset({"expand"})
METADATA_MAX_KEYS = 50


class Params:
    """The parameters of one request, with the validation Stripe applies before executing it."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def allow(self, names: Iterable[str]) -> Params:
        """Reject any top-level parameter not in ``names`` with ``parameter_unknown``."""
        allowed = ALWAYS_ALLOWED | set(names)
        for name in self.data:
            if name not in allowed:
                raise unknown_param(name)
        return self

    def has(self, name: str) -> bool:
        return name in self.data

    def str(self, name: str, *, required: bool = False, max_length: int = 5000) -> str | None:
        value = self.data.get(name)
        if value is None or value == "":
            if required:
                raise missing_param(name)
            return None
        if not isinstance(value, str):
            raise invalid_param(name, f"Invalid string: {name} must be a string, not a hash or array.")
        if len(value) > max_length:
            raise invalid_param(
                name, f"Invalid string: {value[:20]}...; must be at most {max_length} characters", "string_too_long"
            )
        return value

    def nullable_str(self, name: str) -> str | None:
        """A string that an empty value clears (``description=``)."""
        return self.str(name) if self.data.get(name) != "" else None

    def int(self, name: str, *, required: bool = False, minimum: int | None = None) -> int | None:
        value = self.data.get(name)
        if value is None or value == "":
            if required:
                raise missing_param(name)
            return None
        number = int(value) if isinstance(value, str) and value.lstrip("-").isdigit() else None
        if number is None:
            raise invalid_param(name, f"Invalid integer: {value}", "parameter_invalid_integer")
        if minimum is not None and number < minimum:
            raise invalid_param(
                name, f"This value must be greater than or equal to {minimum}.", "parameter_invalid_integer"
            )
        return number

    def bool(self, name: str, default: bool | None = None) -> bool | None:
        value = self.data.get(name)
        if value is None or value == "":
            return default
        if value in ("true", "false"):
            return value == "true"
        raise invalid_param(name, f"Invalid boolean: {value}")

    def enum(
        self, name: str, choices: Iterable[str], *, required: bool = False, default: str | None = None
    ) -> str | None:
        value = self.str(name, required=required)
        if value is None:
            return default
        options = list(choices)
        if value not in options:
            raise invalid_param(name, f"Invalid {name}: must be one of {', '.join(options[:-1])} or {options[-1]}")
        return value

    def currency(self, name: str = "currency", *, required: bool = False) -> str | None:
        value = self.str(name, required=required)
        if value is None:
            return None
        code = value.lower()
        if code not in SUPPORTED_CURRENCIES:
            raise invalid_param(
                name,
                f"Invalid currency: {code}. Stripe currently supports these currencies: "
                + ", ".join(sorted(SUPPORTED_CURRENCIES)),
            )
        return code

    def hash(self, name: str, allowed: Iterable[str] | None = None) -> dict[str, Any] | None:
        value = self.data.get(name)
        if value is None:
            return None
        if value == "":
            return {}
        if not isinstance(value, dict):
            raise invalid_param(name, f"Invalid object: {name} must be a hash")
        if allowed is not None:
            known = set(allowed)
            for key in value:
                if key not in known:
                    raise unknown_param(f"{name}[{key}]")
        return value

    def list(self, name: str) -> list[Any]:
        value = self.data.get(name)
        if value is None or value == "":
            return []
        if isinstance(value, list):
            return value
        if isinstance(value, str):
            return [value]
        raise invalid_param(name, f"Invalid array: {name} must be an array")

    def expand(self) -> list[str]:
        return [item for item in self.list("expand") if isinstance(item, str)]

    def metadata_update(self, current: dict[str, str] | None = None) -> dict[str, str]:
        """Stripe's metadata semantics: keys merge, an empty value removes a key, ``metadata=`` clears all."""
        merged = dict(current or {})
        if "metadata" not in self.data:
            return merged
        raw = self.data["metadata"]
        if raw == "":
            return {}
        if not isinstance(raw, dict):
            raise invalid_param("metadata", "Invalid object: metadata must be a hash of string keys and values")
        for key, value in raw.items():
            if not isinstance(value, str):
                raise invalid_param(f"metadata[{key}]", "Metadata values must be strings.")
            if len(key) > 40:
                raise invalid_param(f"metadata[{key}]", "Metadata keys can have up to 40 characters.")
            if len(value) > 500:
                raise invalid_param(f"metadata[{key}]", "Metadata values can have up to 500 characters.")
            if value == "":
                merged.pop(key, None)
            else:
                merged[key] = value
        if len(merged) > METADATA_MAX_KEYS:
            raise invalid_param("metadata", f"Metadata can have up to {METADATA_MAX_KEYS} keys.")
        return merged


def require_state(condition: bool, message: str, code: str | None = None) -> None:
    """Raise a 400 ``invalid_request_error`` unless ``condition`` holds."""
    if not condition:
        raise StripeError(400, message, code=code)
